"""Wall time of `surgecast demo` and of each of its phases (target: under 4 minutes on 2 cores).

    python benchmarks/bench_demo.py [--runs 1] [--out /tmp/bench-demo]

Prints one line per phase (seconds from the demo's start) and the total, per run,
then the median total. Loopback only (the demo's embedded testbed).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def one_run(out: Path) -> tuple[float, list[tuple[str, float]]]:
    """Run the demo once; return total seconds and (phase, start second) pairs."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "surgecast", "demo", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    phases = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("== ["):
            phases.append((line.strip()[3:60], time.monotonic() - t0))
    code = proc.wait()
    total = time.monotonic() - t0
    if code not in (0, 1):
        raise SystemExit(f"demo exited {code}")
    return total, phases


def main() -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-demo"))
    a = ap.parse_args()
    totals = []
    for i in range(a.runs):
        total, phases = one_run(a.out)
        totals.append(total)
        for name, at in phases:
            print(f"run {i + 1}  {at:6.1f} s  {name}")
        print(f"run {i + 1}  total {total:.1f} s")
    print(f"demo wall time: median {statistics.median(totals):.1f} s over {a.runs} run(s); target < 240 s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
