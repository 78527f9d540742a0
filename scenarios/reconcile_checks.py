"""The checks of reconciliation: orders, payments, balances and stamps, each adding to the notes.

Each reads the two indexes of `scenarios.reconcile_base` (`c`: the client's, `s`: the server's)
and adds its counts and details to `n` (`Notes`); `scenarios.reconcile.reconcile` runs them in
order and says what the counts mean.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

from scenarios.reconcile_base import (
    IN_FLIGHT_STAMPS,
    SEEN_DONE,
    Notes,
    acknowledged,
    after_giving_up,
    as_int,
    payment_of,
)

Row = Mapping[str, Any]


# ---- orders ----------------------------------------------------------------------------------
def check_orders(c: dict[str, Any], s: dict[str, Any], n: Notes) -> None:
    """Each order the client got an id for: known, of the quantity and amount it was told."""
    unit_prices = Counter(
        as_int(r.get("amount")) // max(1, as_int(r.get("quantity")))
        for r in c["orders"].values()
        if r.get("amount") not in ("", None)
    )
    usual = unit_prices.most_common(1)[0][0] if unit_prices else None
    for oid, r in c["orders"].items():
        o = s["orders"].get(oid)
        if o is None:
            n.add(
                "unknown_orders",
                1,
                "unknown_order",
                order_id=oid,
                applicant_id=r.get("applicant_id"),
            )
            continue
        _check_order(oid, r, o, s["credits"].get(oid), usual, n)


def _check_order(oid: str, r: Row, o: Row, credit: Row | None, usual: int | None, n: Notes) -> None:
    """One order against the client's row: quantity asked and told, amount, unit price, credit."""
    asked = as_int(r.get("quantity"))
    told = r.get("quantity_told")
    if as_int(o.get("quantity")) != asked or (told not in ("", None) and as_int(told) != asked):
        n.add(
            "wrong_quantities",
            1,
            "order_quantity",
            order_id=oid,
            asked=asked,
            told=told,
            server=o.get("quantity"),
        )
    if r.get("amount") not in ("", None):
        if as_int(o.get("amount")) != as_int(r.get("amount")):
            n.add(
                "wrong_amounts",
                1,
                "order_amount",
                order_id=oid,
                told=r.get("amount"),
                server=o.get("amount"),
            )
        elif usual is not None and as_int(r.get("amount")) != usual * asked:
            n.add(
                "wrong_amounts",
                1,
                "unit_price",
                order_id=oid,
                told=r.get("amount"),
                usual_unit_price=usual,
            )
    if credit is not None and as_int(credit.get("quantity")) != asked:
        n.add(
            "wrong_quantities",
            1,
            "credit_quantity",
            order_id=oid,
            asked=asked,
            credited=credit.get("quantity"),
        )


# ---- payments --------------------------------------------------------------------------------
def check_payments(c: dict[str, Any], s: dict[str, Any], n: Notes, settled: bool) -> dict[str, int]:
    """Each payment the server acknowledged: settled or refunded. Returns the units per account
    the client paid for and the server confirmed (the client side of the credit balance)."""
    expected: dict[str, int] = defaultdict(int)
    for oid, r in c["payments"].items():
        o = s["orders"].get(oid)
        p = payment_of(r, o, s)
        qty, acked = as_int(r.get("quantity")), acknowledged(r)
        aid = r.get("account_id") or (o or {}).get("account_id")
        status = (p or {}).get("status")
        if status == "confirmed":
            expected[aid] += qty
            _confirmed_payment(oid, r, o, p, acked, oid in s["credits"], n)
        else:
            _unsettled_payment(oid, r, o, p, status, qty=qty, acked=acked, settled=settled, n=n)
    return expected


