"""The catalogue of drills: each `Drill(fault, after, observe)` row with its functions (`after`
only where the drill acts once the load ended); `describe()` lists them. The runner calls them
without knowing any drill's name."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from surgecast.drills.context import Drill, DrillContext


# ---- the faults ----------------------------------------------------------------------------------
def _steps_errors(summary: dict[str, Any], *steps: str) -> int:
    s = summary.get("steps") or {}
    return sum(int((s.get(k) or {}).get("errors") or 0) for k in (steps or s.keys()))


def _kill_fault(ctx: DrillContext) -> None:
    # Hold the gateway and the issuer for the last second before the kill, so the kill finds
    # payments answered 202 but unconfirmed and stamp jobs answered 202 but queued: the work a
    # restart must not drop. The pause lives in memory only; the restarted testbed runs freely.
    if not ctx.sleep_until(3.0):
        return
    ctx.admin("POST", "/admin/faults", {"payments": "pause", "issuer": "pause"})
    ctx.event("hold_before_kill", payments="pause", issuer="pause")
    if not ctx.sleep_until(4.0):
        return
    res = (ctx.metrics() or {}).get("resources") or {}
    ctx.observed["payments_pending_at_kill"] = int(
        (res.get("payments") or {}).get("queue_depth") or 0
    )
    ctx.observed["stamps_pending_at_kill"] = int((res.get("issuer") or {}).get("queue_depth") or 0)
    port = ctx.tb.port
    ctx.event(
        "sigkill",
        pid=ctx.tb.proc.pid if ctx.tb.proc else None,
        port=port,
        payments_pending=ctx.observed["payments_pending_at_kill"],
        stamps_pending=ctx.observed["stamps_pending_at_kill"],
    )
    ctx.tb.kill()
    ctx.observed["killed"] = True
    ctx.stop.wait(1.0)  # down for a second: clients see refused connections
    ctx.event("restart", port=port)
    ctx.tb.restart()
    ctx.observed["restarted_at"] = time.time()
    ctx.observed["same_port"] = ctx.tb.port == port
    ctx.event("back", port=ctx.tb.port, same_port=ctx.tb.port == port)


def _kill_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    errors = _steps_errors(run["summary"])
    back = ctx.observed.get("restarted_at")
    after = sum(
        1
        for a in run["arrivals"]
        if a.get("outcome") == "completed" and back and a.get("started_unix", 0) > back
    )
    pays, stamps = (
        ctx.observed.get("payments_pending_at_kill", 0),
        ctx.observed.get("stamps_pending_at_kill", 0),
    )
    ok = (
        bool(ctx.observed.get("killed"))
        and bool(ctx.observed.get("same_port"))
        and errors > 0
        and after > 0
        and pays > 0
        and stamps > 0
    )
    return ok, (
        f"killed={bool(ctx.observed.get('killed'))}, restarted on the same port="
        f"{bool(ctx.observed.get('same_port'))}, unconfirmed payments at the kill={pays}, queued "
        f"stamp jobs at the kill={stamps}, client request errors={errors}, "
        f"journeys started after the restart and completed={after}"
    )


def _outage_fault(ctx: DrillContext) -> None:
    if not ctx.sleep_until(3.0):
        return
    state = ctx.admin("POST", "/admin/faults", {"issuer": "pause"})
    ctx.event("issuer_pause", state=state["issuer"])
    deepest = 0
    while (
        ctx.sleep_until(time.time() - ctx.load_start + 0.25) and time.time() < ctx.load_start + 8.0
    ):
        m = ctx.metrics()
        if m:
            deepest = max(deepest, int(m["resources"]["issuer"]["queue_depth"]))
    ctx.observed["paused_queue_max"] = deepest
    state = ctx.admin("POST", "/admin/faults", {"issuer": "resume"})
    ctx.event("issuer_resume", state=state["issuer"], queue_max_while_paused=deepest)


def _outage_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    deepest = int(ctx.observed.get("paused_queue_max", 0))
    return deepest > 0, f"stamp jobs queued behind the paused issuer (most at once)={deepest}"


CHAOS = {"payment_duplicate_ratio": 0.5, "payment_reorder": True, "payment_failure_ratio": 0.2}


def _chaos_fault(ctx: DrillContext) -> None:
    state = ctx.admin("POST", "/admin/faults", CHAOS)
    ctx.event("payment_chaos", **{k: state[k] for k in CHAOS})


def _chaos_after(ctx: DrillContext) -> None:
    """After the load: deliver late confirmations by hand, a failure and a repeat of paid
    payments."""
    ledger = ctx.admin("GET", "/admin/ledger")
    paid = [
        o["payment_id"] for o in ledger["orders"] if o["status"] == "paid" and o.get("payment_id")
    ][:5]
    results: Counter[str] = Counter()
    for pid in paid:
        for outcome in ("failed", "confirmed"):
            r = ctx.admin(
                "POST", "/admin/gateway/confirmations", {"payment_id": pid, "outcome": outcome}
            )
            results[r["result"]] += 1
    ctx.observed["late_confirmations"] = dict(results)
    ctx.event("late_confirmations", payments=len(paid), results=dict(results))


def _chaos_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    m = ctx.metrics() or {}
    conf = m.get("confirmations") or {}
    failed = int(((m.get("counts") or {}).get("orders") or {}).get("failed") or 0)
    inversions = _reordered_payments(ctx.records())
    late = ctx.observed.get("late_confirmations") or {}
    ok = conf.get("duplicate", 0) > 0 and failed > 0 and inversions > 0 and sum(late.values()) > 0
    return ok, (
        f"duplicate confirmations={conf.get('duplicate', 0)}, declined payments={failed}, "
        f"confirmations applied out of payment order={inversions}, late hand-delivered "
        f"confirmations={late}"
    )


def _reordered_payments(records: dict[str, Any] | None) -> int:
    """Payments resolved before one created earlier than them (confirmations out of order), from
    the payments of ``GET /admin/records`` (in the order they were created); 0 without records.

    >>> pays = [{"resolved_at": "10:02"}, {"resolved_at": None}, {"resolved_at": "10:01"}]
    >>> _reordered_payments({"payments": pays}), _reordered_payments(None)
    (1, 0)
    """
    latest, inversions = "", 0
    for p in (records or {}).get("payments") or []:
        resolved = p.get("resolved_at")
        if resolved is None:
            continue
        if resolved < latest:
            inversions += 1
        latest = max(latest, resolved)
    return inversions


def _retries_fault(ctx: DrillContext) -> None:
    """Make the service slower than the clients' 1 s timeout, in overlapping phases.

    Payments pause first (pay requests wait for room in a 2-job queue), then the
    database stalls, then, as the paid applicants rush to stamp, the issuer runs
    10x slower behind a 4-job queue (stamp requests wait for room). From 2.5 s to 9.5 s
    every accepted stamp is answered 1.5 s late (`answer_delay_s`), past
    the clients' 1 s timeout: work done whose answer is lost, as when applicants paid
    twice in 2024. Retries with the same Idempotency-Key are replays; with fresh keys
    (the control run) they do the work again, and the drill must fail.
    """
    peak = 0
    for at, label, act in _retries_plan(ctx):
        while time.time() < ctx.load_start + at:  # sample while waiting for the next phase
            if not ctx.sleep_until(min(at, time.time() - ctx.load_start + 0.25)):
                return
            if time.time() - ctx.load_start >= 4.0:
                peak = _room_peak(ctx, peak)
        act()
        if label:
            ctx.event(label)
    while (
        ctx.sleep_until(time.time() - ctx.load_start + 0.25) and time.time() < ctx.load_start + 10.0
    ):
        peak = _room_peak(ctx, peak)
    ctx.observed["stamps_waiting_for_room_max"] = peak
    ctx.admin("POST", "/admin/faults", {"issuer_slow_factor": 1.0})
    ctx.event("issuer_normal", issuer_slow_factor=1.0, stamp_requests_waiting_for_room_max=peak)


def _retries_plan(ctx: DrillContext) -> list[tuple[float, str, Callable[[], Any]]]:
    """The phases of the client-retries fault: (seconds into the load, event label, act)."""

    def faults(body: dict[str, Any]) -> Callable[[], Any]:
        return lambda: ctx.admin("POST", "/admin/faults", body)

    def stall() -> None:
        _database_stall(ctx, 1.5)

    return [
        (1.5, "payments_pause", faults({"payments": "pause"})),
        (2.5, "answers_late", faults({"answer_delay_s": 1.5, "answer_delay_on": ["stamp"]})),
        (3.0, "", stall),
        (4.0, "issuer_slow", faults({"issuer_slow_factor": 10.0})),
        (4.5, "payments_resume", faults({"payments": "resume"})),
        (7.0, "", stall),
        (9.5, "answers_on_time", faults({"answer_delay_s": 0})),
    ]


def _database_stall(ctx: DrillContext, hold_s: float) -> None:
    """Hold the testbed's SQLite write lock for `hold_s` seconds.

    A fault, not evidence: no table is read or written (the transaction is rolled back), so the
    schema keeps one owner (testbed/). It stays out here rather than in testbed/faults.py's
    FAULTS because the fault is another process holding the database file's lock, as a backup
    or a second writer would (tests/test_testbed_storage_faults.py holds it the same way); a
    FAULTS row acts on the testbed's own switches and resources, and a testbed locking its own
    file from inside is a different fault.
    """
    ctx.event("database_stall", hold_s=hold_s)
    with contextlib.closing(sqlite3.connect(ctx.tb.db_path, timeout=5, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        time.sleep(hold_s)
        db.execute("ROLLBACK")


def _room_peak(ctx: DrillContext, peak: int) -> int:
    """`peak`, or more if more stamp requests wait for room in the issuer's queue now."""
    m = ctx.metrics()
    if m:
        return max(peak, int(m["resources"]["issuer"]["waiting_for_room"]))
    return peak


