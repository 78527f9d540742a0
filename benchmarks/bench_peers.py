"""Artillery and surgecast side by side, against the latency law's truth.

    python benchmarks/bench_peers.py --rate 10 --duration 30 --runs 3

Installs Artillery 2.0.34 into the git-ignored `.peers/` with
`npm install --ignore-scripts` (the benchmark's own download, never the package's).
Each run starts a fast testbed with `[latency_law]` on `POST /v1/accounts` (50 ms, every
100th 500 ms, a 2 s stall every 10 s), pins it to core 0 and the generator to core 1
(`taskset`), and runs one tool at `--rate` arrivals/s; the tools alternate, `--runs` each.

* Artillery: one request a virtual user (register), `arrivalRate` for `--duration` s.
* surgecast: `surgecast rehearse --arrival-rate` with the default journey (register,
  login, order, pay, stamps): its register step is the same first request at each arrival.

The journeys differ (Artillery's is the register request alone): CPU per request is the
generator's whole CPU (user + system, from `getrusage` of the reaped children) over all the
requests it sent. Latency rows compare the register request of each tool with the truth of
the same run: the law (answer due − received, from the server's record) and the server's
realised latency (answer sent − received).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.latency_truth import hdr_of, law_record, rehearse  # noqa: E402
from benchmarks.bench_latency_truth import FAST  # noqa: E402
from scenarios.latency import read_hdr  # noqa: E402
from testbed.process import TestbedServer  # noqa: E402

ARTILLERY = "artillery@2.0.34"
PEERS = ROOT / ".peers"
BIN = PEERS / "node_modules" / ".bin" / "artillery"
PCTS = (50, 99, 99.9)
PROCESSOR = """let n = 0;
module.exports = { ids(context, events, done) {
  n += 1; const s = String(n).padStart(4, "0");
  context.vars.nik = "317101" + "1505" + String(60 + (n % 40)) + s.slice(-4);
  context.vars.email = "a" + process.pid + "-" + n + "@example.id";
  return done();
} };
"""


def ensure_artillery() -> None:
    """npm-install Artillery into .peers/ unless it is there."""
    if BIN.exists():
        return
    PEERS.mkdir(exist_ok=True)
    r = subprocess.run(
        [
            "npm",
            "install",
            "--ignore-scripts",
            "--no-audit",
            "--no-fund",
            "--prefix",
            str(PEERS),
            ARTILLERY,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if r.returncode != 0 or not BIN.exists():
        raise SystemExit(f"npm install {ARTILLERY} failed ({r.returncode}): {r.stderr[-300:]}")


def children_cpu() -> float:
    """CPU seconds (user + system) of every reaped child so far."""
    u = resource.getrusage(resource.RUSAGE_CHILDREN)
    return u.ru_utime + u.ru_stime


def run_artillery(url: str, rate: float, duration: float, work: Path) -> dict[str, Any]:
    """One Artillery run; its counters, register percentiles (s) and CPU."""
    (work / "ids.js").write_text(PROCESSOR)
    script = {
        "config": {
            "target": url,
            "processor": "./ids.js",
            "phases": [{"duration": int(duration), "arrivalRate": rate}],
        },
        "scenarios": [
            {
                "flow": [
                    {"function": "ids"},
                    {
                        "post": {
                            "url": "/v1/accounts",
                            "json": {
                                "nik": "{{ nik }}",
                                "name": "Siti",
                                "email": "{{ email }}",
                                "phone": "081234567890",
                                "password": "rahasia-123",
                            },
                        }
                    },
                ]
            }
        ],
    }
    (work / "a.json").write_text(json.dumps(script))
    cpu0 = children_cpu()
    r = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            str(BIN),
            "run",
            "--output",
            str(work / "report.json"),
            str(work / "a.json"),
        ],
        capture_output=True,
        text=True,
        cwd=work,
        timeout=duration + 120,
        env={**os.environ, "ARTILLERY_DISABLE_TELEMETRY": "true"},
    )
    cpu = children_cpu() - cpu0
    if r.returncode != 0:
        raise SystemExit(f"artillery failed ({r.returncode}): {r.stderr[-500:]}")
    agg = json.loads((work / "report.json").read_text())["aggregate"]
    c, rt = agg["counters"], agg["summaries"]["http.response_time"]
    return {
        "cpu_s": cpu,
        "requests": c.get("http.requests", 0),
        "arrived": c.get("vusers.created", 0),
        "skipped": c.get("vusers.skipped", 0),
        "failed": c.get("vusers.failed", 0),
        "pcts": {50: rt["p50"] / 1e3, 99: rt["p99"] / 1e3, 99.9: rt["p999"] / 1e3},
    }


def run_surgecast(
    tb: TestbedServer, rate: float, duration: float, seed: int, out: Path
) -> dict[str, Any]:
    """One surgecast rehearsal; its counts, register percentiles (s) and CPU."""
    cpu0 = children_cpu()
    r = rehearse(tb.url, tb.admin_token, rate=rate, duration=duration, seed=seed, out=out,
                 prefix=("taskset", "-c", "1"), timeout=duration + 300)
    cpu = children_cpu() - cpu0
    if r.returncode != 0:
        raise SystemExit(f"rehearsal failed ({r.returncode}): {r.stderr[-500:]}")
    with (out / "arrivals.csv").open(newline="") as f:
        outcomes = [a["outcome"] for a in csv.DictReader(f)]
    with (out / "locust_stats.csv").open(newline="") as f:
        requests = sum(
            int(x["Request Count"]) for x in csv.DictReader(f) if x["Name"] != "Aggregated"
        )
    svc = read_hdr(str(out / "latency" / "register.service.hdr"))
    return {
        "cpu_s": cpu,
        "requests": requests,
        "arrived": sum(o != "dropped" for o in outcomes),
        "skipped": outcomes.count("dropped"),
        "failed": 0,
        "scheduled": len(outcomes),
        "pcts": {p: svc.get_value_at_percentile(p) / 1e6 for p in PCTS},
    }


def one(tool: str, rate: float, duration: float, seed: int) -> dict[str, Any]:
    """One run of `tool` against a fresh, pinned testbed; the tool's figures and the truth."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-peers-") as d,
        TestbedServer(port=0, extra_args=sum((["--set", kv] for kv in FAST), [])) as tb,
    ):
        if tb.proc is not None:
            os.sched_setaffinity(tb.proc.pid, {0})
        if tool == "artillery":
            res = run_artillery(tb.url, rate, duration, Path(d))
        else:
            res = run_surgecast(tb, rate, duration, seed, Path(d) / "run")
        rows = law_record(tb.url, tb.admin_token)["requests"]
    law, srv = (
        hdr_of([a - r for r, _n, _d, a, _s in rows]),
        hdr_of([s - r for r, _n, _d, _a, s in rows]),
    )
    res["law"] = {p: law.get_value_at_percentile(p) / 1e6 for p in PCTS}
    res["server"] = {p: srv.get_value_at_percentile(p) / 1e6 for p in PCTS}
    res.setdefault("scheduled", int(rate * duration))
    return res