def _confirmed_payment(
    oid: str, r: Row, o: Row | None, p: Row | None, acked: bool, credited: bool, n: Notes
) -> None:
    """A payment the server confirmed: answered (or made after its client gave up), charged the
    amount told, and credited to a paid order."""
    if not acked and after_giving_up(r, (p or {}).get("created_at")):
        n.add(
            "charged_after_giving_up",
            1,
            "payment_made_after_the_client_gave_up",
            order_id=oid,
            created_at=(p or {}).get("created_at"),
            client_gave_up_at=r.get("at"),
        )
    elif not acked:
        n.add("unanswered_payments", 1, "payment_taken_without_answer", order_id=oid)
    told = r.get("amount")
    # else counted as order_amount
    order_agrees = o is not None and as_int(o.get("amount")) == as_int(told)
    if (
        p is not None
        and told not in ("", None)
        and p.get("amount") is not None
        and order_agrees
        and as_int(p.get("amount")) != as_int(told)
    ):
        n.add(
            "wrong_amounts",
            1,
            "payment_amount",
            order_id=oid,
            told=r.get("amount"),
            charged=p.get("amount"),
        )
    if o is None or o.get("status") != "paid" or not credited:
        n.add("lost_payments", 1, "confirmed_not_credited", order_id=oid)


def _unsettled_payment(
    oid: str,
    r: Row,
    o: Row | None,
    p: Row | None,
    status: Any,
    *,
    qty: int,
    acked: bool,
    settled: bool,
    n: Notes,
) -> None:
    """A payment the server did not confirm: refunded (declined), stuck, or lost."""
    if status == "failed":
        if r.get("status") == "credited":
            _lost_payment(n, "credited_then_failed", qty, order_id=oid)
        else:
            n.add("declined_payments", 1, "declined", order_id=oid)
    elif status == "pending" or (o is not None and o.get("status") == "paying"):
        if r.get("status") == "credited":
            _lost_payment(
                n, "credit_vanished", qty, order_id=oid, server_order_status=(o or {}).get("status")
            )
        elif settled:
            n.add(
                "stuck_payments",
                1,
                "payment_stuck_paying",
                order_id=oid,
                payment_id=(p or {}).get("payment_id"),
            )
    elif acked or r.get("status") == "credited":
        _lost_payment(
            n,
            "acknowledged_payment_vanished",
            qty,
            order_id=oid,
            payment_id=r.get("payment_id"),
            server_order_status=(o or {}).get("status"),
        )


def _lost_payment(n: Notes, problem: str, qty: int, **detail: Any) -> None:
    """A payment the server acknowledged and lost: one lost payment (with `detail`), and its
    `qty` units of quota lost with it."""
    n.add("lost_payments", 1, problem, **detail)
    n.add("lost_quota", qty, problem, note=False)


# ---- balances --------------------------------------------------------------------------------
def check_balances(
    c: dict[str, Any], s: dict[str, Any], n: Notes, expected: dict[str, int]
) -> None:
    """Per client account: stored credit against what the client paid for; charge against its
    stamps."""
    pays = c["payments"]
    for oid, o in s["orders"].items():
        if o.get("account_id") in c["accounts"] and o.get("status") == "paid" and oid not in pays:
            n.add(
                "orphaned_payments",
                1,
                "orphaned_payment",
                order_id=oid,
                account_id=o.get("account_id"),
            )
    holding = _holding(c, s)
    for aid in sorted(c["accounts"]):
        a = s["accounts"].get(aid)
        if a is None:
            n.add("lost_quota", 0, "unknown_account", account_id=aid)
            n.counts["unknown_accounts"] += 1
            continue
        _account_balance(aid, a, expected.get(aid, 0), holding[aid], n)


def _holding(c: dict[str, Any], s: dict[str, Any]) -> dict[str, int]:
    """Per account: the stamp jobs a client asked for (by id or key) that did not fail."""
    holding: dict[str, int] = defaultdict(int)
    for sid, st in s["stamps"].items():
        asked = sid in c["stamps"] or st.get("idempotency_key") in c["keys"]
        if asked and st.get("status") != "failed":
            holding[st.get("account_id")] += 1
    return holding


def _account_balance(aid: str, a: dict[str, int], want: int, held: int, n: Notes) -> None:
    """One account's stored credit against `want` (paid and confirmed), and its charge (used +
    reserved) against `held` (the client's stamp jobs that did not fail); each gap is counted
    the way it goes (a negative one adds nothing)."""
    credit = {"account_id": aid, "credited": a["credited"], "client_paid_and_confirmed": want}
    n.add("lost_quota", want - a["credited"], "balance_short", **credit)
    n.add("duplicated_quota", a["credited"] - want, "balance_over", **credit)
    charged = a["used"] + a["reserved"]
    charge = {"account_id": aid, "charged": charged, "client_stamps_not_failed": held}
    n.add("overcharged_quota", charged - held, "charged_beyond_client_stamps", **charge)
    n.add("undercharged_quota", held - charged, "client_stamps_not_charged", **charge)


