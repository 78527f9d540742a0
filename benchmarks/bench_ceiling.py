"""Per-core ceiling: the highest arrival rate one generator core sustains for the default journey.

    python benchmarks/bench_ceiling.py                      # bisect 25 .. 400/s, 15 s runs
    python benchmarks/bench_ceiling.py --lo 50 --hi 300 --duration 12 --steps 5
    python benchmarks/bench_ceiling.py --flash 0.25 0.5 0.8 1.0   # then flash crowds at R x ceiling

Each probe is one bounded `surgecast rehearse --arrival-rate R --workers 1` run
(`bench_workers.one`, pinned): the fast testbed (PBKDF2 1,000 iterations, 64 issuer and
payment workers at 5 ms, so the target is not the limit) on CPU 0 and the whole generator
on CPU 1 with `taskset`, loopback only. A rate is *sustained* when dropped <= 0.5 % of
scheduled, dispatch lag p99 <= 50 ms, every drawn arrival released, the scheduled count
within 4 Poisson sd and the run reconciled. The search is a bisection over the rate between
`--lo` (must hold) and `--hi` (must fail): the ceiling lies in the final [lo, hi).
With `--flash`, the flash-crowd shape (nobody for 5 s, then 0 -> R/s within 1 s) is then run
at each given fraction of the ceiling and its drop % and reasons printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import bench_workers  # noqa: E402

LAG_P99_MAX_MS = 50.0


def bisect_ceiling(
    holds: Callable[[float], bool], lo: float, hi: float, steps: int, resolution: float = 5.0
) -> tuple[float, float]:
    """The bracket [lo, hi) with `holds(lo)` true and `holds(hi)` false after bisecting.

    `lo` and `hi` are probed first, so a wrong bracket is seen: (0, lo) if lo fails,
    (hi, inf) if hi holds.

        >>> bisect_ceiling(lambda r: r < 137, 25, 400, 8, resolution=1)
        (136.328125, 137.79296875)
    """
    if not holds(lo):
        return 0.0, lo
    if holds(hi):
        return hi, float("inf")
    for _ in range(steps):
        if hi - lo <= resolution:
            break
        mid = (lo + hi) / 2
        if holds(mid):
            lo = mid
        else:
            hi = mid
    return lo, hi


def _line(r: dict) -> str:
    if "error" in r:
        return f"rate {r['rate']:g}/s: no run directory ({r['error']!r})"
    drop_pct = 100 * r["dropped"] / max(1, r["scheduled"])
    return (
        f"rate {r['rate']:>6.1f}/s  scheduled {r['scheduled']:>5} (z {r['z']:+.2f})  dropped "
        f"{r['dropped']} ({drop_pct:.2f} %) {r['by_reason']}  completed {r['completed']}  "
        f"abandoned {r['abandoned']}  lag p50 {r['lag_p50_ms']:.1f} / "
        f"p99 {r['lag_p99_ms']:.1f} ms  "
        f"cpu max {r['cpu_max']}  reconciled {r['reconciled']}  "
        f"generator cpu {r['gen_cpu_s']:.2f} s ({1000 * r['gen_cpu_s'] / max(1, r['started']):.2f} "
        f"ms/arrival)  -> {'sustained' if r['ok'] else 'NOT'}"
    )


def main() -> None:
    """Bisect the per-core ceiling; optionally run flash crowds at fractions of it."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--lo", type=float, default=25.0)
    ap.add_argument("--hi", type=float, default=400.0)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--flash",
        type=float,
        nargs="*",
        default=[],
        help="fractions of the ceiling to run as flash crowds afterwards",
    )
    a = ap.parse_args()
    bench_workers.LAG_MAX[0] = LAG_P99_MAX_MS
    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, python "
        f"{platform.python_version()}, load average {os.getloadavg()}",
        flush=True,
    )

    def holds(rate: float) -> bool:
        r = bench_workers.one(rate, 1, a.duration, a.seed, pin=True)
        print(_line(r), f"load {os.getloadavg()[0]:.2f}", flush=True)
        return bool(r.get("ok"))

    lo, hi = bisect_ceiling(holds, a.lo, a.hi, a.steps)
    print(
        f"per-core ceiling (dropped <= 0.5 %, lag p99 <= {LAG_P99_MAX_MS:g} ms): "
        f"{lo:g} arrivals/s sustained, {hi:g} not",
        flush=True,
    )
    for f in a.flash:
        rate = round(f * lo, 1)
        if rate <= 0:
            continue
        r = bench_workers.one(rate, 1, a.duration + 5, a.seed, shape="flash-crowd", pin=True)
        print(
            f"flash crowd {f:g} x ceiling:", _line(r), f"load {os.getloadavg()[0]:.2f}", flush=True
        )


if __name__ == "__main__":
    main()
