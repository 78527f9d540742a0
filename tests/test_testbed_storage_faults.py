"""The SQLite write lock held past busy_timeout: no accepted job is dropped, the loop stays live.

Issue 11, defect 2: a stamp answered 202 left the worker queue on a storage error and
stayed ``queued`` (quota reserved) until a restart, counted as failed; and the
synchronous ``BEGIN IMMEDIATE`` blocked the event loop for busy_timeout (5 s).
"""

from __future__ import annotations

import sqlite3
import threading
import time

from testbed_fixtures import FAST, Client, admin, buy, register_and_login, stamp, wait_for

from testbed.process import TestbedServer

HOLD_S = 7.0  # longer than the testbed's busy_timeout (5 s)


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    db = sqlite3.connect(path, isolation_level=None, timeout=30)
    db.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    db.execute("ROLLBACK")
    db.close()


def test_write_lock_held_past_busy_timeout_drops_nothing_and_blocks_no_one() -> None:
    args = [*FAST, "--issuer-service", "constant:0.02", "--set", "payments.service.mean=0.01"]
    with TestbedServer(extra_args=args) as tb:
        c = Client(tb.url)
        token, *_ = register_and_login(c)
        buy(c, token, 40)
        wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == 40)
        admin(c, tb, "POST", "/admin/faults", {"issuer": "pause"})
        accepted = []
        for i in range(20):
            r = stamp(c, token, f"before-{i}")
            assert r.status == 202
            accepted.append(r.json["stamp_id"])

        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(tb.db_path, HOLD_S, held))
        holder.start()
        assert held.wait(10)
        t_hold = time.monotonic()
        admin(c, tb, "POST", "/admin/faults", {"issuer": "resume"})   # workers now hit the lock

        # during the hold: the loop answers reads at once; new stamps are 202 or an honest 503
        health = Client(tb.url, timeout=30)
        slowest = 0.0
        during = []
        while time.monotonic() - t_hold < HOLD_S - 1.0:
            t0 = time.monotonic()
            assert health.get("/healthz").status == 200
            assert health.get("/v1/quota", token=token).status == 200
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(0.1)
        for i in range(3):
            r = stamp(Client(tb.url, timeout=60), token, f"during-{i}")
            assert r.status in (202, 503), r.json
            if r.status == 202:
                during.append(r.json["stamp_id"])
            else:
                assert r.json["error"] == "storage_busy" and int(r.headers["retry-after"]) >= 1
        holder.join()
        assert slowest < 2.0, (
            f"a read took {slowest:.1f} s while the write lock was held (loop blocked)"
        )

        wait_for(
            lambda: admin(c, tb, "GET", "/admin/audit").json["totals"]["stamps_pending"] == 0,
            timeout=30,
        )
        for sid in accepted + during:
            assert c.get(f"/v1/stamps/{sid}", token=token).json["status"] == "done", sid
        audit = admin(c, tb, "GET", "/admin/audit").json
        assert audit["balanced"], audit["checks"]
        assert audit["totals"]["stamps_failed"] == 0
        m = admin(c, tb, "GET", "/admin/metrics").json
        assert m["resources"]["issuer"]["failed"] == 0
        assert m["storage"]["write_retries"] > 0  # the hold was really felt


def test_a_request_write_past_its_deadline_is_503_and_stores_nothing() -> None:
    with TestbedServer(extra_args=[*FAST, "--set", "storage.write_deadline_s=0.5"]) as tb:
        c = Client(tb.url)
        token, *_ = register_and_login(c)
        held = threading.Event()
        holder = threading.Thread(target=_hold_write_lock, args=(tb.db_path, 3.0, held))
        holder.start()
        assert held.wait(10)
        t0 = time.monotonic()
        r = c.post(
            "/v1/orders", json_body={"quantity": 2}, token=token, headers={"Idempotency-Key": "o1"}
        )
        waited = time.monotonic() - t0
        assert (
            r.status == 503
            and r.json["error"] == "storage_busy"
            and r.headers["retry-after"] == "1"
        ), r.json
        assert waited < 2.5, f"the refusal took {waited:.1f} s (deadline 0.5 s)"
        assert c.get("/healthz").status == 200
        holder.join()
        again = c.post(
            "/v1/orders", json_body={"quantity": 2}, token=token, headers={"Idempotency-Key": "o1"}
        )
        assert (
            again.status == 201 and again.headers["idempotent-replayed"] == "false"
        )  # nothing was stored
        assert len(admin(c, tb, "GET", "/admin/ledger").json["orders"]) == 1
