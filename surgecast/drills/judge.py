"""Judging a drill from files and the drained testbed: reconciliation, duplicate jobs, the checks
and the verdict."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from floor import atomic, rundir
from floor.rundir import schema as rs
from floor.rundir.files import read_arrivals
from floor.rundir.readers import read_json
from surgecast.drills.context import DRAIN_TIMEOUT_S, Drill, DrillContext, _admin_optional


# ---- judging -------------------------------------------------------------------------------------
def _arrivals(path: Path) -> list[dict[str, Any]]:
    """arrivals.csv (floor.rundir.files.read_arrivals) as one dict per arrival: its applicant,
    journey, outcome and ended step, and `started_unix` (0.0 for one never started); [] without
    the file (the rehearsal wrote none)."""
    if not path.is_file():
        return []
    s = read_arrivals(path)
    keys = ("journey", "outcome", "ended_step", *(("applicant_id",) if "applicant_id" in s.cols
                                                  else ()))
    started = s.cols.get("started_at") or [None] * len(s)
    return [{**{k: s[k][i] for k in keys}, "started_unix": 0.0 if at is None else at.timestamp()}
            for i, at in enumerate(started)]


def duplicate_jobs(client_rows: list[dict[str, str]], server: dict[str, Any]) -> dict[str, Any]:
    """Orders and stamp jobs the server made twice for one request of a client account.

    Each drill applicant buys once and stamps distinct documents, so two orders
    on one account, or two stamp jobs for the same document (same SHA-256) on
    one account, can only come from a retried request that was not recognised
    as a repeat. A duplicated stamp job that is not failed used one e-Meterai
    of paid quota: a double charge. `server` is the drained testbed's
    ``GET /admin/ledger`` (its orders, and its stamps with their documents' SHA-256).

    >>> stamp = {"account_id": "a", "document_sha256": "d" * 64, "status": "done"}
    >>> dups = duplicate_jobs([{"account_id": "a"}], {"orders": [], "stamps": [stamp, stamp]})
    >>> dups["duplicate_stamp_jobs"], dups["quota_charged_twice"]
    (1, 1)
    """
    accounts = {r["account_id"] for r in client_rows if r.get("account_id")}
    orders = Counter(
        o["account_id"] for o in server.get("orders", []) if o.get("account_id") in accounts
    )
    dup_orders = sum(n - 1 for n in orders.values() if n > 1)
    paid_dup_orders = 0
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in server.get("orders", []):
        by_account[o["account_id"]].append(o)
    for aid, n in orders.items():
        if n > 1:
            paid_dup_orders += max(
                0, sum(1 for o in by_account[aid] if o.get("status") == "paid") - 1
            )
    dup_stamps = charged = 0
    examples: list[dict[str, Any]] = []
    for (aid, digest), jobs in sorted(_stamp_jobs_by_document(server).items()):
        if len(jobs) < 2 or aid not in accounts:
            continue
        dup_stamps += len(jobs) - 1
        charged += max(0, sum(1 for st in jobs if st != "failed") - 1)
        if len(examples) < 20:
            examples.append({"account_id": aid, "document_sha256": digest[:16], "jobs": len(jobs)})
    return {
        "duplicate_orders": dup_orders,
        "duplicate_paid_orders": paid_dup_orders,
        "duplicate_stamp_jobs": dup_stamps,
        "quota_charged_twice": charged + paid_dup_orders,
        "examples": examples,
    }


def _stamp_jobs_by_document(server: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    """The states of the stamp jobs of each (account, document SHA-256) in `server`."""
    jobs: dict[tuple[str, str], list[str]] = defaultdict(list)
    for st in server.get("stamps", []):
        jobs[(st["account_id"], st["document_sha256"])].append(st["status"])
    return jobs


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _drain(url: str, token: str, timeout_s: float) -> tuple[dict[str, Any] | None, float]:
    """Poll the audit until no stamp job and no payment is pending; (last audit, seconds waited)."""
    t0 = time.monotonic()
    audit = None
    while time.monotonic() - t0 < timeout_s:
        audit = _admin_optional(url, token, "GET", "/admin/audit")
        t = (audit or {}).get("totals") or {}
        if audit is not None and t.get("stamps_pending") == 0 and t.get("payments_pending") == 0:
            break
        time.sleep(0.25)
    return audit, time.monotonic() - t0


def _reconciliation_check(
    client: list[dict[str, str]], records: dict[str, Any] | None, out: Path
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The oracle: the clients' ledger against the drained server's durable records (settled)."""
    from scenarios.reconcile import reconcile

    if records is None:
        return _check("reconciliation", False, "GET /admin/records failed after the load"), None
    atomic.write_json(out / rs.DRILL_SERVER_RECORDS, rundir.stamp(records, rundir.process_run_id()))
    recon = reconcile(client, records, settled=True)
    bad = ", ".join(f"{k}={recon[k]}" for k in recon["problems"])
    first = Counter(d["problem"] for d in recon["details"] if d.get("count") in recon["problems"])
    why = "; ".join(f"{k} x{v}" for k, v in first.most_common(4))
    detail = (f"{bad} ({why})" if bad else "0 lost, 0 duplicated, 0 mispriced, 0 stuck") + (
        f"; checked {recon['checked_accounts']} accounts, {recon['checked_orders']} orders, "
        f"{recon['checked_payments']} payments, {recon['checked_stamps']} stamps"
    )
    if not client:
        detail = "the client ledger is empty; " + detail
    return _check("reconciliation", recon["ok"] and bool(client), detail), recon


def _judge(
    drill: Drill,
    ctx: DrillContext,
    out: Path,
    *,
    audit: dict[str, Any] | None,
    server: dict[str, Any] | None,
    records: dict[str, Any] | None,
    rehearse_exit: int | None,
    rehearse_stderr: str,
    fault_error: list[str],
    waited_s: float,
) -> dict[str, Any]:
    """The checks and the verdict of a drill from its run directory and the drained testbed."""
    summary_path = out / rs.SUMMARY
    summary = read_json(summary_path) if summary_path.is_file() else {}
    from floor.rundir.files import read_ledger_rows

    client = read_ledger_rows(out / rs.LEDGER)
    arrivals = _arrivals(out / rs.ARRIVALS)
    checks = [
        _load_ran_check(summary, rehearse_exit, rehearse_stderr),
        _fault_check(drill, ctx, fault_error, {"summary": summary, "arrivals": arrivals}),
    ]
    dups: dict[str, Any] | None = None
    check, recon = _reconciliation_check(client, records, out)
    checks.append(check)
    if server is None:
        checks.append(_check("no_duplicate_jobs", False, "GET /admin/ledger failed after the load"))
    else:
        atomic.write_json(
            out / rs.DRILL_SERVER_LEDGER, rundir.stamp(server, rundir.process_run_id())
        )
        dups = duplicate_jobs(client, server)
        checks.append(_duplicates_check(dups))
        checks.append(_stamps_finished_check(client, server, audit, recon, waited_s))
    checks.append(_audit_check(audit))
    return {
        "verdict": _verdict(checks),
        "checks": checks,
        "rehearse_exit_code": rehearse_exit,
        "reconciliation": recon,
        "duplicates": dups,
        "audit": audit,
    }


def _load_ran_check(
    summary: dict[str, Any], rehearse_exit: int | None, rehearse_stderr: str
) -> dict[str, Any]:
    """`load_ran`: the rehearsal wrote its summary and some applicants completed."""
    completed = int(summary.get("completed") or 0)
    tail = (rehearse_stderr.strip().splitlines() or [""])[-1][:300]
    return _check(
        "load_ran",
        bool(summary) and completed > 0,
        f"rehearsal exit {rehearse_exit}; scheduled {summary.get('scheduled')}, completed "
        f"{completed}, abandoned {summary.get('abandoned')}, failed {summary.get('failed')}"
        + ("" if summary else f"; no summary.json ({tail or 'no output'})"),
    )


def _fault_check(
    drill: Drill, ctx: DrillContext, fault_error: list[str], run: dict[str, Any]
) -> dict[str, Any]:
    """`fault_observed`: the fault was injected and the drill's own observation says it bit."""
    if fault_error:
        return _check(
            "fault_observed", False, "the fault could not be injected: " + "; ".join(fault_error)
        )
    if not ctx.timeline or ctx.load_start == 0:
        return _check(
            "fault_observed", False, "the load never reached the testbed; no fault injected"
        )
    ok, detail = drill.observe(ctx, run)
    return _check("fault_observed", ok, detail)


def _duplicates_check(dups: dict[str, Any]) -> dict[str, Any]:
    """`no_duplicate_jobs`: no order and no stamp job made twice for one client request."""
    n = dups["duplicate_orders"] + dups["duplicate_stamp_jobs"]
    return _check(
        "no_duplicate_jobs",
        n == 0,
        f"{dups['duplicate_stamp_jobs']} stamp jobs made twice for one document "
        f"({dups['quota_charged_twice']} e-Meterai charged twice), "
        f"{dups['duplicate_orders']} duplicate orders",
    )


def _stamps_finished_check(
    client: list[dict[str, str]],
    server: dict[str, Any],
    audit: dict[str, Any] | None,
    recon: dict[str, Any] | None,
    waited_s: float,
) -> dict[str, Any]:
    """`stamps_finished`: the queues drained and every accepted stamp job is done or failed."""
    accounts = {r["account_id"] for r in client if r.get("account_id")}
    states = Counter(
        s["status"] for s in server.get("stamps", []) if s.get("account_id") in accounts
    )
    pending = (audit or {}).get("totals", {}).get("stamps_pending")
    unfinished = states.get("queued", 0) + states.get("processing", 0)
    lost_stamps = (recon or {}).get("lost_stamps", 0)
    return _check(
        "stamps_finished",
        unfinished == 0 and pending == 0 and lost_stamps == 0,
        f"{states.get('done', 0)} done, {states.get('failed', 0)} failed, {unfinished} "
        f"unfinished of {sum(states.values())} accepted; drained in {waited_s:.1f} s "
        f"(bound {DRAIN_TIMEOUT_S:g} s)",
    )


def _audit_check(audit: dict[str, Any] | None) -> dict[str, Any]:
    """`audit_balanced`: the drained testbed's own audit balances."""
    if audit is None:
        return _check("audit_balanced", False, "GET /admin/audit failed after the load")
    failing = [c["name"] for c in audit.get("checks", []) if not c.get("ok")]
    return _check(
        "audit_balanced",
        bool(audit.get("balanced")),
        "balanced" if audit.get("balanced") else "failing: " + ", ".join(failing),
    )


def _verdict(checks: list[dict[str, Any]]) -> dict[str, Any]:
    """Passed only when every check holds; the reason names each failed check."""
    failed = [c for c in checks if not c["ok"]]
    reason = (
        "all checks passed"
        if not failed
        else "; ".join(f"{c['name']} failed ({c['detail']})" for c in failed)
    )
    return {
        "passed": not failed,
        "reason": reason,
        "failed_checks": [c["name"] for c in failed],
    }
