"""Mutation tests of the oracle: a real testbed process with one deliberate defect
(tests/mutants.py) must turn reconciliation and every drill red, with exit 3 and the reason named.
Every mutant keeps the server's own audit balanced, so only the clients' evidence can catch it.

The control runs the same script against the unmutated testbed and must stay green.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_rehearse_runs import FAST_TESTBED, write_profile

from floor.rundir.files import read_ledger_rows
from testbed.process import MUTANT_ENV, TestbedServer
from tests.mutants import MUTANTS

ROOT = Path(__file__).resolve().parents[1]
REHEARSAL_MUTANTS = [
    m for m in MUTANTS if m != "drop-unconfirmed-payments-on-restart"
]  # needs a restart
DRILL_MUTANTS = [
    ("kill-testbed", "drop-unconfirmed-payments-on-restart"),
    ("issuer-outage", "drop-stamp-job"),
    ("payment-chaos", "credit-twice"),
    ("client-retries", "misprice"),
]


def _env(mutant: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != MUTANT_ENV}
    if mutant:
        env[MUTANT_ENV] = mutant
    return env


def test_the_launcher_starts_the_real_testbed_with_one_defect() -> None:
    tb = TestbedServer(env=_env("misprice"))
    assert tb.command()[1:6] == ["-P", "-m", "tests.mutants", "misprice", "testbed"]
    assert TestbedServer(env=_env(None)).command()[1:5] == [
        "-P",
        "-m",
        "testbed",
        "--host",
    ]  # not the command package
    r = subprocess.run(
        [sys.executable, "-m", "tests.mutants", "no-such-mutant"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert r.returncode == 2 and "credit-twice" in r.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mutant", [None, *REHEARSAL_MUTANTS])
def test_a_mutant_testbed_turns_the_rehearsal_reconciliation_red(
    tmp_path: Path, mutant: str | None
) -> None:
    prof = write_profile(tmp_path, "m", {"new_applicant": 1.0})
    with TestbedServer(
        extra_args=sum((["--set", kv] for kv in FAST_TESTBED), []), env=_env(mutant)
    ) as tb:
        out = tmp_path / "run"
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "surgecast",
                "rehearse",
                "--profile",
                str(prof),
                "--duration",
                "4",
                "--scale",
                "0.0004",
                "--seed",
                "7",
                "--host",
                tb.url,
                f"--admin-token={tb.admin_token}",
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=50,
            cwd=ROOT,
        )
        if mutant:
            assert "mutant testbed: " + mutant in tb.stderr_tail
    rec = json.loads((out / "reconciliation.json").read_text())
    audit = json.loads((out / "audit.json").read_text())
    assert (out / "server_records.json").is_file()
    assert audit["balanced"], audit["checks"]  # the server's own audit is blind to every mutant
    if mutant is None:
        assert r.returncode == 0 and rec["ok"] and rec["checked_stamps"] > 20, (
            r.stdout[-800:],
            rec["problems"],
        )
        _assert_the_ledger_holds_the_clients_evidence(out)
        return
    expect = MUTANTS[mutant].expect
    assert r.returncode == 3, (r.stdout[-800:], r.stderr[-800:])
    assert not rec["ok"] and set(expect) <= set(rec["problems"]), (rec["problems"], expect)
    verdict = r.stdout.strip().splitlines()[-1]
    assert "RECONCILIATION FAILED (" in verdict and all(f"{k}=" in verdict for k in expect), verdict


def _assert_the_ledger_holds_the_clients_evidence(out: Path) -> None:
    """Every acknowledged step of a clean run: its HTTP
    status, the ids given, keys sent, serials seen."""
    rows = read_ledger_rows(out / "ledger.csv")
    by = {k: [r for r in rows if r["kind"] == k] for k in ("account", "order", "payment", "stamp")}
    assert all(r["http_status"] == "201" for r in by["account"]) and by["account"]
    assert all(
        r["http_status"] == "201"
        and r["ref"].startswith("ord_")
        and len(r["idempotency_keys"]) == 32
        and r["quantity_told"] == r["quantity"]
        and int(r["amount"]) > 0
        for r in by["order"]
    )
    assert all(
        r["http_status"] in ("200", "202") and r["payment_id"].startswith("pay_")
        for r in by["payment"]
    )
    done = [r for r in by["stamp"] if r["status"] == "downloaded"]
    assert done and all(
        r["http_status"] == "202"
        and len(r["serial_number"]) == 22
        and r["document_serial"] == r["serial_number"]
        for r in done
    )
    records = json.loads((out / "server_records.json").read_text())
    serial = {s["stamp_id"]: s["serial_number"] for s in records["stamps"]}
    assert all(serial[r["ref"]] == r["document_serial"] for r in done)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("drill, mutant", DRILL_MUTANTS, ids=[f"{d}-{m}" for d, m in DRILL_MUTANTS])
def test_each_drill_fails_against_a_mutant_testbed(tmp_path: Path, drill: str, mutant: str) -> None:
    out = tmp_path / "drill"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "surgecast",
            "drill",
            drill,
            "--out",
            str(out),
            "--seed",
            "3",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=85,
        cwd=ROOT,
        env=_env(mutant),
    )
    assert r.returncode == 3, (r.stdout, r.stderr[-2000:])
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith(
        f"IntegrityError: drill {drill} failed: reconciliation failed ("
    )
    assert all(f"{k}=" in err for k in MUTANTS[mutant].expect), err
    d = json.loads((out / "drill.json").read_text())
    checks = {c["name"]: c["ok"] for c in d["checks"]}
    assert not checks["reconciliation"] and "reconciliation" in d["verdict"]["failed_checks"]
    # The fault bit and the server's own books balance: only the client evidence saw the defect.
    assert checks["load_ran"] and checks["fault_observed"] and checks["audit_balanced"], d["checks"]
    assert set(MUTANTS[mutant].expect) <= set(d["reconciliation"]["problems"])
    assert (out / "drill_server_records.json").is_file()
