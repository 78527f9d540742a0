"""Artillery, surgecast and a bare FastHttpUser on one journey, against the latency law's truth.

    python benchmarks/bench_peers.py --rate 200 --duration 30 --runs 3
    python benchmarks/bench_peers.py --tools artillery surgecast --rate 10 --duration 10 --runs 1

Installs Artillery 2.0.34 into the git-ignored `.peers/` with `npm install --ignore-scripts`
(the benchmark's own download, never the package's). Each run starts a fresh fast testbed with
`[latency_law]` on `POST /v1/accounts` (50 ms, every 100th 500 ms, a 2 s stall every 10 s)
pinned to core 0, and runs one tool pinned to core 1 (`taskset` on both command lines, so
every thread and child is pinned), at `--rate` arrivals/s for `--duration` s. The tools
alternate in each round (A, S, B, A, S, B, ...), `--runs` rounds.

The journey is the same on every side: one `POST /v1/accounts` an arrival, with a fresh
identity, and nothing after it.

* artillery: a phase of `arrivalRate` (evenly spaced arrivals), one virtual user an arrival,
  a flow of one request (ids from a tiny processor function); its own report (`--output`).
* surgecast: `locust -f scenarios/peer_journey.py` (the rehearsal with a register-only
  journey: Poisson arrivals, the pool, Faker identities, recorder, HDR histograms, the run
  directory and its reconciliation), `--arrival-rate`.
* bare: a plain FastHttpUser replaying surgecast's arrival times for the same seed (drawn
  with surgecast's own schedule code in a child process), ids from a counter as Artillery's;
  Locust's own (rounded) percentiles.

Per run it takes the tool's whole-life CPU (user + system from `wait4` of the tool's process,
its reaped threads and children included), its counts (requests, arrivals achieved against
scheduled, skipped/dropped), its register percentiles, and the truth of the same run from the
server's record (`GET /admin/latency-law`): the law's latency of each request as the server
received it, the server's realised latency, the count it received, and how far the received
times fell behind the tool's schedule. Marginal CPU per request subtracts a small run of the
same tool (1 arrival/s for 5 s), so start-up cancels. A run is **not like-for-like** (the
script says so and exits 1) when a tool sent other than one request an arrival, or the server
received a different number of requests than the tool counted.

Artillery's CPU at these rates is mostly its arrival timer (`nanotimer`), which re-arms itself
with `setImmediate` for the last 25 ms before each tick: a spin, not a cost per request
(docs/benchmarks.md, the peer section).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis.latency_truth import hdr_of, law_record  # noqa: E402
from benchmarks.bench_latency_truth import FAST  # noqa: E402
from floor.children import child_env  # noqa: E402
from floor.rundir.files import read_arrivals  # noqa: E402
from floor.rundir.schema import ARRIVALS  # noqa: E402
from scenarios.latency import read_hdr  # noqa: E402
from testbed.process import TestbedServer  # noqa: E402

ARTILLERY = "artillery@2.0.34"
PEERS = ROOT / ".peers"
BIN = PEERS / "node_modules" / ".bin" / "artillery"
PCTS = (0, 50, 99, 99.9)  # 0: the minimum
ART_KEYS = {0: "min", 50: "p50", 99: "p99", 99.9: "p999"}
TOOLS = ("artillery", "surgecast", "bare")
TESTBED_CPU, TOOL_CPU = "0", "1"
SMALL_RATE, SMALL_DURATION = 1.0, 5.0
PROCESSOR = """let n = 0;
module.exports = { ids(context, events, done) {
  n += 1; const s = String(n).padStart(4, "0");
  context.vars.nik = "317101" + "1505" + String(60 + (n % 40)) + s.slice(-4);
  context.vars.email = "a" + process.pid + "-" + n + "@example.id";
  return done();
} };
"""
BARE = r"""
import json, os, time
import gevent
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser

TIMES = json.load(open(os.environ["BARE_TIMES"]))
NEXT, DONE, ORIGIN = [0], [0], [0.0]


@events.test_start.add_listener
def _origin(environment, **_kw):
    ORIGIN[0] = time.time() + float(os.environ["BARE_LEAD_S"])


