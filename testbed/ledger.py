"""The service's state: accounts, sessions, quota, orders, payments and stamps.

Hot reads come from memory (token -> account, per-account quota counters);
every change is committed to SQLite first (on the writer thread of
:class:`testbed.storage.Storage`, so the event loop never waits for a lock) and
mirrored in memory by a callback run at the commit, so memory never runs ahead of
what survives ``kill -9``. Checks that decide a write (an idempotency key already
used, quota left, an order already paying, a payment already confirmed) run inside
the write's transaction. On start, :meth:`Ledger.load` rebuilds memory and re-queues
unfinished work (stamps queued or processing, payments not yet confirmed)::

    ledger = Ledger(Storage(path), load_config())
    ledger.load(); ledger.start()          # inside a running event loop
    account_id = await ledger.create_account(nik=..., name=..., email=..., phone=..., password_hash=...)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import itertools
import random
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from testbed.capacity import ClientGone, QueueFull, Resource
from testbed.config import TestbedConfig
from testbed.faults import Faults
from testbed.gates import Gate
from testbed.pdf import stamped_pdf
from testbed.storage import Storage, StorageBusy
from testbed.throttle import LoginThrottle
from testbed.validation import ApiError

Gone = Callable[[], Awaitable[Any]] | None

SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def now_iso() -> str:
    """Wall time, UTC ISO 8601 with milliseconds: ``2024-09-05T01:00:00.123Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_digest(token: str) -> str:
    """What is stored for a session token (its SHA-256), never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_id(prefix: str) -> str:
    """A random identifier such as ``ord_3f2a9c1b7d5e4a60``."""
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass
class Quota:
    """One account's quota counters in memory (mirror of the ``quota`` table)."""

    credited: int = 0
    used: int = 0
    reserved: int = 0
    awaiting_payment: int = 0

    @property
    def available(self) -> int:
        return self.credited - self.used - self.reserved


def not_found(what: str) -> ApiError:
    """The 404 for a missing resource or one owned by another applicant (same answer)."""
    return ApiError(404, "not_found", f"no such {what}")


