"""The whole applicant journey against a real testbed
process, idempotency, and the API description."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed_fixtures import (
    FAST,
    PDF_OTHER,
    Client,
    admin,
    register_and_login,
    stamp,
    wait_for,
)

from testbed.process import TestbedServer

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tb() -> Iterator[TestbedServer]:
    with TestbedServer(extra_args=[*FAST, "--issuer-service", "constant:0.02"]) as server:
        yield server


def test_whole_journey(tb: TestbedServer) -> None:
    c = Client(tb.url)
    assert c.get("/healthz").json == {"status": "ok"}
    token, account_id, email = register_and_login(c)
    assert c.get("/v1/quota", token=token).json == {
        "available": 0,
        "used": 0,
        "pending": 0,
        "reserved": 0,
    }

    r = c.post(
        "/v1/orders", json_body={"quantity": 3}, token=token, headers={"Idempotency-Key": "order-1"}
    )
    assert r.status == 201
    order = r.json
    assert order["status"] == "pending_payment" and order["amount"] == 3 * 12500
    p = c.post(f"/v1/orders/{order['order_id']}/pay", token=token)
    assert p.status == 202 and p.json["status"] == "paying" and p.json["payment_id"]
    assert c.get("/v1/quota", token=token).json["pending"] == 3
    wait_for(lambda: c.get(f"/v1/orders/{order['order_id']}", token=token).json["status"] == "paid")
    assert c.get("/v1/quota", token=token).json == {
        "available": 3,
        "used": 0,
        "pending": 0,
        "reserved": 0,
    }
    again = c.post(f"/v1/orders/{order['order_id']}/pay", token=token)
    assert again.status == 200 and again.json["status"] == "paid"

    s = stamp(c, token, "stamp-1")
    assert s.status == 202 and s.json["status"] == "queued"
    sid = s.json["stamp_id"]
    done = wait_for(
        lambda: (j := c.get(f"/v1/stamps/{sid}", token=token).json)["status"] == "done" and j
    )
    assert len(done["serial_number"]) == 22
    doc = c.get(f"/v1/stamps/{sid}/document", token=token)
    assert doc.status == 200 and doc.headers["content-type"] == "application/pdf"
    assert doc.body.startswith(b"%PDF-") and done["serial_number"].encode() in doc.body
    assert c.get("/v1/quota", token=token).json == {
        "available": 2,
        "used": 1,
        "pending": 0,
        "reserved": 0,
    }

    ledger = admin(c, tb, "GET", "/admin/ledger").json
    assert {
        "account_id": account_id,
        "email": email,
        "available": 2,
        "used": 1,
        "reserved": 0,
    }.items() <= next(a for a in ledger["accounts"] if a["account_id"] == account_id).items()
    row = next(o for o in ledger["orders"] if o["order_id"] == order["order_id"])
    assert (
        row["status"] == "paid"
        and row["credited_at"]
        and row["quantity"] == 3
        and row["amount"] == 37500
    )
    srow = next(x for x in ledger["stamps"] if x["stamp_id"] == sid)
    assert srow == {
        **srow,
        "account_id": account_id,
        "status": "done",
        "serial_number": done["serial_number"],
    }
    a = admin(c, tb, "GET", "/admin/audit").json
    assert a["balanced"], a["checks"]
    assert {
        "orders_paid",
        "quota_credited",
        "quota_used",
        "quota_available",
        "quota_reserved",
        "stamps_accepted",
        "stamps_done",
        "stamps_failed",
        "stamps_pending",
    } <= set(a["totals"])


def test_idempotent_orders_and_stamps(tb: TestbedServer) -> None:
    c = Client(tb.url)
    token, *_ = register_and_login(c)
    first = c.post(
        "/v1/orders", json_body={"quantity": 2}, token=token, headers={"Idempotency-Key": "k"}
    )
    second = c.post(
        "/v1/orders", json_body={"quantity": 2}, token=token, headers={"Idempotency-Key": "k"}
    )
    assert (
        first.status == second.status == 201 and first.json["order_id"] == second.json["order_id"]
    )
    assert second.headers["idempotent-replayed"] == "true"
    conflict = c.post(
        "/v1/orders", json_body={"quantity": 5}, token=token, headers={"Idempotency-Key": "k"}
    )
    assert conflict.status == 409 and conflict.json["field"] == "Idempotency-Key"
    # paying twice starts one payment only
    oid = first.json["order_id"]
    p1 = c.post(f"/v1/orders/{oid}/pay", token=token)
    p2 = c.post(f"/v1/orders/{oid}/pay", token=token)
    assert p1.json["payment_id"] == p2.json["payment_id"]
    wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == 2)

    s1, s2 = stamp(c, token, "s"), stamp(c, token, "s")
    assert s1.status == s2.status == 202 and s1.json["stamp_id"] == s2.json["stamp_id"]
    assert stamp(c, token, "s", PDF_OTHER).status == 409
    q = c.get("/v1/quota", token=token).json
    assert q["available"] + q["reserved"] + q["used"] == 2 and q["used"] + q["reserved"] == 1
    # the other applicant may reuse the same key: keys are per applicant
    other, *_ = register_and_login(c)
    r = c.post(
        "/v1/orders", json_body={"quantity": 1}, token=other, headers={"Idempotency-Key": "k"}
    )
    assert r.status == 201 and r.json["order_id"] != oid
    ledger = admin(c, tb, "GET", "/admin/ledger").json
    assert sum(o["order_id"] == oid for o in ledger["orders"]) == 1


def test_stamp_without_quota_is_402(tb: TestbedServer) -> None:
    c = Client(tb.url)
    token, *_ = register_and_login(c)
    r = stamp(c, token, "no-quota")
    assert r.status == 402 and r.json["error"] == "no_quota"


def test_openapi_served_equals_docs_and_covers_every_route(tb: TestbedServer) -> None:
    from testbed.app import routes

    served = Client(tb.url).get("/openapi.json")
    assert served.status == 200
    assert served.json == json.loads((ROOT / "docs" / "openapi.json").read_text())
    for route in routes:
        for method in route.methods - {"HEAD"}:
            op = served.json["paths"][route.path][method.lower()]
            assert op["summary"] and op["responses"]


def test_admin_views(tb: TestbedServer) -> None:
    c = Client(tb.url)
    m = admin(c, tb, "GET", "/admin/metrics").json
    for res in ("issuer", "payments"):
        assert {
            "queue_depth",
            "busy",
            "workers",
            "completed",
            "failed",
            "shed",
            "paused",
            "slow_factor",
        } <= set(m["resources"][res])
    assert m["resources"]["issuer"]["workers"] == 4 and m["resources"]["payments"]["workers"] == 8
    assert set(m["counts"]["stamps"]) == {"queued", "processing", "done", "failed"}
    assert set(m["counts"]["orders"]) == {"pending_payment", "paying", "paid", "failed"}
    assert m["gates"]["stamping"] == {
        **m["gates"]["stamping"],
        "mode": "open",
        "rate_per_s": 0.0,
        "burst": 0,
    }
    text = c.get("/admin/metrics?format=prometheus", token=tb.admin_token)
    assert text.status == 200 and text.headers["content-type"].startswith("text/plain")
    assert 'surgecast_resource_workers{resource="issuer"} 4' in text.body.decode()
    cfg = admin(c, tb, "GET", "/admin/config").json
    assert cfg["issuer"]["service"] == {
        "distribution": "constant",
        "mean": 0.02,
        "sigma": 0.2,
    }  # sigma: the default's
    assert cfg["payments"]["workers"] == 8
    faults = admin(c, tb, "GET", "/admin/faults").json
    assert faults["issuer"] == "running" and faults["payment_failure_ratio"] == 0.0