class Bare(FastHttpUser):
    wait_time = constant(0)
    network_timeout = connection_timeout = 10.0

    @task
    def register(self):
        i = NEXT[0]
        if i >= len(TIMES):
            raise StopUser()
        NEXT[0] += 1
        delay = ORIGIN[0] + TIMES[i] - time.time()
        if delay > 0:
            gevent.sleep(delay)
        n = i + 1
        self.client.post("/v1/accounts", name="register", json={
            "nik": "3171011505" + str(60 + n % 40) + str(n).zfill(4)[-4:], "name": "Siti",
            "email": f"b{os.getpid()}-{n}@example.id", "phone": "081234567890",
            "password": "rahasia-123"})
        DONE[0] += 1
        if DONE[0] == len(TIMES):
            gevent.spawn(self.environment.runner.quit)


@events.quitting.add_listener
def _final(environment, **_kw):
    # Locust's _stats.csv is rewritten each second and not at exit: it misses the last second
    e, t = environment.stats.get("register", "POST"), environment.stats.total
    json.dump({"requests": t.num_requests, "register": e.num_requests, "failures": e.num_failures,
               "pcts": {"0": e.min_response_time or 0,
                        **{str(p): e.get_response_time_percentile(p / 100)
                           for p in (50, 99, 99.9)}}},
              open(os.environ["BARE_FINAL"], "w"))
"""


# ---- reading each tool's own figures (pure: tests/test_bench_peers.py) -----------------------
class ReportError(ValueError):
    """A tool's report lacks a figure the comparison needs."""


