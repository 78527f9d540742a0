"""Real rehearsals: Locust subprocesses against a real
testbed process on loopback, a few seconds each."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from floor.rundir.files import read_ledger_rows
from scenarios.profile import flat_profile_toml
from scenarios.reconcile import reconcile
from testbed.process import TestbedServer

ROOT = Path(__file__).resolve().parents[1]
FAST_TESTBED = [
    'security.password_hash="pbkdf2"',
    "security.pbkdf2_iterations=1000",
    "issuer.workers=16",
    "issuer.service.mean=0.02",
    "payments.service.mean=0.05",
]
RUN_FILES = {
    "run.json",
    "profile.toml",
    "locust_stats.csv",
    "locust_stats_history.csv",
    "locust_failures.csv",
    "locust_exceptions.csv",
    "arrivals.csv",
    "ledger.csv",
    "queue.csv",
    "latency_history.csv",
    "audit.json",
    "server_ledger.json",
    "server_records.json",
    "reconciliation.json",
    "summary.json",
}


def write_profile(tmp: Path, name: str, mix: dict[str, float], patience: float = 15) -> Path:
    p = tmp / f"{name}.toml"
    p.write_text(
        flat_profile_toml(
            f"test-{name}",
            total=100000,
            stamps_per_applicant={2: 0.5, 3: 0.5},
            journeys={
                "mix": mix,
                "think_time_s": [0.0, 0.05],
                "patience_s": patience,
                "poll_interval_s": 0.1,
                "retry_mix": {"refresh": 0.5, "backoff": 0.5},
                "backoff_base_s": 0.2,
                "backoff_max_s": 1,
                "max_attempts": 3,
                "request_timeout_s": 5,
            },
        )
    )
    return p


def rehearse(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "surgecast", "rehearse", "--quiet", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def fast_testbed_flags() -> list[str]:
    out: list[str] = []
    for kv in FAST_TESTBED:
        out += ["--testbed-set", kv]
    return out


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.timeout(90)
@pytest.mark.parametrize("journey", ["new_applicant", "returning_applicant", "stamp_only"])
def test_each_journey_completes_and_reconciles(tmp_path, journey):
    prof = write_profile(tmp_path, journey, {journey: 1.0})
    out = tmp_path / "run"
    # 1 day into 4 s at 1/2000 of 100,000 applicants: about 50 arrivals at ~12/s.
    r = rehearse(
        "--profile",
        str(prof),
        "--duration",
        "4",
        "--scale",
        "0.0005",
        "--seed",
        "7",
        "--out",
        str(out),
        *fast_testbed_flags(),
    )
    assert r.returncode == 0, r.stderr + r.stdout[-2000:]
    assert {p.name for p in out.iterdir()} >= RUN_FILES
    s = json.loads((out / "summary.json").read_text())
    assert s["scheduled"] > 15 and s["dropped"] == 0
    assert s["completed"] >= 0.9 * s["scheduled"], s
    arrivals = rows(out / "arrivals.csv")
    assert {a["journey"] for a in arrivals} == {journey}
    expected_steps = {
        "new_applicant": {"register", "login", "order", "pay", "wait_quota"},
        "returning_applicant": {"login", "order", "pay", "wait_quota"},
        "stamp_only": {"login"},
    }[journey] | {"stamp", "poll_stamp", "download"}
    assert set(s["steps"]) == expected_steps
    for step in expected_steps:
        assert (out / "latency" / f"{step}.service.hdr").is_file()
        assert (out / "latency" / f"{step}.intended.hdr").is_file()
        assert s["steps"][step]["intended_p50_ms"] >= s["steps"][step]["p50_ms"] * 0.99
    rec = json.loads((out / "reconciliation.json").read_text())
    assert rec["ok"] and rec["checked_stamps"] >= 2 * s["completed"]
    assert json.loads((out / "audit.json").read_text())["balanced"] is True
    run = json.loads((out / "run.json").read_text())
    assert run["embedded_testbed"] and run["demand_multiplier"] == pytest.approx(86400 / 4 * 0.0005)
    assert run["calendar_origin_at"].startswith("2024-09-01T00:00:00+07:00")
    # Locust's own statistics saw every request under the step names.
    names = {row["Name"] for row in rows(out / "locust_stats.csv")}
    assert expected_steps <= names


@pytest.mark.timeout(90)
def test_arrivals_match_the_schedule_and_a_small_pool_drops(tmp_path):
    out = tmp_path / "capped"
    r = rehearse(
        "--arrival-rate",
        "40",
        "--duration",
        "5",
        "--user-cap",
        "3",
        "--seed",
        "11",
        "--out",
        str(out),
        *fast_testbed_flags(),
    )
    assert r.returncode == 0, r.stderr
    s = json.loads((out / "summary.json").read_text())
    e = s["scheduled_expected"]
    assert e == pytest.approx(200)
    assert abs(s["scheduled"] - e) < 4 * e**0.5  # Poisson noise
    assert s["dropped"] > 0.5 * s["scheduled"], s  # 3 users cannot carry 40/s
    dropped = [a for a in rows(out / "arrivals.csv") if a["outcome"] == "dropped"]
    assert len(dropped) == s["dropped"]
    assert all(a["started_at"] == "" and a["finished_at"] == "" for a in dropped)
    assert sum(1 for a in rows(out / "arrivals.csv") if a["started_at"]) == s["started"]


@pytest.mark.timeout(90)
def test_a_gate_closing_mid_run_shows_in_outcomes_and_thresholds(tmp_path):
    prof = write_profile(tmp_path, "gate", {"new_applicant": 1.0}, patience=4)
    gates = tmp_path / "gate_schedule.json"
    # Registration closes at 12:00 calendar = 3 s into a 6 s run.
    gates.write_text(
        json.dumps(
            [
                {
                    "at": "2024-09-01T12:00:00+07:00",
                    "gate": "registration",
                    "mode": "closed",
                    "label": "test closes registration",
                }
            ]
        )
    )
    out = tmp_path / "gated"
    r = rehearse(
        "--profile",
        str(prof),
        "--duration",
        "6",
        "--scale",
        "0.0003",
        "--seed",
        "5",
        "--gates",
        str(gates),
        "--threshold",
        "register.errors<5%",
        "--out",
        str(out),
        *fast_testbed_flags(),
    )
    assert r.returncode == 1, r.stderr + r.stdout[-1500:]  # the errors threshold failed
    arrivals = rows(out / "arrivals.csv")
    early = [a for a in arrivals if a["calendar_intended_at"] < "2024-09-01T11:50"]
    # late: an hour of calendar (0.25 s of the run) after the close, the time the harness may
    # take to apply a scheduled gate on a busy machine (ten minutes, 42 ms, was a race)
    late = [a for a in arrivals if a["calendar_intended_at"] > "2024-09-01T13:00"]
    assert early and late
    assert sum(a["outcome"] == "completed" for a in early) >= 0.8 * len(early)
    assert all(
        a["outcome"] in ("abandoned", "failed") and a["ended_step"] == "register" for a in late
    ), late[:3]
    s = json.loads((out / "summary.json").read_text())
    assert [t["ok"] for t in s["thresholds"]] == [False]
    run = json.loads((out / "run.json").read_text())
    assert run["admin_actions"][0]["target"] == "registration" and run["admin_actions"][0]["ok"]
    assert 2.5 < run["admin_actions"][0]["at_s"] < 3.5
    q = rows(out / "queue.csv")
    assert q[0]["gate_registration"] == "open" and "closed" in {x["gate_registration"] for x in q}


@pytest.mark.timeout(90)
def test_reconciliation_catches_an_order_deleted_from_the_database(tmp_path):
    with TestbedServer(port=0, extra_args=sum((["--set", kv] for kv in FAST_TESTBED), [])) as tb:
        out = tmp_path / "remote"
        r = rehearse(
            "--arrival-rate",
            "5",
            "--duration",
            "3",
            "--host",
            tb.url,
            f"--admin-token={tb.admin_token}",
            "--seed",
            "3",
            "--out",
            str(out),
        )
        assert r.returncode == 0, r.stderr
        client = read_ledger_rows(out / "ledger.csv")
        paid = [x["ref"] for x in client if x["kind"] == "payment" and x["status"] == "credited"]
        assert paid
        # Lose one paid order behind the service's back, as a broken write would.
        with sqlite3.connect(tb.db_path) as db:
            db.execute("DELETE FROM orders WHERE order_id = ?", (paid[0],))
        req = urllib.request.Request(
            tb.url + "/admin/ledger", headers={"Authorization": f"Bearer {tb.admin_token}"}
        )
        server = json.loads(urllib.request.urlopen(req, timeout=10).read())
    result = reconcile(client, server)
    assert not result["ok"]
    assert result["unknown_orders"] == 1
    assert any(
        d["problem"] == "unknown_order" and d["order_id"] == paid[0] for d in result["details"]
    )
    # The same check from the run's own files (the doctored snapshot) fails too.
    snap = json.loads((out / "server_ledger.json").read_text())
    snap["orders"] = [o for o in snap["orders"] if o["order_id"] != paid[0]]
    assert reconcile(client, snap)["unknown_orders"] == 1


@pytest.mark.timeout(30)
def test_a_remote_host_is_refused_and_nothing_is_written(tmp_path):
    out = tmp_path / "never"
    r = rehearse("--arrival-rate", "1", "--host", "http://10.11.12.13:8080", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "--allow-remote" in r.stderr
    assert not out.exists()
    r = rehearse("--profile", "casn2024", "--arrival-rate", "3", "--out", str(out))
    assert r.returncode == 2 and "--arrival-rate" in r.stderr and not out.exists()
    r = rehearse("--profile", "casn2024", "--scale", "7", "--out", str(out))
    assert r.returncode == 2 and "--scale" in r.stderr and not out.exists()


@pytest.mark.timeout(90)
def test_locust_dash_f_headless_writes_the_same_files(tmp_path):
    prof = write_profile(tmp_path, "lf", {"new_applicant": 0.6, "stamp_only": 0.4})
    with TestbedServer(port=0, extra_args=sum((["--set", kv] for kv in FAST_TESTBED), [])) as tb:
        out = tmp_path / "lf"
        cmd = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "locustfile.py"),
            "--headless",
            "--only-summary",
            "--profile",
            str(prof),
            "--duration",
            "3",
            "--scale",
            "0.0003",
            "--seed",
            "1",
            "--host",
            tb.url,
            f"--admin-token={tb.admin_token}",
            "--out",
            str(out),
            "--quiet",
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=80, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert {p.name for p in out.iterdir()} >= RUN_FILES
    assert not (out / ".locust-staging").exists()
    s = json.loads((out / "summary.json").read_text())
    assert s["scheduled"] > 5 and s["exit_code"] == 0
    history = rows(out / "locust_stats_history.csv")
    assert len(history) > 3  # full history, not just the aggregate
    # one run id over every file, Locust's CSVs (published at exit) included
    from floor import rundir

    listed = json.loads((out / "manifest.json").read_text())["files"]
    assert (
        rundir.verify(out) is not None
        and "locust_stats_history.csv" in listed
        and "arrivals.csv" in listed
    )
