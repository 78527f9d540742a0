"""Benchmark: build the report for the data of a
2-hour rehearsal (plus a probe and a 1-minute plan).

    python benchmarks/bench_report.py [--builds 3]   # prints the median of the builds; target < 5 s

The run directory is synthetic, written by tests/fixtures/make_fixtures.py at the
size a 2-hour rehearsal produces: 7,200 queue.csv rows, ~30,000 arrivals, 720
latency-history windows x 8 steps, 16 HDR histograms; the plan's timeline.csv
at the contract's 1-minute steps over the whole casn2024 calendar (~34,500 rows).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from make_fixtures import RUN_IDS, write_plan, write_probe, write_rehearsal  # noqa: E402

from reports.build import build_report  # noqa: E402

TARGET_S = 5.0


def main() -> None:
    """Write the synthetic run directory, build the report `--builds` times, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--builds", type=int, default=3, help="report builds to time (default 3)")
    builds = ap.parse_args().builds
    if builds < 1:
        ap.error(f"--builds {builds}: give a whole number >= 1")
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        d = Path(tmp) / "run"
        d.mkdir()
        t = time.perf_counter()
        rid = RUN_IDS["full"]  # one run in one directory (the manifest refuses a second run id)
        write_rehearsal(
            d, duration_s=7200, compress=96.0, scale=0.0115, seed=3, ledger=False, run_id=rid
        )
        write_probe(d, run_id=rid)
        write_plan(d, dt=60.0, run_id=rid)
        setup = time.perf_counter() - t
        sizes = {
            f: sum(1 for _ in (d / f).open()) - 1
            for f in ("queue.csv", "arrivals.csv", "latency_history.csv", "timeline.csv")
        }
        times = []
        for _ in range(builds):
            t = time.perf_counter()
            build_report(d, lang="en")
            times.append(time.perf_counter() - t)
        html = (d / "report.html").stat().st_size
        med = statistics.median(times)
        print(
            f"data: {', '.join(f'{k} {v:,} rows' for k, v in sizes.items())} (written in "
            f"{setup:.1f} s)"
        )
        print(
            f"report build: median {med:.2f} s of {builds} "
            f"({', '.join(f'{x:.2f}' for x in times)}); "
            f"report.html {html / 1e6:.2f} MB; target < {TARGET_S:g} s: "
            f"{'ok' if med < TARGET_S else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