def artillery_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Counts and `http.response_time` percentiles (s) of an Artillery `--output` report.

    Artillery leaves out counters that never moved (no `vusers.skipped` when none was), so a
    missing skip or failure counter is 0; a missing request count or percentile is an error.

    >>> rt = {"min": 50, "p50": 51, "p99": 60, "p999": 60}
    >>> r = {"aggregate": {"counters": {"http.requests": 2, "vusers.created": 2},
    ...      "summaries": {"http.response_time": rt, "vusers.session_length": rt}}}
    >>> f = artillery_figures(r); f["requests"], f["skipped"], f["pcts"][50]
    (2, 0, 0.051)
    """
    try:
        agg = report["aggregate"]
        c, rt = agg["counters"], agg["summaries"]["http.response_time"]
        pcts = {p: float(rt[k]) / 1e3 for p, k in ART_KEYS.items()}
        sl = agg["summaries"]["vusers.session_length"]
        session = {p: float(sl[k]) / 1e3 for p, k in ART_KEYS.items()}
        requests, created = int(c["http.requests"]), int(c["vusers.created"])
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError(
            f"Artillery report: no {e} (aggregate.counters http.requests, "
            "vusers.created; summaries http.response_time and vusers.session_length: "
            "min/p50/p99/p999)"
        ) from None
    return {
        "requests": requests,
        "arrived": created,
        "skipped": int(c.get("vusers.skipped", 0)),
        "failed": int(c.get("vusers.failed", 0)),
        "pcts": pcts,
        "session": session,  # the virtual user's whole life: connect, the ids function, the request
    }


def surgecast_figures(out: Path) -> dict[str, Any]:
    """Counts and register percentiles (s, service clock) of a surgecast run directory."""
    arr = read_arrivals(out / ARRIVALS)
    outcomes = arr["outcome"]
    svc = read_hdr(str(out / "latency" / "register.service.hdr"))
    summary = json.loads((out / "summary.json").read_text())
    return {
        # the recorder's count (its locust_stats.csv misses the last second)
        "requests": int(summary["requests"]),
        "arrived": sum(o != "dropped" for o in outcomes),
        "skipped": sum(o == "dropped" for o in outcomes),
        "failed": sum(o == "failed" for o in outcomes),
        "scheduled": len(arr),
        "intended": sorted(at.timestamp() for at, o in zip(arr["intended_at"], outcomes,
                                                             strict=True) if o != "dropped"),
        "pcts": {p: svc.get_value_at_percentile(p) / 1e6 for p in PCTS},
    }


def bare_figures(final: dict[str, Any], scheduled: int) -> dict[str, Any]:
    """Counts and Locust's own register percentiles (s; rounded by Locust) of the bare side.

    `final` is what the bare locustfile writes as Locust quits (its stats at the very end).

    >>> f = bare_figures({"requests": 3, "register": 3, "failures": 0,
    ...                   "pcts": {"0": 51.7, "50": 66, "99": 66, "99.9": 66}}, 3)
    >>> f["arrived"], f["skipped"], f["pcts"][0]
    (3, 0, 0.0517)
    """
    try:
        n = int(final["register"])
        pcts = {p: float(final["pcts"][f"{p:g}"]) / 1e3 for p in PCTS}
        res = {
            "requests": int(final["requests"]),
            "arrived": n,
            "skipped": scheduled - n,
            "failed": int(final["failures"]),
            "scheduled": scheduled,
            "pcts": pcts,
        }
    except (KeyError, TypeError, ValueError) as e:
        raise ReportError(
            f"bare final stats: no {e} (requests, register, failures, pcts 0/50/99/99.9)"
        ) from None
    return res


# ---- the truth and the checks (pure) ----------------------------------------------------------
def truth(rows: Sequence[Sequence[float]]) -> dict[str, Any]:
    """The server's record of a run: count, receive times, law and realised percentiles (s).

    Rows are `GET /admin/latency-law`'s (received, n, law delay, answer due, sent).
    """
    law = hdr_of([a - r for r, _n, _d, a, _s in rows])
    srv = hdr_of([s - r for r, _n, _d, _a, s in rows])
    return {
        "received": len(rows),
        "received_unix": sorted(r for r, *_ in rows),
        "law": {p: law.get_value_at_percentile(p) / 1e6 for p in PCTS},
        "server": {p: srv.get_value_at_percentile(p) / 1e6 for p in PCTS},
    }


def achieved(arrived: int, scheduled: int) -> float:
    """The share of scheduled arrivals the tool started (1.0 when none was scheduled).

    >>> achieved(5970, 6000), achieved(0, 0)
    (0.995, 1.0)
    """
    if arrived < 0 or arrived > scheduled:
        raise ValueError(f"arrived {arrived} is not within 0..scheduled {scheduled}")
    return arrived / scheduled if scheduled else 1.0


def schedule_lag(received_unix: Sequence[float], intended: Sequence[float]) -> dict[str, float]:
    """How far the server's receive times fell behind the tool's schedule (s): p50, p99, max.

    The k-th request received is matched with the k-th intended start (both sorted), the
    intended times shifted so the first pair coincides (the loopback cancels): a tool that
    keeps its schedule shows ~0, one that falls behind shows its lag growing. Fewer requests
    than starts leaves the last starts unmatched (they are counted as not achieved).

    >>> g = [i * 0.005 for i in range(400)]
    >>> schedule_lag([t + 0.001 for t in g], g)["max"] < 1e-9
    True
    >>> round(schedule_lag([t * 1.1 for t in g], g)["max"], 4)  # 10 % slow: 0.2 s behind at the end
    0.1995
    """
    r, s = sorted(received_unix), sorted(intended)
    n = min(len(r), len(s))
    if n == 0:
        return {"p50": math.nan, "p99": math.nan, "max": math.nan}
    off = r[0] - s[0]
    lag = sorted(max(0.0, r[k] - s[k] - off) for k in range(n))
    return {"p50": lag[n // 2], "p99": lag[min(n - 1, math.ceil(0.99 * n) - 1)], "max": lag[-1]}


def uniform_starts(rate: float, duration: float) -> list[float]:
    """Artillery's schedule of an `arrivalRate` phase: evenly spaced, `rate × duration` starts."""
    return [k / rate for k in range(round(rate * duration))]


def like_for_like(run: dict[str, Any]) -> list[str]:
    """Why the run is not the same journey as the others' (empty: it is).

    One request an arrival (a retry would add one), and the server received exactly the
    requests the tool counted.

    >>> like_for_like({"tool": "x", "requests": 10, "arrived": 10, "received": 10})
    []
    >>> like_for_like({"tool": "x", "requests": 21, "arrived": 10, "received": 21})
    ['x: 21 requests for 10 arrivals (the journey is one request)']
    """
    out = []
    if run["requests"] != run["arrived"]:
        out.append(
            f"{run['tool']}: {run['requests']} requests for {run['arrived']} arrivals "
            "(the journey is one request)"
        )
    if run["received"] != run["requests"]:
        out.append(
            f"{run['tool']}: the server received {run['received']} requests, the tool "
            f"counted {run['requests']}"
        )
    return out