class Ledger:
    """All state of a running testbed; see the module docstring."""

    def __init__(self, store: Storage, cfg: TestbedConfig) -> None:
        self.store = store
        self.db = store.read            # reads only; every write goes through self.store
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.tokens: dict[str, tuple[str, float]] = {}   # token digest -> (account, expires_unix)
        self.quotas: dict[str, Quota] = {}
        self.gates = {name: Gate.from_config(name, g) for name, g in cfg.gates.items()}
        self.faults = Faults(issuer_failure_ratio=cfg.issuer.failure_ratio,
                             payment_failure_ratio=cfg.payments.failure_ratio,
                             payment_duplicate_ratio=cfg.payments.duplicate_ratio,
                             payment_reorder=cfg.payments.reorder)
        self.throttle = LoginThrottle(cfg.security)
        self.issuer = Resource("issuer", cfg.issuer, self.rng,
                               on_start=self._stamp_start, on_finish=self._stamp_finish)
        self.payments = Resource("payments", cfg.payments, self.rng,
                                 on_start=self._payment_start, on_finish=self._payment_finish)
        self.confirmations = {"applied": 0, "duplicate": 0, "late_failure": 0, "extra_charge": 0}
        self._deliveries: dict[int, tuple[asyncio.TimerHandle, str]] = {}
        self._delivering: dict[int, str] = {}        # confirmations being written
        self._tasks: set[asyncio.Task[Any]] = set()
        self._delivery_seq = itertools.count()

    # ---- lifecycle -------------------------------------------------------------
    def load(self) -> None:
        """Rebuild memory from SQLite and re-queue unfinished stamps and payments."""
        db = self.db
        now = time.time()
        self.store.write_now(lambda w: w.execute("DELETE FROM sessions WHERE expires_unix <= ?", (now,)))
        for digest, aid, expires in db.execute("SELECT token, account_id, expires_unix FROM sessions"):
            self.tokens[digest] = (aid, expires if expires is not None else self._expiry())
        for aid, credited, used, reserved in db.execute("SELECT account_id, credited, used, reserved FROM quota"):
            self.quotas[aid] = Quota(credited=credited, used=used, reserved=reserved)
        for aid, qty in db.execute("SELECT account_id, quantity FROM orders WHERE status='paying'"):
            self.quotas[aid].awaiting_payment += qty
        self.store.write_now(lambda w: w.execute("UPDATE stamps SET status='queued' WHERE status='processing'"))
        for (sid,) in db.execute("SELECT stamp_id FROM stamps WHERE status='queued' ORDER BY rowid").fetchall():
            self.issuer.queue.append(sid)
        for (pid,) in db.execute("SELECT payment_id FROM payments WHERE status='pending' ORDER BY rowid").fetchall():
            self.payments.queue.append(pid)

    def start(self) -> None:
        """Start the issuer and payment workers (inside the running loop)."""
        self.issuer.start()
        self.payments.start()

    async def stop(self) -> None:
        """Stop workers and pending deliveries; unfinished work stays durable."""
        for h, _pid in self._deliveries.values():
            h.cancel()
        self._deliveries.clear()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.issuer.stop()
        await self.payments.stop()

    async def _write(self, fn: Callable[[sqlite3.Connection], Any], after: Callable[[Any], Any] | None = None,
                     *, request: bool = True) -> Any:
        """Commit ``fn`` on the writer; a request gives up (503, nothing stored) after the deadline."""
        deadline = self.cfg.storage.write_deadline_s if request else None
        try:
            return await self.store.write(fn, deadline_s=deadline, after=after)
        except StorageBusy:
            raise ApiError(503, "storage_busy", "the database is busy; nothing was stored, retry later",
                           headers={"Retry-After": "1"}) from None

    # ---- accounts and sessions ------------------------------------------------------
    def email_taken(self, email: str) -> bool:
        """True if an account already uses ``email`` (case-insensitive)."""
        return self.db.execute("SELECT 1 FROM accounts WHERE email=?", (email,)).fetchone() is not None

    async def create_account(self, *, nik: str, name: str, email: str, phone: str, password_hash: str) -> str:
        """Insert an account and its empty quota; return its id (409 if the email or NIK is taken)."""
        aid = new_id("acc")

        def insert(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM accounts WHERE email=?", (email,)).fetchone():
                raise ApiError(409, "email_taken", "an account with this email exists", field="email")
            if self.cfg.security.unique_nik and db.execute("SELECT 1 FROM accounts WHERE nik=?", (nik,)).fetchone():
                raise ApiError(409, "nik_taken", "an account with this NIK exists", field="nik")
            try:
                db.execute("INSERT INTO accounts VALUES (?,?,?,?,?,?,?)",
                           (aid, nik, name, email, phone, password_hash, now_iso()))
            except sqlite3.IntegrityError:   # a database whose NIK index predates this check
                raise ApiError(409, "email_taken", "an account with this email exists", field="email") from None
            db.execute("INSERT INTO quota(account_id) VALUES (?)", (aid,))

        await self._write(insert, lambda _r: self.quotas.__setitem__(aid, Quota()))
        return aid

    def credentials(self, email: str) -> tuple[str, str] | None:
        """(account_id, password_hash) for ``email``, or None."""
        row = self.db.execute("SELECT account_id, password_hash FROM accounts WHERE email=?", (email,)).fetchone()
        return (row[0], row[1]) if row else None

    def _expiry(self) -> float:
        return time.time() + self.cfg.security.session_ttl_s

    async def create_session(self, account_id: str) -> tuple[str, float]:
        """Issue a bearer token for ``account_id`` (only its digest is stored); (token, expires_unix)."""
        token = secrets.token_urlsafe(32)
        digest, expires = token_digest(token), self._expiry()
        await self._write(lambda db: db.execute("INSERT INTO sessions VALUES (?,?,?,?)",
                                                (digest, account_id, now_iso(), expires)),
                          lambda _r: self.tokens.__setitem__(digest, (account_id, expires)))
        return token, expires

    async def end_session(self, token: str) -> None:
        """Log out: the token stops working at once (memory) and for good (SQLite)."""
        digest = token_digest(token)
        self.tokens.pop(digest, None)
        await self._write(lambda db: db.execute("DELETE FROM sessions WHERE token=?", (digest,)))

    def account_for(self, token: str) -> str | None:
        """The account of a live bearer token, or None (memory only; an expired token is dropped)."""
        digest = token_digest(token)
        found = self.tokens.get(digest)
        if found is None:
            return None
        if found[1] <= time.time():
            self.tokens.pop(digest, None)
            return None
        return found[0]

    def quota_view(self, account_id: str) -> dict[str, int]:
        """The body of ``GET /v1/quota``."""
        q = self.quotas[account_id]
        return {"available": q.available, "used": q.used, "pending": q.awaiting_payment,
                "reserved": q.reserved}

    # ---- orders and payments ----------------------------------------------------------
    def _order_row(self, account_id: str, order_id: str, db: sqlite3.Connection | None = None) -> dict[str, Any]:
        row = (db or self.db).execute(
            "SELECT order_id, quantity, amount, status, payment_id, created_at, credited_at "
            "FROM orders WHERE order_id=? AND account_id=?", (order_id, account_id)).fetchone()
        if row is None:
            raise not_found("order")
        keys = ("order_id", "quantity", "amount", "status", "payment_id", "created_at", "credited_at")
        return dict(zip(keys, row, strict=True))

    def get_order(self, account_id: str, order_id: str) -> dict[str, Any]:
        """The body of ``GET /v1/orders/{id}`` (404 for another applicant's order)."""
        return self._order_row(account_id, order_id)

    async def create_order(self, account_id: str, key: str, quantity: int) -> tuple[dict[str, Any], bool]:
        """Create an order, or return the one made with the same Idempotency-Key.

        Returns (body, replayed). The same key with another quantity is a 409.
        """
        price = self.cfg.pricing.duty + self.cfg.pricing.service_fee

        def insert(db: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
            row = db.execute("SELECT order_id, quantity FROM orders WHERE account_id=? AND idem_key=?",
                             (account_id, key)).fetchone()
            if row is not None:
                if row[1] != quantity:
                    raise ApiError(409, "idempotency_key_reused",
                                   "this Idempotency-Key was used for an order of another quantity",
                                   field="Idempotency-Key")
                return self._order_row(account_id, row[0], db), True
            oid = new_id("ord")
            db.execute("INSERT INTO orders(order_id, account_id, idem_key, quantity, amount, status, created_at) "
                       "VALUES (?,?,?,?,?,'pending_payment',?)",
                       (oid, account_id, key, quantity, price * quantity, now_iso()))
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
            raise ApiError(503, "overloaded", f"the {res.name} queue is full; retry later",
                           headers={"Retry-After": str(res.retry_after())}, extra={"resource": res.name}) from None
        except ClientGone:
            raise ApiError(499, "client_gone", "the client closed the connection while waiting") from None

    async def pay(self, account_id: str, order_id: str, gone: Gone = None) -> tuple[int, dict[str, Any]]:
        """Start paying an order; (status, body). Paying twice never charges twice."""
        order = self._order_row(account_id, order_id)
        if order["status"] not in ("pending_payment", "failed"):
            return self._pay_answer(order_id, order["status"], order["payment_id"])
        async with self.admit(self.payments, gone) as slot:
            pid = new_id("pay")

            def start(db: sqlite3.Connection) -> tuple[str, str | None, int]:
                o = self._order_row(account_id, order_id, db)     # may have changed while waiting
                if o["status"] not in ("pending_payment", "failed"):
                    return o["status"], o["payment_id"], 0
                db.execute("INSERT INTO payments(payment_id, order_id, status, created_at) "
                           "VALUES (?,?,'pending',?)", (pid, order_id, now_iso()))
                db.execute("UPDATE orders SET status='paying', payment_id=? WHERE order_id=?", (pid, order_id))
                return "paying", pid, o["quantity"]

            def started(r: tuple[str, str | None, int]) -> None:
                if r[2]:
                    self.quotas[account_id].awaiting_payment += r[2]
                    slot.put(pid)

            status, payment_id, _qty = await self._write(start, started)
        return self._pay_answer(order_id, status, payment_id)

    @staticmethod
    def _pay_answer(order_id: str, status: str, payment_id: str | None) -> tuple[int, dict[str, Any]]:
        shown = "paid" if status == "paid" else "paying"
        return (200 if shown == "paid" else 202), {"order_id": order_id, "payment_id": payment_id, "status": shown}

    async def _payment_start(self, payment_id: str) -> None:
        return None

    async def _payment_finish(self, payment_id: str) -> bool:
        """The gateway has processed a payment: decide its outcome and deliver it (maybe twice, late)."""
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
        return (set(self.payments.queue) | self.payments.in_service
                | {p for _h, p in self._deliveries.values()} | set(self._delivering.values()))

    def _deliver_later(self, n: int, payment_id: str, outcome: str) -> None:
        self._deliveries.pop(n, None)
        self._delivering[n] = payment_id
        task = asyncio.get_running_loop().create_task(self.deliver(payment_id, outcome, request=False))
        self._tasks.add(task)
        task.add_done_callback(lambda _t: (self._tasks.discard(task), self._delivering.pop(n, None)))

    async def deliver(self, payment_id: str, outcome: str, *, request: bool = True) -> str:
        """Apply one gateway confirmation; return applied | duplicate | late_failure | extra_charge | unknown.

        The first confirmation of a payment decides it; later ones are counted
        and ignored. Quota is credited once per order (also enforced by the
        ``credits`` primary key). The decision is made inside the write.
        """
        r = await self._write(lambda db: _decide(db, payment_id, outcome), self._delivered, request=request)
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

    # ---- stamps ------------------------------------------------------------------------
    def _stamp_by_key(self, account_id: str, key: str, db: sqlite3.Connection | None = None
                      ) -> tuple[str, str, str] | None:
        row = (db or self.db).execute("SELECT stamp_id, status, doc_sha256 FROM stamps "
                                      "WHERE account_id=? AND idem_key=?", (account_id, key)).fetchone()
        return (row[0], row[1], row[2]) if row else None

    def _replay(self, account_id: str, key: str, digest: str, db: sqlite3.Connection | None = None
                ) -> tuple[dict[str, Any], bool] | None:
        found = self._stamp_by_key(account_id, key, db)
        if found is None:
            return None
        if found[2] != digest:
            raise ApiError(409, "idempotency_key_reused",
                           "this Idempotency-Key was used for another document", field="Idempotency-Key")
        return {"stamp_id": found[0], "status": found[1]}, True

    async def create_stamp(self, account_id: str, key: str, document: bytes, name: str,
                           gone: Gone = None) -> tuple[dict[str, Any], bool]:
        """Accept a stamp job (reserving one quota) or return the one made with the same key.

        Returns (body, replayed); 402 when no quota is available; 409 if the key
        was used for another document; 503 when the issuer queue is full and shedding.
        """
        digest = hashlib.sha256(document).hexdigest()
        if (r := self._replay(account_id, key, digest)) is not None:
            return r
        if self.quotas[account_id].available < 1:
            raise _no_quota()
        async with self.admit(self.issuer, gone) as slot:
            sid = new_id("stp")

            def accept(db: sqlite3.Connection) -> tuple[dict[str, Any], bool]:
                if (r := self._replay(account_id, key, digest, db)) is not None:  # a concurrent twin won
                    return r
                cur = db.execute("UPDATE quota SET reserved=reserved+1 WHERE account_id=? "
                                 "AND credited-used-reserved >= 1", (account_id,))
                if cur.rowcount != 1:
                    raise _no_quota()
                db.execute("INSERT INTO stamps(stamp_id, account_id, idem_key, status, doc_sha256, doc_name, "
                           "created_at) VALUES (?,?,?,'queued',?,?,?)", (sid, account_id, key, digest, name, now_iso()))
                db.execute("INSERT INTO documents VALUES (?,?)", (sid, document))
                return {"stamp_id": sid, "status": "queued"}, False

            def accepted(r: tuple[dict[str, Any], bool]) -> None:
                if not r[1]:
                    self.quotas[account_id].reserved += 1
                    slot.put(sid)

            return await self._write(accept, accepted)

    def get_stamp(self, account_id: str, stamp_id: str) -> dict[str, Any]:
        """The body of ``GET /v1/stamps/{id}`` (404 for another applicant's stamp)."""
        row = self.db.execute("SELECT status, serial_number, created_at, finished_at FROM stamps "
                              "WHERE stamp_id=? AND account_id=?", (stamp_id, account_id)).fetchone()
        if row is None:
            raise not_found("stamp")
        return {"stamp_id": stamp_id, "status": row[0], "serial_number": row[1],
                "created_at": row[2], "finished_at": row[3]}

    def stamped_document(self, account_id: str, stamp_id: str) -> bytes:
        """The stamped PDF of a done stamp (404 if not the applicant's, 409 if not done)."""
        st = self.get_stamp(account_id, stamp_id)
        if st["status"] != "done":
            raise ApiError(409, "not_ready", f"the stamp is {st['status']}, not done",
                           extra={"status": st["status"]})
        (original,) = self.db.execute("SELECT original FROM documents WHERE stamp_id=?", (stamp_id,)).fetchone()
        return stamped_pdf(original, serial=st["serial_number"], stamp_id=stamp_id, issued_at=st["finished_at"])

    async def _stamp_start(self, stamp_id: str) -> None:
        await self._write(lambda db: db.execute("UPDATE stamps SET status='processing' "
                                                "WHERE stamp_id=? AND status='queued'", (stamp_id,)), request=False)

    async def _stamp_finish(self, stamp_id: str) -> bool:
        """Issue the serial (or fail the job, returning its quota); retried until it commits."""
        (aid,) = self.db.execute("SELECT account_id FROM stamps WHERE stamp_id=?", (stamp_id,)).fetchone()
        ok = self.rng.random() >= self.faults.issuer_failure_ratio
        serial = "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(22))
        ts = now_iso()

        def finish(db: sqlite3.Connection) -> None:
            if ok:
                db.execute("UPDATE stamps SET status='done', serial_number=?, finished_at=? WHERE stamp_id=?",
                           (serial, ts, stamp_id))
                db.execute("UPDATE quota SET reserved=reserved-1, used=used+1 WHERE account_id=?", (aid,))
            else:
                db.execute("UPDATE stamps SET status='failed', finished_at=? WHERE stamp_id=?", (ts, stamp_id))
                db.execute("UPDATE quota SET reserved=reserved-1 WHERE account_id=?", (aid,))

        def finished(_r: None) -> None:
            q = self.quotas[aid]
            q.reserved -= 1
            if ok:
                q.used += 1

        await self._write(finish, finished, request=False)
        return ok


def _no_quota() -> ApiError:
    return ApiError(402, "no_quota", "no e-Meterai quota available; buy and pay for an order first")


def _decide(db: sqlite3.Connection, payment_id: str, outcome: str) -> tuple[str, str | None, int, bool, bool]:
    """Apply one confirmation inside the write; (result, account, quantity, was the order's current payment, credited)."""
    row = db.execute("SELECT p.status, o.order_id, o.account_id, o.quantity, o.status, o.payment_id "
                     "FROM payments p JOIN orders o USING(order_id) WHERE p.payment_id=?", (payment_id,)).fetchone()
    if row is None:
        return "unknown", None, 0, False, False
    pstatus, oid, aid, qty, ostatus, current = row
    if pstatus != "pending":
        db.execute("UPDATE payments SET deliveries=deliveries+1 WHERE payment_id=?", (payment_id,))
        return "duplicate", None, 0, False, False
    ts = now_iso()
    db.execute("UPDATE payments SET status=?, resolved_at=?, deliveries=deliveries+1 WHERE payment_id=?",
               ("confirmed" if outcome == "confirmed" else "failed", ts, payment_id))
    credit = False
    if outcome == "confirmed" and ostatus != "paid":
        db.execute("UPDATE orders SET status='paid', payment_id=?, credited_at=? WHERE order_id=?", (payment_id, ts, oid))
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
