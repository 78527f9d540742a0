"""Reconciliation: what the clients were told against the server's durable state at the end.

A pure function of two plain structures (a run's `ledger.csv` rows and the target's
`GET /admin/records`, saved as `server_records.json`), so it can be checked on doctored
files. The client side is independent evidence: the HTTP status that acknowledged each
step (201 order, 202 payment, 202 stamp), the ids given, the quantity the client asked
for, the amount and quantity it was told, the serial numbers it saw and downloaded, and
the Idempotency-Keys it sent. Every balance compares those with the server's records,
never the server's numbers with themselves::

    >>> client = [
    ...   {"applicant_id": "1", "account_id": "A", "kind": "account", "ref": "A", "status": "created", "http_status": "201"},
    ...   {"applicant_id": "1", "account_id": "A", "kind": "order", "ref": "O1", "quantity": "2", "amount": "20000",
    ...    "status": "pending_payment", "http_status": "201", "quantity_told": "2", "idempotency_keys": "k1"},
    ...   {"applicant_id": "1", "account_id": "A", "kind": "payment", "ref": "O1", "quantity": "2", "amount": "20000",
    ...    "status": "paying", "http_status": "202", "payment_id": "P1"}]
    >>> server = {"orders": [{"order_id": "O1", "account_id": "A", "quantity": 2, "amount": 20000, "status": "paid",
    ...                       "payment_id": "P1", "credited_at": "t", "idempotency_key": "k1"}],
    ...           "payments": [{"payment_id": "P1", "order_id": "O1", "account_id": "A", "status": "confirmed",
    ...                         "amount": 20000, "quantity": 2}],
    ...           "credits": [{"order_id": "O1", "account_id": "A", "quantity": 2, "payment_id": "P1"}],
    ...           "stamps": [], "accounts": [{"account_id": "A", "credited": 2, "used": 0, "reserved": 0}]}
    >>> reconcile(client, server)["ok"]
    True
    >>> import copy; good = copy.deepcopy(server)
    >>> server["payments"].clear(); server["credits"].clear()                   # the 202 payment vanished
    >>> server["orders"][0].update(status="pending_payment", payment_id=None, credited_at=None)
    >>> server["accounts"][0]["credited"] = 0
    >>> r = reconcile(client, server); r["ok"], r["lost_payments"], r["lost_quota"], r["problems"]
    (False, 1, 2, ['lost_payments', 'lost_quota'])

Counts (quota in e-Meterai units, the rest in rows); every one but `declined_payments`,
`unanswered_payments` and the `checked_*` counts must be zero for `ok`:

* `unknown_orders`: orders the client got an id for (201) that the server does not have.
* `lost_payments`: payments the server acknowledged (202/200) that are not settled (confirmed
  and credited) nor refunded (declined, nothing credited): vanished, reset, or credited then
  taken back. `lost_quota` adds their units and any shortfall of the account's stored credit
  against the orders the client paid and the server confirmed.
* `duplicated_quota`: credit beyond those orders (credited twice, or paid behind the client's back).
* `orphaned_payments`: paid orders of the client's accounts that the client never paid.
* `wrong_quantities`: an order or credit whose quantity differs from what the client asked for,
  or an answer that told another quantity. `wrong_amounts`: an order or payment whose amount
  differs from the amount the client was told, or a told unit price unlike the run's others.
* `lost_stamps`: acknowledged stamp jobs the server does not have, or that a client saw done or
  downloaded but the server does not show done.
* `serial_mismatches`: a serial number the client saw or read from its downloaded PDF that is not
  the server's serial of that job. `reissued_serials`: a serial on two jobs (in the server's
  records or in what the clients saw).
* `unclaimed_stamps`: stamp jobs on the client's accounts that no client asked for (neither their
  id nor their Idempotency-Key is in the client ledger): quota charged for a document nobody sent.
  `duplicated_stamps`: jobs beyond the first for the same document on one account (`document_sha256`).
* `overcharged_quota` / `undercharged_quota`: the account's stored used + reserved quota against
  the stamp jobs a client asked for (by id or key) that the server did not fail (a failed job
  must return its quota).
* `stuck_payments` (pending, or an order left `paying`) and `unfinished_stamps` (queued or
  processing): with `settled=True` (the queues were drained) these are failures; a rehearsal
  that ends mid-surge passes `settled=False` and they are only reported.
* `charged_after_giving_up`: a stamp job or payment the server made more than `GIVE_UP_GRACE_S`
  after its client gave up on the request (ledger status `gave_up`): charged behind the back of
  an applicant who had stopped waiting (issue 11's lost wakeup).
* Reported, not failed: `declined_payments` (refunded); `unanswered_payments` (the client sent pay
  but got no answer and the server took it: the client still holds the order id and sees the
  quota); `unanswered_stamps` (jobs whose Idempotency-Key a client sent but whose answer it never
  got, made before it gave up or when the run's end cut it off; they are listed in `details`).

    >>> server = good
    >>> server["stamps"] = [{"stamp_id": "S9", "account_id": "A", "status": "done", "serial_number": "X",
    ...                      "idempotency_key": "zz", "document_sha256": "d"}]   # a job the client never asked for
    >>> r = reconcile(client, server); r["unclaimed_stamps"], r["overcharged_quota"]
    (1, 0)
    >>> server["accounts"][0]["used"] = 1                                          # ... and charged for it
    >>> reconcile(client, server)["problems"]
    ['unclaimed_stamps', 'overcharged_quota']
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from floor.timegrammar import unix_seconds

ACK_STATUSES = {"account": (200, 201), "order": (200, 201), "payment": (200, 202), "stamp": (200, 201, 202)}
IN_FLIGHT_STAMPS = ("queued", "processing")
SEEN_DONE = ("done", "downloaded")
_MAX_DETAILS = 200
FAILURES = ("unknown_orders", "lost_payments", "lost_quota", "duplicated_quota", "orphaned_payments",
            "wrong_quantities", "wrong_amounts", "lost_stamps", "serial_mismatches", "reissued_serials",
            "unclaimed_stamps", "charged_after_giving_up", "duplicated_stamps", "overcharged_quota",
            "undercharged_quota", "stuck_payments", "unfinished_stamps")
INFORMATION = ("declined_payments", "unanswered_payments", "unanswered_stamps")


GIVE_UP_GRACE_S = 1.0  # a job created this long after the client gave up was charged behind its back


def _after_giving_up(row: Mapping[str, Any] | None, created_at: Any) -> bool:
    """True if the client gave up on this request and the server made the job well after that."""
    if row is None or row.get("status") != "gave_up":
        return False
    gave_up, created = unix_seconds(row.get("at")), unix_seconds(created_at)
    return gave_up is not None and created is not None and created > gave_up + GIVE_UP_GRACE_S


def _int(v: Any) -> int:
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
    return _int(row.get("http_status")) in ACK_STATUSES.get(str(row.get("kind")), ())


class _Notes:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.details: list[dict[str, Any]] = []

    def add(self, count: str, n: int, problem: str, *, note: bool = True, **kw: Any) -> None:
        if n <= 0:
            return
        self.counts[count] += n
        if note and len(self.details) < _MAX_DETAILS:
            self.details.append({"problem": problem, "count": count, **kw})


def _server(server: Mapping[str, Any]) -> dict[str, Any]:
    """Index the records; an older `/admin/ledger` snapshot (no payments, credits) is filled in from orders."""
    orders = {o["order_id"]: o for o in server.get("orders", [])}
    if "payments" in server:
        payments = {p["payment_id"]: p for p in server["payments"]}
    else:
        state = {"paid": "confirmed", "failed": "failed", "paying": "pending"}
        payments = {o.get("payment_id") or oid: {"payment_id": o.get("payment_id"), "order_id": oid,
                                                 "account_id": o["account_id"], "amount": o.get("amount"),
                                                 "status": state[o["status"]]}
                    for oid, o in orders.items() if o.get("status") in state}
    by_order = {p["order_id"]: p for p in payments.values()}  # the last payment of each order
    if "credits" in server:
        credits = {c["order_id"]: c for c in server["credits"]}
    else:
        credits = {oid: {"order_id": oid, "account_id": o["account_id"], "quantity": o.get("quantity")}
                   for oid, o in orders.items() if o.get("credited_at") and o.get("status") == "paid"}
    accounts = {}
    for a in server.get("accounts", []):
        credited = a.get("credited")
        if "available" in a:  # a ledger snapshot: what the account holds is what it can spend plus what it spent
            credited = _int(a.get("available")) + _int(a.get("used")) + _int(a.get("reserved"))
        accounts[a["account_id"]] = {"credited": _int(credited), "used": _int(a.get("used")),
                                     "reserved": _int(a.get("reserved"))}
    return {"orders": orders, "payments": payments, "by_order": by_order, "credits": credits, "accounts": accounts,
            "stamps": {s["stamp_id"]: s for s in server.get("stamps", [])}}


def _client(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    by_kind: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_kind[str(r.get("kind"))].append(r)
    keys = {k: r for r in rows for k in str(r.get("idempotency_keys") or "").split()}
    return {"accounts": {r["account_id"] for r in rows if r.get("account_id")},
            "orders": {r["ref"]: r for r in by_kind["order"] if acknowledged(r)},
            "payments": {r["ref"]: r for r in by_kind["payment"] if r.get("ref")},  # sent or acknowledged
            "stamps": {r["ref"]: r for r in by_kind["stamp"] if acknowledged(r)}, "keys": keys}


def _check_orders(c: dict[str, Any], s: dict[str, Any], n: _Notes) -> None:
    unit_prices = Counter(_int(r.get("amount")) // max(1, _int(r.get("quantity")))
                          for r in c["orders"].values() if r.get("amount") not in ("", None))
    usual = unit_prices.most_common(1)[0][0] if unit_prices else None
    for oid, r in c["orders"].items():
        o = s["orders"].get(oid)
        if o is None:
            n.add("unknown_orders", 1, "unknown_order", order_id=oid, applicant_id=r.get("applicant_id"))
            continue
        asked = _int(r.get("quantity"))
        told = r.get("quantity_told")
        if _int(o.get("quantity")) != asked or (told not in ("", None) and _int(told) != asked):
            n.add("wrong_quantities", 1, "order_quantity", order_id=oid, asked=asked, told=told,
                  server=o.get("quantity"))
        if r.get("amount") not in ("", None):
            if _int(o.get("amount")) != _int(r.get("amount")):
                n.add("wrong_amounts", 1, "order_amount", order_id=oid, told=r.get("amount"), server=o.get("amount"))
            elif usual is not None and _int(r.get("amount")) != usual * asked:
                n.add("wrong_amounts", 1, "unit_price", order_id=oid, told=r.get("amount"), usual_unit_price=usual)
        credit = s["credits"].get(oid)
        if credit is not None and _int(credit.get("quantity")) != asked:
            n.add("wrong_quantities", 1, "credit_quantity", order_id=oid, asked=asked, credited=credit.get("quantity"))


def _payment_of(r: Mapping[str, Any], o: Mapping[str, Any] | None, s: dict[str, Any]) -> Mapping[str, Any] | None:
    pid = r.get("payment_id") or (o or {}).get("payment_id")
    return s["payments"].get(pid) if pid else s["by_order"].get(r.get("ref"))


def _check_payments(c: dict[str, Any], s: dict[str, Any], n: _Notes, settled: bool) -> dict[str, int]:
    """Each payment the server acknowledged: settled or refunded. Returns the units per account the client
    paid for and the server confirmed (the client side of the credit balance)."""
    expected: dict[str, int] = defaultdict(int)
    for oid, r in c["payments"].items():
        o = s["orders"].get(oid)
        p = _payment_of(r, o, s)
        qty, acked = _int(r.get("quantity")), acknowledged(r)
        aid = r.get("account_id") or (o or {}).get("account_id")
        status = (p or {}).get("status")
        if status == "confirmed":
            expected[aid] += qty
            if not acked and _after_giving_up(r, (p or {}).get("created_at")):
                n.add("charged_after_giving_up", 1, "payment_made_after_the_client_gave_up", order_id=oid,
                      created_at=(p or {}).get("created_at"), client_gave_up_at=r.get("at"))
            elif not acked:
                n.add("unanswered_payments", 1, "payment_taken_without_answer", order_id=oid)
            told = r.get("amount")
            order_agrees = o is not None and _int(o.get("amount")) == _int(told)  # else counted as order_amount
            if p is not None and told not in ("", None) and p.get("amount") is not None and order_agrees \
                    and _int(p.get("amount")) != _int(told):
                n.add("wrong_amounts", 1, "payment_amount", order_id=oid, told=r.get("amount"), charged=p.get("amount"))
            if o is None or o.get("status") != "paid" or oid not in s["credits"]:
                n.add("lost_payments", 1, "confirmed_not_credited", order_id=oid)
        elif status == "failed":
            if r.get("status") == "credited":
                n.add("lost_payments", 1, "credited_then_failed", order_id=oid)
                n.add("lost_quota", qty, "credited_then_failed", note=False)
            else:
                n.add("declined_payments", 1, "declined", order_id=oid)
        elif status == "pending" or (o is not None and o.get("status") == "paying"):
            if r.get("status") == "credited":
                n.add("lost_payments", 1, "credit_vanished", order_id=oid, server_order_status=(o or {}).get("status"))
                n.add("lost_quota", qty, "credit_vanished", note=False)
            elif settled:
                n.add("stuck_payments", 1, "payment_stuck_paying", order_id=oid, payment_id=(p or {}).get("payment_id"))
        elif acked or r.get("status") == "credited":
            n.add("lost_payments", 1, "acknowledged_payment_vanished", order_id=oid,
                  payment_id=r.get("payment_id"), server_order_status=(o or {}).get("status"))
            n.add("lost_quota", qty, "acknowledged_payment_vanished", note=False)
    return expected


def _check_balances(c: dict[str, Any], s: dict[str, Any], n: _Notes, expected: dict[str, int]) -> None:
    """Per client account: stored credit against what the client paid for; charge against its stamps."""
    pays = c["payments"]
    for oid, o in s["orders"].items():
        if o.get("account_id") in c["accounts"] and o.get("status") == "paid" and oid not in pays:
            n.add("orphaned_payments", 1, "orphaned_payment", order_id=oid, account_id=o.get("account_id"))
    holding: dict[str, int] = defaultdict(int)  # jobs a client asked for (by id or key) that did not fail
    for sid, st in s["stamps"].items():
        asked = sid in c["stamps"] or st.get("idempotency_key") in c["keys"]
        if asked and st.get("status") != "failed":
            holding[st.get("account_id")] += 1
    for aid in sorted(c["accounts"]):
        a = s["accounts"].get(aid)
        if a is None:
            n.add("lost_quota", 0, "unknown_account", account_id=aid)
            n.counts["unknown_accounts"] += 1
            continue
        want = expected.get(aid, 0)
        n.add("lost_quota", want - a["credited"], "balance_short", account_id=aid, credited=a["credited"],
              client_paid_and_confirmed=want)
        n.add("duplicated_quota", a["credited"] - want, "balance_over", account_id=aid, credited=a["credited"],
              client_paid_and_confirmed=want)
        charged = a["used"] + a["reserved"]
        n.add("overcharged_quota", charged - holding[aid], "charged_beyond_client_stamps", account_id=aid,
              charged=charged, client_stamps_not_failed=holding[aid])
        n.add("undercharged_quota", holding[aid] - charged, "client_stamps_not_charged", account_id=aid,
              charged=charged, client_stamps_not_failed=holding[aid])


def _check_stamps(c: dict[str, Any], s: dict[str, Any], n: _Notes, settled: bool) -> None:
    seen: dict[str, str] = {}
    for sid, r in c["stamps"].items():
        st = s["stamps"].get(sid)
        if st is None:
            n.add("lost_stamps", 1, "unknown_stamp", stamp_id=sid, applicant_id=r.get("applicant_id"))
            continue
        if r.get("status") in SEEN_DONE and st.get("status") != "done":
            n.add("lost_stamps", 1, "stamp_not_done_on_server", stamp_id=sid, server_status=st.get("status"))
        for col in ("serial_number", "document_serial"):
            serial = r.get(col)
            if not serial:
                continue
            if serial != st.get("serial_number"):
                n.add("serial_mismatches", 1, "serial_mismatch", stamp_id=sid, client=serial, which=col,
                      server=st.get("serial_number"))
            if seen.setdefault(serial, sid) != sid:
                n.add("reissued_serials", 1, "serial_seen_on_two_jobs", serial=serial, stamp_ids=[seen[serial], sid])
        if r.get("status") == "downloaded" and not r.get("document_serial", "x"):
            n.add("serial_mismatches", 1, "downloaded_document_has_no_serial", stamp_id=sid)
    owners: dict[str, list[str]] = defaultdict(list)
    per_doc: Counter[tuple[str, str]] = Counter()
    for sid, st in s["stamps"].items():
        if st.get("serial_number"):
            owners[st["serial_number"]].append(sid)
        if st.get("account_id") not in c["accounts"]:
            continue
        if st.get("status") in IN_FLIGHT_STAMPS and settled:
            n.add("unfinished_stamps", 1, "stamp_stuck", stamp_id=sid, server_status=st.get("status"))
        elif st.get("status") in IN_FLIGHT_STAMPS:
            n.counts["unfinished_stamps_reported"] += 1
        if sid in c["stamps"]:
            pass
        elif _after_giving_up(c["keys"].get(st.get("idempotency_key")), st.get("created_at")):
            n.add("charged_after_giving_up", 1, "stamp_made_after_the_client_gave_up", stamp_id=sid,
                  account_id=st.get("account_id"), created_at=st.get("created_at"),
                  client_gave_up_at=c["keys"][st["idempotency_key"]].get("at"))
        elif st.get("idempotency_key") in c["keys"]:
            n.add("unanswered_stamps", 1, "stamp_answer_never_arrived", stamp_id=sid, account_id=st.get("account_id"),
                  server_status=st.get("status"))
        else:
            n.add("unclaimed_stamps", 1, "stamp_no_client_asked_for", stamp_id=sid, account_id=st.get("account_id"),
                  server_status=st.get("status"))
        if st.get("document_sha256") and st.get("status") != "failed":
            per_doc[(st["account_id"], st["document_sha256"])] += 1
    for serial, ids in owners.items():
        n.add("reissued_serials", len(ids) - 1, "serial_on_two_jobs", serial=serial, stamp_ids=ids)
    for (aid, digest), k in sorted(per_doc.items()):
        n.add("duplicated_stamps", k - 1, "duplicated_stamp", account_id=aid, document_sha256=digest, jobs=k)


def reconcile(client_rows: Iterable[Mapping[str, Any]], server: Mapping[str, Any], *,
              settled: bool = True) -> dict[str, Any]:
    """Check a run's `ledger.csv` rows against `GET /admin/records` (see the module docstring).

    `settled`: the server's queues were drained, so work still paying or queued is stuck.
    """
    rows = list(client_rows)
    c, s, n = _client(rows), _server(server), _Notes()
    _check_orders(c, s, n)
    expected = _check_payments(c, s, n, settled)
    _check_balances(c, s, n, expected)
    _check_stamps(c, s, n, settled)
    counts = {k: n.counts.get(k, 0) for k in (*FAILURES, *INFORMATION)}
    problems = [k for k in FAILURES if counts[k]] + (["unknown_accounts"] if n.counts.get("unknown_accounts") else [])
    if not settled:
        counts["unfinished_stamps"] = n.counts.get("unfinished_stamps_reported", 0)
    return {"ok": not problems, "problems": problems, "settled": settled, **counts,
            "unknown_accounts": n.counts.get("unknown_accounts", 0),
            "checked_accounts": len(c["accounts"]), "checked_orders": len(c["orders"]),
            "checked_payments": sum(1 for r in c["payments"].values() if acknowledged(r)),
            "checked_stamps": len(c["stamps"]), "server_evidence": "records" if "payments" in server else "ledger",
            "details": n.details}
