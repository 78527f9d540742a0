"""SQLite storage: schema, WAL mode, a transaction helper, and the single writer.

Every state change (account, session, order, payment, credit, stamp) is
committed before the response that reports it, so a 2xx survives ``kill -9``.
The hot reads (token -> account, quota counters) are served from memory by
:mod:`testbed.ledger`; SQLite is the durable write-through store.

Writes never run on the event loop: :class:`Storage` runs them on one dedicated
writer thread with its own connection (a single writer, so transactions never
contend with each other), and retries a storage error (the write lock held by
someone else, a full disk) with backoff. Writes that queue while the writer is busy
are **group-committed**: up to ``GROUP_MAX`` of them run in one transaction, each in
its own savepoint (one write's error undoes that write alone), and every one of them
is answered only after that transaction's COMMIT, so a 2xx still means committed.
Reads run on the loop's connection: in WAL mode a reader never waits for a writer::

    >>> db = open_db(":memory:")
    >>> with transaction(db):
    ...     _ = db.execute("INSERT INTO quota(account_id) VALUES ('acc_1')")
    >>> db.execute("SELECT credited, used, reserved FROM quota").fetchone()
    (0, 0, 0)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger("testbed.storage")
T = TypeVar("T")
WRITER_BUSY_TIMEOUT_MS = 250   # one attempt's wait for the write lock; then back off and retry
READER_BUSY_TIMEOUT_MS = 200   # a WAL read waits only in rare cases (recovery); keep the loop free
GROUP_MAX = 256                # most writes one group commit holds

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id TEXT PRIMARY KEY,
    nik TEXT NOT NULL,
    name TEXT NOT NULL,
    email TEXT NOT NULL UNIQUE COLLATE NOCASE,
    phone TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(account_id),
    created_at TEXT NOT NULL,
    expires_unix REAL
);
CREATE TABLE IF NOT EXISTS quota (
    account_id TEXT PRIMARY KEY,
    credited INTEGER NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    status TEXT NOT NULL,
    payment_id TEXT,
    created_at TEXT NOT NULL,
    credited_at TEXT,
    UNIQUE (account_id, idem_key)
);
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    status TEXT NOT NULL,            -- pending | confirmed | failed
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    deliveries INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS credits (
    order_id TEXT PRIMARY KEY,        -- one credit per order, enforced here too
    account_id TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    payment_id TEXT NOT NULL,
    credited_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stamps (
    stamp_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    status TEXT NOT NULL,            -- queued | processing | done | failed
    serial_number TEXT UNIQUE,
    doc_sha256 TEXT NOT NULL,
    doc_name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT,
    UNIQUE (account_id, idem_key)
);
CREATE TABLE IF NOT EXISTS documents (
    stamp_id TEXT PRIMARY KEY,
    original BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS stamps_status ON stamps(status);
CREATE INDEX IF NOT EXISTS payments_status ON payments(status);
CREATE INDEX IF NOT EXISTS orders_status ON orders(status);
"""


