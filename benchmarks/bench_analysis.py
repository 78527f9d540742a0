"""Analysis benchmarks: fluid model, planner, and our DES against SimPy on the same M/M/c.

    python benchmarks/bench_analysis.py            # prints the figures (medians of repeats)
    python benchmarks/bench_analysis.py --quick    # fewer repeats and a smaller SimPy run

Figures are recorded in docs/benchmarks.md, section "Analysis".
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time
from datetime import datetime, timedelta

import numpy as np

from analysis.backlog import inputs_from_profile, run_fluid, stages_from_profile
from analysis.des import mmc_waits, poisson_arrivals
from analysis.planner import PlanConfig, make_plan
from analysis.planparse import parse_outage
from analysis.queueing import mmc
from scenarios.profile import load_profile
from scenarios.profile_base import Calendar


def _median(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def simpy_mmc_waits(arrival: np.ndarray, service: np.ndarray, servers: int) -> np.ndarray:
    """The same FCFS M/M/c in SimPy, fed the same arrival and service times."""
    import simpy

    env = simpy.Environment()
    res = simpy.Resource(env, capacity=servers)
    waits = np.empty(len(arrival))

    def job(i: int, s: float):
        with res.request() as req:
            t = env.now
            yield req
            waits[i] = env.now - t
            yield env.timeout(s)

    def source():
        prev = 0.0
        for i, (a, s) in enumerate(zip(arrival.tolist(), service.tolist(), strict=True)):
            yield env.timeout(a - prev)
            prev = a
            env.process(job(i, s))

    env.process(source())
    env.run()
    return waits


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    reps = 3 if a.quick else 7
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")

    # 1. Fluid model: 21 days at 1-minute steps, 4 million applicants (casn2024 shape).
    p = load_profile("casn2024")
    start = p.calendar.window_start
    cal = Calendar(tz=p.calendar.tz, window_start=start, deadline=start + timedelta(days=21))
    p21 = dataclasses.replace(p, calendar=cal, applicants_total=4_000_000)
    inp = inputs_from_profile(p21)
    stages = stages_from_profile(p21)
    t_fluid, r = _median(lambda: run_fluid(inp, stages), reps)
    t_inputs, _ = _median(lambda: inputs_from_profile(p21), reps)
    print(
        f"fluid model: {inp.n:,} steps, {inp.total_applicants:,.0f} applicants: run "
        f"{t_fluid * 1000:.0f} ms (+ inputs {t_inputs * 1000:.0f} ms), median of {reps} (target < "
        f"500 ms); {r!r}"
    )

    # 2. Planner: the acceptance plan (no file writing).
    cfg = PlanConfig(
        stamps_per_second=12.0,
        outage=parse_outage("2024-09-03T08:00/2024-09-05T20:00", p.calendar.tz),
    )
    t_plan, plan = _median(lambda: make_plan(p, cfg), max(3, reps // 2))
    print(
        f"planner (casn2024, 12 stamps/s, outage 3-5 Sep): {t_plan:.2f} s median (target < 5 s); "
        f"{plan!r}"
    )

    # 3. DES vs SimPy: the same M/M/c (c = 10, rho = 0.9), the same arrival and service times.
    rng = np.random.default_rng(2024)
    n_des = 1_000_000
    arr = poisson_arrivals(rate=9.0, count=n_des, rng=rng)
    svc = rng.exponential(1.0, n_des)
    t_des, w = _median(lambda: mmc_waits(arr, svc, 10), reps)
    exact = mmc(arrival_rate=9.0, service_rate=1.0, servers=10).mean_wait
    print(
        f"DES M/M/c, {n_des:,} jobs: {t_des:.3f} s median ({t_des / n_des * 1e6:.2f} us/job); "
        f"mean wait {w.mean():.4f} s (Erlang C {exact:.4f} s, {w.mean() / exact - 1:+.2%})"
    )
    n_simpy = 200_000 if a.quick else n_des
    t_simpy, ws = _median(
        lambda: simpy_mmc_waits(arr[:n_simpy], svc[:n_simpy], 10), 1 if not a.quick else 1
    )
    t_des_same, wd = _median(lambda: mmc_waits(arr[:n_simpy], svc[:n_simpy], 10), reps)
    rel = abs(ws.mean() / wd.mean() - 1)
    print(
        f"SimPy M/M/c, {n_simpy:,} jobs (same inputs): {t_simpy:.2f} s "
        f"({t_simpy / n_simpy * 1e6:.2f} us/job); ours on the same jobs {t_des_same:.3f} s: "
        f"{t_simpy / t_des_same:.1f}x faster; mean wait SimPy {ws.mean():.6f} s vs ours "
        f"{wd.mean():.6f} s (difference {rel:.2e})"
    )
    print(f"finished {datetime.now():%Y-%m-%d %H:%M}")


if __name__ == "__main__":
    main()
