"""Latency against the truth: surgecast's percentiles and Locust's own beside a known latency law.

    python benchmarks/bench_latency_truth.py --rate 10 --duration 40 --runs 2

Each run starts a fast testbed with `[latency_law]` on `POST /v1/accounts` (50 ms, every
100th 500 ms, a 2 s stall every 10 s), runs `surgecast rehearse --arrival-rate R` (the
default journey; register is the first request, sent at the arrival's intended time) and
prints, for the register step, per percentile:

* law (closed form): `analysis.latency_truth.analytic_quantile` (uniform phases);
* law on this run: the law applied to the run's own intended start times;
* server: the target's record of the same requests (answer sent − request received);
* surgecast service / intended: the run directory's HDR histograms;
* Locust: Locust's own percentiles of the `register` row in locust_stats.csv (rounded
  by Locust: 2 significant digits above 100 ms).
Loopback only; the testbed and Locust share the machine's cores.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.latency_truth import (  # noqa: E402
    Law,
    analytic_quantile,
    hdr_of,
    law_record,
    predicted_quantiles,
    rehearse,
)
from floor.rundir.files import read_arrivals  # noqa: E402
from floor.rundir.schema import ARRIVALS  # noqa: E402
from scenarios.latency import read_hdr  # noqa: E402
from testbed.process import TestbedServer  # noqa: E402

FAST = [
    'security.password_hash="pbkdf2"',
    "security.pbkdf2_iterations=1000",
    "issuer.workers=16",
    "issuer.service.mean=0.02",
    "payments.service.mean=0.05",
    "latency_law.enabled=true",
]
PCTS = (50, 90, 95, 99, 99.9)
LOCUST_COL = {50: "50%", 90: "90%", 95: "95%", 99: "99%", 99.9: "99.9%"}


def one_run(rate: float, duration: float, seed: int, out: Path) -> dict[str, dict[float, float]]:
    """Run once; {source: {pct: seconds}}."""
    with TestbedServer(port=0, extra_args=sum((["--set", kv] for kv in FAST), [])) as tb:
        r = rehearse(tb.url, tb.admin_token, rate=rate, duration=duration, seed=seed, out=out)
        if r.returncode != 0:
            raise SystemExit(f"rehearsal failed ({r.returncode}): {r.stderr[-500:]}")
        truth = law_record(tb.url, tb.admin_token)
    rows = truth["requests"]
    arr = read_arrivals(out / ARRIVALS)
    starts = [
        at.timestamp()
        for at, outcome in zip(arr["intended_at"], arr["outcome"], strict=True)
        if outcome != "dropped"
    ]
    with (out / "locust_stats.csv").open(newline="") as f:
        loc = next(x for x in csv.DictReader(f) if x["Name"] == "register")
    server = hdr_of([s - r for r, _n, _d, _a, s in rows])
    due = hdr_of([a - r for r, _n, _d, a, _s in rows])
    svc, ind = (
        read_hdr(str(out / "latency" / f"register.{c}.hdr")) for c in ("service", "intended")
    )
    late = np.array([s - a for _r, _n, _d, a, s in rows])
    print(
        f"  run: {len(rows)} register requests; target late after its law "
        f"p50 {np.median(late) * 1e3:.1f} ms, "
        f"p99 {np.percentile(late, 99) * 1e3:.1f} ms",
        flush=True,
    )
    return {
        "law (closed form)": {p: analytic_quantile(Law(), p / 100) for p in PCTS},
        "law on this run": predicted_quantiles(Law(), starts, PCTS),
        "law on these requests": {p: due.get_value_at_percentile(p) / 1e6 for p in PCTS},
        "server record": {p: server.get_value_at_percentile(p) / 1e6 for p in PCTS},
        "surgecast service": {p: svc.get_value_at_percentile(p) / 1e6 for p in PCTS},
        "surgecast intended": {p: ind.get_value_at_percentile(p) / 1e6 for p in PCTS},
        "Locust (rounded)": {p: float(loc[LOCUST_COL[p]]) / 1000 for p in PCTS},
    }


def main() -> None:
    """Print the table of each run."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=40.0)
    ap.add_argument("--runs", type=int, default=2)
    a = ap.parse_args()
    for i in range(a.runs):
        with tempfile.TemporaryDirectory(prefix="bench-truth-") as d:
            res = one_run(a.rate, a.duration, 11 + i, Path(d) / "run")
        print("| source | " + " | ".join(f"p{p:g}" for p in PCTS) + " |")
        print("|---|" + "---|" * len(PCTS))
        for name, vals in res.items():
            print(f"| {name} | " + " | ".join(f"{vals[p] * 1000:.1f} ms" for p in PCTS) + " |")
        law, svc = res["law on these requests"], res["surgecast service"]
        print(
            "  surgecast service - law on these requests: "
            + ", ".join(f"p{p:g} {(svc[p] - law[p]) * 1000:+.1f} ms" for p in PCTS)
        )
        srv = res["server record"]
        print(
            "  surgecast service - server: "
            + ", ".join(
                f"p{p:g} {(res['surgecast service'][p] - srv[p]) * 1000:+.1f} ms" for p in PCTS
            )
        )
        pred = res["law on this run"]
        print(
            "  surgecast intended vs law on this run: "
            + ", ".join(
                f"p{p:g} {(res['surgecast intended'][p] / pred[p] - 1) * 100:+.1f} %"
                for p in (90, 95, 99)
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
