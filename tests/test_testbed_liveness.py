"""Liveness under a full queue: no request waiting for room hangs while there is room.

Issue 11, defect 1 (lost wakeup): with the issuer (or gateway) queue full, each
dequeued job woke one waiting request. A waiter that then added nothing (a replay of
a key also waiting, a 402, an order already paying) used up the wakeup, and the
others hung on an empty queue. And a request whose client had gone away later ran
and charged quota. These tests reproduce each with a queue bound of 1, a paused
resource to line the waiters up in a known order, then a resume.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from testbed_fixtures import (
    FAST,
    PDF,
    Client,
    Reply,
    admin,
    buy,
    multipart,
    register_and_login,
    stamp,
    wait_for,
)

from testbed.process import TestbedServer

# every waiter must be answered this soon after the resume (service times are 0.05 s)
ANSWER_S = 10.0


def _waiting(c: Client, tb: TestbedServer, resource: str) -> int:
    return admin(c, tb, "GET", "/admin/metrics").json["resources"][resource]["waiting_for_room"]


class Waiter:
    """One request in its own thread and connection; ``reply`` once answered."""

    def __init__(self, fn: Callable[[Client], Reply], url: str) -> None:
        self.reply: Reply | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(fn, url), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[Client], Reply], url: str) -> None:
        try:
            self.reply = fn(Client(url, timeout=ANSWER_S + 20))
        except BaseException as e:  # noqa: BLE001 - reported by the test
            self.error = e


def _line_up(
    c: Client, tb: TestbedServer, resource: str, calls: list[Callable[[Client], Reply]]
) -> list[Waiter]:
    """Start each call in turn, each only once the
    previous one waits for room (a known FIFO order)."""
    waiters = []
    for i, fn in enumerate(calls, start=1):
        waiters.append(Waiter(fn, tb.url))
        wait_for(lambda n=i: _waiting(c, tb, resource) == n)
    return waiters


def _all_answered(waiters: list[Waiter]) -> list[Reply]:
    deadline = time.monotonic() + ANSWER_S
    for w in waiters:
        w.thread.join(max(0.0, deadline - time.monotonic()))
    hung = [i for i, w in enumerate(waiters) if w.reply is None]
    assert not hung, f"waiters {hung} not answered within {ANSWER_S} s of the resume (lost wakeup)"
    return [w.reply for w in waiters if w.reply is not None]


def _funded(c: Client, n: int) -> str:
    token, *_ = register_and_login(c)
    buy(c, token, n)
    wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == n)
    return token


STAMP_ARGS = [
    *FAST,
    "--set",
    "issuer.queue_bound=1",
    "--issuer-service",
    "constant:0.05",
    "--set",
    "payments.service.mean=0.01",
]


@pytest.mark.parametrize("why", ["replay", "no_quota"])
def test_stamp_waiters_that_add_nothing_pass_the_wakeup_on(why: str) -> None:
    with TestbedServer(extra_args=STAMP_ARGS) as tb:
        c = Client(tb.url)
        alice = _funded(c, 4 if why == "replay" else 2)
        bob = _funded(c, 1)
        admin(c, tb, "POST", "/admin/faults", {"issuer": "pause"})
        assert stamp(c, alice, "k0").status == 202  # the queue is full
        if why == "replay":  # two requests with one key: the second adds nothing
            first = [lambda cl: stamp(cl, alice, "dup"), lambda cl: stamp(cl, alice, "dup")]
        else:  # two requests for the last quota: the second is a 402
            first = [lambda cl: stamp(cl, alice, "k1"), lambda cl: stamp(cl, alice, "k2")]
        waiters = _line_up(c, tb, "issuer", [*first, lambda cl: stamp(cl, bob, "bob")])
        admin(c, tb, "POST", "/admin/faults", {"issuer": "resume"})
        a1, a2, b = _all_answered(waiters)
        assert a1.status == 202 and b.status == 202, (a1.json, b.json)
        if why == "replay":
            assert a2.status == 202 and a2.json["stamp_id"] == a1.json["stamp_id"]
        else:
            assert a2.status == 402 and a2.json["error"] == "no_quota"
        wait_for(lambda: admin(c, tb, "GET", "/admin/audit").json["totals"]["stamps_pending"] == 0)
        audit = admin(c, tb, "GET", "/admin/audit").json
        assert audit["balanced"], audit["checks"]
        assert audit["totals"]["stamps_done"] == 3


def test_pay_waiters_that_add_nothing_pass_the_wakeup_on() -> None:
    args = [*FAST, "--set", "payments.queue_bound=1", "--set", "payments.service.mean=0.05"]
    with TestbedServer(extra_args=args) as tb:
        c = Client(tb.url)
        token, *_ = register_and_login(c)
        orders = []
        for i in range(3):
            r = c.post(
                "/v1/orders",
                json_body={"quantity": 1},
                token=token,
                headers={"Idempotency-Key": f"o{i}"},
            )
            assert r.status == 201
            orders.append(r.json["order_id"])
        admin(c, tb, "POST", "/admin/faults", {"payments": "pause"})
        assert c.post(f"/v1/orders/{orders[0]}/pay", token=token).status == 202  # the queue is full

        def pay(oid: str) -> Callable[[Client], Reply]:
            return lambda cl: cl.post(f"/v1/orders/{oid}/pay", token=token)

        # the same order paid twice (the second finds it paying: adds nothing), then another order
        waiters = _line_up(c, tb, "payments", [pay(orders[1]), pay(orders[1]), pay(orders[2])])
        admin(c, tb, "POST", "/admin/faults", {"payments": "resume"})
        p1, p2, p3 = _all_answered(waiters)
        assert [p1.status, p2.status, p3.status] == [202, 202, 202]
        assert p1.json["payment_id"] == p2.json["payment_id"]
        wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == 3)
        audit = admin(c, tb, "GET", "/admin/audit").json
        assert audit["balanced"] and audit["totals"]["orders_paid"] == 3, audit


def _raw_stamp_request(tb: TestbedServer, token: str, key: str) -> bytes:
    body, ctype = multipart([("document", "surat.pdf", PDF)])
    head = (
        f"POST /v1/stamps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Idempotency-Key: {key}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def test_a_waiter_whose_client_left_charges_nothing() -> None:
    with TestbedServer(extra_args=STAMP_ARGS) as tb:
        c = Client(tb.url)
        alice = _funded(c, 3)
        admin(c, tb, "POST", "/admin/faults", {"issuer": "pause"})
        assert stamp(c, alice, "k0").status == 202
        host, port = tb.url.removeprefix("http://").rsplit(":", 1)
        s = socket.create_connection((host, int(port)), timeout=5)
        s.sendall(_raw_stamp_request(tb, alice, "gone-" + secrets.token_hex(4)))
        wait_for(lambda: _waiting(c, tb, "issuer") == 1)
        s.close()  # the client gives up
        wait_for(lambda: _waiting(c, tb, "issuer") == 0, timeout=5)  # its request stops waiting
        admin(c, tb, "POST", "/admin/faults", {"issuer": "resume"})
        wait_for(lambda: admin(c, tb, "GET", "/admin/audit").json["totals"]["stamps_pending"] == 0)
        time.sleep(0.3)  # room for a late (wrong) admission to show
        q: dict[str, Any] = c.get("/v1/quota", token=alice).json
        assert q == {"available": 2, "used": 1, "pending": 0, "reserved": 0}, q
        assert len(admin(c, tb, "GET", "/admin/ledger").json["stamps"]) == 1
