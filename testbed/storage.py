"""SQLite storage: schema, WAL mode, and one transaction helper.

Every state change (account, session, order, payment, credit, stamp) is
committed before the response that reports it, so a 2xx survives ``kill -9``.
The hot reads (token -> account, quota counters) are served from memory by
:mod:`testbed.ledger`; SQLite is the durable write-through store::

    >>> db = open_db(":memory:")
    >>> with transaction(db):
    ...     _ = db.execute("INSERT INTO quota(account_id) VALUES ('acc_1')")
    >>> db.execute("SELECT credited, used, reserved FROM quota").fetchone()
    (0, 0, 0)
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

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
    created_at TEXT NOT NULL
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


def open_db(path: str, *, synchronous: str = "NORMAL") -> sqlite3.Connection:
    """Open (and create) the database in WAL mode with the schema.

    >>> open_db(":memory:").execute("PRAGMA foreign_keys").fetchone()
    (1,)
    """
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'FULL' else 'NORMAL'}")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA busy_timeout=5000")
    db.executescript(SCHEMA)
    return db


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
