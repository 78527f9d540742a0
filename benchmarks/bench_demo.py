"""Wall time of `surgecast demo` and of each of its phases (target: under 4 minutes on 2 cores).

    python benchmarks/bench_demo.py [--runs 1] [--out /tmp/bench-demo]

Prints one line per phase (seconds from the demo's start) and the total, per run,
then the figures of that run (measured against configured capacity, model against
testbed on served and peak backlog, plan against doing nothing measured and predicted,
the load average), then the median total. With --keep each run's directory is kept as
OUT-1, OUT-2, ... Loopback only (the demo's embedded testbed).
"""

from __future__ import annotations

import argparse
import json
import os
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "surgecast", "demo", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
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


def figures(out: Path) -> str:
    """One run's figures from its capacity.json and plan_check.json (for the closing note)."""
    cap = json.loads((out / "capacity.json").read_text())
    pc = (
        json.loads((out / "plan_check.json").read_text())
        if (out / "plan_check.json").is_file()
        else {}
    )
    x, conf = cap.get("stamps_per_second"), cap.get("configured_stamps_per_second")
    err = f"{x / conf - 1:+.1%}" if x and conf else "-"
    srv = cap.get("server_stamps_per_second")
    parts = [
        f"capacity {x} vs configured {conf} ({err}; server's realised {srv}, "
        f"client vs server {_pct(cap.get('client_vs_server'))}; "
        f"hold stopped by {cap.get('hold_stopped_by')})"
    ]
    pvb = pc.get("plan_vs_baseline") or {}
    for side in ("plan", "baseline"):
        o = pvb.get(side) or {}
        mvt = o.get("model_vs_testbed") or {}
        sv, pk = mvt.get("served") or {}, mvt.get("peak_backlog") or {}
        meas = {
            k: (o.get(k) or {}).get("measured")
            for k in ("served", "lost", "duplicated", "p95_wait_s")
        }
        model = {
            k: (o.get(k) or {}).get("model") for k in ("served", "lost", "duplicated", "p95_wait_s")
        }
        parts.append(
            f"{side}: served model {sv.get('model')} / measured {sv.get('measured')} "
            f"({_pct(sv.get('error'))}), peak backlog {pk.get('model')} / {pk.get('measured')} "
            f"({_pct(pk.get('error'))}); measured {meas}; predicted {model}"
        )
    if pvb.get("verdict"):
        parts.append(f"verdict: {pvb['verdict']}")
    return "\n   ".join(parts)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def main() -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("/tmp/bench-demo"))
    ap.add_argument(
        "--keep", action="store_true", help="keep each run's directory (OUT-1, OUT-2, ...)"
    )
    a = ap.parse_args()
    totals = []
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    for i in range(a.runs):
        out = a.out.with_name(f"{a.out.name}-{i + 1}") if a.keep else a.out
        load0 = os.getloadavg()[0]
        total, phases = one_run(out)
        totals.append(total)
        for name, at in phases:
            print(f"run {i + 1}  {at:6.1f} s  {name}")
        print(
            f"run {i + 1}  total {total:.1f} s "
            f"(load average {load0:.1f} -> {os.getloadavg()[0]:.1f})"
        )
        print(f"   {figures(out)}", flush=True)
    print(
        f"demo wall time: median {statistics.median(totals):.1f} s over {a.runs} run(s); "
        "target < 240 s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
