"""Admission gates (closed, token-bucket rate) and overload modes (shed vs unbounded)."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Iterator

import pytest
from testbed_fixtures import (
    FAST,
    Client,
    Reply,
    admin,
    buy,
    identity,
    register_and_login,
    stamp,
    wait_for,
)

from testbed.process import TestbedServer


@pytest.fixture(scope="module")
def tb() -> Iterator[TestbedServer]:
    with TestbedServer(extra_args=[*FAST, "--issuer-service", "constant:0.01"]) as server:
        yield server


def test_closed_gates_answer_503_with_reason(tb: TestbedServer) -> None:
    c = Client(tb.url)
    token, *_ = register_and_login(c)
    oid = buy(c, token, 2)
    wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == 2)
    for name in ("registration", "ordering", "stamping"):
        r = admin(c, tb, "PUT", f"/admin/gates/{name}", {"mode": "closed"})
        assert r.status == 200 and r.json["mode"] == "closed"
    attempts = {
        "registration": lambda: c.post("/v1/accounts", json_body=identity()),
        "ordering": lambda: c.post("/v1/orders", json_body={"quantity": 1}, token=token,
                                   headers={"Idempotency-Key": "g"}),
        "stamping": lambda: stamp(c, token, "g"),
    }
    for name, attempt in attempts.items():
        r = attempt()
        assert r.status == 503 and r.json["error"] == "gate_closed" and r.json["gate"] == name
        assert int(r.headers["retry-after"]) > 0 and r.json["detail"]
    r = c.post(f"/v1/orders/{oid}/pay", token=token)
    assert r.status == 503 and r.json["gate"] == "ordering"
    assert c.get("/v1/quota", token=token).status == 200            # reads are never gated
    gates = admin(c, tb, "GET", "/admin/metrics").json["gates"]
    assert all(g["mode"] == "closed" for g in gates.values())
    for name in attempts:
        admin(c, tb, "PUT", f"/admin/gates/{name}", {"mode": "open"})
    assert attempts["stamping"]().status == 202


def test_rate_gate_is_a_token_bucket(tb: TestbedServer) -> None:
    c = Client(tb.url)
    r = admin(
        c, tb, "PUT", "/admin/gates/registration", {"mode": "rate", "rate_per_s": 1, "burst": 3}
    )
    assert r.json == {**r.json, "mode": "rate", "rate_per_s": 1.0, "burst": 3}
    try:
        statuses = [c.post("/v1/accounts", json_body=identity()) for _ in range(5)]
        assert [s.status for s in statuses] == [201, 201, 201, 429, 429]
        assert (
            statuses[3].json["error"] == "rate_limited"
            and statuses[3].json["gate"] == "registration"
        )
        assert int(statuses[3].headers["retry-after"]) >= 1
        time.sleep(1.1)  # one token back at 1/s
        assert c.post("/v1/accounts", json_body=identity()).status == 201
        assert c.post("/v1/accounts", json_body=identity()).status == 429
        m = admin(c, tb, "GET", "/admin/metrics").json["gates"]["registration"]
        assert m["mode"] == "rate" and m["rate_per_s"] == 1.0 and m["burst"] == 3
    finally:
        admin(c, tb, "PUT", "/admin/gates/registration", {"mode": "open"})


def test_rate_gate_takes_one_token_per_purchase(tb: TestbedServer) -> None:
    """Ordering and paying one order cost one ordering token, so planned rates are purchases/s."""
    c = Client(tb.url)
    token, *_ = register_and_login(c)
    admin(c, tb, "PUT", "/admin/gates/ordering", {"mode": "rate", "rate_per_s": 0.01, "burst": 2})
    try:
        orders = [
            c.post(
                "/v1/orders",
                json_body={"quantity": 1},
                token=token,
                headers={"Idempotency-Key": f"p{i}"},
            )
            for i in range(2)
        ]
        assert [o.status for o in orders] == [201, 201]
        for o in orders:  # paying admitted orders needs no token of its own
            assert c.post(f"/v1/orders/{o.json['order_id']}/pay", token=token).status == 202
        third = c.post(
            "/v1/orders", json_body={"quantity": 1}, token=token, headers={"Idempotency-Key": "p2"}
        )
        assert third.status == 429 and third.json["gate"] == "ordering"
    finally:
        admin(c, tb, "PUT", "/admin/gates/ordering", {"mode": "open"})


def _stamp_setup(tb: TestbedServer, n: int) -> tuple[Client, str]:
    c = Client(tb.url)
    token, *_ = register_and_login(c)
    buy(c, token, n)
    wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == n)
    return c, token


def test_shed_refuses_with_retry_after_when_the_queue_is_full() -> None:
    with TestbedServer(
        extra_args=[
            *FAST,
            "--set",
            "issuer.queue_bound=3",
            "--overload",
            "shed",
            "--set",
            "payments.queue_bound=100",
        ]
    ) as tb:
        c, token = _stamp_setup(tb, 6)
        admin(c, tb, "POST", "/admin/faults", {"issuer": "pause"})
        assert [stamp(c, token, f"k{i}").status for i in range(3)] == [202, 202, 202]
        r = stamp(c, token, "k3")
        assert (
            r.status == 503
            and r.json["error"] == "overloaded"
            and int(r.headers["retry-after"]) >= 1
        )
        q = c.get("/v1/quota", token=token).json
        assert q["reserved"] == 3 and q["available"] == 3  # the shed job reserved nothing
        res = admin(c, tb, "GET", "/admin/metrics").json["resources"]["issuer"]
        assert res["queue_depth"] == 3 and res["shed"] == 1 and res["paused"] is True
        admin(c, tb, "POST", "/admin/faults", {"issuer": "resume"})
        wait_for(lambda: admin(c, tb, "GET", "/admin/audit").json["totals"]["stamps_done"] == 3)
        assert stamp(c, token, "k3").status == 202  # the retry is accepted
        assert admin(c, tb, "GET", "/admin/audit").json["balanced"]


def test_unbounded_makes_the_request_wait_for_room() -> None:
    with TestbedServer(extra_args=[*FAST, "--set", "issuer.queue_bound=2"]) as tb:
        c, token = _stamp_setup(tb, 4)
        admin(c, tb, "POST", "/admin/faults", {"issuer": "pause"})
        assert [stamp(c, token, f"k{i}").status for i in range(2)] == [202, 202]
        box: list[Reply] = []
        waiter = threading.Thread(target=lambda: box.append(stamp(Client(tb.url), token, "k-wait")))
        waiter.start()
        wait_for(
            lambda: (
                admin(c, tb, "GET", "/admin/metrics").json["resources"]["issuer"][
                    "waiting_for_room"
                ]
                == 1
            )
        )
        time.sleep(0.3)
        assert not box  # still hanging, as in 2024
        admin(c, tb, "POST", "/admin/faults", {"issuer": "resume"})
        waiter.join(10)
        assert box and box[0].status == 202
        wait_for(lambda: admin(c, tb, "GET", "/admin/audit").json["totals"]["stamps_done"] == 3)
        res = admin(c, tb, "GET", "/admin/metrics").json["resources"]["issuer"]
        assert res["shed"] == 0 and res["completed"] == 3


def test_issuer_slow_factor_and_failures_return_quota(tb: TestbedServer) -> None:
    c, token = _stamp_setup(tb, 3)
    r = admin(
        c, tb, "POST", "/admin/faults", {"issuer_slow_factor": 2.0, "issuer_failure_ratio": 1.0}
    )
    assert r.json["issuer_slow_factor"] == 2.0
    sid = stamp(c, token, secrets.token_hex(4)).json["stamp_id"]
    wait_for(lambda: c.get(f"/v1/stamps/{sid}", token=token).json["status"] == "failed")
    assert c.get(f"/v1/stamps/{sid}/document", token=token).status == 409
    assert (
        c.get("/v1/quota", token=token).json["available"] == 3
    )  # a failed stamp returns its quota
    admin(c, tb, "POST", "/admin/faults", {"issuer_slow_factor": 1.0, "issuer_failure_ratio": 0.0})
    assert admin(c, tb, "GET", "/admin/audit").json["balanced"]
