"""Reconciliation: the client's ledger (what applicants saw) against the server's ledger.

A pure function of two plain structures, so it can be checked on doctored data::

    >>> client = [
    ...   {"applicant_id": "1", "account_id": "A", "kind": "account", "ref": "A", "quantity": "", "status": "created"},
    ...   {"applicant_id": "1", "account_id": "A", "kind": "order", "ref": "O1", "quantity": "2", "status": "pending_payment"},
    ...   {"applicant_id": "1", "account_id": "A", "kind": "payment", "ref": "O1", "quantity": "2", "status": "credited"}]
    >>> server = {"orders": [{"order_id": "O1", "account_id": "A", "quantity": 2, "status": "paid", "credited_at": "t"}],
    ...           "stamps": [], "accounts": [{"account_id": "A", "available": 2, "used": 0, "reserved": 0, "credited": 2}]}
    >>> reconcile(client, server)["ok"]
    True
    >>> server["orders"][0].update(status="paying", credited_at=None)   # the payment got lost
    >>> r = reconcile(client, server); r["ok"], r["lost_quota"]
    (False, 2)

Counts (quota in e-Meterai units, the rest in rows):
* `lost_quota`: units the client paid for (the server accepted the payment, or the client saw the quota) that the server never credited, plus credited units missing from the account balance.
* `duplicated_quota`: units credited beyond the paid orders (an order credited twice, a balance above its orders).
* `orphaned_payments`: server orders of the client's accounts that are paid but that the client never paid (double payment).
* `unknown_orders`: orders the client got an id for that the server does not have.
* `lost_stamps`: stamp jobs the server accepted (the client holds their id) that it does not have, or a stamp the client downloaded that the server does not show done.
* `duplicated_stamps`: stamp jobs beyond the first for the same document on the same account
  (the server's `document_sha256`): an e-Meterai charged twice for one document, as when a
  client retries an upload with a new Idempotency-Key after a lost response.
* `unfinished_stamps`: stamps still queued or processing (not a failure: the issuer may still be down).
`ok` is true when every count but `unfinished_stamps` is zero.

    >>> server["orders"][0].update(status="paid", credited_at="t")
    >>> server["stamps"] = [{"stamp_id": s, "account_id": "A", "status": "done", "document_sha256": "d1"}
    ...                     for s in ("S1", "S2")]                  # one document, stamped twice
    >>> r = reconcile(client, server); r["ok"], r["duplicated_stamps"]
    (False, 1)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

PAID = ("paid",)
IN_FLIGHT_STAMPS = ("queued", "processing")
_MAX_DETAILS = 200


def _int(v: Any) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return 0


def reconcile(client_rows: Iterable[Mapping[str, Any]], server: Mapping[str, Any]) -> dict[str, Any]:
    """Compare a run's `ledger.csv` rows with the target's `GET /admin/ledger` (see the module docstring)."""
    rows = list(client_rows)
    s_orders = {o["order_id"]: o for o in server.get("orders", [])}
    s_stamps = {s["stamp_id"]: s for s in server.get("stamps", [])}
    s_accounts = {a["account_id"]: a for a in server.get("accounts", [])}
    details: list[dict[str, Any]] = []

    def note(kind: str, **kw: Any) -> None:
        if len(details) < _MAX_DETAILS:
            details.append({"problem": kind, **kw})

    accounts = {r["account_id"] for r in rows if r.get("account_id")}
    client_orders = {r["ref"]: r for r in rows if r["kind"] == "order" and r.get("ref")}
    client_paid = {r["ref"]: r for r in rows if r["kind"] == "payment" and r.get("ref")}
    client_stamps = {r["ref"]: r for r in rows if r["kind"] == "stamp" and r.get("ref")}

    lost = dup = orphaned = unknown = lost_stamps = unfinished = 0
    for oid in client_orders:
        if oid not in s_orders:
            unknown += 1
            note("unknown_order", order_id=oid, applicant_id=client_orders[oid].get("applicant_id"))
    for oid, pay in client_paid.items():
        o = s_orders.get(oid)
        if o is None:
            if oid in client_orders:
                continue  # already counted as unknown_order
            unknown += 1
            note("unknown_order", order_id=oid, applicant_id=pay.get("applicant_id"))
            continue
        credited = o.get("credited_at") is not None and o.get("status") in PAID
        settled_failed = o.get("status") == "failed"
        if pay.get("status") == "credited" and not credited:
            lost += _int(o.get("quantity"))
            note("credit_vanished", order_id=oid, server_status=o.get("status"))
        elif o.get("status") in PAID and o.get("credited_at") is None:
            lost += _int(o.get("quantity"))
            note("paid_not_credited", order_id=oid)
        elif settled_failed and pay.get("status") == "credited":
            lost += _int(o.get("quantity"))
            note("credited_then_failed", order_id=oid)
    # Server side of the client's accounts: orphaned payments and balances.
    credited_by_account: dict[str, int] = defaultdict(int)
    for oid, o in s_orders.items():
        aid = o.get("account_id")
        if aid not in accounts:
            continue
        if o.get("status") in PAID and o.get("credited_at") is not None:
            credited_by_account[aid] += _int(o.get("quantity"))
        if o.get("status") in PAID and oid not in client_paid:
            orphaned += 1
            note("orphaned_payment", order_id=oid, account_id=aid)
    for aid in sorted(accounts):
        a = s_accounts.get(aid)
        if a is None:
            note("unknown_account", account_id=aid)
            unknown += 0
            continue
        held = _int(a.get("available")) + _int(a.get("used")) + _int(a.get("reserved"))
        expected = credited_by_account.get(aid, 0)
        if held < expected:
            lost += expected - held
            note("balance_short", account_id=aid, held=held, credited_orders=expected)
        elif held > expected:
            dup += held - expected
            note("balance_over", account_id=aid, held=held, credited_orders=expected)
    for sid, st in client_stamps.items():
        srv = s_stamps.get(sid)
        if srv is None:
            lost_stamps += 1
            note("unknown_stamp", stamp_id=sid, applicant_id=st.get("applicant_id"))
        elif st.get("status") in ("done", "downloaded") and srv.get("status") != "done":
            lost_stamps += 1
            note("stamp_not_done_on_server", stamp_id=sid, server_status=srv.get("status"))
        elif srv.get("status") in IN_FLIGHT_STAMPS:
            unfinished += 1
    # The same document stamped more than once on one account: charged twice.
    per_document: dict[tuple[str, str], int] = defaultdict(int)
    for st in s_stamps.values():
        if st.get("account_id") in accounts and st.get("document_sha256") and st.get("status") != "failed":
            per_document[(st["account_id"], st["document_sha256"])] += 1
    dup_stamps = 0
    for (aid, digest), n in sorted(per_document.items()):
        if n > 1:
            dup_stamps += n - 1
            note("duplicated_stamp", account_id=aid, document_sha256=digest, jobs=n)
    ok = lost == dup == orphaned == unknown == lost_stamps == dup_stamps == 0 and not any(
        d["problem"] == "unknown_account" for d in details)
    return {"ok": ok, "lost_quota": lost, "duplicated_quota": dup, "orphaned_payments": orphaned,
            "unknown_orders": unknown, "lost_stamps": lost_stamps, "duplicated_stamps": dup_stamps,
            "unfinished_stamps": unfinished,
            "checked_accounts": len(accounts), "checked_orders": len(client_orders),
            "checked_stamps": len(client_stamps), "details": details}
