"""Reconciliation: what the clients were told against the server's durable state at the end.

A pure function of two plain structures (a run's `ledger.csv` rows and the target's
`GET /admin/records`, saved as `server_records.json`), so it can be checked on doctored
files. The client side is independent evidence: the HTTP status that acknowledged each
step (201 order, 202 payment, 202 stamp), the ids given, the quantity the client asked
for, the amount and quantity it was told, the serial numbers it saw and downloaded, and
the Idempotency-Keys it sent. Every balance compares those with the server's records,
never the server's numbers with themselves::

    >>> client = [
    ...   {"applicant_id": "1", "account_id": "A", "kind": "account", "ref": "A",
    ...    "status": "created", "http_status": "201"},
    ...   {"applicant_id": "1", "account_id": "A", "kind": "order", "ref": "O1", "quantity": "2",
    ...    "amount": "20000", "status": "pending_payment", "http_status": "201",
    ...    "quantity_told": "2", "idempotency_keys": "k1"},
    ...   {"applicant_id": "1", "account_id": "A", "kind": "payment", "ref": "O1", "quantity": "2",
    ...    "amount": "20000", "status": "paying", "http_status": "202", "payment_id": "P1"}]
    >>> server = {"orders": [{"order_id": "O1", "account_id": "A", "quantity": 2, "amount": 20000,
    ...                       "status": "paid", "payment_id": "P1", "credited_at": "t",
    ...                       "idempotency_key": "k1"}],
    ...           "payments": [{"payment_id": "P1", "order_id": "O1", "account_id": "A",
    ...                         "status": "confirmed", "amount": 20000, "quantity": 2}],
    ...           "credits": [{"order_id": "O1", "account_id": "A", "quantity": 2,
    ...                        "payment_id": "P1"}],
    ...           "stamps": [],
    ...           "accounts": [{"account_id": "A", "credited": 2, "used": 0, "reserved": 0}]}
    >>> reconcile(client, server)["ok"]
    True
    >>> import copy; good = copy.deepcopy(server)
    >>> server["payments"].clear(); server["credits"].clear()   # the 202 payment vanished
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
* `duplicated_quota`: credit beyond those orders (credited twice, or paid behind the client's
  back).
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
  `duplicated_stamps`: jobs beyond the first for the same document on one account
  (`document_sha256`).
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
    >>> server["stamps"] = [{"stamp_id": "S9", "account_id": "A", "status": "done",  # a job the
    ...                      "serial_number": "X", "idempotency_key": "zz",      # client never
    ...                      "document_sha256": "d"}]                             # asked for
    >>> r = reconcile(client, server); r["unclaimed_stamps"], r["overcharged_quota"]
    (1, 0)
    >>> server["accounts"][0]["used"] = 1                     # ... and charged for it
    >>> reconcile(client, server)["problems"]
    ['unclaimed_stamps', 'overcharged_quota']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from scenarios.reconcile_base import (
    GIVE_UP_GRACE_S,
    Notes,
    acknowledged,
    index_client,
    index_server,
)
from scenarios.reconcile_checks import check_balances, check_orders, check_payments, check_stamps

__all__ = ["FAILURES", "GIVE_UP_GRACE_S", "INFORMATION", "acknowledged", "reconcile"]

FAILURES = (
    *("unknown_orders", "lost_payments", "lost_quota", "duplicated_quota", "orphaned_payments"),
    *("wrong_quantities", "wrong_amounts", "lost_stamps", "serial_mismatches", "reissued_serials"),
    *("unclaimed_stamps", "charged_after_giving_up", "duplicated_stamps", "overcharged_quota"),
    *("undercharged_quota", "stuck_payments", "unfinished_stamps"),
)
"""The counts that must be zero for `ok`, in the order `problems` lists them."""
INFORMATION = ("declined_payments", "unanswered_payments", "unanswered_stamps")
"""The counts that are reported, never failed."""


def reconcile(
    client_rows: Iterable[Mapping[str, Any]], server: Mapping[str, Any], *, settled: bool = True
) -> dict[str, Any]:
    """Check a run's `ledger.csv` rows against `GET /admin/records` (see the module docstring).

    `settled`: the server's queues were drained, so work still paying or queued is stuck.
    """
    rows = list(client_rows)
    c, s, n = index_client(rows), index_server(server), Notes()
    check_orders(c, s, n)
    expected = check_payments(c, s, n, settled)
    check_balances(c, s, n, expected)
    check_stamps(c, s, n, settled)
    counts = {k: n.counts.get(k, 0) for k in (*FAILURES, *INFORMATION)}
    problems = [k for k in FAILURES if counts[k]]
    if n.counts.get("unknown_accounts"):
        problems.append("unknown_accounts")
    if not settled:
        counts["unfinished_stamps"] = n.counts.get("unfinished_stamps_reported", 0)
    return {
        "ok": not problems,
        "problems": problems,
        "settled": settled,
        **counts,
        "unknown_accounts": n.counts.get("unknown_accounts", 0),
        "checked_accounts": len(c["accounts"]),
        "checked_orders": len(c["orders"]),
        "checked_payments": sum(1 for r in c["payments"].values() if acknowledged(r)),
        "checked_stamps": len(c["stamps"]),
        "server_evidence": "records" if "payments" in server else "ledger",
        "details": n.details,
    }
