"""The end of a rehearsal: put the target back, reconcile, and write the run directory.

One writer for a single process (`scenarios.run.Rehearsal.finish`) and a distributed master
(`scenarios.dist_master.MasterSide`), so both run directories have the same format.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

from floor import atomic, rundir
from floor.jsonhttp import HttpError, JsonClient
from floor.rundir import schema as rs
from floor.rundir import writers
from scenarios.options import RunSettings
from scenarios.reconcile import reconcile
from scenarios.recorder import Recorder, iso_utc
from scenarios.schedule import restore
from scenarios.summary import exit_code_for, run_json, summary_json
from scenarios.target import AdminClient
from scenarios.thresholds import ThresholdWatch

SETUP_MAX_BYTES = 1 << 20


def conclude(s: RunSettings, recorder: Recorder, *, out: Path | None, admin: AdminClient | None,
             gates_before: dict[str, Any] | None, action_log: list[dict[str, Any]],
             watch: ThresholdWatch, origin_unix: float, started_unix: float,
             scheduled_expected: float, cpu_max: float | None, extra: dict[str, Any],
             lost_workers: list[dict[str, Any]] | None = None, refused: list[str] | None = None,
             interrupted: bool = False) -> int:
    """Put the target back, fetch its audit and ledger, reconcile, and write the run directory.

    The one writer of a rehearsal's files, used by a single process (`Rehearsal.finish`)
    and by a distributed master after merging its workers' recorders, so both directories
    have the same format. `lost_workers` (distributed only: workers whose results never
    came) forces exit 3 and is written to run.json and summary.json.

    Honest outcomes: the client's files are written first, whatever the target answers
    afterwards; `run_problems` lists why a run that lost nothing still failed (exit 1):
    a redirect refused, an interruption, nothing arriving or completing, reconciliation
    that could not run, a target that died. summary.json carries `complete` and
    `problems`. Returns the exit code; a run directory that cannot be written is one
    line on stderr and exit 1.
    """
    try:
        if out is not None:
            _write_client_files(s, recorder, out)
        audit, server_ledger, server_records = _target_evidence(
            admin, refused, gates_before, action_log
        )
        evidence = server_records if server_records is not None else server_ledger
        recon, recon_error = _reconcile(recorder.ledger_rows(), evidence)
        thresholds = [r.as_dict(s.threshold_window_s) for r in watch.results]
        code, problems = _verdict(s, recorder, admin=admin, refused=list(refused or []),
                                  interrupted=interrupted, evidence=evidence, recon=recon,
                                  recon_error=recon_error, audit=audit, thresholds=thresholds,
                                  lost_workers=lost_workers)
        finished = time.time()
        if out is None:
            return code
        rid = rundir.process_run_id()
        _write_objects(out, rid, (rs.AUDIT, audit), (rs.SERVER_LEDGER, server_ledger),
                       (rs.SERVER_RECORDS, server_records), (rs.RECONCILIATION, recon))
        more = _outcome_fields(admin, lost_workers=lost_workers, interrupted=interrupted,
                               problems=problems)
        run = run_json(s, origin_unix=origin_unix, started_unix=started_unix,
                       finished_unix=finished, extra={"admin_actions": action_log, **extra, **more})
        summary = summary_json(s, recorder, scheduled_expected=scheduled_expected,
                               elapsed_s=finished - origin_unix, thresholds=thresholds,
                               cpu_max=cpu_max, exit_code=code, reconciliation=recon, extra=more)
        _write_objects(out, rid, (rs.RUN, run), (rs.SUMMARY, summary))
        latency = tuple(n for n in rundir.run_files(out) if n.startswith(rs.LATENCY_DIR + "/"))
        rundir.record(out, REHEARSAL_FILES + latency, run_id=rid, by="rehearsal")
    except OSError as e:
        print(f"OutputError: cannot write the run directory {out} ({e.strerror or e}); "
              f"free space or give another --out", file=sys.stderr, flush=True)
        return 1
    return code


def _verdict(s: RunSettings, recorder: Recorder, *, admin: AdminClient | None, refused: list[str],
             interrupted: bool, evidence: Any, recon: dict[str, Any] | None, recon_error: str,
             audit: Any, thresholds: list[dict[str, Any]],
             lost_workers: list[dict[str, Any]] | None) -> tuple[int, list[str]]:
    """(exit code, problems): 3 for lost workers, else the checks' code, at least 1 with a
    problem."""
    code = exit_code_for(reconciliation=recon, audit=audit, thresholds=thresholds)
    if lost_workers:
        code = 3
    problems = run_problems(s, recorder, admin=admin, refused=refused, interrupted=interrupted,
                            server_ledger=evidence, recon_error=recon_error)
    if problems and code == 0:
        code = 1
    return code, problems


def _write_objects(out: Path, rid: str, *named: tuple[str, Any]) -> None:
    """Write each (file name, object) that is not None as JSON into `out`, in order."""
    for name, obj in named:
        if obj is not None:
            writers.write_object(out, name, obj, rid)


def _outcome_fields(admin: AdminClient | None, *, lost_workers: list[dict[str, Any]] | None,
                    interrupted: bool, problems: list[str]) -> dict[str, Any]:
    """run.json's and summary.json's fields on how the run ended (lost workers, complete,
    problems)."""
    more: dict[str, Any] = {"lost_workers": lost_workers} if lost_workers is not None else {}
    more.update(complete=not interrupted, problems=problems)
    if admin is not None and admin.problems:
        more["admin_problems"] = list(admin.problems)
    return more


def _target_evidence(admin: AdminClient | None, refused: list[str] | None,
                     gates_before: dict[str, Any] | None, action_log: list[dict[str, Any]]
                     ) -> tuple[Any, Any, Any]:
    """Put the target's gates back; its (audit, ledger, records), each None if not fetched."""
    if admin is None or refused or admin.refused:
        return None, None, None
    restore(admin, gates_before, action_log)
    try:
        return (admin.get_optional("/admin/audit", dict),
                admin.get_optional("/admin/ledger", dict),
                admin.get_optional("/admin/records", dict))
    finally:
        admin.close()