# ---- stamps ----------------------------------------------------------------------------------
def check_stamps(c: dict[str, Any], s: dict[str, Any], n: Notes, settled: bool) -> None:
    """The stamps the clients were answered for, then every job on the clients' accounts."""
    _client_stamps(c, s, n)
    _server_stamps(c, s, n, settled)


def _client_stamps(c: dict[str, Any], s: dict[str, Any], n: Notes) -> None:
    """Each acknowledged stamp job: known, done if the client saw it done, with the serials seen."""
    seen: dict[str, str] = {}
    for sid, r in c["stamps"].items():
        st = s["stamps"].get(sid)
        if st is None:
            n.add(
                "lost_stamps", 1, "unknown_stamp", stamp_id=sid, applicant_id=r.get("applicant_id")
            )
            continue
        if r.get("status") in SEEN_DONE and st.get("status") != "done":
            n.add(
                "lost_stamps",
                1,
                "stamp_not_done_on_server",
                stamp_id=sid,
                server_status=st.get("status"),
            )
        for col in ("serial_number", "document_serial"):
            serial = r.get(col)
            if not serial:
                continue
            if serial != st.get("serial_number"):
                n.add(
                    "serial_mismatches",
                    1,
                    "serial_mismatch",
                    stamp_id=sid,
                    client=serial,
                    which=col,
                    server=st.get("serial_number"),
                )
            if seen.setdefault(serial, sid) != sid:
                n.add(
                    "reissued_serials",
                    1,
                    "serial_seen_on_two_jobs",
                    serial=serial,
                    stamp_ids=[seen[serial], sid],
                )
        if r.get("status") == "downloaded" and not r.get("document_serial", "x"):
            n.add("serial_mismatches", 1, "downloaded_document_has_no_serial", stamp_id=sid)


def _server_stamps(c: dict[str, Any], s: dict[str, Any], n: Notes, settled: bool) -> None:
    """Every job on the clients' accounts: finished, asked for, one per document; serials unique."""
    owners: dict[str, list[str]] = defaultdict(list)
    per_doc: Counter[tuple[str, str]] = Counter()
    for sid, st in s["stamps"].items():
        if st.get("serial_number"):
            owners[st["serial_number"]].append(sid)
        if st.get("account_id") not in c["accounts"]:
            continue
        if st.get("status") in IN_FLIGHT_STAMPS and settled:
            n.add(
                "unfinished_stamps", 1, "stamp_stuck", stamp_id=sid, server_status=st.get("status")
            )
        elif st.get("status") in IN_FLIGHT_STAMPS:
            n.counts["unfinished_stamps_reported"] += 1
        if sid not in c["stamps"]:
            _unanswered_stamp(c, sid, st, n)
        if st.get("document_sha256") and st.get("status") != "failed":
            per_doc[(st["account_id"], st["document_sha256"])] += 1
    for serial, ids in owners.items():
        n.add("reissued_serials", len(ids) - 1, "serial_on_two_jobs", serial=serial, stamp_ids=ids)
    for (aid, digest), k in sorted(per_doc.items()):
        n.add(
            "duplicated_stamps",
            k - 1,
            "duplicated_stamp",
            account_id=aid,
            document_sha256=digest,
            jobs=k,
        )


def _unanswered_stamp(c: dict[str, Any], sid: str, st: Row, n: Notes) -> None:
    """A job no client was answered for: made after its client gave up, answered too late, or
    asked for by nobody."""
    if after_giving_up(c["keys"].get(st.get("idempotency_key")), st.get("created_at")):
        n.add(
            "charged_after_giving_up",
            1,
            "stamp_made_after_the_client_gave_up",
            stamp_id=sid,
            account_id=st.get("account_id"),
            created_at=st.get("created_at"),
            client_gave_up_at=c["keys"][st["idempotency_key"]].get("at"),
        )
    else:
        count, problem = (
            ("unanswered_stamps", "stamp_answer_never_arrived")
            if st.get("idempotency_key") in c["keys"]
            else ("unclaimed_stamps", "stamp_no_client_asked_for")
        )
        n.add(
            count,
            1,
            problem,
            stamp_id=sid,
            account_id=st.get("account_id"),
            server_status=st.get("status"),
        )