# ---- running the tools ------------------------------------------------------------------------
class PinnedTestbed(TestbedServer):
    """The fast latency-law testbed on `TESTBED_CPU` (taskset: every thread it starts too)."""

    def command(self) -> list[str]:
        """`taskset -c 0` before the testbed's own command line."""
        return ["taskset", "-c", TESTBED_CPU, *super().command()]


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


def timed(
    cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float
) -> tuple[int, float, str]:
    """Run `cmd` pinned to `TOOL_CPU`; (exit code, CPU s from wait4, tail of its output)."""
    with tempfile.TemporaryFile("w+") as log:
        p = subprocess.Popen(
            ["taskset", "-c", TOOL_CPU, *cmd],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                p.kill()
                _, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.05)
        p.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        return p.returncode, ru.ru_utime + ru.ru_stime, log.read()[-800:]


def run_artillery(url: str, rate: float, duration: float, work: Path) -> dict[str, Any]:
    """One Artillery run: its figures and whole-life CPU."""
    (work / "ids.js").write_text(PROCESSOR)
    body = {
        "nik": "{{ nik }}",
        "name": "Siti",
        "email": "{{ email }}",
        "phone": "081234567890",
        "password": "rahasia-123",
    }
    script = {
        "config": {
            "target": url,
            "processor": "./ids.js",
            "phases": [{"duration": duration, "arrivalRate": rate}],
        },
        "scenarios": [
            {"flow": [{"function": "ids"}, {"post": {"url": "/v1/accounts", "json": body}}]}
        ],
    }
    (work / "a.json").write_text(json.dumps(script))
    env = {**os.environ, "ARTILLERY_DISABLE_TELEMETRY": "true"}
    code, cpu, tail = timed(
        [str(BIN), "run", "--output", str(work / "report.json"), str(work / "a.json")],
        env=env,
        cwd=work,
        timeout=duration + 180,
    )
    if code != 0:
        raise SystemExit(f"artillery failed ({code}): {tail}")
    res = artillery_figures(json.loads((work / "report.json").read_text()))
    res["scheduled"] = round(rate * duration)
    res["intended"] = uniform_starts(rate, duration)
    return {**res, "cpu_s": cpu}


def run_surgecast(
    tb: TestbedServer, rate: float, duration: float, seed: int, out: Path
) -> dict[str, Any]:
    """One register-only rehearsal (scenarios/peer_journey.py): its figures and CPU."""
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(ROOT / "scenarios" / "peer_journey.py"),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
        "--host",
        tb.url,
        "--out",
        str(out),
        "--seed",
        str(seed),
        "--duration",
        repr(duration),
        "--arrival-rate",
        repr(rate),
        "--quiet",
    ]
    code, cpu, tail = timed(cmd, env=child_env(tb.admin_token), cwd=ROOT, timeout=duration + 300)
    if code != 0:
        raise SystemExit(f"surgecast failed ({code}): {tail}")
    return {**surgecast_figures(out), "cpu_s": cpu}


def run_bare(url: str, times: list[float], work: Path) -> dict[str, Any]:
    """One bare FastHttpUser run replaying `times`: its figures and CPU."""
    (work / "bare.py").write_text(BARE)
    (work / "times.json").write_text(json.dumps(times))
    rate = len(times) / max(times[-1], 1.0) if times else 1.0
    users = max(8, int(rate * 3.5))  # 2 s stalls hold 2 s of arrivals; Poisson bursts above
    lead = 2.0  # all users spawn in the first second (-r = -u)
    env = {
        **os.environ,
        "BARE_TIMES": str(work / "times.json"),
        "BARE_LEAD_S": str(lead),
        "BARE_FINAL": str(work / "final.json"),
    }
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(work / "bare.py"),
        "--headless",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{int((times[-1] if times else 0) + 60)}s",
        "--host",
        url,
        "--exit-code-on-error",
        "0",
    ]
    code, cpu, tail = timed(cmd, env=env, cwd=work, timeout=(times[-1] if times else 0) + 120)
    if code != 0:
        raise SystemExit(f"bare failed ({code}): {tail}")
    res = bare_figures(json.loads((work / "final.json").read_text()), len(times))
    return {**res, "intended": list(times), "cpu_s": cpu, "users": users}


