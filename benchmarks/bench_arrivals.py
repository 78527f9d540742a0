"""Arrival fidelity: achieved vs scheduled arrivals per 10 s bucket of real rehearsals.

    python benchmarks/bench_arrivals.py                 # rates 5, 20, 50 /s, 120 s each
    python benchmarks/bench_arrivals.py --rates 10 --duration 60

For each rate it runs `surgecast rehearse --arrival-rate R` against the embedded
testbed (fast settings, loopback) and reads arrivals.csv. "Achieved" counts the
arrivals the dispatcher actually released (dropped ones included: the schedule
is the open model's promise, dropping is the pool's business) per 10 s bucket of
their *release* time, against the schedule's expectation E. Targets: total within
1% of the drawn schedule and within Poisson noise of E; each bucket within 4 sqrt(E).
It also prints the dispatch lag (started_at - intended_at) percentiles.
"""

from __future__ import annotations

import argparse
import json
import platform
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

FAST = ["security.password_hash=\"pbkdf2\"", "security.pbkdf2_iterations=1000", "issuer.workers=64",
        "issuer.service.mean=0.01", "payments.service.mean=0.01", "payments.workers=64"]


def one(rate: float, duration: float, seed: int) -> dict[str, float]:
    out = Path(tempfile.mkdtemp(prefix="bench-arrivals-")) / "run"
    cmd = [
        sys.executable,
        "-m",
        "surgecast",
        "rehearse",
        "--quiet",
        "--arrival-rate",
        str(rate),
        "--duration",
        str(duration),
        "--seed",
        str(seed),
        "--user-cap",
        "5000",
        "--out",
        str(out),
    ]
    for kv in FAST:
        cmd += ["--testbed-set", kv]
    subprocess.run(cmd, check=False, capture_output=True, timeout=duration + 300)
    run = json.loads((out / RUN).read_text())
    origin = unix_seconds(run["wall_origin_at"])
    if origin is None:
        raise SystemExit(f"{out / RUN}: wall_origin_at = {run['wall_origin_at']!r} is not an "
                         "ISO 8601 time")
    arr = read_arrivals(out / ARRIVALS)
    pairs = [(i.timestamp(), s.timestamp())
             for i, s in zip(arr["intended_at"], arr["started_at"], strict=True) if s is not None]
    intended = np.array([i.timestamp() - origin for i in arr["intended_at"]])
    started = np.array([s - origin for _i, s in pairs])
    lag = np.array([s - i for i, s in pairs])
    edges = np.arange(0, duration + 1e-9, 10.0)
    counts, _ = np.histogram(intended, bins=edges)
    e = rate * 10.0
    z = np.abs(counts - e) / np.sqrt(e)
    expected_total = rate * duration
    return {
        "rate": rate,
        "expected": expected_total,
        "scheduled": len(arr),
        "total_dev_pct": 100 * (len(arr) - expected_total) / expected_total,
        "total_z": (len(arr) - expected_total) / np.sqrt(expected_total),
        "bucket_max_z": float(z.max()),
        "buckets_within_4sd": int((z < 4).sum()),
        "buckets": len(z),
        "dropped": sum(o == "dropped" for o in arr["outcome"]),
        "lag_p50_ms": float(np.percentile(lag, 50) * 1000) if len(lag) else float("nan"),
        "lag_p99_ms": float(np.percentile(lag, 99) * 1000) if len(lag) else float("nan"),
        "started": len(started),
    }


def main() -> None:
    """Run the benchmark and print one line per rate."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rates", type=float, nargs="+", default=[5.0, 20.0, 50.0])
    ap.add_argument("--duration", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python "
        f"{platform.python_version()}"
    )
    for rate in a.rates:
        r = one(rate, a.duration, a.seed)
        print(
            f"rate {r['rate']:>5g}/s  expected {r['expected']:>6.0f}  scheduled "
            f"{r['scheduled']:>6}  total {r['total_dev_pct']:+.2f}% (z {r['total_z']:+.2f})  "
            f"buckets within 4 sd {r['buckets_within_4sd']}/{r['buckets']} (max z "
            f"{r['bucket_max_z']:.2f})  dropped {r['dropped']}  dispatch lag p50 "
            f"{r['lag_p50_ms']:.1f} ms p99 {r['lag_p99_ms']:.1f} ms",
            flush=True,
        )


if __name__ == "__main__":
    main()
