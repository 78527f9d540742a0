"""The ledger's audit and its listings for reconciliation (the metrics are in `testbed.metrics`).

Both read one consistent snapshot (they run without yielding the loop)::

    report = audit(ledger)        # GET /admin/audit
    report["balanced"]            # True when every invariant holds
    rows = ledger_listing(ledger) # GET /admin/ledger
    recs = records(ledger)        # GET /admin/records (durable state, for the client-evidence
                                  # oracle)
"""

from __future__ import annotations

from typing import Any

from testbed.ledger import Ledger
from testbed.ledger_base import now_iso


def _one(ledger: Ledger, sql: str, args: tuple[Any, ...] = ()) -> Any:
    return ledger.db.execute(sql, args).fetchone()[0]


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def audit(ledger: Ledger) -> dict[str, Any]:
    """Check the ledger's invariants; the body of ``GET /admin/audit``.

    Checks: every paid order credited exactly once; no order charged twice;
    credited = used + available + reserved per account (and matching the stamps);
    no stamp without quota; no accepted stamp job lost; no payment lost;
    memory matches storage.
    """
    paid = _one(ledger, "SELECT count(*) FROM orders WHERE status='paid'")
    rows = _quota_rows(ledger)
    pending_pay = {
        r[0] for r in ledger.db.execute("SELECT payment_id FROM payments WHERE status='pending'")
    }
    checks = [
        *_order_checks(ledger, paid),
        *_quota_checks(rows),
        _jobs_check(ledger),
        _payments_check(ledger, pending_pay),
        _memory_check(ledger, rows),
    ]
    return {
        "time": now_iso(),
        "balanced": all(c["ok"] for c in checks),
        "checks": checks,
        "totals": _totals(ledger, rows, paid, len(pending_pay)),
    }


def _order_checks(ledger: Ledger, paid: int) -> list[dict[str, Any]]:
    """Every paid order credited once (and only paid orders); no order confirmed twice."""
    uncredited = _one(
        ledger,
        "SELECT count(*) FROM orders o LEFT JOIN credits c USING(order_id) "
        "WHERE o.status='paid' AND c.order_id IS NULL",
    )
    stray = _one(
        ledger,
        "SELECT count(*) FROM credits c JOIN orders o USING(order_id) "
        "WHERE o.status!='paid' OR c.quantity!=o.quantity",
    )
    double = _one(
        ledger,
        "SELECT count(*) FROM (SELECT order_id FROM payments WHERE status='confirmed' "
        "GROUP BY order_id HAVING count(*) > 1)",
    )
    return [
        _check(
            "paid_orders_credited_once",
            uncredited == 0 and stray == 0,
            f"{paid} paid orders; {uncredited} without a credit; {stray} credits not matching a "
            "paid order",
        ),
        _check(
            "no_order_charged_twice",
            double == 0,
            f"{double} orders with more than one confirmed payment",
        ),
    ]


def _quota_rows(ledger: Ledger) -> list[Any]:
    """Per account: (id, credited, used, reserved, sum of credits, stamps done, stamps pending)."""
    return ledger.db.execute(
        "SELECT q.account_id, q.credited, q.used, q.reserved, "
        " (SELECT coalesce(sum(quantity), 0) FROM credits c WHERE c.account_id=q.account_id), "
        " (SELECT count(*) FROM stamps s WHERE s.account_id=q.account_id AND s.status='done'), "
        " (SELECT count(*) FROM stamps s WHERE s.account_id=q.account_id"
        " AND s.status IN ('queued','processing')) "
        "FROM quota q"
    ).fetchall()


