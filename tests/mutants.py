"""Deliberately broken testbeds for the mutation tests of the oracle (test-only).

Each mutant patches one component of the real testbed in this process, then runs the
ordinary `surgecast testbed` command, so the mutant is the real server (uvicorn, SQLite,
HTTP) with exactly one defect. Production code paths are untouched: the only hook is the
test-only variable read by `testbed.process.TestbedServer`::

    python -m tests.mutants drop-stamp-job testbed --port 0 --db /tmp/x.sqlite
    # the drill's testbed is the mutant:
    SURGECAST_TESTBED_MUTANT=credit-twice surgecast drill payment-chaos

Every mutant keeps the server's own books consistent (`GET /admin/audit` stays balanced), so
only evidence from the clients can show the defect. `MUTANTS[name].expect` names the
reconciliation counts that must turn non-zero.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from testbed.ledger import Ledger
from testbed.ledger_base import SERIAL_ALPHABET


@dataclass(frozen=True, kw_only=True)
class Mutant:
    """One defect: what it breaks, how it is applied, and what reconciliation must report."""

    name: str
    breaks: str
    apply: Callable[[], None]
    expect: tuple[str, ...]


def _drop_unconfirmed_payments_on_restart() -> None:
    load = Ledger.load

    def mutant(self: Ledger) -> None:
        # a start-up "clean-up" that forgets 202-accepted payments
        def forget(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM payments WHERE status='pending'")
            db.execute(
                "UPDATE orders SET status='pending_payment', payment_id=NULL WHERE status='paying'"
            )

        self.store.write_now(forget)
        load(self)

    Ledger.load = mutant  # type: ignore[method-assign]


def _drop_stamp_job() -> None:
    admit, n = Ledger.admit, itertools.count(1)

    class _Dropping:
        """The issuer's slot for every third new job: the job is never queued; once its 202 is
        decided its rows are deleted and its reservation returned, so the books still balance.
        (Deleting a job already queued raced the worker that had taken it.)"""

        def __init__(self, slot: Any, ledger: Ledger) -> None:
            self.slot, self.ledger = slot, ledger

        def put(self, sid: str) -> None:
            ledger = self.ledger
            (account_id,) = ledger.db.execute(
                "SELECT account_id FROM stamps WHERE stamp_id=?", (sid,)
            ).fetchone()
            ledger.quotas[account_id].reserved -= 1

            def drop(db: sqlite3.Connection) -> None:
                db.execute("DELETE FROM documents WHERE stamp_id=?", (sid,))
                db.execute("DELETE FROM stamps WHERE stamp_id=?", (sid,))
                db.execute("UPDATE quota SET reserved=reserved-1 WHERE account_id=?", (account_id,))

            _TASKS.add(asyncio.get_running_loop().create_task(ledger._write(drop, request=False)))

        def __getattr__(self, name: str) -> Any:
            return getattr(self.slot, name)

    @contextlib.asynccontextmanager
    async def mutant(self: Ledger, res: Any, gone: Any = None):  # type: ignore[no-untyped-def]
        async with admit(self, res, gone) as slot:
            yield _Dropping(slot, self) if res is self.issuer and next(n) % 3 == 0 else slot

    Ledger.admit = mutant  # type: ignore[method-assign]


_TASKS: set[Any] = set()  # the drop writes in flight (a task needs a reference until it is done)


def _double_stamp() -> None:
    create, n = Ledger.create_stamp, itertools.count(1)

    async def mutant(
        self: Ledger,
        account_id: str,
        key: str,
        document: bytes,
        name: str,  # type: ignore[no-untyped-def]
        *args,
        **kw,
    ):
        body, replayed = await create(self, account_id, key, document, name, *args, **kw)
        if not replayed and self.quotas[account_id].available >= 1 and next(n) % 2 == 1:
            await create(
                self, account_id, f"mutant-{key}", document, name
            )  # a second job, a second serial
        return body, replayed

    Ledger.create_stamp = mutant  # type: ignore[method-assign]


def _rescale_credit(change: Callable[[int], int]) -> None:
    deliver = Ledger.deliver

    async def mutant(self: Ledger, payment_id: str, outcome: str, **kw) -> str:  # type: ignore[no-untyped-def]
        result = await deliver(self, payment_id, outcome, **kw)
        row = self.db.execute(
            "SELECT order_id, account_id, quantity FROM credits WHERE payment_id=?", (payment_id,)
        ).fetchone()
        if result == "applied" and outcome == "confirmed" and row is not None:
            oid, aid, qty = row
            new = change(qty)

            def rescale(
                db: sqlite3.Connection,
            ) -> None:  # every table agrees: the server's own audit balances
                db.execute("UPDATE credits SET quantity=? WHERE order_id=?", (new, oid))
                db.execute("UPDATE orders SET quantity=? WHERE order_id=?", (new, oid))
                db.execute(
                    "UPDATE quota SET credited=credited+? WHERE account_id=?", (new - qty, aid)
                )

            await self._write(rescale, request=False)
            self.quotas[aid].credited += new - qty
        return result

    Ledger.deliver = mutant  # type: ignore[method-assign]


def _misprice() -> None:
    pay = Ledger.pay

    async def mutant(self: Ledger, account_id: str, order_id: str, *args, **kw):  # type: ignore[no-untyped-def]
        status, body = await pay(self, account_id, order_id, *args, **kw)
        price = self.cfg.pricing.duty + self.cfg.pricing.service_fee

        def overcharge(
            db: sqlite3.Connection,
        ) -> None:  # the charge is one e-Meterai more than quoted
            db.execute(
                "UPDATE orders SET amount=amount+? WHERE order_id=? AND amount=quantity*?",
                (price, order_id, price),
            )

        await self._write(overcharge, request=False)
        return status, body

    Ledger.pay = mutant  # type: ignore[method-assign]


def _reissue_serial() -> None:
    fetch, n = Ledger.stamped_document, itertools.count(1)

    def mutant(self: Ledger, account_id: str, stamp_id: str) -> bytes:
        pdf = fetch(self, account_id, stamp_id)
        if next(n) % 2 == 0:  # the served serial is replaced by a new one afterwards
            serial = "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(22))
            self.store.write_now(
                lambda db: db.execute(
                    "UPDATE stamps SET serial_number=? WHERE stamp_id=?", (serial, stamp_id)
                )
            )
        return pdf

    Ledger.stamped_document = mutant  # type: ignore[method-assign]


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant(
            name="drop-unconfirmed-payments-on-restart",
            apply=_drop_unconfirmed_payments_on_restart,
            breaks=(
                "on start, payments answered 202 but not yet "
                "confirmed are deleted and their orders reset"
            ),
            expect=("lost_payments", "lost_quota"),
        ),
        Mutant(
            name="drop-stamp-job",
            apply=_drop_stamp_job,
            breaks="every third stamp job answered 202 is deleted (its quota reservation returned)",
            expect=("lost_stamps",),
        ),
        Mutant(
            name="double-stamp",
            apply=_double_stamp,
            breaks=(
                "every other new stamp job is issued twice: a "
                "second job and serial for the same document"
            ),
            expect=("unclaimed_stamps", "duplicated_stamps", "overcharged_quota"),
        ),
        Mutant(
            name="credit-twice",
            apply=lambda: _rescale_credit(lambda q: 2 * q),
            breaks=(
                "a confirmed payment credits twice the quantity "
                "paid for (order, credit and quota agree)"
            ),
            expect=("duplicated_quota", "wrong_quantities"),
        ),
        Mutant(
            name="under-credit",
            apply=lambda: _rescale_credit(lambda q: q - 1),
            breaks=(
                "a confirmed payment credits one e-Meterai less "
                "than paid for (order, credit and quota agree)"
            ),
            expect=("lost_quota", "wrong_quantities"),
        ),
        Mutant(
            name="misprice",
            apply=_misprice,
            breaks="paying an order charges one e-Meterai more than the amount quoted in its 201",
            expect=("wrong_amounts",),
        ),
        Mutant(
            name="reissue-serial",
            apply=_reissue_serial,
            breaks=(
                "every other downloaded stamp gets a new "
                "serial number after its document was served"
            ),
            expect=("serial_mismatches",),
        ),
    )
}


def main(argv: list[str]) -> int:
    """`python -m tests.mutants NAME SURGECAST-ARGS...`: apply mutant NAME, then run `surgecast`."""
    if not argv or argv[0] not in MUTANTS:
        print(
            "usage: python -m tests.mutants NAME testbed ...; NAME is one of: "
            f"{', '.join(MUTANTS)}",
            file=sys.stderr,
        )
        return 2
    MUTANTS[argv[0]].apply()
    print(f"mutant testbed: {argv[0]}: {MUTANTS[argv[0]].breaks}", file=sys.stderr, flush=True)
    from surgecast.cli import main as surgecast

    return surgecast(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
