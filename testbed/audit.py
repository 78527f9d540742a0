"""The ledger's audit, its listing for reconciliation, and the metrics.

All three read one consistent snapshot (they run without yielding the loop)::

    report = audit(ledger)        # GET /admin/audit
    report["balanced"]            # True when every invariant holds
    rows = ledger_listing(ledger) # GET /admin/ledger
    recs = records(ledger)        # GET /admin/records (durable state, for the client-evidence oracle)
    m = metrics(ledger); text = prometheus(m)   # GET /admin/metrics[?format=prometheus]
"""

from __future__ import annotations

from typing import Any

from testbed.ledger import Ledger
from testbed.ledger_base import now_iso

ORDER_STATES = ("pending_payment", "paying", "paid", "failed")
STAMP_STATES = ("queued", "processing", "done", "failed")


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
    db = ledger.db
    checks = []
    paid = _one(ledger, "SELECT count(*) FROM orders WHERE status='paid'")
    uncredited = _one(ledger, "SELECT count(*) FROM orders o LEFT JOIN credits c USING(order_id) "
                              "WHERE o.status='paid' AND c.order_id IS NULL")
    stray = _one(ledger, "SELECT count(*) FROM credits c JOIN orders o USING(order_id) "
                         "WHERE o.status!='paid' OR c.quantity!=o.quantity")
    checks.append(_check("paid_orders_credited_once", uncredited == 0 and stray == 0,
                         f"{paid} paid orders; {uncredited} without a credit; {stray} credits not matching a paid order"))
    double = _one(ledger, "SELECT count(*) FROM (SELECT order_id FROM payments WHERE status='confirmed' "
                          "GROUP BY order_id HAVING count(*) > 1)")
    checks.append(_check("no_order_charged_twice", double == 0, f"{double} orders with more than one confirmed payment"))

    rows = db.execute(
        "SELECT q.account_id, q.credited, q.used, q.reserved, "
        " (SELECT coalesce(sum(quantity), 0) FROM credits c WHERE c.account_id=q.account_id), "
        " (SELECT count(*) FROM stamps s WHERE s.account_id=q.account_id AND s.status='done'), "
        " (SELECT count(*) FROM stamps s WHERE s.account_id=q.account_id AND s.status IN ('queued','processing')) "
        "FROM quota q").fetchall()
    bad_balance = [r[0] for r in rows if r[1] != r[4] or r[2] != r[5] or r[3] != r[6]]
    negative = [r[0] for r in rows if r[1] - r[2] - r[3] < 0]
    checks.append(_check("credited_equals_used_available_reserved", not bad_balance,
                         f"{len(rows)} accounts; {len(bad_balance)} whose quota disagrees with credits and stamps"
                         + (f" (e.g. {bad_balance[0]})" if bad_balance else "")))
    checks.append(_check("no_stamp_without_quota", not negative,
                         f"{len(negative)} accounts with negative available quota"
                         + (f" (e.g. {negative[0]})" if negative else "")))

    pending_db = {r[0] for r in db.execute("SELECT stamp_id FROM stamps WHERE status IN ('queued','processing')")}
    in_memory = set(ledger.issuer.queue) | ledger.issuer.in_service
    lost = pending_db - in_memory
    bad_state = _one(ledger, "SELECT count(*) FROM stamps WHERE status NOT IN ('queued','processing','done','failed') "
                             "OR (status='done' AND serial_number IS NULL)")
    no_doc = _one(ledger, "SELECT count(*) FROM stamps s LEFT JOIN documents d USING(stamp_id) WHERE d.stamp_id IS NULL")
    checks.append(_check("no_accepted_job_lost", not lost and bad_state == 0 and no_doc == 0,
                         f"{len(pending_db)} jobs pending, {len(lost)} of them in no queue; "
                         f"{bad_state} in a bad state; {no_doc} without their document"))
    pending_pay = {r[0] for r in db.execute("SELECT payment_id FROM payments WHERE status='pending'")}
    lost_pay = pending_pay - ledger.payments_in_flight()
    checks.append(_check("no_payment_lost", not lost_pay,
                         f"{len(pending_pay)} payments awaiting confirmation, {len(lost_pay)} of them nowhere"))

    mem = {aid: (q.credited, q.used, q.reserved) for aid, q in ledger.quotas.items()}
    disk = {r[0]: (r[1], r[2], r[3]) for r in rows}
    awaiting = dict(db.execute("SELECT account_id, sum(quantity) FROM orders WHERE status='paying' GROUP BY account_id"))
    mem_await = {aid: q.awaiting_payment for aid, q in ledger.quotas.items() if q.awaiting_payment}
    checks.append(_check("memory_matches_storage", mem == disk and awaiting == mem_await,
                         f"{sum(mem[a] != disk.get(a) for a in mem)} accounts differ between memory and SQLite"))

    credited = sum(r[1] for r in rows)
    used = sum(r[2] for r in rows)
    reserved = sum(r[3] for r in rows)
    counts = dict(db.execute("SELECT status, count(*) FROM stamps GROUP BY status"))
    totals = {"orders_paid": paid, "quota_credited": credited, "quota_used": used,
              "quota_available": credited - used - reserved, "quota_reserved": reserved,
              "stamps_accepted": sum(counts.values()), "stamps_done": counts.get("done", 0),
              "stamps_failed": counts.get("failed", 0),
              "stamps_pending": counts.get("queued", 0) + counts.get("processing", 0),
              "payments_pending": len(pending_pay),
              "confirmations": dict(ledger.confirmations)}
    return {"time": now_iso(), "balanced": all(c["ok"] for c in checks), "checks": checks, "totals": totals}