def _retries_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    stamp_errors = _steps_errors(run["summary"], "stamp")
    pay_errors = _steps_errors(run["summary"], "order", "pay")
    ok = stamp_errors > 0 and pay_errors > 0
    return ok, (
        f"timed-out requests retried: stamp={stamp_errors}, order+pay={pay_errors}; "
        f"stamp requests waiting for issuer room (most at once)="
        f"{ctx.observed.get('stamps_waiting_for_room_max', 0)}"
    )


DRILLS: dict[str, Drill] = {
    d.name: d
    for d in (
        Drill(
            name="kill-testbed",
            proves="SIGKILL mid-surge and a restart on the same port and database lose and "
            "duplicate nothing",
            injects="kill -9 of the testbed 4 s into the load, 1 s down, restart on the same "
            "port and SQLite file",
            fault=_kill_fault,
            observe=_kill_observe,
            rate_per_s=6.0,
            journeys={"request_timeout_s": 3, "max_attempts": 10, "backoff_max_s": 1.5},
        ),
        Drill(
            name="issuer-outage",
            proves="stamps accepted while the serial-number issuer is down all finish once it is "
            "back",
            injects="POST /admin/faults issuer=pause 3 s into the load, issuer=resume at 8 s",
            fault=_outage_fault,
            observe=_outage_observe,
            rate_per_s=5.0,
            journeys={"patience_s": 25},
        ),
        Drill(
            name="payment-chaos",
            proves="duplicate, reordered and declined payment confirmations credit each paid "
            "order exactly once",
            injects="payment_duplicate_ratio=0.5, payment_reorder=true, "
            "payment_failure_ratio=0.2 for the whole load; then a late failure and a repeat "
            "confirmation of 5 paid payments by hand",
            fault=_chaos_fault,
            after=_chaos_after,
            observe=_chaos_observe,
            rate_per_s=6.0,
        ),
        Drill(
            name="client-retries",
            proves="Idempotency-Keys stop retried orders and stamps from charging twice (with "
            "--fresh-idempotency-keys the same drill must fail)",
            injects="client timeout 1 s; payments paused 1.5-4.5 s behind a 2-job queue (pay "
            "requests wait), accepted stamps answered 1.5 s late 2.5-9.5 s (lost answers), "
            "1.5 s database stalls at 3 s and 7 s, issuer 10x slower 4-10 s behind a 4-job queue "
            "(stamp requests wait for room)",
            fault=_retries_fault,
            observe=_retries_observe,
            rate_per_s=4.0,
            testbed_set=(
                "issuer.workers=2",
                'issuer.service.distribution="constant"',
                "issuer.service.mean=0.1",
                "issuer.queue_bound=4",
                "payments.workers=2",
                "payments.queue_bound=2",
                "payments.service.mean=0.1",
            ),
            journeys={
                "request_timeout_s": 1,
                "patience_s": 25,
                "max_attempts": 15,
                "backoff_base_s": 0.2,
                "backoff_max_s": 1,
            },
        ),
    )
}


def describe() -> list[str]:
    """One line per drill: its name and what it proves.

    >>> describe()[0].split()[0]
    'kill-testbed'
    """
    width = max(len(n) for n in DRILLS)
    return [f"{d.name:<{width}}  {d.proves}" for d in DRILLS.values()]