def _quota_checks(rows: list[Any]) -> list[dict[str, Any]]:
    """Each account's quota agrees with its credits and stamps, and none is overdrawn."""
    bad_balance = [r[0] for r in rows if r[1] != r[4] or r[2] != r[5] or r[3] != r[6]]
    negative = [r[0] for r in rows if r[1] - r[2] - r[3] < 0]
    return [
        _check(
            "credited_equals_used_available_reserved",
            not bad_balance,
            f"{len(rows)} accounts; {len(bad_balance)} whose quota disagrees with credits and "
            "stamps" + (f" (e.g. {bad_balance[0]})" if bad_balance else ""),
        ),
        _check(
            "no_stamp_without_quota",
            not negative,
            f"{len(negative)} accounts with negative available quota"
            + (f" (e.g. {negative[0]})" if negative else ""),
        ),
    ]


def _jobs_check(ledger: Ledger) -> dict[str, Any]:
    """Every pending stamp job is in the issuer's queue or service; states and documents sound."""
    pending_db = {
        r[0]
        for r in ledger.db.execute(
            "SELECT stamp_id FROM stamps WHERE status IN ('queued','processing')"
        )
    }
    in_memory = set(ledger.issuer.queue) | ledger.issuer.in_service
    lost = pending_db - in_memory
    bad_state = _one(
        ledger,
        "SELECT count(*) FROM stamps WHERE status NOT IN ('queued','processing','done','failed') "
        "OR (status='done' AND serial_number IS NULL)",
    )
    no_doc = _one(
        ledger,
        "SELECT count(*) FROM stamps s LEFT JOIN documents d USING(stamp_id) "
        "WHERE d.stamp_id IS NULL",
    )
    return _check(
        "no_accepted_job_lost",
        not lost and bad_state == 0 and no_doc == 0,
        f"{len(pending_db)} jobs pending, {len(lost)} of them in no queue; "
        f"{bad_state} in a bad state; {no_doc} without their document",
    )


def _payments_check(ledger: Ledger, pending_pay: set[Any]) -> dict[str, Any]:
    """Every payment awaiting confirmation is in flight at the gateway."""
    lost_pay = pending_pay - ledger.payments_in_flight()
    return _check(
        "no_payment_lost",
        not lost_pay,
        f"{len(pending_pay)} payments awaiting confirmation, {len(lost_pay)} of them nowhere",
    )


def _memory_check(ledger: Ledger, rows: list[Any]) -> dict[str, Any]:
    """The quotas in memory (and the quantities awaiting payment) equal those in SQLite."""
    mem = {aid: (q.credited, q.used, q.reserved) for aid, q in ledger.quotas.items()}
    disk = {r[0]: (r[1], r[2], r[3]) for r in rows}
    awaiting = dict(
        ledger.db.execute(
            "SELECT account_id, sum(quantity) FROM orders WHERE status='paying' GROUP BY account_id"
        )
    )
    mem_await = {aid: q.awaiting_payment for aid, q in ledger.quotas.items() if q.awaiting_payment}
    return _check(
        "memory_matches_storage",
        mem == disk and awaiting == mem_await,
        f"{sum(mem[a] != disk.get(a) for a in mem)} accounts differ between memory and SQLite",
    )


def _totals(ledger: Ledger, rows: list[Any], paid: int, payments_pending: int) -> dict[str, Any]:
    """The audit's totals: orders paid, quota, stamp jobs by state, payments pending."""
    credited = sum(r[1] for r in rows)
    used = sum(r[2] for r in rows)
    reserved = sum(r[3] for r in rows)
    counts = dict(ledger.db.execute("SELECT status, count(*) FROM stamps GROUP BY status"))
    return {
        "orders_paid": paid,
        "quota_credited": credited,
        "quota_used": used,
        "quota_available": credited - used - reserved,
        "quota_reserved": reserved,
        "stamps_accepted": sum(counts.values()),
        "stamps_done": counts.get("done", 0),
        "stamps_failed": counts.get("failed", 0),
        "stamps_pending": counts.get("queued", 0) + counts.get("processing", 0),
        "payments_pending": payments_pending,
        "confirmations": dict(ledger.confirmations),
    }


