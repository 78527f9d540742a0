"""Fault drills end to end: `surgecast drill NAME` as a real process (testbed + Locust subprocesses
on loopback), each under 60 s. Every drill must pass and show that its fault bit; the client-retries
drill with fresh Idempotency-Keys must fail with exit 3, proving the checks can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from surgecast.drills import DRILLS

ROOT = Path(__file__).resolve().parents[1]
CHECKS = [
    "load_ran",
    "fault_observed",
    "reconciliation",
    "no_duplicate_jobs",
    "stamps_finished",
    "audit_balanced",
]


def drill(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "surgecast", "drill", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def result(out: Path) -> dict[str, Any]:
    return json.loads((out / "drill.json").read_text())


def events(d: dict[str, Any]) -> list[str]:
    return [e["event"] for e in d["timeline"]]


def test_list_names_every_drill_and_what_it_proves() -> None:
    r = drill("--list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == [
        "kill-testbed",
        "issuer-outage",
        "payment-chaos",
        "client-retries",
    ]
    assert all(len(ln.split()) > 5 for ln in lines)


def test_bad_name_and_flags_are_usage_errors(tmp_path: Path) -> None:
    for args, word in (
        (["kill-the-db", "--out", str(tmp_path / "a")], "kill-testbed"),
        ([], "NAME"),
        (["issuer-outage", "--duration", "2", "--out", str(tmp_path / "b")], "--duration"),
    ):
        r = drill(*args)
        assert r.returncode == 2 and word in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert "Traceback" not in r.stderr
    assert not any(tmp_path.iterdir())
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep me")
    r = drill("issuer-outage", "--out", str(full))
    assert r.returncode == 2 and "--out" in r.stderr and (full / "x").read_text() == "keep me"


def _passes(tmp_path: Path, name: str) -> dict[str, Any]:
    out = tmp_path / name
    r = drill(name, "--out", str(out), "--seed", "3", "--quiet")
    assert r.returncode == 0, (r.stdout, r.stderr[-3000:])
    assert r.stdout.startswith(f"drill {name} passed") and r.stderr == ""
    d = result(out)
    assert d["name"] == name and d["verdict"]["passed"] is True
    assert [c["name"] for c in d["checks"]] == CHECKS and all(c["ok"] for c in d["checks"])
    rec = d["reconciliation"]
    assert (
        rec["ok"]
        and rec["problems"] == []
        and rec["settled"] is True
        and rec["server_evidence"] == "records"
    )
    assert rec["lost_quota"] == 0 and rec["duplicated_quota"] == 0 and rec["lost_payments"] == 0
    assert rec["checked_stamps"] > 10 and rec["checked_payments"] > 10
    assert (out / "drill_server_records.json").is_file()
    assert d["duplicates"]["duplicate_stamp_jobs"] == 0 and d["duplicates"]["duplicate_orders"] == 0
    assert d["audit"]["balanced"] and d["audit"]["totals"]["stamps_pending"] == 0
    assert (out / "summary.json").is_file() and (out / "drill_server_ledger.json").is_file()
    assert d["elapsed_s"] < 60
    return d


@pytest.mark.timeout(90)
def test_kill_testbed(tmp_path: Path) -> None:
    d = _passes(tmp_path, "kill-testbed")
    ev = events(d)
    assert ev.index("sigkill") < ev.index("restart") < ev.index("back") < ev.index("load_finished")
    back = next(e for e in d["timeline"] if e["event"] == "back")
    kill = next(e for e in d["timeline"] if e["event"] == "sigkill")
    assert back["same_port"] and back["port"] == kill["port"]
    # The kill found work answered 202 but unfinished
    # (held for the last second), and none of it was lost.
    assert kill["payments_pending"] > 0 and kill["stamps_pending"] > 0
    assert ev.index("hold_before_kill") < ev.index("sigkill")
    # Clients saw the outage (connection errors, retried) and the surge went on after it.
    s = json.loads((tmp_path / "kill-testbed" / "summary.json").read_text())
    assert sum(v["errors"] for v in s["steps"].values()) > 0 and s["completed"] > 20


@pytest.mark.timeout(90)
def test_issuer_outage(tmp_path: Path) -> None:
    d = _passes(tmp_path, "issuer-outage")
    ev = events(d)
    assert ev.index("issuer_pause") < ev.index("issuer_resume")
    resume = next(e for e in d["timeline"] if e["event"] == "issuer_resume")
    assert resume["queue_max_while_paused"] > 0
    pause_t = next(e["t_s"] for e in d["timeline"] if e["event"] == "issuer_pause")
    assert 4.5 <= resume["t_s"] - pause_t <= 6


@pytest.mark.timeout(90)
def test_payment_chaos(tmp_path: Path) -> None:
    d = _passes(tmp_path, "payment-chaos")
    chaos = next(e for e in d["timeline"] if e["event"] == "payment_chaos")
    assert chaos["payment_duplicate_ratio"] == 0.5 and chaos["payment_reorder"] is True
    conf = d["audit"]["totals"]["confirmations"]
    assert conf["duplicate"] > 0 and conf["applied"] >= d["audit"]["totals"]["orders_paid"]
    late = next(e for e in d["timeline"] if e["event"] == "late_confirmations")
    assert late["results"] == {
        "duplicate": 2 * late["payments"]
    }  # a late failure takes nothing back
    ledger = json.loads((tmp_path / "payment-chaos" / "drill_server_ledger.json").read_text())
    assert any(o["status"] == "failed" for o in ledger["orders"])  # some payments were declined


@pytest.mark.timeout(120)
def test_client_retries_pass_with_keys_and_fail_without(tmp_path: Path) -> None:
    d = _passes(tmp_path, "client-retries")
    s = json.loads((tmp_path / "client-retries" / "summary.json").read_text())
    assert (
        s["steps"]["stamp"]["errors"] > 0 and s["steps"]["pay"]["errors"] > 0
    )  # clients really retried
    # The control: the same drill with a new Idempotency-Key on every retry charges twice, and
    # the drill says so with exit 3 and one line naming the failed check.
    out = tmp_path / "fresh"
    r = drill(
        "client-retries", "--fresh-idempotency-keys", "--out", str(out), "--seed", "3", "--quiet"
    )
    assert r.returncode == 3, (r.stdout, r.stderr[-2000:])
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("IntegrityError: drill client-retries failed")
    assert "no_duplicate_jobs" in err and "charged twice" in err and "Traceback" not in r.stderr
    bad = result(out)
    # Both the drill's own database check and the run's
    # reconciliation (documents stamped twice) see it.
    assert bad["verdict"]["passed"] is False
    assert set(bad["verdict"]["failed_checks"]) == {"reconciliation", "no_duplicate_jobs"}
    assert bad["reconciliation"]["duplicated_stamps"] == bad["duplicates"]["duplicate_stamp_jobs"]
    assert (
        bad["duplicates"]["duplicate_stamp_jobs"] > 0
        and bad["duplicates"]["quota_charged_twice"] > 0
    )
    assert bad["fresh_idempotency_keys"] is True and d["fresh_idempotency_keys"] is False


def test_every_drill_is_tested() -> None:
    tested = {"kill-testbed", "issuer-outage", "payment-chaos", "client-retries"}
    assert set(DRILLS) == tested
