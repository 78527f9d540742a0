"""Distributed generation: arrivals per second that 1 and 2 local workers sustain at equal fidelity.

    python benchmarks/bench_workers.py                          # rates 25 .. 400/s, 15 s each, 1
    and 2 workers
    python benchmarks/bench_workers.py --rates 30 60 --duration 15
    python benchmarks/bench_workers.py --workers 1 --shape flash-crowd --pin --lag-max-ms 50
    --keep-going

For each worker count and rate it runs `surgecast rehearse --arrival-rate R --workers W`
against the embedded testbed with its fastest loopback settings (PBKDF2 1,000
iterations, 64 issuer and payment workers at 5 ms) and reads the run directory.
A rate is *sustained* when the run keeps fidelity: dropped <= 0.5 % of scheduled,
released arrivals within 1 % of the drawn total (every drawn arrival was either
started or dropped), the scheduled count within 4 Poisson sd of R x duration,
dispatch lag (started_at - intended_at) p99 <= 100 ms, and reconciliation ok. The
highest sustained rate per worker count and the 2-vs-1 ratio are printed.
Workers = 1 is the plain single-process run. Each run is bounded (duration + ~60 s).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from floor.rundir.files import read_arrivals  # noqa: E402
from floor.rundir.schema import ARRIVALS, RUN  # noqa: E402
from floor.timegrammar import unix_seconds  # noqa: E402
from testbed.process import TestbedServer  # noqa: E402

FAST = ["security.password_hash=\"pbkdf2\"", "security.pbkdf2_iterations=1000", "issuer.workers=64",
        "issuer.service.mean=0.005", "payments.workers=64", "payments.service.mean=0.005"]
LAG_P99_MAX_MS = 100.0
LAG_MAX = [LAG_P99_MAX_MS]   # --lag-max-ms
# lag is also reported without the first seconds after the origin (never used for the verdict)
WARMUP_S = 2.0
DROPPED_MAX = 0.005


class PinnedTestbed(TestbedServer):
    """The fast testbed pinned to CPU 0 (`taskset`), so the generator on CPU 1 is what is
    measured."""

    def command(self) -> list[str]:
        return ["taskset", "-c", "0", *super().command()]


def _children_cpu_s() -> float:
    """User + system CPU seconds of this process's reaped children so far."""
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one(rate: float, workers: int, duration: float, seed: int, *, shape: str = "constant",
        pin: bool = False) -> dict[str, float]:
    """One rehearsal; its fidelity figures."""
    out = Path(tempfile.mkdtemp(prefix="bench-workers-")) / "run"
    cmd = [sys.executable, "-m", "surgecast", "rehearse", "--quiet", "--arrival-rate", str(rate),
           "--duration",
           str(duration), "--seed", str(seed), "--user-cap", "5000", "--max-rate", "1000",
           "--workers",
           str(workers), "--arrival-shape", shape, "--out", str(out)]
    before = _children_cpu_s()
    if pin:
        with PinnedTestbed(port=0, extra_args=sum((["--set", kv] for kv in FAST), [])) as tb:
            r = subprocess.run(["taskset", "-c", "1", *cmd, "--host", tb.url,
                                f"--admin-token={tb.admin_token}"],
                               capture_output=True, text=True, timeout=duration + 150, cwd=ROOT)
            gen_cpu_s = _children_cpu_s() - before   # the generator alone (testbed not reaped)
    else:
        for kv in FAST:
            cmd += ["--testbed-set", kv]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 150)
        gen_cpu_s = _children_cpu_s() - before   # generator and embedded testbed together
    if not (out / "summary.json").is_file():
        return {"rate": rate, "workers": workers, "ok": False,
                "error": (r.stderr or r.stdout)[-300:]}
    s = json.loads((out / "summary.json").read_text())
    arr = read_arrivals(out / ARRIVALS)
    origin = unix_seconds(json.loads((out / RUN).read_text())["wall_origin_at"])
    if origin is None:
        raise SystemExit(f"{out / RUN}: wall_origin_at is not an ISO 8601 time")
    started = [
        (i.timestamp(), st.timestamp())
        for i, st in zip(arr["intended_at"], arr["started_at"], strict=True)
        if st is not None
    ]
    lag = np.array([st - i for i, st in started])
    at = np.array([i - origin for i, _ in started])  # test second of each arrival
    late = at[lag * 1000 > LAG_P99_MAX_MS]
    after = lag[at >= WARMUP_S]
    e = rate * duration
    released = s["started"] + s["dropped"]
    res = {
        "rate": rate,
        "workers": workers,
        "expected": e,
        "scheduled": s["scheduled"],
        "dropped": s["dropped"],
        "released_dev_pct": 100 * (released - s["scheduled"]) / max(1, s["scheduled"]),
        "z": (s["scheduled"] - e) / np.sqrt(e),
        "completed": s["completed"],
        "abandoned": s["abandoned"],
        "lag_p50_ms": float(np.percentile(lag, 50) * 1000) if len(lag) else float("nan"),
        "lag_p99_ms": float(np.percentile(lag, 99) * 1000) if len(lag) else float("nan"),
        "lag_p99_after_ms": float(np.percentile(after, 99) * 1000) if len(after) else float("nan"),
        "late": len(late),
        "late_at": [round(float(x), 1) for x in late[:8]],
        "cpu_max": s.get("generator_cpu_percent_max"),
        "reconciled": s.get("reconciliation_ok"),
        "gen_cpu_s": gen_cpu_s,
        "started": s["started"],
        "by_reason": {k: v for k, v in (s.get("dropped_by_reason") or {}).items() if v},
    }
    if shape == "flash-crowd":  # expected: nobody for min(5, T/4) s, then 0 -> R within 1 s
        res["expected"] = e = s["scheduled_expected"]
        res["z"] = (s["scheduled"] - e) / np.sqrt(e)
    res["ok"] = bool(
        s["dropped"] <= DROPPED_MAX * s["scheduled"]
        and abs(res["released_dev_pct"]) <= 1.0
        and abs(res["z"]) < 4
        and res["lag_p99_ms"] <= LAG_MAX[0]
        and res["reconciled"]
    )
    return res


