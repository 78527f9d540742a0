"""Benchmark the capacity probe: wall time and error against the configured capacity.

    python benchmarks/bench_probe.py [--runs 5] [--case demo16 --case const8 ...] [--budget S]

Each case starts a fresh testbed of known capacity (workers / mean service time,
read back from its /admin/config), runs `surgecast probe` against it with the
settings `surgecast demo` uses (the defaults), and records the probe's wall time,
its error against the configured capacity, whether the configured value lies in
the 95 % interval, and, to separate the probe's error from the service's own noise, the
server's realised rate (the issuer's completion counter over the held batches) against the
configured capacity and the probe's estimate against that realised rate. Side by
side, on the same batches, the old rule (the highest level's rate is the
capacity) shows the winner's curse the hold removes. Prints a Markdown table;
record it in docs/benchmarks.md under "## Probe". Loopback only, bounded in time.

`--stall 1.5/4` stops the probe's own process (SIGSTOP) for 1.5 s every 4 s, as an overloaded
machine stops it, and adds, on the same batches, what the analysis reads without the stall rule
(their `late_s` unknown): the side-by-side of the rule that leaves stalled batches out.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from stall import stalling  # noqa: E402
from testbed_fixtures import FAST  # noqa: E402

from analysis.probe import capacity_from_probe, read_batches_csv  # noqa: E402
from testbed.process import TestbedServer  # noqa: E402

# name: (testbed flags, what it is). demo16 is the demo's own testbed (defaults, scrypt).
CASES = {
    "demo16": ([], "4 workers x lognormal 0.25 s, sigma 0.2 = 16/s (the demo's testbed, scrypt)"),
    "exp16": (
        [*FAST, "--issuer-workers", "4", "--issuer-service", "exponential:0.25"],
        "4 x exponential 0.25 s = 16/s",
    ),
    "exp8": (
        [*FAST, "--issuer-workers", "2", "--issuer-service", "exponential:0.25"],
        "2 x exponential 0.25 s = 8/s",
    ),
    "const8": (
        [*FAST, "--issuer-workers", "2", "--issuer-service", "constant:0.25"],
        "2 x constant 0.25 s = 8/s",
    ),
    "const16": (
        [*FAST, "--issuer-workers", "4", "--issuer-service", "constant:0.25"],
        "4 x constant 0.25 s = 16/s",
    ),
    "exp64": (
        [*FAST, "--issuer-workers", "8", "--issuer-service", "exponential:0.125"],
        "8 x exponential 0.125 s = 64/s",
    ),
    "const64": (
        [*FAST, "--issuer-workers", "8", "--issuer-service", "constant:0.125"],
        "8 x constant 0.125 s = 64/s",
    ),
}
GRID = ("const8", "const16", "const64", "exp8", "exp16", "demo16", "exp64")


def _stalled(proc: subprocess.Popen[str], stall: tuple[float, float] | None) -> None:
    """Wait for `proc` (at most 300 s), stopping it for stall[0] s every stall[1] s meanwhile."""
    try:
        if stall is None:
            proc.wait(timeout=300)
        else:
            with stalling(proc, stop_s=stall[0], every_s=stall[1]):
                proc.wait(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def one(
    flags: list[str], seed: int, budget: list[str], stall: tuple[float, float] | None = None
) -> dict:
    """One probe against a fresh testbed (stalled as `stall` says); its figures."""
    with TestbedServer(extra_args=flags) as tb, tempfile.TemporaryDirectory() as out:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "surgecast",
                "probe",
                "--host",
                tb.url,
                f"--admin-token={tb.admin_token}",
                "--out",
                out,
                "--seed",
                str(seed),
                "--quiet",
                *budget,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        _stalled(proc, stall)
        wall = time.monotonic() - t0
        cap = json.loads((Path(out) / "capacity.json").read_text())
        batches = read_batches_csv(Path(out) / "probe_batches.csv")
    conf = cap["configured_stamps_per_second"]
    blind = capacity_from_probe(
        [], batches=[{**b, "late_s": None} for b in batches], configured_stamps_per_second=conf
    )
    x = cap["stamps_per_second"]
    old = max(lv["stamps_per_second"] for lv in cap["levels"])
    return {
        "rc": proc.returncode,
        "wall_s": wall,
        "x": x,
        "configured": conf,
        "ladder_s": cap["parameters"]["wall_s"],
        "err": (x / conf - 1) if x is not None else None,
        "old_err": old / conf - 1,
        "covered": x is not None and cap["ci_low"] <= conf <= cap["ci_high"],
        "half": (cap["ci_high"] - cap["ci_low"]) / 2 / x if x else None,
        "client_vs_server": cap["client_vs_server"],
        "level": cap["capacity_concurrency"],
        "server_err": (cap["server_stamps_per_second"] / conf - 1)
        if cap.get("server_stamps_per_second")
        else None,
        "hold_stopped_by": cap.get("hold_stopped_by"),
        "stalled": cap.get("stalled_batches", 0),
        "blind_err": blind["error_vs_configured"],
    }


def main() -> None:
    """Run the cases and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument(
        "--case",
        action="append",
        choices=sorted(CASES),
        help="default: the grid, " + " ".join(GRID),
    )
    ap.add_argument(
        "--budget",
        type=float,
        default=None,
        help="the probe's --budget (default: its own, as the demo)",
    )
    ap.add_argument(
        "--stall",
        metavar="STOP/EVERY",
        help="stop the probe's process STOP s every EVERY s (e.g. 1.5/4)",
    )
    args = ap.parse_args()
    stall = None
    if args.stall:
        try:
            stop, every = (float(x) for x in args.stall.split("/"))
        except ValueError:
            ap.error(f"--stall {args.stall!r}: give STOP/EVERY in seconds, e.g. 1.5/4")
        if not 0 < stop < every:
            ap.error(f"--stall {args.stall!r}: give 0 < STOP < EVERY, e.g. 1.5/4")
        stall = (stop, every)
    cases = args.case or list(GRID)
    budget = ["--budget", str(args.budget)] if args.budget else []
    print(f"# {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    rows = []
    for name in cases:
        flags, what = CASES[name]
        runs = []
        for i in range(args.runs):
            r = one(flags, seed=i + 1, budget=budget, stall=stall)
            runs.append(r)
            print(
                f"{name} run {i + 1}: rc={r['rc']} wall={r['wall_s']:.1f}s "
                f"(ladder and hold {r['ladder_s']:.1f}s) "
                f"x={r['x']} err={_pct(r['err'])} "
                f"ci_half={_pct(r['half'])} covered={r['covered']} "
                f"client_vs_server={_pct(r['client_vs_server'])} "
                f"server_err={_pct(r['server_err'])} level={r['level']} "
                f"old_rule_err={_pct(r['old_err'])} "
                f"hold_stopped_by={r['hold_stopped_by']} "
                f"stalled_batches={r['stalled']} without_stall_rule_err={_pct(r['blind_err'])} "
                f"load={os.getloadavg()[0]:.1f}",
                flush=True,
            )
        errs = [abs(r["err"]) for r in runs if r["err"] is not None]
        olds = [abs(r["old_err"]) for r in runs]
        walls = [r["wall_s"] for r in runs]
        srv = [abs(r["server_err"]) for r in runs if r["server_err"] is not None]
        cvs = [abs(r["client_vs_server"]) for r in runs if r["client_vs_server"] is not None]
        by_precision = sum(r["hold_stopped_by"] == "precision" for r in runs)
        rows.append(
            f"| {name}: {what} | {statistics.median(walls):.1f} / {max(walls):.1f} | "
            f"{_pct(statistics.median(errs)) if errs else '–'} / "
            f"{_pct(max(errs)) if errs else '–'} | "
            f"{sum(r['covered'] for r in runs)}/{len(runs)} | "
            f"{sum(r['rc'] != 0 for r in runs)} | "
            f"{_pct(statistics.median(srv)) if srv else '–'} / {_pct(max(srv)) if srv else '–'} | "
            f"{_pct(statistics.median(cvs)) if cvs else '–'} / {_pct(max(cvs)) if cvs else '–'} | "
            f"{sum(abs(r['err']) <= 0.05 for r in runs if r['err'] is not None)}/{len(runs)} | "
            f"{by_precision}/{len(runs)} | "
            f"{_pct(statistics.median(olds))} / {_pct(max(olds))} |"
            + (f" {_blind(runs)} |" if stall else "")
        )
    print(f"\n# load average {os.getloadavg()[0]:.1f} at end")
    print(
        "| case | wall s (median / worst) | abs error vs configured (median / worst) | "
        "configured in 95 % CI | "
        "not levelled | service noise: server's realised rate vs configured (median / worst) | "
        "probe error: client vs server's realised rate (median / worst) | "
        "within ±5 % of configured | "
        "hold stopped by precision | old rule, same data (median / worst) |"
        + (
            f" stalled {args.stall}: without the stall rule, same data (median / worst; "
            "not levelled) |"
            if stall
            else ""
        )
    )
    print("|---|---|---|---|---|---|---|---|---|---|" + ("---|" if stall else ""))
    print("\n".join(rows))


def _blind(runs: list[dict]) -> str:
    """The runs re-read without the stall rule: median / worst error, and how many not levelled."""
    errs = [abs(r["blind_err"]) for r in runs if r["blind_err"] is not None]
    none = sum(r["blind_err"] is None for r in runs)
    spread = f"{_pct(statistics.median(errs))} / {_pct(max(errs))}" if errs else "–"
    return f"{spread}; {none} not levelled"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:+.1%}" if x < 0 else f"{x:.1%}"


if __name__ == "__main__":
    main()