def arrival_times(rate: float, duration: float, seed: int) -> list[float]:
    """surgecast's arrival times (test s) for `seed`, drawn in a child (Locust patches on import).
    """
    code = (
        "import json,sys,numpy as np;from scenarios.options import add_options,resolve_settings;"
        "from scenarios.run import build_schedule;import argparse;p=argparse.ArgumentParser();"
        "add_options(p,locust=False);r,d,s=sys.argv[1:4];"
        "ns=p.parse_args(['--arrival-rate',r,'--duration',d,'--seed',s]);"
        "st=resolve_settings(ns,host='http://127.0.0.1:1',target_config=None,embedded=False);"
        "g=np.random.default_rng(np.random.SeedSequence(int(s)).spawn(1)[0]);"
        "print(json.dumps([float(t) for t in build_schedule(st).draw(g)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, repr(rate), repr(duration), str(seed)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        env=child_env(None),
    )
    return json.loads(out.stdout)


def one(tool: str, rate: float, duration: float, seed: int) -> dict[str, Any]:
    """One run of `tool` against a fresh, pinned testbed; the tool's figures and the truth."""
    extra = sum((["--set", kv] for kv in FAST), [])
    with (
        tempfile.TemporaryDirectory(prefix="bench-peers-") as d,
        PinnedTestbed(port=0, extra_args=extra) as tb,
    ):
        if tool == "artillery":
            res = run_artillery(tb.url, rate, duration, Path(d))
        elif tool == "surgecast":
            res = run_surgecast(tb, rate, duration, seed, Path(d) / "run")
        else:
            res = run_bare(tb.url, arrival_times(rate, duration, seed), Path(d))
        rows = law_record(tb.url, tb.admin_token)["requests"]
    res.update(truth(rows), tool=tool)
    res["lag"] = schedule_lag(res.pop("received_unix"), res.pop("intended"))
    res["achieved"] = achieved(res["arrived"], res["scheduled"])
    res["problems"] = like_for_like(res)
    return res


# ---- printing ---------------------------------------------------------------------------------
def run_line(i: int, r: dict[str, Any]) -> str:
    """One run's figures on a line."""
    return (
        f"  run {i} {r['tool']}: {r['requests']} requests (server {r['received']}), CPU "
        f"{r['cpu_s']:.2f} s = {r['cpu_s'] / max(1, r['requests']) * 1e3:.3f} ms/request; "
        f"arrivals {r['arrived']}/{r['scheduled']} ({r['achieved'] * 100:.2f} %), skipped/dropped "
        f"{r['skipped']}, failed {r['failed']}; behind schedule p50 {r['lag']['p50'] * 1e3:.1f} "
        f"p99 {r['lag']['p99'] * 1e3:.1f} max {r['lag']['max'] * 1e3:.1f} ms; "
        + ", ".join(
            f"{_pname(p)} {r['pcts'][p] * 1e3:.1f} (law {r['law'][p] * 1e3:.1f}, "
            f"server {r['server'][p] * 1e3:.1f})"
            for p in PCTS
        )
        + (
            "; session " + ", ".join(f"{_pname(p)} {r['session'][p] * 1e3:.1f}" for p in PCTS)
            if "session" in r
            else ""
        )
    )


def _pname(p: float) -> str:
    return "min" if p == 0 else f"p{p:g}"