REHEARSAL_FILES = (rs.ARRIVALS, rs.LEDGER, rs.QUEUE, rs.LATENCY_HISTORY, rs.PROFILE, rs.AUDIT,
                   rs.SERVER_LEDGER, rs.SERVER_RECORDS, rs.RECONCILIATION, rs.RUN, rs.SUMMARY)


def _write_client_files(s: RunSettings, recorder: Recorder, out: Path) -> None:
    """What the client collected (arrivals, ledger, latencies, queue samples): written before
    anything else."""
    out.mkdir(parents=True, exist_ok=True)
    recorder.write_files(out)
    if s.profile is not None:
        src = Path(s.profile.source)
        if src.is_file():
            atomic.write_text(out / rs.PROFILE, src.read_text(encoding="utf-8"))


def _reconcile(rows: list[dict[str, Any]], evidence: Any) -> tuple[dict[str, Any] | None, str]:
    """(reconciliation, "") or (None, why it could not run) for server evidence of the wrong shape.

    The run ends mid-surge: work still paying or queued is reported, not failed (a drill drains
    first).
    """
    if evidence is None:
        return None, ""
    try:
        return reconcile(rows, evidence, settled=False), ""
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        return (
            None,
            f"GET /admin/records answered records of the wrong shape ({type(e).__name__}: {e})",
        )


def run_problems(
    s: RunSettings,
    recorder: Recorder,
    *,
    admin: AdminClient | None,
    refused: list[str],
    interrupted: bool,
    server_ledger: Any,
    recon_error: str,
) -> list[str]:
    """Why a run failed although nothing was found lost (each makes the exit code at least 1)."""
    c = recorder.counts
    problems = [
        f"refused: {m}" for m in dict.fromkeys([*refused, *(admin.refused if admin else [])])
    ]
    if interrupted:
        problems.append("interrupted by a signal before the end: the results are incomplete")
    if admin is not None and not refused and not admin.refused:
        if recon_error:
            problems.append(f"reconciliation could not run: {recon_error}")
        elif server_ledger is None:
            problems.append(
                f"reconciliation could not run: GET {admin.host}/admin/records failed at the end "
                f"(the target died or refused); nothing can be said about lost data"
            )
    elif not refused and not _alive(s.host):
        problems.append(
            f"the target {s.host} did not answer GET /healthz at the end: it died during the run"
        )
    if c.get("scheduled", 0) == 0:
        problems.append("nothing arrived: no applicant was scheduled in the run")
    elif c.get("completed", 0) == 0:
        problems.append(
            f"nothing succeeded: none of {c.get('scheduled', 0)} applicants completed a journey "
            f"({recorder.errors} of {recorder.requests} requests failed)"
        )
    return problems


def _alive(host: str) -> bool:
    try:
        JsonClient(host, deadline_s=5.0, max_bytes=SETUP_MAX_BYTES).request("GET", "/healthz")
    except HttpError:
        return False
    return True


def publish_locust_csvs(staging: Path, out: Path) -> None:
    """Move Locust's CSVs from the staging prefix directory into `out` atomically, then remove
    staging."""
    if not staging.is_dir():
        return
    names = []
    for f in sorted(staging.glob("locust_*.csv")):
        atomic.write_bytes(out / f.name, f.read_bytes())
        names.append(f.name)
    shutil.rmtree(staging, ignore_errors=True)
    if (
        out / rundir.MANIFEST
    ).is_file():  # the run wrote its files (conclude): Locust's belong to the same run
        rundir.record(out, names, run_id=rundir.process_run_id(), by="rehearsal")


def stamp_time() -> str:
    """Now as UTC ISO (for logs)."""
    return iso_utc(time.time())
