"""Planner benchmark (issue 10): `surgecast plan --profile casn2024` with bands, wall time.

    python benchmarks/bench_plan.py            # medians of 5 repeats
    python benchmarks/bench_plan.py --quick    # 2 repeats

Prints the wall time of the whole command (a fresh process: imports, model runs, files),
the in-process time of `make_plan` by phase, with 2 worker processes and with 1, and the
machine's load average (the 2 cores are shared: repeat when it is high). Figures are
recorded in docs/benchmarks.md, section "Planner".
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def _cmd(repeats: int, extra: list[str]) -> list[float]:
    out = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "surgecast",
                    "plan",
                    "--profile",
                    "casn2024",
                    *extra,
                    "--out",
                    d,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            out.append(time.perf_counter() - t)
    return out


def _phases(workers: int) -> dict[str, float]:
    os.environ["SURGECAST_WORKERS"] = str(workers)
    from analysis import plan_config, plan_model, planner
    from analysis.plan_search import search
    from scenarios.profile import load_profile

    p = load_profile("casn2024")
    cfg = plan_config.PlanConfig()
    t0 = time.perf_counter()
    _, outage = plan_config.outages_in_force(p, cfg)
    d = plan_config.decision_time(p, cfg, outage)
    model = plan_model.PlanModel(p, cfg, plan_config.past_stages(p, cfg, d), d)
    cands = plan_model.candidates(model, cfg)
    t1 = time.perf_counter()
    search(
        model,
        cfg,
        cands[planner.choose(cands)],
        model.inputs(0).total_applicants,
        p.capacity.stamps_per_second,
    )
    t2 = time.perf_counter()
    return {"candidates_s": t1 - t0, "search_s": t2 - t1, "total_s": t2 - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    n = 2 if ap.parse_args().quick else 5
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}"
    )
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    runs = _cmd(n, [])
    print(
        f"surgecast plan --profile casn2024 (bands): median {statistics.median(runs):.2f} s "
        f"(runs {', '.join(f'{x:.2f}' for x in runs)})"
    )
    quick = _cmd(n, ["--no-bands"])
    print(f"  --no-bands: median {statistics.median(quick):.2f} s")
    for w in (2, 1):
        ph = _phases(w)
        print(
            f"  make_plan phases with {w} worker(s): "
            + ", ".join(f"{k} {v:.2f}" for k, v in ph.items())
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