LISTING_QUERIES: dict[str, tuple[tuple[str, ...], str]] = {
    "orders": (
        ("order_id", "account_id", "quantity", "amount", "status", "credited_at", "payment_id"),
        "SELECT order_id, account_id, quantity, amount, status, credited_at, payment_id "
        "FROM orders ORDER BY rowid",
    ),
    "stamps": (
        (
            *("stamp_id", "account_id", "status", "serial_number", "created_at", "finished_at"),
            "document_sha256",
        ),
        "SELECT stamp_id, account_id, status, serial_number, created_at, finished_at, "
        "doc_sha256 FROM stamps ORDER BY rowid",
    ),
}
"""The orders and stamps of ``GET /admin/ledger``: their keys and the SQL that reads them."""


def ledger_listing(ledger: Ledger) -> dict[str, Any]:
    """Every order, stamp and account: the server side of reconciliation (``GET /admin/ledger``)."""
    db = ledger.db
    orders = _rows(ledger, *LISTING_QUERIES["orders"])
    stamps = _rows(ledger, *LISTING_QUERIES["stamps"])
    accounts = []
    for aid, email in db.execute("SELECT account_id, email FROM accounts ORDER BY rowid"):
        q = ledger.quotas[aid]
        accounts.append(
            {
                "account_id": aid,
                "email": email,
                "available": q.available,
                "used": q.used,
                "reserved": q.reserved,
                "credited": q.credited,
            }
        )
    return {"time": now_iso(), "orders": orders, "stamps": stamps, "accounts": accounts}


def _rows(ledger: Ledger, keys: tuple[str, ...], sql: str) -> list[dict[str, Any]]:
    return [dict(zip(keys, r, strict=True)) for r in ledger.db.execute(sql)]


RECORD_QUERIES: dict[str, tuple[tuple[str, ...], str]] = {
    "orders": (
        (
            *("order_id", "account_id", "idempotency_key", "quantity", "amount", "status"),
            *("payment_id", "created_at", "credited_at"),
        ),
        "SELECT order_id, account_id, idem_key, quantity, amount, status, payment_id, created_at, "
        "credited_at FROM orders ORDER BY rowid",
    ),
    "payments": (
        (
            *("payment_id", "order_id", "account_id", "status", "amount", "quantity"),
            *("deliveries", "created_at", "resolved_at"),
        ),
        "SELECT p.payment_id, p.order_id, o.account_id, p.status, o.amount, o.quantity, "
        "p.deliveries, p.created_at, p.resolved_at FROM payments p "
        "LEFT JOIN orders o USING(order_id) ORDER BY p.rowid",
    ),
    "credits": (
        ("order_id", "account_id", "quantity", "payment_id", "credited_at"),
        "SELECT order_id, account_id, quantity, payment_id, credited_at FROM credits "
        "ORDER BY rowid",
    ),
    "stamps": (
        (
            *("stamp_id", "account_id", "idempotency_key", "status", "serial_number"),
            *("document_sha256", "created_at", "finished_at"),
        ),
        "SELECT stamp_id, account_id, idem_key, status, serial_number, doc_sha256, created_at, "
        "finished_at FROM stamps ORDER BY rowid",
    ),
    "accounts": (
        ("account_id", "credited", "used", "reserved"),
        "SELECT account_id, credited, used, reserved FROM quota ORDER BY rowid",
    ),
}
"""The tables of ``GET /admin/records``: each one's keys and the SQL that reads them, in order."""


def records(ledger: Ledger) -> dict[str, Any]:
    """The durable state, straight from SQLite: the body of ``GET /admin/records``.

    Every order, payment, credit and stamp job with its state, amount, quantity,
    serial number and the client's Idempotency-Key, and each account's stored
    quota counters. Memory is not consulted, so this is what survives ``kill -9``;
    ``scenarios.reconcile`` checks it against what the clients were told.
    """
    tables = {name: _rows(ledger, keys, sql) for name, (keys, sql) in RECORD_QUERIES.items()}
    return {"time": now_iso(), **tables}
