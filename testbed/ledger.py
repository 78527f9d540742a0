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
    account_id = await ledger.create_account(nik=..., name=..., email=..., phone=...,
    password_hash=...)
"""

from __future__ import annotations

import asyncio
import itertools
import random
import secrets
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from testbed.capacity import Resource
from testbed.config import TestbedConfig
from testbed.faults import Faults
from testbed.gates import Gate
from testbed.ledger_base import Quota, new_id, now_iso, token_digest
from testbed.ledger_orders import OrderBook
from testbed.ledger_stamps import StampBook
from testbed.storage import Storage, StorageBusy
from testbed.throttle import LoginThrottle
from testbed.validation import ApiError

__all__ = ["Ledger"]


class Ledger(OrderBook, StampBook):
    """All state of a running testbed; see the module docstring."""

    def __init__(self, store: Storage, cfg: TestbedConfig) -> None:
        self.store = store
        self.db = store.read  # reads only; every write goes through self.store
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.tokens: dict[str, tuple[str, float]] = {}  # token digest -> (account, expires_unix)
        self.quotas: dict[str, Quota] = {}
        self.gates = {name: Gate.from_config(name, g) for name, g in cfg.gates.items()}
        self.faults = Faults(
            issuer_failure_ratio=cfg.issuer.failure_ratio,
            payment_failure_ratio=cfg.payments.failure_ratio,
            payment_duplicate_ratio=cfg.payments.duplicate_ratio,
            payment_reorder=cfg.payments.reorder,
        )
        self.throttle = LoginThrottle(cfg.security)
        self.issuer = Resource(
            "issuer", cfg.issuer, self.rng, on_start=self._stamp_start, on_finish=self._stamp_finish
        )
        self.payments = Resource(
            "payments",
            cfg.payments,
            self.rng,
            on_start=self._payment_start,
            on_finish=self._payment_finish,
        )
        self.confirmations = {"applied": 0, "duplicate": 0, "late_failure": 0, "extra_charge": 0}
        self._deliveries: dict[int, tuple[asyncio.TimerHandle, str]] = {}
        self._delivering: dict[int, str] = {}  # confirmations being written
        self._tasks: set[asyncio.Task[Any]] = set()
        self._delivery_seq = itertools.count()

    # ---- lifecycle -------------------------------------------------------------
    def load(self) -> None:
        """Rebuild memory from SQLite and re-queue unfinished stamps and payments."""
        db = self.db
        now = time.time()
        self.store.write_now(
            lambda w: w.execute("DELETE FROM sessions WHERE expires_unix <= ?", (now,))
        )
        for digest, aid, expires in db.execute(
            "SELECT token, account_id, expires_unix FROM sessions"
        ):
            self.tokens[digest] = (aid, expires if expires is not None else self._expiry())
        for aid, credited, used, reserved in db.execute(
            "SELECT account_id, credited, used, reserved FROM quota"
        ):
            self.quotas[aid] = Quota(credited=credited, used=used, reserved=reserved)
        for aid, qty in db.execute("SELECT account_id, quantity FROM orders WHERE status='paying'"):
            self.quotas[aid].awaiting_payment += qty
        self.store.write_now(
            lambda w: w.execute("UPDATE stamps SET status='queued' WHERE status='processing'")
        )
        for (sid,) in db.execute(
            "SELECT stamp_id FROM stamps WHERE status='queued' ORDER BY rowid"
        ).fetchall():
            self.issuer.queue.append(sid)
        for (pid,) in db.execute(
            "SELECT payment_id FROM payments WHERE status='pending' ORDER BY rowid"
        ).fetchall():
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

    async def _write(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        after: Callable[[Any], Any] | None = None,
        *,
        request: bool = True,
    ) -> Any:
        """Commit ``fn`` on the writer; a request gives up (503, nothing stored) after the
        deadline."""
        deadline = self.cfg.storage.write_deadline_s if request else None
        try:
            return await self.store.write(fn, deadline_s=deadline, after=after)
        except StorageBusy:
            raise ApiError(
                503,
                "storage_busy",
                "the database is busy; nothing was stored, retry later",
                headers={"Retry-After": "1"},
            ) from None

    # ---- accounts and sessions ------------------------------------------------------
    def email_taken(self, email: str) -> bool:
        """True if an account already uses ``email`` (case-insensitive)."""
        return (
            self.db.execute("SELECT 1 FROM accounts WHERE email=?", (email,)).fetchone() is not None
        )

    async def create_account(
        self, *, nik: str, name: str, email: str, phone: str, password_hash: str
    ) -> str:
        """Insert an account and its empty quota; return its id (409 if the email or NIK is
        taken)."""
        aid = new_id("acc")

        def insert(db: sqlite3.Connection) -> None:
            if db.execute("SELECT 1 FROM accounts WHERE email=?", (email,)).fetchone():
                raise ApiError(
                    409, "email_taken", "an account with this email exists", field="email"
                )
            if (
                self.cfg.security.unique_nik
                and db.execute("SELECT 1 FROM accounts WHERE nik=?", (nik,)).fetchone()
            ):
                raise ApiError(409, "nik_taken", "an account with this NIK exists", field="nik")
            try:
                db.execute(
                    "INSERT INTO accounts VALUES (?,?,?,?,?,?,?)",
                    (aid, nik, name, email, phone, password_hash, now_iso()),
                )
            except sqlite3.IntegrityError:  # a database whose NIK index predates this check
                raise ApiError(
                    409, "email_taken", "an account with this email exists", field="email"
                ) from None
            db.execute("INSERT INTO quota(account_id) VALUES (?)", (aid,))

        await self._write(insert, lambda _r: self.quotas.__setitem__(aid, Quota()))
        return aid

    def credentials(self, email: str) -> tuple[str, str] | None:
        """(account_id, password_hash) for ``email``, or None."""
        row = self.db.execute(
            "SELECT account_id, password_hash FROM accounts WHERE email=?", (email,)
        ).fetchone()
        return (row[0], row[1]) if row else None

    def _expiry(self) -> float:
        return time.time() + self.cfg.security.session_ttl_s

    async def create_session(self, account_id: str) -> tuple[str, float]:
        """Issue a bearer token for ``account_id`` (only its digest is stored); (token,
        expires_unix)."""
        token = secrets.token_urlsafe(32)
        digest, expires = token_digest(token), self._expiry()
        await self._write(
            lambda db: db.execute(
                "INSERT INTO sessions VALUES (?,?,?,?)", (digest, account_id, now_iso(), expires)
            ),
            lambda _r: self.tokens.__setitem__(digest, (account_id, expires)),
        )
        return token, expires

    async def end_session(self, token: str) -> None:
        """Log out: the token stops working at once (memory) and for good (SQLite)."""
        digest = token_digest(token)
        self.tokens.pop(digest, None)
        await self._write(lambda db: db.execute("DELETE FROM sessions WHERE token=?", (digest,)))

    def account_for(self, token: str) -> str | None:
        """The account of a live bearer token, or None (memory only; an expired token is
        dropped)."""
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
        return {
            "available": q.available,
            "used": q.used,
            "pending": q.awaiting_payment,
            "reserved": q.reserved,
        }
