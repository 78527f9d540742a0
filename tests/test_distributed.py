"""Distributed rehearsals: real Locust master and
worker processes on loopback, a few seconds each."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from scenarios.latency import CLOCKS, read_hdr
from scenarios.profile import flat_profile_toml
from testbed.process import TestbedServer

ROOT = Path(__file__).resolve().parents[1]
FAST_TESTBED = [
    'security.password_hash="pbkdf2"',
    "security.pbkdf2_iterations=1000",
    "issuer.workers=16",
    "issuer.service.mean=0.02",
    "payments.service.mean=0.05",
]
PROFILE = flat_profile_toml(
    "test-distributed",
    total=100000,
    stamps_per_applicant={2: 0.5, 3: 0.5},
    journeys={
        "mix": {"new_applicant": 0.6, "returning_applicant": 0.2, "stamp_only": 0.2},
        "think_time_s": [0.0, 0.05],
        "patience_s": 10,
        "poll_interval_s": 0.1,
        "retry_mix": {"refresh": 0.5, "backoff": 0.5},
        "backoff_base_s": 0.2,
        "backoff_max_s": 1,
        "max_attempts": 3,
        "request_timeout_s": 5,
    },
)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def fast_flags() -> list[str]:
    return sum((["--testbed-set", kv] for kv in FAST_TESTBED), [])


@pytest.mark.timeout(120)
def test_two_workers_make_one_run_directory_that_reconciles(tmp_path):
    prof = tmp_path / "p.toml"
    prof.write_text(PROFILE)
    out = tmp_path / "two"
    # 1 day into 5 s at 1/1000 of 100,000 applicants: 100 arrivals expected, 50 per worker.
    cmd = [
        sys.executable,
        "-m",
        "surgecast",
        "rehearse",
        "--quiet",
        "--workers",
        "2",
        "--profile",
        str(prof),
        "--duration",
        "5",
        "--scale",
        "0.001",
        "--seed",
        "21",
        "--out",
        str(out),
        *fast_flags(),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=110, cwd=ROOT)
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
    stats = {
        x["Name"]: int(x["Request Count"])
        for x in rows(out / "locust_stats.csv")
        if x["Name"] != "Aggregated"
    }
    assert stats, "locust_stats.csv has no steps"
    for step, n in stats.items():
        assert read_hdr(str(out / "latency" / f"{step}.service.hdr")).get_total_count() == n, step
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
    with TestbedServer(port=0, extra_args=sum((["--set", kv] for kv in FAST_TESTBED), [])) as tb:
        port = _free_port()
        out = tmp_path / "lost"
        env = dict(
            os.environ,
            SURGECAST_RESULTS_WAIT_S="5",
            SURGECAST_READY_WAIT_S="60",
            PYTHONUNBUFFERED="1",
        )
        master = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "surgecast",
                "rehearse",
                "--master",
                "--workers",
                "2",
                "--master-bind-host",
                "127.0.0.1",
                "--master-port",
                str(port),
                "--host",
                tb.url,
                f"--admin-token={tb.admin_token}",
                "--arrival-rate",
                "10",
                "--duration",
                "6",
                "--seed",
                "4",
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []
        threading.Thread(target=lambda: lines.extend(master.stdout), daemon=True).start()  # type: ignore[arg-type]
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "surgecast",
                    "rehearse",
                    "--worker",
                    "--master-host",
                    "127.0.0.1",
                    "--master-port",
                    str(port),
                ],
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
            end = time.time() + 60
            while time.time() < end and not any(
                "arrivals" in x and not x.split("arrivals ")[1].startswith("0/") for x in lines
            ):
                time.sleep(0.2)
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