def report(tool: str, runs: list[dict[str, Any]], small: dict[str, Any]) -> None:
    """Print the medians of `tool`'s runs: CPU whole-life, and marginal against a small run.

    Marginal CPU per request = (CPU − the small run's CPU) / (requests − its requests): the
    start-up (Node's or Python's imports, Locust's set-up) cancels.
    """
    med = statistics.median

    def per(key: str, p: float) -> float:
        return med(r[key][p] for r in runs) * 1e3

    cpu = med(r["cpu_s"] / max(1, r["requests"]) for r in runs) * 1e3
    c0, n0 = small["cpu_s"], small["requests"]
    net = med((r["cpu_s"] - c0) / max(1, r["requests"] - n0) for r in runs)
    print(
        f"{tool}: CPU {cpu:.2f} ms/request whole-life, {net * 1e3:.2f} marginal "
        f"(small run: {small['cpu_s']:.2f} s for {small['requests']} requests)"
        " (runs: "
        + ", ".join(f"{r['cpu_s'] / max(1, r['requests']) * 1e3:.2f}" for r in runs)
        + "); arrivals "
        + ", ".join(f"{r['arrived']}/{r['scheduled']}" for r in runs)
        + "; skipped/dropped "
        + ", ".join(str(r["skipped"]) for r in runs)
    )
    for p in PCTS:
        tv, lv, sv = per("pcts", p), per("law", p), per("server", p)
        dl = med(r["pcts"][p] - r["law"][p] for r in runs) * 1e3
        ds = med(r["pcts"][p] - r["server"][p] for r in runs) * 1e3
        print(
            f"  register p{p:g}: {tool} {tv:.1f} ms, law {lv:.1f} ms, server {sv:.1f} ms; "
            f"{tool} - law {dl:+.1f} ms, - server {ds:+.1f} ms (medians of the runs' differences)"
        )


def main() -> None:
    """Alternate the tools, `--runs` each, and print the medians."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=10.0)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    if a.rate <= 0 or a.duration < 5 or a.runs < 1:
        print("bench_peers: give --rate > 0, --duration >= 5 and --runs >= 1", file=sys.stderr)
        raise SystemExit(2)
    ensure_artillery()
    small = {tool: one(tool, 1, 5, 7) for tool in ("artillery", "surgecast")}
    print(
        "  small runs (1/s, 5 s): "
        + ", ".join(
            f"{t} {c['cpu_s']:.2f} s CPU, {c['requests']} requests" for t, c in small.items()
        )
    )
    res: dict[str, list[dict[str, Any]]] = {"artillery": [], "surgecast": []}
    for i in range(a.runs):
        for tool in ("artillery", "surgecast"):
            r = one(tool, a.rate, a.duration, 11 + i)
            res[tool].append(r)
            print(
                f"  {tool} run {i + 1}: {r['requests']} requests, cpu {r['cpu_s']:.2f} s, register "
                + ", ".join(
                    f"p{p:g} {r['pcts'][p] * 1e3:.1f} (law {r['law'][p] * 1e3:.1f}, "
                    f"server {r['server'][p] * 1e3:.1f})"
                    for p in PCTS
                ),
                flush=True,
            )
    for tool, runs in res.items():
        report(tool, runs, small[tool])


if __name__ == "__main__":
    main()
