"""Distributed rehearsals: real Locust master and
worker processes on loopback, a few seconds each."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest

from scenarios.latency import CLOCKS
from testbed.process import TestbedServer
from tests import distributed_run as dist
from tests.test_rehearse_runs import ROOT, fast_testbed_flags, rehearse, rows, write_profile

MIX = {"new_applicant": 0.6, "returning_applicant": 0.2, "stamp_only": 0.2}


@pytest.mark.timeout(120)
def test_two_workers_make_one_run_directory_that_reconciles(tmp_path):
    prof = write_profile(tmp_path, "distributed", MIX, patience=10)
    out = tmp_path / "two"
    # 1 day into 5 s at 1/1000 of 100,000 applicants: 100 arrivals expected, 50 per worker.
    r = rehearse(
        *("--workers", "2", "--duration", "5", "--scale", "0.001", "--seed", "21"),
        *("--profile", str(prof), "--out", str(out), *fast_testbed_flags()),
        timeout=110,
    )
    assert r.returncode == 0, r.stderr[-2000:] + r.stdout[-2000:]

    s = json.loads((out / "summary.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["workers"] == 2 and len(run["worker_clients"]) == 2 and run["lost_workers"] == []
    assert s["exit_code"] == 0 and s["reconciliation_ok"] is True
    assert json.loads((out / "reconciliation.json").read_text())["ok"] is True
    assert json.loads((out / "audit.json").read_text())["balanced"] is True

    # One arrivals.csv with rows from both workers and unique, worker-tagged ids.
    arrivals = rows(out / "arrivals.csv")
    ids = [a["applicant_id"] for a in arrivals]
    assert len(ids) == len(set(ids)) == s["scheduled"]
    by_worker = {w: [a for a in arrivals if a["worker"] == w] for w in ("0", "1")}
    assert all(by_worker.values()) and set(a["worker"] for a in arrivals) == {"0", "1"}
    assert all(a["applicant_id"].startswith(a["worker"] + "-") for a in arrivals)
    e = s["scheduled_expected"]
    assert e == pytest.approx(100, rel=1e-6)
    assert abs(s["scheduled"] - e) < 4 * e**0.5  # Poisson noise of the sum
    for w in by_worker.values():
        assert abs(len(w) - e / 2) < 4 * (e / 2) ** 0.5  # each worker drew its half
    # arrivals.csv, summary counts and the outcomes agree.
    for outcome in ("completed", "abandoned", "failed", "dropped"):
        assert sum(a["outcome"] == outcome for a in arrivals) == s[outcome], outcome
    assert s["completed"] >= 0.9 * s["scheduled"] and s["dropped"] == 0, s
    assert sum(1 for a in arrivals if a["started_at"]) == s["started"]

    # The merged HDR histograms hold exactly the requests Locust counted, step by step.
    stats = dist.request_counts(out)
    assert stats, "locust_stats.csv has no steps"
    for step, n in stats.items():
        assert dist.service_samples(out, step) == n, step
        assert s["steps"][step]["count"] == n
    assert sum(stats.values()) == s["requests"]
    for step in s["steps"]:
        for clock in CLOCKS:
            assert (out / "latency" / f"{step}.{clock}.hdr").is_file()
    # The latency history is one set of windows over both workers' samples.
    hist = rows(out / "latency_history.csv")
    for step, n in stats.items():
        assert sum(int(h["count"]) for h in hist if h["step"] == step) == n
    # The ledger covers both workers' applicants (set-up accounts included).
    ledger = rows(out / "ledger.csv")
    assert {x["applicant_id"].split("-")[0] for x in ledger} == {"0", "1"}
    assert run["setup_accounts"] > 0 and run["setup_failed"] == 0
    # Queue samples come from the master alone: about one a second, not one per worker.
    q = rows(out / "queue.csv")
    assert 3 <= len(q) <= 2 * run["duration_s"] + 25


@pytest.mark.timeout(120)
def test_a_worker_that_dies_is_named_and_the_run_exits_3(tmp_path):
    with TestbedServer(port=0, extra_args=dist.testbed_flags()) as tb:
        port = _free_port()
        out = tmp_path / "lost"
        env = dict(os.environ, **dist.MASTER_ENV)
        master = subprocess.Popen(
            dist.master_cmd(
                bind_host="127.0.0.1", port=port, url=tb.url, token=tb.admin_token, out=out
            ),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines = dist.read_lines(master)
        workers = [
            subprocess.Popen(
                dist.worker_cmd(master_host="127.0.0.1", port=port),
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            for _ in range(2)
        ]
        try:
            # Kill one worker once arrivals are flowing: the master's progress line counts
            # them (a fixed sleep killed it during its set-up on a loaded machine, and the
            # master waited for it).
            dist.wait_for_arrivals(lines, 60)
            time.sleep(1)
            os.killpg(workers[1].pid, signal.SIGKILL)
            master.wait(90)
            stderr = master.stderr.read() if master.stderr else ""
        finally:
            for w in workers:
                if w.poll() is None:
                    os.killpg(w.pid, signal.SIGKILL)
                w.wait(10)
            if master.poll() is None:
                master.kill()
    assert master.returncode == 3, stderr[-2000:]
    assert "IntegrityError: worker" in stderr and "data lost" in stderr, stderr[-2000:]
    s = json.loads((out / "summary.json").read_text())
    assert s["exit_code"] == 3 and len(s["lost_workers"]) == 1
    lost = s["lost_workers"][0]["index"]
    assert f"worker {lost} (" in stderr
    # What the surviving worker sent is still written, tagged with its index.
    kept = {a["worker"] for a in rows(out / "arrivals.csv")}
    assert kept == {str(1 - lost)}


def _free_port() -> int:
    # Not scenarios.distributed.free_port: importing it
    # would import Locust (gevent patching) into pytest.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