def open_db(path: str, *, synchronous: str = "NORMAL",
            busy_timeout_ms: int = 5000) -> sqlite3.Connection:
    """Open (and create) the database in WAL mode with the schema.

    >>> open_db(":memory:").execute("PRAGMA foreign_keys").fetchone()
    (1,)
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
    db.execute("PRAGMA foreign_keys=ON")
    db.executescript(SCHEMA)
    _migrate(db)
    return db


def _migrate(db: sqlite3.Connection) -> None:
    """Bring a database made by an older testbed up to this schema."""
    cols = {r[1] for r in db.execute("PRAGMA table_info(sessions)")}
    if "expires_unix" not in cols:
        db.execute("ALTER TABLE sessions ADD COLUMN expires_unix REAL")
    try:  # one account per NIK (a database with duplicates from before keeps working, unindexed)
        db.execute("CREATE UNIQUE INDEX IF NOT EXISTS accounts_nik ON accounts(nik)")
    except sqlite3.IntegrityError:
        log.warning("accounts hold duplicate NIKs; NIK uniqueness is not enforced on this database")


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run a block in one IMMEDIATE transaction: committed on success, rolled back on error.

    >>> db = open_db(":memory:")
    >>> with transaction(db):
    ...     _ = db.execute("INSERT INTO quota(account_id, credited) VALUES ('a', 2)")
    >>> db.execute("SELECT credited FROM quota").fetchone()[0]
    2
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class StorageBusy(Exception):
    """A write could not commit within its deadline (nothing was stored)."""


class Storage:
    """The loop's read connection plus one writer thread with its own connection.

    ``await storage.write(fn)`` runs ``fn(db)`` in one IMMEDIATE transaction on the
    writer thread; ``after(result)`` (if given) runs on the loop once it committed,
    even if the awaiting request was cancelled meanwhile (memory mirrors storage)::

        store = Storage("/tmp/tb.sqlite")
        n = await store.write(lambda db: db.execute("DELETE FROM sessions").rowcount)
    """

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        self.read = open_db(path, synchronous=synchronous, busy_timeout_ms=READER_BUSY_TIMEOUT_MS)
        # ":memory:" is one database per connection: share it (SQLite serialises the threads)
        self._writer = self.read if path == ":memory:" else open_db(
            path, synchronous=synchronous, busy_timeout_ms=WRITER_BUSY_TIMEOUT_MS)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self.retries = 0
        self.pending = 0
        self.commits = 0      # transactions committed by the writer (group commits included)
        self.grouped = 0      # writes committed in them
        self._barrier: asyncio.Future[None] | None = None
        self._queue: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._lock = threading.Lock()

    def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with transaction(self._writer) as db:
            return fn(db)

    def _drain(self) -> None:
        """On the writer thread: run the queued writes in one transaction, then answer each.

        Every write runs in its own savepoint: an error in one undoes that one alone and is
        its answer. A storage error that ends the transaction (BEGIN, COMMIT, or SQLite
        rolling it all back) is every write's answer, so each is retried whole. No write is
        answered before the COMMIT that holds it.
        """
        with self._lock:
            batch, self._queue = self._queue[:GROUP_MAX], self._queue[GROUP_MAX:]
        if not batch:
            return
        db = self._writer
        answers: list[tuple[bool, Any]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for fn, _fut in batch:
                db.execute("SAVEPOINT w")
                try:
                    answers.append((True, fn(db)))
                except Exception as e:
                    if not db.in_transaction:   # SQLite rolled the whole transaction back
                        raise
                    db.execute("ROLLBACK TO w")
                    answers.append((False, e))
                db.execute("RELEASE w")
            db.execute("COMMIT")
        except Exception as e:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            answers = [(False, e)] * len(batch)
        else:
            self.commits += 1
            self.grouped += len(batch)
        for (_fn, fut), (ok, value) in zip(batch, answers, strict=True):
            with contextlib.suppress(RuntimeError):   # the loop closed (shutdown): no one waits
                fut.get_loop().call_soon_threadsafe(_settle, fut, ok, value)

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, deadline_s: float | None = None,
                    after: Callable[[T], Any] | None = None) -> T:
        """Commit ``fn(db)``; retry storage errors with backoff (for ever when ``deadline_s`` is
        None).

        Raises :class:`StorageBusy` once ``deadline_s`` seconds have passed without a
        commit; an attempt is never abandoned mid-flight, so a refusal stored nothing.
        """
        loop = asyncio.get_running_loop()
        start, delay = loop.time(), 0.02
        while True:
            while self._barrier is not None:
                await asyncio.shield(self._barrier)
            self.pending += 1
            fut: asyncio.Future[T] = loop.create_future()
            with self._lock:
                self._queue.append((fn, fut))
            self._pool.submit(self._drain)   # a drain that finds the queue empty does nothing
            if after is not None:
                fut.add_done_callback(lambda f: after(f.result())
                                      if not f.cancelled() and f.exception() is None else None)
            # after `after`
            fut.add_done_callback(lambda _f: setattr(self, "pending", self.pending - 1))
            try:
                return await asyncio.shield(fut)
            except sqlite3.OperationalError as e:
                self.retries += 1
                if deadline_s is not None and loop.time() - start + delay > deadline_s:
                    raise StorageBusy(str(e)) from None
                log.warning("storage write failed (%s); retrying in %.2f s", e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    @contextlib.asynccontextmanager
    async def quiesced(self, timeout_s: float = 5.0) -> AsyncIterator[bool]:
        """Hold new writes and wait (at most ``timeout_s``) for those in flight: a consistent
        snapshot.

        Yields True if every write in flight had committed and been mirrored in memory.
        """
        loop = asyncio.get_running_loop()
        barrier = self._barrier
        if barrier is None:
            barrier = self._barrier = loop.create_future()
        deadline = loop.time() + timeout_s
        try:
            while self.pending and loop.time() < deadline:
                await asyncio.sleep(0.002)
            yield self.pending == 0
        finally:
            if self._barrier is barrier:
                self._barrier = None
                barrier.set_result(None)

    def write_now(self, fn: Callable[[sqlite3.Connection], T], *, patience_s: float = 30.0) -> T:
        """Run a write on the writer and wait for it (start-up only, before serving); retried
        like any write."""
        delay, deadline = 0.02, time.monotonic() + patience_s
        while True:
            try:
                return self._pool.submit(self._run, fn).result()
            except sqlite3.OperationalError as e:
                self.retries += 1
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("storage write at start-up failed (%s); retrying in %.2f s", e, delay)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def close(self) -> None:
        """Finish queued writes, then close both connections."""
        self._pool.submit(self._drain)
        self._pool.shutdown(wait=True)
        if self._writer is not self.read:
            self._writer.close()
        self.read.close()


def _settle(fut: asyncio.Future[Any], ok: bool, value: Any) -> None:
    """On the loop: give a write's future its answer (a result, or the error to raise)."""
    if fut.done():
        return
    if ok:
        fut.set_result(value)
    else:
        fut.set_exception(value)
