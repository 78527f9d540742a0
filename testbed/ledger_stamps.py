"""The ledger's stamps: accept a document (idempotent, quota reserved), issue its serial, serve
the stamped PDF. Part of `Ledger`."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from typing import Any

from testbed.ledger_base import SERIAL_ALPHABET, Gone, new_id, not_found, now_iso
from testbed.pdf import stamped_pdf
from testbed.validation import ApiError


class StampBook:
    """Stamps of `testbed.ledger.Ledger` (which holds the state they use)."""

    # ---- stamps ------------------------------------------------------------------------
    def _stamp_by_key(
        self, account_id: str, key: str, db: sqlite3.Connection | None = None
    ) -> tuple[str, str, str] | None:
        row = (
            (db or self.db)
            .execute(
                "SELECT stamp_id, status, doc_sha256 FROM stamps WHERE account_id=? AND idem_key=?",
                (account_id, key),
            )
            .fetchone()
        )
        return (row[0], row[1], row[2]) if row else None

    def _replay(
        self, account_id: str, key: str, digest: str, db: sqlite3.Connection | None = None
    ) -> tuple[dict[str, Any], bool] | None:
        found = self._stamp_by_key(account_id, key, db)
        if found is None:
            return None
        if found[2] != digest:
            raise ApiError(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another document",
                field="Idempotency-Key",
            )
        return {"stamp_id": found[0], "status": found[1]}, True

    async def create_stamp(
        self, account_id: str, key: str, document: bytes, name: str, gone: Gone = None
    ) -> tuple[dict[str, Any], bool]:
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
                if (
                    r := self._replay(account_id, key, digest, db)
                ) is not None:  # a concurrent twin won
                    return r
                cur = db.execute(
                    "UPDATE quota SET reserved=reserved+1 WHERE account_id=? "
                    "AND credited-used-reserved >= 1",
                    (account_id,),
                )
                if cur.rowcount != 1:
                    raise _no_quota()
                db.execute(
                    "INSERT INTO stamps(stamp_id, account_id, idem_key, status, doc_sha256, "
                    "doc_name, "
                    "created_at) VALUES (?,?,?,'queued',?,?,?)",
                    (sid, account_id, key, digest, name, now_iso()),
                )
                db.execute("INSERT INTO documents VALUES (?,?)", (sid, document))
                return {"stamp_id": sid, "status": "queued"}, False

            def accepted(r: tuple[dict[str, Any], bool]) -> None:
                if not r[1]:
                    self.quotas[account_id].reserved += 1
                    slot.put(sid)

            return await self._write(accept, accepted)

    def get_stamp(self, account_id: str, stamp_id: str) -> dict[str, Any]:
        """The body of ``GET /v1/stamps/{id}`` (404 for another applicant's stamp)."""
        row = self.db.execute(
            "SELECT status, serial_number, created_at, finished_at FROM stamps "
            "WHERE stamp_id=? AND account_id=?",
            (stamp_id, account_id),
        ).fetchone()
        if row is None:
            raise not_found("stamp")
        return {
            "stamp_id": stamp_id,
            "status": row[0],
            "serial_number": row[1],
            "created_at": row[2],
            "finished_at": row[3],
        }

    def stamped_document(self, account_id: str, stamp_id: str) -> bytes:
        """The stamped PDF of a done stamp (404 if not the applicant's, 409 if not done)."""
        st = self.get_stamp(account_id, stamp_id)
        if st["status"] != "done":
            raise ApiError(
                409,
                "not_ready",
                f"the stamp is {st['status']}, not done",
                extra={"status": st["status"]},
            )
        (original,) = self.db.execute(
            "SELECT original FROM documents WHERE stamp_id=?", (stamp_id,)
        ).fetchone()
        return stamped_pdf(
            original, serial=st["serial_number"], stamp_id=stamp_id, issued_at=st["finished_at"]
        )

    async def _stamp_start(self, stamp_id: str) -> None:
        await self._write(
            lambda db: db.execute(
                "UPDATE stamps SET status='processing' WHERE stamp_id=? AND status='queued'",
                (stamp_id,),
            ),
            request=False,
        )

    async def _stamp_finish(self, stamp_id: str) -> bool:
        """Issue the serial (or fail the job, returning its quota); retried until it commits."""
        (aid,) = self.db.execute(
            "SELECT account_id FROM stamps WHERE stamp_id=?", (stamp_id,)
        ).fetchone()
        ok = self.rng.random() >= self.faults.issuer_failure_ratio
        serial = "".join(secrets.choice(SERIAL_ALPHABET) for _ in range(22))
        ts = now_iso()

        def finish(db: sqlite3.Connection) -> None:
            if ok:
                db.execute(
                    "UPDATE stamps SET status='done', serial_number=?, finished_at=? WHERE "
                    "stamp_id=?",
                    (serial, ts, stamp_id),
                )
                db.execute(
                    "UPDATE quota SET reserved=reserved-1, used=used+1 WHERE account_id=?", (aid,)
                )
            else:
                db.execute(
                    "UPDATE stamps SET status='failed', finished_at=? WHERE stamp_id=?",
                    (ts, stamp_id),
                )
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