def main() -> None:
    """Run the ladder for 1 and 2 workers; print one line per run and the scaling ratio."""
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--rates", type=float, nargs="+", default=[25.0, 50.0, 100.0, 150.0, 200.0, 300.0, 400.0]
    )
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--shape", choices=["constant", "flash-crowd"], default="constant", help="--arrival-shape"
    )
    ap.add_argument(
        "--pin", action="store_true", help="testbed on CPU 0, generator on CPU 1 (taskset)"
    )
    ap.add_argument(
        "--lag-max-ms",
        type=float,
        default=LAG_P99_MAX_MS,
        help="dispatch lag p99 bound of 'sustained'",
    )
    ap.add_argument("--keep-going", action="store_true", help="run every rate even after a failure")
    a = ap.parse_args()
    LAG_MAX[0] = a.lag_max_ms
    print(
        f"machine: {platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}",
        flush=True,
    )
    best: dict[int, float] = {}
    for w in a.workers:
        for rate in a.rates:
            r = one(rate, w, a.duration, a.seed, shape=a.shape, pin=a.pin)
            if "error" in r:
                print(f"workers {w} rate {rate:g}/s: no run directory ({r['error']!r})", flush=True)
                break
            print(
                f"workers {w}  rate {rate:>4g}/s  scheduled {r['scheduled']:>5} "
                f"(z {r['z']:+.2f})  dropped {r['dropped']:>4}  released "
                f"{r['released_dev_pct']:+.2f}%  completed {r['completed']}  abandoned "
                f"{r['abandoned']}  lag p50 {r['lag_p50_ms']:.1f} ms p99 "
                f"{r['lag_p99_ms']:.1f} ms "
                f"(after {WARMUP_S:g} s: {r['lag_p99_after_ms']:.1f} ms; {r['late']} over "
                f"{LAG_P99_MAX_MS:g} ms at {r['late_at']} s)  "
                f"gen cpu {r['gen_cpu_s']:.2f} s "
                f"({1000 * r['gen_cpu_s'] / max(1, r['started']):.3f} ms/arrival)  "
                f"cpu max {r['cpu_max']}  reconciled {r['reconciled']}  drops {r['by_reason']}  "
                f"-> {'sustained' if r['ok'] else 'NOT'}",
                flush=True,
            )
            if not r["ok"]:
                if a.keep_going:
                    continue
                break
            best[w] = rate
    for w in a.workers:
        print(f"highest sustained rate, {w} worker(s): {best.get(w, 0):g} arrivals/s")
    if best.get(1) and len(a.workers) > 1:
        w2 = a.workers[1]
        print(f"scaling ratio {w2} vs 1 worker(s): {best.get(w2, 0) / best[1]:.2f}")


if __name__ == "__main__":
    main()
