"""The peer benchmark's readers and checks turn red on broken input (benchmarks/bench_peers.py),
and the register-only journey it plays for surgecast (scenarios/peer_journey.py) sends one
request an arrival, every one of them seen by the target.
"""

from __future__ import annotations

import copy
import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.latency_truth import law_record
from benchmarks.bench_peers import (
    ReportError,
    achieved,
    artillery_figures,
    bare_figures,
    like_for_like,
    schedule_lag,
    truth,
    uniform_starts,
)
from floor.children import child_env
from testbed.process import TestbedServer

ROOT = Path(__file__).resolve().parents[1]

# The aggregate of a real `artillery run --output` report (Artillery 2.0.34, 20 arrivals/s for
# 5 s against the latency-law testbed), with the per-endpoint and 2xx copies left out.
ARTILLERY_REPORT = {
    "aggregate": {
        "counters": {
            "vusers.created_by_name.0": 100, "vusers.created": 100, "http.requests": 100,
            "http.codes.201": 100, "http.responses": 100, "http.downloaded_bytes": 3700,
            "vusers.failed": 0, "vusers.completed": 100,
        },
        "summaries": {
            "http.response_time": {
                "min": 35, "max": 500, "count": 100, "mean": 59.8, "p50": 53, "median": 53,
                "p75": 57.4, "p90": 63.4, "p95": 68.7, "p99": 141.2, "p999": 141.2,
            },
            "vusers.session_length": {
                "min": 53.5, "max": 512.4, "count": 100, "mean": 74.8, "p50": 64.7,
                "median": 64.7, "p75": 73, "p90": 80.6, "p95": 89.1, "p99": 202.4, "p999": 202.4,
            },
        },
    },
    "intermediate": [],
}


def test_artillery_report_is_read_in_seconds_with_absent_counters_as_zero() -> None:
    f = artillery_figures(ARTILLERY_REPORT)
    assert (f["requests"], f["arrived"], f["skipped"], f["failed"]) == (100, 100, 0, 0)
    assert f["pcts"] == {0: 0.035, 50: 0.053, 99: 0.1412, 99.9: 0.1412}
    assert f["session"][0] == pytest.approx(0.0535)
    skipped = copy.deepcopy(ARTILLERY_REPORT)
    skipped["aggregate"]["counters"]["vusers.skipped"] = 7
    assert artillery_figures(skipped)["skipped"] == 7


@pytest.mark.parametrize(
    "path",
    [
        ("aggregate", "counters", "http.requests"),
        ("aggregate", "counters", "vusers.created"),
        ("aggregate", "summaries", "http.response_time", "p999"),
        ("aggregate", "summaries", "vusers.session_length"),
    ],
)
def test_artillery_report_without_a_needed_figure_is_refused(path: tuple[str, ...]) -> None:
    broken = copy.deepcopy(ARTILLERY_REPORT)
    node = broken
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]
    with pytest.raises(ReportError, match=path[-1]):
        artillery_figures(broken)


def test_bare_final_stats_are_read_and_a_missing_percentile_is_refused() -> None:
    final = {"requests": 6012, "register": 6012, "failures": 0,
             "pcts": {"0": 50.9, "50": 53, "99": 1900, "99.9": 2000}}
    f = bare_figures(final, 6020)
    assert (f["arrived"], f["skipped"], f["scheduled"]) == (6012, 8, 6020)
    assert f["pcts"][99] == 1.9
    del final["pcts"]["99.9"]
    with pytest.raises(ReportError, match="99.9"):
        bare_figures(final, 6020)


def test_achieved_share_and_its_bounds() -> None:
    assert achieved(6000, 6000) == 1.0
    assert achieved(5970, 6000) == pytest.approx(0.995)
    with pytest.raises(ValueError, match="arrived 6001"):
        achieved(6001, 6000)  # more started than scheduled: a count read from the wrong place


def test_schedule_lag_is_zero_on_schedule_and_shows_a_tool_falling_behind() -> None:
    grid = uniform_starts(200.0, 30.0)
    assert len(grid) == 6000 and grid[1] == 0.005
    loopback = [1_800_000_000.0 + t + 0.0003 for t in grid]  # a constant offset cancels
    assert schedule_lag(loopback, grid)["max"] == pytest.approx(0.0, abs=1e-6)
    behind = [1_800_000_000.0 + t * 1.02 for t in grid]  # 2 % slow: 0.6 s behind at 30 s
    lag = schedule_lag(behind, grid)
    assert lag["max"] == pytest.approx(0.02 * grid[-1], rel=1e-3)
    assert lag["p50"] == pytest.approx(0.02 * grid[3000], rel=1e-3)


def test_like_for_like_names_a_longer_journey_and_a_miscount() -> None:
    assert like_for_like({"tool": "t", "requests": 6000, "arrived": 6000, "received": 6000}) == []
    longer = like_for_like({"tool": "t", "requests": 64000, "arrived": 6000, "received": 64000})
    assert longer == ["t: 64000 requests for 6000 arrivals (the journey is one request)"]
    miscount = like_for_like({"tool": "t", "requests": 5900, "arrived": 5900, "received": 6000})
    assert miscount == ["t: the server received 6000 requests, the tool counted 5900"]


def test_truth_reads_the_servers_rows() -> None:
    rows = [[1000.0 + i, i, 0.05, 1000.05 + i, 1000.0504 + i] for i in range(99)]
    rows.append([1099.0, 99, 0.5, 1099.5, 1099.5004])
    t = truth(rows)
    assert t["received"] == 100 and t["received_unix"][0] == 1000.0
    assert t["law"][50] == pytest.approx(0.05, rel=1e-3)
    assert t["law"][99.9] == pytest.approx(0.5, rel=1e-3)
    assert t["server"][50] == pytest.approx(0.0504, rel=1e-3)


@pytest.mark.timeout(120)
def test_register_only_journey_sends_one_request_an_arrival(tmp_path: Path) -> None:
    law = ["--set", 'security.password_hash="pbkdf2"', "--set", "security.pbkdf2_iterations=1000",
           "--set", "latency_law.enabled=true", "--set", "latency_law.stall_s=0"]
    with TestbedServer(port=0, extra_args=law) as tb:
        out = tmp_path / "run"
        cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "scenarios" / "peer_journey.py"),
               "--headless", "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0",
               "--host", tb.url, "--out", str(out), "--seed", "5", "--duration", "3",
               "--arrival-rate", "8", "--quiet"]
        r = subprocess.run(cmd, env=child_env(tb.admin_token), cwd=ROOT, capture_output=True,
                           text=True, timeout=100)
        assert r.returncode == 0, r.stdout[-2000:]
        received = len(law_record(tb.url, tb.admin_token)["requests"])
    summary = json.loads((out / "summary.json").read_text())
    with (out / "arrivals.csv").open(newline="") as f:
        arrivals = list(csv.DictReader(f))
    assert summary["scheduled"] == len(arrivals) > 5
    assert {a["outcome"] for a in arrivals} == {"completed"}
    assert {a["ended_step"] for a in arrivals} == {"register"}
    assert summary["requests"] == len(arrivals) == received
    assert list(summary["steps"]) == ["register"]
    assert summary["reconciliation_ok"] is True
