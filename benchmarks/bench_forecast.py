"""Surge-model benchmarks (issue 9): forecast model time, bands, calibration, Erlang A at scale.

    python benchmarks/bench_forecast.py            # medians of 7 repeats
    python benchmarks/bench_forecast.py --quick

Figures are recorded in docs/benchmarks.md, section "Surge model".
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import time
import tracemalloc

import numpy as np

from analysis.calibrate import fit_profile
from analysis.forecast import bands, forecast
from analysis.queueing import erlang_a, erlang_a_chain
from scenarios.profile import load_profile


def _median(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def _peak_mb(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def _rss_mb(code: str) -> float:
    """Peak RSS (MB) of a fresh interpreter running `code` (imports included)."""
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            code + "\nimport resource; print(resource.getrusage("
            "resource.RUSAGE_SELF).ru_maxrss / 1024)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.split()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    reps = 3 if ap.parse_args().quick else 7
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}")
    p = load_profile("casn2024")

    t, f = _median(lambda: forecast(p), reps)
    print(
        f"forecast casn2024 (60 s steps, {len(f.result.t_s):,} steps, demand + model): "
        f"{t * 1000:.0f} ms median (target <= 500 ms)"
    )
    t5, _ = _median(lambda: forecast(p, step_s=300.0), reps)
    print(f"forecast casn2024 at 300 s steps: {t5 * 1000:.0f} ms median")
    samples = [
        {"demand.conversion": c, "outages.capacity_factor": o, "bypass.share": b}
        for c in (0.9, 0.95, 1.0)
        for o in (0.1, 0.2, 0.3)
        for b in (0.05, 0.2)
    ]
    tb, _ = _median(lambda: bands(p, samples, step_s=300.0), max(1, reps // 3))
    print(
        f"bands over {len(samples)} parameter sets at 300 s steps: {tb:.2f} s "
        f"({tb / len(samples) * 1000:.0f} ms per set; planner budget 5 s)"
    )
    tc, _ = _median(lambda: fit_profile(p), 1)
    print(f"calibration through the model (2 parameters, 2 in-sample points): {tc:.1f} s")

    kw = dict(arrival_rate=6000.0, service_rate=1.0, servers=5000, patience=86400.0)
    te, r = _median(lambda: erlang_a(**kw), reps)
    mem = _peak_mb(lambda: erlang_a(**kw))
    rss = _rss_mb(
        "from analysis.queueing import erlang_a\nerlang_a(arrival_rate=6000.0, service_rate=1.0, "
        "servers=5000, patience=86400.0)"
    )
    base = _rss_mb("import analysis.queueing, scipy.special")
    print(
        f"Erlang A lambda 6000 / c 5000 / patience 1 day: {te * 1000:.2f} ms median, traced peak "
        f"{mem:.2f} MB, process RSS {rss:.0f} MB (interpreter + numpy + scipy alone {base:.0f} "
        f"MB); p_abandon {r.p_abandon:.6f}"
    )
    te8, r8 = _median(lambda: erlang_a(**{**kw, "patience": 1e8}), reps)
    print(f"Erlang A patience 1e8 s: {te8 * 1000:.2f} ms; p_abandon {r8.p_abandon:.6f}")
    side = dict(arrival_rate=6000.0, service_rate=1.0, servers=5000, patience=100.0)
    tcf, a = _median(lambda: erlang_a(**side), reps)
    tch, b = _median(lambda: erlang_a_chain(**side), reps)
    mch = _peak_mb(lambda: erlang_a_chain(**side))
    print(
        f"side by side at patience 100 s: closed form {tcf * 1000:.2f} ms vs chain "
        f"{tch * 1000:.1f} ms ({tch / tcf:.0f}x), chain traced peak {mch:.0f} MB; p_abandon "
        f"{a.p_abandon:.10f} vs {b.p_abandon:.10f}"
    )
    states = int(5000 + 1000 * 86400 + 40 * np.sqrt(6000 * 86400))
    print(
        f"(the chain at one day of patience would hold ~{states:,} states per array: "
        f"~{states * 8 * 5 / 2**30:.1f} GB over its five arrays; not run)"
    )


if __name__ == "__main__":
    main()
