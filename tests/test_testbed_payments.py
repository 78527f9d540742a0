"""The simulated payment gateway: failures, duplicate
and reordered confirmations, credit exactly once."""

from __future__ import annotations

import secrets

from testbed_fixtures import FAST, Client, admin, buy, register_and_login, wait_for

from testbed.process import TestbedServer


def _order(c: Client, token: str, qty: int) -> str:
    r = c.post(
        "/v1/orders",
        json_body={"quantity": qty},
        token=token,
        headers={"Idempotency-Key": secrets.token_hex(6)},
    )
    return r.json["order_id"]


def test_duplicate_and_reordered_confirmations_by_hand() -> None:
    """Confirmations delivered by hand while the gateway's own worker is paused."""
    with TestbedServer(extra_args=FAST) as tb:
        c = Client(tb.url)
        token, account, _ = register_and_login(c)
        assert (
            admin(c, tb, "POST", "/admin/faults", {"payments": "pause"}).json["payments"]
            == "paused"
        )
        oid = _order(c, token, 2)
        p1 = c.post(f"/v1/orders/{oid}/pay", token=token).json["payment_id"]

        def deliver(pid: str, outcome: str) -> str:
            r = admin(
                c,
                tb,
                "POST",
                "/admin/gateway/confirmations",
                {"payment_id": pid, "outcome": outcome},
            )
            assert r.status == 200, r.json
            return r.json["result"]

        assert deliver(p1, "failed") == "applied"
        assert c.get(f"/v1/orders/{oid}", token=token).json["status"] == "failed"
        assert deliver(p1, "confirmed") == "duplicate"  # a late contradicting copy is ignored
        assert c.get("/v1/quota", token=token).json["available"] == 0

        p2 = c.post(f"/v1/orders/{oid}/pay", token=token).json[
            "payment_id"
        ]  # pay again after failure
        assert p2 != p1
        assert deliver(p2, "confirmed") == "applied"
        assert deliver(p2, "confirmed") == "duplicate"
        assert deliver(p1, "failed") == "duplicate"  # out of order: an old failure after success
        assert deliver(p2, "failed") == "duplicate"
        assert c.get(f"/v1/orders/{oid}", token=token).json["status"] == "paid"
        assert c.get("/v1/quota", token=token).json["available"] == 2
        unknown = admin(
            c,
            tb,
            "POST",
            "/admin/gateway/confirmations",
            {"payment_id": "pay_x", "outcome": "confirmed"},
        )
        assert unknown.status == 404 and unknown.json["field"] == "payment_id"

        # a payment still pending when the gateway resumes is processed normally
        oid3 = _order(c, token, 1)
        c.post(f"/v1/orders/{oid3}/pay", token=token)
        admin(c, tb, "POST", "/admin/faults", {"payments": "resume"})
        wait_for(lambda: c.get(f"/v1/orders/{oid3}", token=token).json["status"] == "paid")
        audit = admin(c, tb, "GET", "/admin/audit").json
        assert audit["balanced"], audit["checks"]
        assert audit["totals"]["quota_credited"] == 3 and audit["totals"]["orders_paid"] == 2


def test_random_duplicates_reorder_and_failures_credit_once() -> None:
    args = [
        *FAST,
        "--set",
        "payments.service.mean=0.01",
        "--set",
        "payments.reorder_max_delay_s=0.3",
    ]
    with TestbedServer(extra_args=args) as tb:
        c = Client(tb.url)
        state = admin(
            c,
            tb,
            "POST",
            "/admin/faults",
            {"payment_duplicate_ratio": 1.0, "payment_reorder": True, "payment_failure_ratio": 0.3},
        ).json
        assert state["payment_duplicate_ratio"] == 1.0 and state["payment_reorder"] is True
        tokens = [register_and_login(c)[0] for _ in range(3)]
        orders = [(t, buy(c, t, 1 + i % 3)) for i, t in enumerate(tokens * 5)]

        def settled() -> bool:
            left = False
            for t, oid in orders:
                status = c.get(f"/v1/orders/{oid}", token=t).json["status"]
                if status == "failed":
                    c.post(f"/v1/orders/{oid}/pay", token=t)  # the applicant pays again
                    left = True
                left = left or status != "paid"
            return not left

        admin(c, tb, "POST", "/admin/faults", {"payment_failure_ratio": 0.3})
        wait_for(settled, timeout=30, every=0.2)
        wait_for(
            lambda: admin(c, tb, "GET", "/admin/audit").json["totals"]["payments_pending"] == 0
        )
        audit = admin(c, tb, "GET", "/admin/audit").json
        assert audit["balanced"], audit["checks"]
        total = sum(1 + i % 3 for i in range(len(orders)))
        assert audit["totals"]["quota_credited"] == total and audit["totals"]["orders_paid"] == len(
            orders
        )
        wait_for(
            lambda: (
                admin(c, tb, "GET", "/admin/metrics").json["confirmations"]["duplicate"]
                >= len(orders)
            )
        )
        for t in tokens:
            q = c.get("/v1/quota", token=t).json
            assert q["pending"] == 0 and q["available"] > 0


def test_failed_payment_leaves_no_quota_and_can_be_paid_again() -> None:
    with TestbedServer(
        extra_args=[
            *FAST,
            "--set",
            "payments.failure_ratio=1.0",
            "--set",
            "payments.service.mean=0.01",
        ]
    ) as tb:
        c = Client(tb.url)
        token, *_ = register_and_login(c)
        oid = _order(c, token, 4)
        c.post(f"/v1/orders/{oid}/pay", token=token)
        wait_for(lambda: c.get(f"/v1/orders/{oid}", token=token).json["status"] == "failed")
        assert c.get("/v1/quota", token=token).json == {
            "available": 0,
            "used": 0,
            "pending": 0,
            "reserved": 0,
        }
        admin(c, tb, "POST", "/admin/faults", {"payment_failure_ratio": 0.0})
        assert c.post(f"/v1/orders/{oid}/pay", token=token).status == 202
        wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == 4)
        m = admin(c, tb, "GET", "/admin/metrics").json
        assert (
            m["resources"]["payments"]["failed"] == 1
            and m["resources"]["payments"]["completed"] == 1
        )
        assert admin(c, tb, "GET", "/admin/audit").json["balanced"]
