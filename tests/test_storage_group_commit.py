"""Group commit in testbed/storage.py: writes that queue share one transaction, each in its
own savepoint, and none is answered before the COMMIT that holds it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from testbed.storage import Storage


def _insert(account: str, credited: int = 1):
    def fn(db: sqlite3.Connection) -> str:
        db.execute("INSERT INTO quota(account_id, credited) VALUES (?, ?)", (account, credited))
        return account
    return fn


def _fail_after_insert(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO quota(account_id, credited) VALUES ('bad', 9)")
    raise ValueError("refused after writing")


def test_queued_writes_share_a_commit_and_one_error_undoes_only_its_own(tmp_path: Path) -> None:
    store = Storage(str(tmp_path / "tb.sqlite"))
    gate = threading.Event()

    async def main() -> list[object]:
        # hold the writer so that the next writes queue behind it, as under load
        first = asyncio.ensure_future(store.write(lambda db: gate.wait(5) and "first"))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(store.write(_insert(f"a{i}"))) for i in range(20)]
        rest.insert(10, asyncio.ensure_future(store.write(_fail_after_insert)))
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest, return_exceptions=True)

    try:
        out = asyncio.run(main())
        assert out[0] == "first"
        assert isinstance(out[11], ValueError)
        assert [o for i, o in enumerate(out[1:]) if i != 10] == [f"a{i}" for i in range(20)]
        rows = dict(store.read.execute("SELECT account_id, credited FROM quota").fetchall())
        assert rows == {f"a{i}": 1 for i in range(20)}   # the failed write's insert is undone alone
        # 22 writes, 2 transactions: the one that held the writer, then one group of 21
        assert store.commits == 2 and store.grouped == 22, (store.commits, store.grouped)
    finally:
        store.close()


def test_no_write_is_answered_before_its_commit(tmp_path: Path) -> None:
    # A second connection reads the database as a new process would after kill -9: every write
    # whose answer has arrived must already be there (committed), whatever its group.
    path = str(tmp_path / "tb.sqlite")
    store = Storage(path)
    other = sqlite3.connect(path)

    async def main() -> None:
        async def one(i: int) -> None:
            await store.write(_insert(f"b{i}"))
            seen = other.execute("SELECT 1 FROM quota WHERE account_id = ?", (f"b{i}",)).fetchone()
            assert seen is not None, f"b{i} answered before its commit"
        await asyncio.gather(*(one(i) for i in range(200)))

    try:
        asyncio.run(main())
        assert store.commits < 200   # they were grouped (else this test says nothing about groups)
    finally:
        other.close()
        store.close()


def test_a_storage_error_at_commit_retries_every_write_of_the_group(tmp_path: Path) -> None:
    # The write lock held by another connection past the writer's busy timeout: BEGIN fails for
    # the whole group, and every write is retried until it commits (nothing lost, nothing twice).
    path = str(tmp_path / "tb.sqlite")
    store = Storage(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")

    async def main() -> list[str]:
        tasks = [asyncio.ensure_future(store.write(_insert(f"c{i}"))) for i in range(30)]
        await asyncio.sleep(0.6)
        blocker.execute("COMMIT")
        return await asyncio.gather(*tasks)

    try:
        assert asyncio.run(main()) == [f"c{i}" for i in range(30)]
        assert store.retries >= 1
        n = store.read.execute("SELECT COUNT(*) FROM quota").fetchone()[0]
        assert n == 30
    finally:
        blocker.close()
        store.close()


@pytest.mark.parametrize("n", [1, 300])
def test_groups_hold_every_write_in_order(tmp_path: Path, n: int) -> None:
    store = Storage(str(tmp_path / "tb.sqlite"))
    order: list[int] = []

    def fn_for(i: int):
        def fn(db: sqlite3.Connection) -> int:
            order.append(i)
            db.execute("INSERT INTO quota(account_id) VALUES (?)", (f"d{i}",))
            return i
        return fn

    async def main() -> list[int]:
        return await asyncio.gather(*(store.write(fn_for(i)) for i in range(n)))

    try:
        assert asyncio.run(main()) == list(range(n))
        assert order == list(range(n))   # FIFO, as with one transaction per write
        assert store.grouped == n
    finally:
        store.close()
