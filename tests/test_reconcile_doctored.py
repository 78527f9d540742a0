"""Reconciliation on doctored run files: each planted defect must turn it red (exit 3), naming it.

The base pair is consistent: applicant 1 bought 2 e-Meterai, paid (202), stamped and downloaded
two documents; applicant 2 bought 1, paid, and the issuer failed its stamp (quota returned).
Most doctorings keep the server's own books consistent (the order, its credit and the account
agree), as a real defect would: only the client's evidence can show them.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from floor import atomic
from floor.rundir.files import read_ledger_rows
from scenarios.reconcile import FAILURES, reconcile
from scenarios.recorder import LEDGER_COLUMNS
from scenarios.summary import exit_code_for

pytestmark = pytest.mark.timeout(60)

SN1, SN2 = "ABCDEFGHJKLMNPQRSTUV22", "ABCDEFGHJKLMNPQRSTUV33"


def _row(
    applicant: str, account: str, kind: str, ref: str, status: str, **kw: Any
) -> dict[str, Any]:
    return {
        "applicant_id": applicant,
        "account_id": account,
        "email": f"{applicant}@pelamar.test",
        "kind": kind,
        "ref": ref,
        "status": status,
        "at": "2024-09-05T01:00:00.000Z",
        **kw,
    }


CLIENT = [
    _row("1", "A", "account", "A", "created", http_status=201),
    _row(
        "1",
        "A",
        "order",
        "O1",
        "pending_payment",
        quantity=2,
        amount=25000,
        http_status=201,
        quantity_told=2,
        idempotency_keys="ko1",
    ),
    _row(
        "1",
        "A",
        "payment",
        "O1",
        "credited",
        quantity=2,
        amount=25000,
        http_status=202,
        payment_id="P1",
    ),
    _row(
        "1",
        "A",
        "stamp",
        "S1",
        "downloaded",
        quantity=1,
        http_status=202,
        serial_number=SN1,
        document_serial=SN1,
        idempotency_keys="ks1",
    ),
    _row(
        "1",
        "A",
        "stamp",
        "S2",
        "downloaded",
        quantity=1,
        http_status=202,
        serial_number=SN2,
        document_serial=SN2,
        idempotency_keys="ks2",
    ),
    _row("2", "B", "account", "B", "created", http_status=201),
    _row(
        "2",
        "B",
        "order",
        "O2",
        "pending_payment",
        quantity=1,
        amount=12500,
        http_status=201,
        quantity_told=1,
        idempotency_keys="ko2",
    ),
    _row(
        "2",
        "B",
        "payment",
        "O2",
        "credited",
        quantity=1,
        amount=12500,
        http_status=202,
        payment_id="P2",
    ),
    _row("2", "B", "stamp", "S3", "failed", quantity=1, http_status=202, idempotency_keys="ks3"),
]
RECORDS: dict[str, Any] = {
    "orders": [
        {
            "order_id": "O1",
            "account_id": "A",
            "idempotency_key": "ko1",
            "quantity": 2,
            "amount": 25000,
            "status": "paid",
            "payment_id": "P1",
            "created_at": "t",
            "credited_at": "t",
        },
        {
            "order_id": "O2",
            "account_id": "B",
            "idempotency_key": "ko2",
            "quantity": 1,
            "amount": 12500,
            "status": "paid",
            "payment_id": "P2",
            "created_at": "t",
            "credited_at": "t",
        },
    ],
    "payments": [
        {
            "payment_id": "P1",
            "order_id": "O1",
            "account_id": "A",
            "status": "confirmed",
            "amount": 25000,
            "quantity": 2,
            "deliveries": 1,
        },
        {
            "payment_id": "P2",
            "order_id": "O2",
            "account_id": "B",
            "status": "confirmed",
            "amount": 12500,
            "quantity": 1,
            "deliveries": 1,
        },
    ],
    "credits": [
        {"order_id": "O1", "account_id": "A", "quantity": 2, "payment_id": "P1"},
        {"order_id": "O2", "account_id": "B", "quantity": 1, "payment_id": "P2"},
    ],
    "stamps": [
        {
            "stamp_id": "S1",
            "account_id": "A",
            "idempotency_key": "ks1",
            "status": "done",
            "serial_number": SN1,
            "document_sha256": "d1",
        },
        {
            "stamp_id": "S2",
            "account_id": "A",
            "idempotency_key": "ks2",
            "status": "done",
            "serial_number": SN2,
            "document_sha256": "d2",
        },
        {
            "stamp_id": "S3",
            "account_id": "B",
            "idempotency_key": "ks3",
            "status": "failed",
            "serial_number": None,
            "document_sha256": "d3",
        },
    ],
    "accounts": [
        {"account_id": "A", "credited": 2, "used": 2, "reserved": 0},
        {"account_id": "B", "credited": 1, "used": 0, "reserved": 0},
    ],
}


def _find(items: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    return next(x for x in items if x[key] == value)


def under_credit(c: list, s: dict) -> None:  # credited 1 of the 2 paid for; server books agree
    _find(s["orders"], "order_id", "O1")["quantity"] = 1
    _find(s["credits"], "order_id", "O1")["quantity"] = 1
    _find(s["accounts"], "account_id", "A").update(credited=1, used=1)


def credit_twice(c: list, s: dict) -> None:  # credited 4 for 2; server books agree
    _find(s["orders"], "order_id", "O1")["quantity"] = 4
    _find(s["credits"], "order_id", "O1")["quantity"] = 4
    _find(s["accounts"], "account_id", "A")["credited"] = 4


def wrong_amount(c: list, s: dict) -> None:  # charged more than the 201 quoted
    _find(s["orders"], "order_id", "O1")["amount"] = 37500
    _find(s["payments"], "payment_id", "P1")["amount"] = 37500


def told_other_quantity(c: list, s: dict) -> None:  # the 201 answered another quantity than asked
    _find(c, "ref", "O1")["quantity_told"] = 3


def inconsistent_unit_price(
    c: list, s: dict
) -> None:  # told and stored alike, but unlike every other order
    _find(c, "ref", "O2")["amount"] = 20000
    for r in c:
        if r["ref"] == "O2" and r["kind"] == "payment":
            r["amount"] = 20000
    _find(s["orders"], "order_id", "O2")["amount"] = 20000
    _find(s["payments"], "payment_id", "P2")["amount"] = 20000


def reissued_serial(c: list, s: dict) -> None:  # S2 carries the serial already issued to S1
    _find(s["stamps"], "stamp_id", "S2")["serial_number"] = SN1


def downloaded_serial_differs(
    c: list, s: dict
) -> None:  # the server's serial changed after the download
    _find(s["stamps"], "stamp_id", "S1")["serial_number"] = "ZZZZZZZZZZZZZZZZZZZZZZ"


def client_saw_one_serial_twice(c: list, s: dict) -> None:
    _find(c, "ref", "S2")["document_serial"] = SN1


def payment_stuck_paying(c: list, s: dict) -> None:  # B's 202 payment never confirmed
    _find(c, "ref", "S3")  # (B's stamp failed, so nothing else depends on the credit)
    for r in c:
        if r["ref"] == "O2" and r["kind"] == "payment":
            r["status"] = "paying"
    _find(s["orders"], "order_id", "O2").update(status="paying", credited_at=None)
    _find(s["payments"], "payment_id", "P2")["status"] = "pending"
    s["credits"] = [x for x in s["credits"] if x["order_id"] != "O2"]
    _find(s["accounts"], "account_id", "B")["credited"] = 0


def acknowledged_payment_vanished(
    c: list, s: dict
) -> None:  # issue 11 defect 5: dropped on restart
    for r in c:
        if r["ref"] == "O2" and r["kind"] == "payment":
            r["status"] = "paying"  # the client never saw the quota: only its 202 says it paid
    _find(s["orders"], "order_id", "O2").update(
        status="pending_payment", payment_id=None, credited_at=None
    )
    s["payments"] = [x for x in s["payments"] if x["payment_id"] != "P2"]
    s["credits"] = [x for x in s["credits"] if x["order_id"] != "O2"]
    _find(s["accounts"], "account_id", "B")["credited"] = 0


def stamp_without_client_id(c: list, s: dict) -> None:  # a job (and a charge) nobody asked for
    s["stamps"].append(
        {
            "stamp_id": "S9",
            "account_id": "B",
            "idempotency_key": "never-sent",
            "status": "done",
            "serial_number": "QQQQQQQQQQQQQQQQQQQQQQ",
            "document_sha256": "d9",
        }
    )
    _find(s["accounts"], "account_id", "B")["used"] = 1


def failed_stamp_keeps_quota(
    c: list, s: dict
) -> None:  # S3 failed but its reservation was never returned
    _find(s["accounts"], "account_id", "B")["reserved"] = 1


def acknowledged_stamp_lost(c: list, s: dict) -> None:
    s["stamps"] = [x for x in s["stamps"] if x["stamp_id"] != "S2"]
    _find(s["accounts"], "account_id", "A")["used"] = 1


def acknowledged_order_lost(c: list, s: dict) -> None:
    s["orders"] = [x for x in s["orders"] if x["order_id"] != "O1"]


def paid_behind_the_clients_back(c: list, s: dict) -> None:
    s["orders"].append(
        {
            "order_id": "O7",
            "account_id": "A",
            "idempotency_key": "x",
            "quantity": 1,
            "amount": 12500,
            "status": "paid",
            "payment_id": "P7",
            "credited_at": "t",
        }
    )
    s["payments"].append(
        {
            "payment_id": "P7",
            "order_id": "O7",
            "account_id": "A",
            "status": "confirmed",
            "amount": 12500,
            "quantity": 1,
        }
    )
    s["credits"].append({"order_id": "O7", "account_id": "A", "quantity": 1, "payment_id": "P7"})
    _find(s["accounts"], "account_id", "A")["credited"] = 3


def stamp_stuck_queued(c: list, s: dict) -> None:
    _find(s["stamps"], "stamp_id", "S3")["status"] = "queued"
    _find(s["accounts"], "account_id", "B")["reserved"] = 1


DOCTORS: list[tuple[Callable[[list, dict], None], tuple[str, ...]]] = [
    (under_credit, ("lost_quota", "wrong_quantities")),
    (credit_twice, ("duplicated_quota", "wrong_quantities")),
    (wrong_amount, ("wrong_amounts",)),
    (told_other_quantity, ("wrong_quantities",)),
    (inconsistent_unit_price, ("wrong_amounts",)),
    (reissued_serial, ("reissued_serials", "serial_mismatches")),
    (downloaded_serial_differs, ("serial_mismatches",)),
    (client_saw_one_serial_twice, ("reissued_serials",)),
    (payment_stuck_paying, ("stuck_payments",)),
    (acknowledged_payment_vanished, ("lost_payments", "lost_quota")),
    (stamp_without_client_id, ("unclaimed_stamps", "overcharged_quota")),
    (failed_stamp_keeps_quota, ("overcharged_quota",)),
    (acknowledged_stamp_lost, ("lost_stamps",)),
    (acknowledged_order_lost, ("unknown_orders",)),
    (paid_behind_the_clients_back, ("orphaned_payments", "duplicated_quota")),
    (stamp_stuck_queued, ("unfinished_stamps",)),
]


def write_run(
    tmp: Path, client: list[dict[str, Any]], records: dict[str, Any]
) -> tuple[list, dict]:
    """Write ledger.csv and server_records.json as a run does, and read them back (all text)."""
    atomic.write_csv(
        tmp / "ledger.csv", LEDGER_COLUMNS, ([r.get(k, "") for k in LEDGER_COLUMNS] for r in client)
    )
    atomic.write_json(tmp / "server_records.json", records)
    return read_ledger_rows(tmp / "ledger.csv"), json.loads(
        (tmp / "server_records.json").read_text()
    )


def test_the_consistent_run_reconciles(tmp_path: Path) -> None:
    r = reconcile(*write_run(tmp_path, CLIENT, RECORDS))
    assert r["ok"] and r["problems"] == [], r
    assert (
        r["checked_accounts"],
        r["checked_orders"],
        r["checked_payments"],
        r["checked_stamps"],
    ) == (2, 2, 2, 3)
    assert all(r[k] == 0 for k in FAILURES)


@pytest.mark.parametrize("doctor, expect", DOCTORS, ids=[d.__name__ for d, _ in DOCTORS])
def test_each_doctored_run_turns_reconciliation_red(tmp_path: Path, doctor, expect) -> None:
    client, records = copy.deepcopy(CLIENT), copy.deepcopy(RECORDS)
    doctor(client, records)
    r = reconcile(*write_run(tmp_path, client, records))
    assert not r["ok"], r
    assert set(expect) <= set(r["problems"]), (r["problems"], expect)
    assert all(r[k] > 0 for k in expect)
    assert any(d["count"] in expect for d in r["details"])  # the reason is named, with its ids
    assert exit_code_for(reconciliation=r, audit={"balanced": True}, thresholds=[]) == 3


def test_stuck_work_is_reported_not_failed_when_the_run_ended_mid_surge(tmp_path: Path) -> None:
    client, records = copy.deepcopy(CLIENT), copy.deepcopy(RECORDS)
    payment_stuck_paying(client, records)
    stamp_stuck_queued(client, records)
    r = reconcile(*write_run(tmp_path, client, records), settled=False)
    assert r["ok"] and r["unfinished_stamps"] == 1 and r["stuck_payments"] == 0, r


def test_a_job_whose_answer_was_lost_is_listed_but_not_a_loss(tmp_path: Path) -> None:
    # The client sent key ks9 but never got the job's id (it gave up, or the run's end cut it):
    # listed as unanswered, and its charge is the client's own request, not an overcharge.
    client, records = copy.deepcopy(CLIENT), copy.deepcopy(RECORDS)
    client.append(_row("2", "B", "stamp", "", "sent", quantity=1, idempotency_keys="ks9"))
    records["stamps"].append(
        {
            "stamp_id": "S9",
            "account_id": "B",
            "idempotency_key": "ks9",
            "status": "done",
            "serial_number": "QQQQQQQQQQQQQQQQQQQQQQ",
            "document_sha256": "d9",
        }
    )
    _find(records["accounts"], "account_id", "B")["used"] = 1
    r = reconcile(*write_run(tmp_path, client, records))
    assert r["ok"] and r["unanswered_stamps"] == 1 and r["unclaimed_stamps"] == 0, r
    assert any(
        d["problem"] == "stamp_answer_never_arrived" and d["stamp_id"] == "S9" for d in r["details"]
    )


def test_balances_use_client_evidence_not_the_servers_own_numbers(tmp_path: Path) -> None:
    # The old check compared the account with the server's credited orders: a server that
    # doubles an order's quantity in every table agreed with itself and passed.
    client, records = copy.deepcopy(CLIENT), copy.deepcopy(RECORDS)
    credit_twice(client, records)
    self_consistent = sum(c["quantity"] for c in records["credits"] if c["account_id"] == "A")
    assert self_consistent == _find(records["accounts"], "account_id", "A")["credited"]
    r = reconcile(*write_run(tmp_path, client, records))
    assert r["duplicated_quota"] == 2 and not r["ok"]


@pytest.mark.parametrize("delay_s, charged_behind_its_back", [(5.0, True), (-0.5, False)])
def test_a_stamp_made_after_its_client_gave_up_is_a_charge_behind_its_back(
    tmp_path: Path, delay_s: float, charged_behind_its_back: bool
) -> None:
    # Issue 11's lost wakeup: a stamp request waited for room, the client gave up, and the job ran
    # (and was charged) long after. Made before the give-up, it is an answer lost in flight.
    client, records = copy.deepcopy(CLIENT), copy.deepcopy(RECORDS)
    client.append(
        _row(
            "2",
            "B",
            "stamp",
            "",
            "gave_up",
            quantity=1,
            idempotency_keys="ks9",
            at="2024-09-05T01:00:10.000Z",
        )
    )
    created = f"2024-09-05T01:00:{10 + delay_s:06.3f}Z"
    records["stamps"].append(
        {
            "stamp_id": "S9",
            "account_id": "B",
            "idempotency_key": "ks9",
            "status": "done",
            "serial_number": "QQQQQQQQQQQQQQQQQQQQQQ",
            "document_sha256": "d9",
            "created_at": created,
        }
    )
    _find(records["accounts"], "account_id", "B")["used"] = 1
    r = reconcile(*write_run(tmp_path, client, records))
    assert r["ok"] is not charged_behind_its_back, r
    assert r["charged_after_giving_up"] == int(charged_behind_its_back)
    assert r["unanswered_stamps"] == int(not charged_behind_its_back)


def test_a_payment_taken_after_its_client_gave_up_is_a_charge_behind_its_back(
    tmp_path: Path,
) -> None:
    client, records = copy.deepcopy(CLIENT), copy.deepcopy(RECORDS)
    for row in client:
        if row["ref"] == "O2" and row["kind"] == "payment":
            row.update(
                status="gave_up", http_status="", payment_id="", at="2024-09-05T01:00:10.000Z"
            )
    _find(records["payments"], "payment_id", "P2")["created_at"] = "2024-09-05T01:00:40.000Z"
    r = reconcile(*write_run(tmp_path, client, records))
    assert not r["ok"] and r["problems"] == ["charged_after_giving_up"], r


def test_memory_and_file_evidence_agree_on_an_unanswered_payment(tmp_path: Path) -> None:
    """A pay the client gave up on (a 503, no answer) is not an acknowledged payment, whether
    reconciliation reads the recorder's rows in memory (as a rehearsal does) or ledger.csv.
    Found in a demo: in memory such a row had no http_status key, which `acknowledged` took
    for an old file, so an unpaid order was reported as a vanished payment (exit 3)."""
    from scenarios.recorder import Recorder

    rec = Recorder(origin_unix=0.0, calendar_of=None)
    rec.ledger_row(
        "0-1", "account", "A", account_id="A", status="created", unix=1.0, http_status=201
    )
    rec.ledger_row(
        "0-1",
        "order",
        "O1",
        account_id="A",
        quantity=2,
        amount=25000,
        status="pending_payment",
        unix=2.0,
        http_status=201,
        quantity_told=2,
        idempotency_keys="k1",
    )
    rec.ledger_row(
        "0-1", "payment", "O1", account_id="A", quantity=2, amount=25000, status="sent", unix=3.0
    )
    rec.ledger_row(
        "0-1", "payment", "O1", account_id="A", quantity=2, amount=25000, status="gave_up", unix=4.0
    )
    server = {
        "orders": [
            {
                "order_id": "O1",
                "account_id": "A",
                "idempotency_key": "k1",
                "quantity": 2,
                "amount": 25000,
                "status": "pending_payment",
                "payment_id": None,
            }
        ],
        "payments": [],
        "credits": [],
        "stamps": [],
        "accounts": [{"account_id": "A", "credited": 0, "used": 0, "reserved": 0}],
    }
    in_memory = reconcile(rec.ledger_rows(), server, settled=False)
    rec.write_files(tmp_path)
    on_disk = reconcile(read_ledger_rows(tmp_path / "ledger.csv"), server, settled=False)
    assert in_memory["problems"] == on_disk["problems"] == []
    assert in_memory["lost_payments"] == on_disk["lost_payments"] == 0
    # and the same pay acknowledged (202) then vanished is caught both ways
    rec.ledger_row(
        "0-1",
        "payment",
        "O1",
        account_id="A",
        quantity=2,
        amount=25000,
        status="paying",
        unix=5.0,
        http_status=202,
    )
    rec.write_files(tmp_path)
    assert reconcile(rec.ledger_rows(), server, settled=False)["lost_payments"] == 1
    assert (
        reconcile(read_ledger_rows(tmp_path / "ledger.csv"), server, settled=False)["lost_payments"]
        == 1
    )
