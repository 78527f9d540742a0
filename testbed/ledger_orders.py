"""The ledger's orders and payments: create an order (idempotent), pay it (never twice), the
gateway's confirmations (duplicated, reordered, late) applied once. Part of `Ledger`."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

from testbed.capacity import ClientGone, QueueFull, Resource
from testbed.ledger_base import Gone, new_id, not_found, now_iso
from testbed.validation import ApiError


class OrderBook:
    """Orders and payments of `testbed.ledger.Ledger` (which holds the state they use)."""

    # ---- orders and payments ----------------------------------------------------------
    def _order_row(
        self, account_id: str, order_id: str, db: sqlite3.Connection | None = None
    ) -> dict[str, Any]:
        row = (
            (db or self.db)
            .execute(
                "SELECT order_id, quantity, amount, status, payment_id, created_at, credited_at "
                "FROM orders WHERE order_id=? AND account_id=?",
                (order_id, account_id),
            )
            .fetchone()
        )
        if row is None:
            raise not_found("order")
        keys = (
            "order_id",
            "quantity",
            "amount",
            "status",
            "payment_id",
            "created_at",
            "credited_at",
        )
        return dict(zip(keys, row, strict=True))

    def get_order(self, account_id: str, order_id: str) -> dict[str, Any]:
        """The body of ``GET /v1/orders/{id}`` (404 for another applicant's order)."""
        return self._order_row(account_id, order_id)

    async def create_order(
        self, account_id: str, key: str, quantity: int
    ) -> tuple[dict[str, Any], bool]:
        """Create an order, or return the one made with the same Idempotency-Key.

        Returns (body, replayed). The same key with another quantity is a 409.
        """
        price = self.cfg.pricing.duty + self.cfg.pricing.service_fee

        def insert(db: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            row = db.execute(
                "SELECT order_id, quantity FROM orders WHERE account_id=? AND idem_key=?",
                (account_id, key),
            ).fetchone()
            if row is not None:
                if row[1] != quantity:
                    raise ApiError(
                        409,
                        "idempotency_key_reused",
                        "this Idempotency-Key was used for an order of another quantity",
                        field="Idempotency-Key",
                    )
                return self._order_row(account_id, row[0], db), True
            oid = new_id("ord")
            db.execute(
                "INSERT INTO orders(order_id, account_id, idem_key, quantity, amount, status, "
                "created_at) "
                "VALUES (?,?,?,?,?,'pending_payment',?)",
                (oid, account_id, key, quantity, price * quantity, now_iso()),
            )
            return self._order_row(account_id, oid, db), False

        return await self._write(insert)

    @contextlib.asynccontextmanager
    async def admit(self, res: Resource, gone: Gone = None) -> AsyncIterator[Any]:
        """Room for one job in ``res``: wait for it (unbounded) or refuse with 503 (shed).

        A waiting request whose client has gone (``gone()`` completes) is dropped
        without adding anything; room it does not use passes to the next waiter.
        """
        try:
            async with res.admission(gone) as slot:
                yield slot
        except QueueFull:
            raise ApiError(
                503,
                "overloaded",
                f"the {res.name} queue is full; retry later",
                headers={"Retry-After": str(res.retry_after())},
                extra={"resource": res.name},
            ) from None
        except ClientGone:
            raise ApiError(
                499, "client_gone", "the client closed the connection while waiting"
            ) from None

    async def pay(
        self, account_id: str, order_id: str, gone: Gone = None
    ) -> tuple[int, dict[str, Any]]:
        """Start paying an order; (status, body). Paying twice never charges twice."""
        order = self._order_row(account_id, order_id)
        if order["status"] not in ("pending_payment", "failed"):
            return self._pay_answer(order_id, order["status"], order["payment_id"])
        async with self.admit(self.payments, gone) as slot:
            pid = new_id("pay")

            def start(db: sqlite3.Connection) -> tuple[str, str | None, int]:
                o = self._order_row(account_id, order_id, db)  # may have changed while waiting
                if o["status"] not in ("pending_payment", "failed"):
                    return o["status"], o["payment_id"], 0
                db.execute(
                    "INSERT INTO payments(payment_id, order_id, status, created_at) "
                    "VALUES (?,?,'pending',?)",
                    (pid, order_id, now_iso()),
                )
                db.execute(
                    "UPDATE orders SET status='paying', payment_id=? WHERE order_id=?",
                    (pid, order_id),
                )
                return "paying", pid, o["quantity"]

            def started(r: tuple[str, str | None, int]) -> None:
                if r[2]:
                    self.quotas[account_id].awaiting_payment += r[2]
                    slot.put(pid)

            status, payment_id, _qty = await self._write(start, started)
        return self._pay_answer(order_id, status, payment_id)

    @staticmethod
    def _pay_answer(
        order_id: str, status: str, payment_id: str | None
    ) -> tuple[int, dict[str, Any]]:
        shown = "paid" if status == "paid" else "paying"
        return (200 if shown == "paid" else 202), {
            "order_id": order_id,
            "payment_id": payment_id,
            "status": shown,
        }

    async def _payment_start(self, payment_id: str) -> None:
        return None

    async def _payment_finish(self, payment_id: str) -> bool:
        """The gateway has processed a payment: decide its outcome and deliver it (maybe twice,
        late)."""
        outcome = "failed" if self.rng.random() < self.faults.payment_failure_ratio else "confirmed"
        copies = 2 if self.rng.random() < self.faults.payment_duplicate_ratio else 1
        loop = asyncio.get_running_loop()
        for _ in range(copies):
            if self.faults.payment_reorder:
                delay = self.rng.uniform(0.0, self.cfg.payments.reorder_max_delay_s)
                n = next(self._delivery_seq)
                handle = loop.call_later(delay, self._deliver_later, n, payment_id, outcome)
                self._deliveries[n] = (handle, payment_id)
            else:
                await self.deliver(payment_id, outcome, request=False)
        return outcome == "confirmed"

    def payments_in_flight(self) -> set[str]:
        """Payment ids queued, in service at the gateway, or with a confirmation on its way."""
        return (
            set(self.payments.queue)
            | self.payments.in_service
            | {p for _h, p in self._deliveries.values()}
            | set(self._delivering.values())
        )

    def _deliver_later(self, n: int, payment_id: str, outcome: str) -> None:
        self._deliveries.pop(n, None)
        self._delivering[n] = payment_id
        task = asyncio.get_running_loop().create_task(
            self.deliver(payment_id, outcome, request=False)
        )
        self._tasks.add(task)
        task.add_done_callback(
            lambda _t: (self._tasks.discard(task), self._delivering.pop(n, None))
        )

    async def deliver(self, payment_id: str, outcome: str, *, request: bool = True) -> str:
        """Apply one gateway confirmation; return applied | duplicate | late_failure | extra_charge
        | unknown.

        The first confirmation of a payment decides it; later ones are counted
        and ignored. Quota is credited once per order (also enforced by the
        ``credits`` primary key). The decision is made inside the write.
        """
        r = await self._write(
            lambda db: _decide(db, payment_id, outcome), self._delivered, request=request
        )
        return r[0]

    def _delivered(self, r: tuple[str, str | None, int, bool, bool]) -> None:
        result, aid, qty, was_current, credit = r
        if aid is not None:
            q = self.quotas[aid]
            if was_current:
                q.awaiting_payment -= qty
            if credit:
                q.credited += qty
        if result != "unknown":
            self.confirmations[result] += 1


def _decide(
    db: sqlite3.Connection, payment_id: str, outcome: str
) -> tuple[str, str | None, int, bool, bool]:
    """Apply one confirmation inside the write; (result, account, quantity, was the order's current
    payment, credited)."""
    row = db.execute(
        "SELECT p.status, o.order_id, o.account_id, o.quantity, o.status, o.payment_id "
        "FROM payments p JOIN orders o USING(order_id) WHERE p.payment_id=?",
        (payment_id,),
    ).fetchone()
    if row is None:
        return "unknown", None, 0, False, False
    pstatus, oid, aid, qty, ostatus, current = row
    if pstatus != "pending":
        db.execute("UPDATE payments SET deliveries=deliveries+1 WHERE payment_id=?", (payment_id,))
        return "duplicate", None, 0, False, False
    ts = now_iso()
    db.execute(
        "UPDATE payments SET status=?, resolved_at=?, deliveries=deliveries+1 WHERE payment_id=?",
        ("confirmed" if outcome == "confirmed" else "failed", ts, payment_id),
    )
    credit = False
    if outcome == "confirmed" and ostatus != "paid":
        db.execute(
            "UPDATE orders SET status='paid', payment_id=?, credited_at=? WHERE order_id=?",
            (payment_id, ts, oid),
        )
        db.execute("INSERT INTO credits VALUES (?,?,?,?,?)", (oid, aid, qty, payment_id, ts))
        db.execute("UPDATE quota SET credited=credited+? WHERE account_id=?", (qty, aid))
        credit, result = True, "applied"
    elif outcome == "confirmed":
        result = "extra_charge"
    elif ostatus == "paying" and current == payment_id:
        db.execute("UPDATE orders SET status='failed' WHERE order_id=?", (oid,))
        result = "applied"
    else:
        result = "late_failure"
    return result, aid, qty, ostatus == "paying" and current == payment_id, credit