def table(res: dict[str, list[dict[str, Any]]], small: dict[str, dict[str, Any]]) -> list[str]:
    """The medians, tool by tool, as a markdown table (runs in brackets)."""
    med = statistics.median
    tools = list(res)

    def cell(tool: str, f: Any, fmt: str) -> str:
        vals = [f(r) for r in res[tool]]
        return f"{fmt.format(med(vals))} ({', '.join(fmt.format(v) for v in vals)})"

    def marginal(tool: str) -> Any:
        c0, n0 = small[tool]["cpu_s"], small[tool]["requests"]
        return lambda r: (r["cpu_s"] - c0) / max(1, r["requests"] - n0) * 1e3

    rows = [
        (
            "CPU per request, whole life (ms)",
            {
                t: cell(t, lambda r: r["cpu_s"] / max(1, r["requests"]) * 1e3, "{:.3f}")
                for t in tools
            },
        ),
        ("CPU per request, marginal (ms)", {t: cell(t, marginal(t), "{:.3f}") for t in tools}),
        (
            "arrivals achieved / scheduled",
            {t: ", ".join(f"{r['arrived']}/{r['scheduled']}" for r in res[t]) for t in tools},
        ),
        ("skipped / dropped", {t: ", ".join(str(r["skipped"]) for r in res[t]) for t in tools}),
        (
            "behind schedule p99 (ms)",
            {t: cell(t, lambda r: r["lag"]["p99"] * 1e3, "{:.1f}") for t in tools},
        ),
        (
            "behind schedule max (ms)",
            {t: cell(t, lambda r: r["lag"]["max"] * 1e3, "{:.1f}") for t in tools},
        ),
    ]
    for p in PCTS:
        rows.append(
            (
                f"{_pname(p)} − law (ms)",
                {
                    t: cell(t, lambda r, p=p: (r["pcts"][p] - r["law"][p]) * 1e3, "{:+.1f}")
                    for t in tools
                },
            )
        )
        rows.append(
            (
                f"{_pname(p)} − server (ms)",
                {
                    t: cell(t, lambda r, p=p: (r["pcts"][p] - r["server"][p]) * 1e3, "{:+.1f}")
                    for t in tools
                },
            )
        )
    if "artillery" in res:
        for p in PCTS:
            rows.append(
                (
                    f"{_pname(p)} − law, Artillery's vusers.session_length (ms)",
                    {
                        t: cell(t, lambda r, p=p: (r["session"][p] - r["law"][p]) * 1e3, "{:+.1f}")
                        if t == "artillery"
                        else ""
                        for t in tools
                    },
                )
            )
    out = ["| | " + " | ".join(tools) + " |", "|---|" + "---|" * len(tools)]
    out += [f"| {name} | " + " | ".join(v[t] for t in tools) + " |" for name, v in rows]
    return out


def main() -> None:
    """Alternate the tools, `--runs` rounds, and print every run and the medians."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--duration", type=int, default=30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", nargs="+", choices=TOOLS, default=list(TOOLS))
    a = ap.parse_args()
    if a.rate <= 0 or a.duration < 5 or a.runs < 1:
        print("bench_peers: give --rate > 0, --duration >= 5 and --runs >= 1", file=sys.stderr)
        raise SystemExit(2)
    if "artillery" in a.tools:
        ensure_artillery()
    print(
        f"{a.rate:g} arrivals/s for {a.duration} s, {a.runs} rounds of {', '.join(a.tools)}; "
        f"testbed on CPU {TESTBED_CPU}, tool on CPU {TOOL_CPU}; load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    small = {t: one(t, SMALL_RATE, SMALL_DURATION, 7) for t in a.tools}
    print(
        "  small runs (1/s, 5 s): "
        + ", ".join(
            f"{t} {c['cpu_s']:.2f} s CPU for {c['requests']} requests" for t, c in small.items()
        )
    )
    res: dict[str, list[dict[str, Any]]] = {t: [] for t in a.tools}
    for i in range(a.runs):
        for tool in a.tools:
            r = one(tool, a.rate, a.duration, 11 + i)
            res[tool].append(r)
            print(run_line(i + 1, r), flush=True)
    print(f"load {os.getloadavg()[0]:.1f}")
    print("\n".join(table(res, small)))
    problems = [
        p for runs in [*res.values(), list(small.values())] for r in runs for p in r["problems"]
    ]
    if problems:
        print("NOT LIKE-FOR-LIKE: " + "; ".join(problems))
        raise SystemExit(1)
    print("like-for-like: every run sent one request an arrival, all of them seen by the server")


if __name__ == "__main__":
    main()