def ledger_listing(ledger: Ledger) -> dict[str, Any]:
    """Every order, stamp and account: the server side of reconciliation (``GET /admin/ledger``)."""
    db = ledger.db
    orders = [dict(zip(("order_id", "account_id", "quantity", "amount", "status", "credited_at", "payment_id"), r, strict=True))
              for r in db.execute("SELECT order_id, account_id, quantity, amount, status, credited_at, payment_id "
                                  "FROM orders ORDER BY rowid")]
    stamps = [dict(zip(("stamp_id", "account_id", "status", "serial_number", "created_at", "finished_at",
                        "document_sha256"), r, strict=True))
              for r in db.execute("SELECT stamp_id, account_id, status, serial_number, created_at, finished_at, "
                                  "doc_sha256 FROM stamps ORDER BY rowid")]
    accounts = []
    for aid, email in db.execute("SELECT account_id, email FROM accounts ORDER BY rowid"):
        q = ledger.quotas[aid]
        accounts.append({"account_id": aid, "email": email, "available": q.available, "used": q.used,
                         "reserved": q.reserved, "credited": q.credited})
    return {"time": now_iso(), "orders": orders, "stamps": stamps, "accounts": accounts}


def _rows(ledger: Ledger, keys: tuple[str, ...], sql: str) -> list[dict[str, Any]]:
    return [dict(zip(keys, r, strict=True)) for r in ledger.db.execute(sql)]


def records(ledger: Ledger) -> dict[str, Any]:
    """The durable state, straight from SQLite: the body of ``GET /admin/records``.

    Every order, payment, credit and stamp job with its state, amount, quantity,
    serial number and the client's Idempotency-Key, and each account's stored
    quota counters. Memory is not consulted, so this is what survives ``kill -9``;
    ``scenarios.reconcile`` checks it against what the clients were told.
    """
    orders = _rows(ledger, ("order_id", "account_id", "idempotency_key", "quantity", "amount", "status",
                            "payment_id", "created_at", "credited_at"),
                   "SELECT order_id, account_id, idem_key, quantity, amount, status, payment_id, created_at, "
                   "credited_at FROM orders ORDER BY rowid")
    payments = _rows(ledger, ("payment_id", "order_id", "account_id", "status", "amount", "quantity",
                              "deliveries", "created_at", "resolved_at"),
                     "SELECT p.payment_id, p.order_id, o.account_id, p.status, o.amount, o.quantity, p.deliveries, "
                     "p.created_at, p.resolved_at FROM payments p LEFT JOIN orders o USING(order_id) "
                     "ORDER BY p.rowid")
    credits = _rows(ledger, ("order_id", "account_id", "quantity", "payment_id", "credited_at"),
                    "SELECT order_id, account_id, quantity, payment_id, credited_at FROM credits ORDER BY rowid")
    stamps = _rows(ledger, ("stamp_id", "account_id", "idempotency_key", "status", "serial_number",
                            "document_sha256", "created_at", "finished_at"),
                   "SELECT stamp_id, account_id, idem_key, status, serial_number, doc_sha256, created_at, "
                   "finished_at FROM stamps ORDER BY rowid")
    accounts = _rows(ledger, ("account_id", "credited", "used", "reserved"),
                     "SELECT account_id, credited, used, reserved FROM quota ORDER BY rowid")
    return {"time": now_iso(), "orders": orders, "payments": payments, "credits": credits, "stamps": stamps,
            "accounts": accounts}


