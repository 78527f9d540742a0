"""What reconciliation compares and keeps: the client's ledger rows and the server's records,
each indexed by id, and the notes (counts and details) the checks add to.

    >>> c = index_client([{"kind": "order", "ref": "O1", "account_id": "A", "http_status": "201"}])
    >>> sorted(c["orders"]), sorted(c["accounts"])
    (['O1'], ['A'])
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from floor.timegrammar import unix_seconds

ACK_STATUSES = {
    "account": (200, 201),
    "order": (200, 201),
    "payment": (200, 202),
    "stamp": (200, 201, 202),
}
IN_FLIGHT_STAMPS = ("queued", "processing")
SEEN_DONE = ("done", "downloaded")
MAX_DETAILS = 200
GIVE_UP_GRACE_S = 1.0
"""A job created this long (s) after its client gave up was charged behind the client's back."""


def after_giving_up(row: Mapping[str, Any] | None, created_at: Any) -> bool:
    """True if the client gave up on this request and the server made the job well after that."""
    if row is None or row.get("status") != "gave_up":
        return False
    gave_up, created = unix_seconds(row.get("at")), unix_seconds(created_at)
    return gave_up is not None and created is not None and created > gave_up + GIVE_UP_GRACE_S


def as_int(v: Any) -> int:
    """`v` as a whole number (a CSV cell, a JSON number); 0 when it is not one."""
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return 0


def acknowledged(row: Mapping[str, Any]) -> bool:
    """True if the server acknowledged this client step (its 2xx carried the id in `ref`).

    A ledger.csv written before the `http_status` column counts any row past `sent`.

    >>> acknowledged({"kind": "stamp", "ref": "stp_1", "http_status": "202"})
    True
    >>> acknowledged({"kind": "stamp", "ref": "", "status": "sent", "http_status": ""})
    False
    """
    if not row.get("ref"):
        return False
    if "http_status" not in row:
        return row.get("status") != "sent"
    return as_int(row.get("http_status")) in ACK_STATUSES.get(str(row.get("kind")), ())


class Notes:
    """The counts the checks add to, and the first `MAX_DETAILS` details of what they found."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.details: list[dict[str, Any]] = []

    def add(self, count: str, n: int, problem: str, *, note: bool = True, **kw: Any) -> None:
        """Add `n` (if above 0) to `count`, and a detail naming `problem` unless `note` is False."""
        if n <= 0:
            return
        self.counts[count] += n
        if note and len(self.details) < MAX_DETAILS:
            self.details.append({"problem": problem, "count": count, **kw})


def index_server(server: Mapping[str, Any]) -> dict[str, Any]:
    """Index the records; an older `/admin/ledger` snapshot (no payments, credits) is filled in
    from orders."""
    orders = {o["order_id"]: o for o in server.get("orders", [])}
    if "payments" in server:
        payments = {p["payment_id"]: p for p in server["payments"]}
    else:
        payments = _payments_from_orders(orders)
    by_order = {p["order_id"]: p for p in payments.values()}  # the last payment of each order
    if "credits" in server:
        credits = {c["order_id"]: c for c in server["credits"]}
    else:
        credits = {
            oid: {"order_id": oid, "account_id": o["account_id"], "quantity": o.get("quantity")}
            for oid, o in orders.items()
            if o.get("credited_at") and o.get("status") == "paid"
        }
    accounts = {}
    for a in server.get("accounts", []):
        credited = a.get("credited")
        if "available" in a:
            # a ledger snapshot: what the account holds is what it can spend plus what it spent
            spent = as_int(a.get("used")) + as_int(a.get("reserved"))
            credited = as_int(a.get("available")) + spent
        accounts[a["account_id"]] = {
            "credited": as_int(credited),
            "used": as_int(a.get("used")),
            "reserved": as_int(a.get("reserved")),
        }
    return {
        "orders": orders,
        "payments": payments,
        "by_order": by_order,
        "credits": credits,
        "accounts": accounts,
        "stamps": {s["stamp_id"]: s for s in server.get("stamps", [])},
    }


def _payments_from_orders(orders: dict[str, Any]) -> dict[str, Any]:
    """The payments of a ledger snapshot, one per order that got as far as paying."""
    state = {"paid": "confirmed", "failed": "failed", "paying": "pending"}
    return {
        o.get("payment_id") or oid: {
            "payment_id": o.get("payment_id"),
            "order_id": oid,
            "account_id": o["account_id"],
            "amount": o.get("amount"),
            "status": state[o["status"]],
        }
        for oid, o in orders.items()
        if o.get("status") in state
    }


def index_client(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The client's accounts, acknowledged orders and stamps, payments sent, and the rows by the
    Idempotency-Keys they sent."""
    by_kind: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[str(r.get("kind"))].append(r)
    keys = {k: r for r in rows for k in str(r.get("idempotency_keys") or "").split()}
    return {
        "accounts": {r["account_id"] for r in rows if r.get("account_id")},
        "orders": {r["ref"]: r for r in by_kind["order"] if acknowledged(r)},
        # sent or acknowledged
        "payments": {r["ref"]: r for r in by_kind["payment"] if r.get("ref")},
        "stamps": {r["ref"]: r for r in by_kind["stamp"] if acknowledged(r)},
        "keys": keys,
    }


def payment_of(
    r: Mapping[str, Any], o: Mapping[str, Any] | None, s: dict[str, Any]
) -> Mapping[str, Any] | None:
    """The server's payment of client payment row `r` (by its id, its order's, or the order)."""
    pid = r.get("payment_id") or (o or {}).get("payment_id")
    return s["payments"].get(pid) if pid else s["by_order"].get(r.get("ref"))