def metrics(ledger: Ledger) -> dict[str, Any]:
    """The body of ``GET /admin/metrics``.

    Counts come from memory and a few indexed COUNT queries; cheap enough to poll every second.
    """
    db = ledger.db
    orders = dict.fromkeys(ORDER_STATES, 0) | dict(db.execute("SELECT status, count(*) FROM orders GROUP BY status"))
    stamps = dict.fromkeys(STAMP_STATES, 0) | dict(db.execute("SELECT status, count(*) FROM stamps GROUP BY status"))
    return {
        "time": now_iso(),
        "resources": {"issuer": ledger.issuer.state(), "payments": ledger.payments.state()},
        "counts": {"accounts": len(ledger.quotas), "sessions": len(ledger.tokens), "orders": orders, "stamps": stamps},
        "gates": {name: g.state() for name, g in ledger.gates.items()},
        "confirmations": dict(ledger.confirmations),
        "storage": {"write_retries": ledger.store.retries, "writes_pending": ledger.store.pending},
        "logins_throttled": ledger.throttle.refusals,
    }


def prometheus(m: dict[str, Any]) -> str:
    """Render :func:`metrics` as Prometheus text exposition (version 0.0.4).

    >>> text = prometheus({"resources": {}, "counts": {"accounts": 2, "orders": {}, "stamps": {}},
    ...                    "gates": {}, "confirmations": {}})
    >>> [line for line in text.splitlines() if line.startswith("surgecast_accounts")]
    ['surgecast_accounts 2']
    """
    out: list[str] = []

    def metric(name: str, kind: str, help_: str, samples: list[tuple[dict[str, str], float]]) -> None:
        out.append(f"# HELP surgecast_{name} {help_}")
        out.append(f"# TYPE surgecast_{name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{v}"' for k, v in labels.items())
            out.append(f"surgecast_{name}{{{lab}}} {float(value):g}" if lab else f"surgecast_{name} {float(value):g}")

    res = m["resources"]
    for key, kind, help_ in [("queue_depth", "gauge", "jobs waiting in the resource queue"),
                             ("busy", "gauge", "workers serving a job"), ("workers", "gauge", "workers"),
                             ("completed", "counter", "jobs completed"), ("failed", "counter", "jobs failed"),
                             ("shed", "counter", "submissions refused because the queue was full"),
                             ("paused", "gauge", "1 if the resource is paused"),
                             ("slow_factor", "gauge", "service-time multiplier")]:
        metric(f"resource_{key}", kind, help_, [({"resource": r}, float(s[key])) for r, s in res.items()])
    c = m["counts"]
    metric("accounts", "gauge", "registered accounts", [({}, c["accounts"])])
    metric("orders", "gauge", "orders per state", [({"state": k}, v) for k, v in c["orders"].items()])
    metric("stamps", "gauge", "stamp jobs per state", [({"state": k}, v) for k, v in c["stamps"].items()])
    metric("gate_open", "gauge", "1 if the gate admits requests (open or rate)",
           [({"gate": g, "mode": s["mode"]}, s["mode"] != "closed") for g, s in m["gates"].items()])
    metric("gate_rate_per_s", "gauge", "token-bucket rate", [({"gate": g}, s["rate_per_s"]) for g, s in m["gates"].items()])
    metric("gate_burst", "gauge", "token-bucket size", [({"gate": g}, s["burst"]) for g, s in m["gates"].items()])
    metric("gate_refused", "counter", "requests refused by the gate",
           [({"gate": g}, s.get("refused", 0)) for g, s in m["gates"].items()])
    metric("payment_confirmations", "counter", "gateway confirmations by result",
           [({"result": k}, v) for k, v in m.get("confirmations", {}).items()])
    return "\n".join(out) + "\n"
