"""Does a rehearsal follow its plan? Compare a rehearsal's measured queue with the plan, from files.

A compressed rehearsal cannot reproduce the plan's minute-by-minute backlog (one
test second is hours of calendar), so this checks what the plan promises and the
rehearsal can measure, at the rehearsal's calendar resolution:

1. **drain**: the stamping accepted during the outage drains by the time the plan says
   the stage `finish-paid` clears its backlog (`drained_at`, within two samples of calendar
   time);
2. **gates**: at each stage's start (found by its `id`, never by its position) the
   target's gates are set as the stage says (booked and paced are both `rate` on the
   target), checked at the first sample at least one resolution after the start, counted
   from when the rehearsal had applied that instant's changes (a lag of at most two
   resolutions, the drain check's slack, is waited for; `applied_lag_s` says how long it took);
3. **integrity**: reconciliation found no quota lost or duplicated;
4. **model**: the model run at the rehearsal's own parameters (analysis.rehearsal_model:
   its arrivals, the measured capacity, the outage and gates it applied) predicts the
   served count and the peak issuer backlog the testbed measured within 10%
   (`model_vs_testbed`).

A plan without the `finish-paid` stage (the baseline was recommended) has nothing to
drain first: the drain check then reports that and passes only if the issuer queue
drains at all after the reopening.

Reads `plan.json`, `run.json`, `queue.csv` and `reconciliation.json` of one run
directory; writes nothing. `surgecast demo` saves the result as `plan_check.json`::

    check = check_plan_followed(Path("runs/demo"))
    check["follows"], check["checks"][0]["name"]
"""

from __future__ import annotations

import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

from floor.errors import InputFileError
from floor.rundir import schema as rs
from floor.rundir.files import read_queue
from floor.rundir.readers import read_object
from floor.vocabulary import GATE_MODES, GATES

DRAIN_STAGE = "finish-paid"
CHECKS = ("drain", "gates", "integrity", "model")
# a plan stage's gate mode -> the mode the target reports (booked and paced are both rate)
_TARGET_MODE = {**{m: m for m in GATE_MODES}, "booked": "rate", "paced": "rate"}
Sample = tuple[datetime, float, float, float, bool, dict[str, str]]
Start = tuple[str, datetime, dict[str, str]]


def _table_index(stage_id: str) -> int:
    from analysis.stages import BASELINE, STAGES
    ids = [s.id for s in (*STAGES, BASELINE)]
    return ids.index(stage_id) if stage_id in ids else len(ids)


def stage(plan: dict[str, Any], stage_id: str) -> dict[str, Any] | None:
    """The plan's stage with this id (None when the plan has none).

    >>> stage({"stages": [{"id": "b"}, {"id": "a"}]}, "a")
    {'id': 'a'}
    """
    return next((s for s in plan.get("stages") or []
                 if isinstance(s, dict) and s.get("id") == stage_id), None)


def _json(path: Path) -> dict[str, Any]:
    return read_object(path, written_by="a plan or a rehearsal")


def _queue_rows(path: Path) -> list[Sample]:
    """(calendar time, issuer queue, busy, workers, paused, gate modes) per sample."""
    q = read_queue(path, missing="a rehearsal against a target with an admin API writes it")
    if len(q) < 3:
        raise InputFileError(f"{path}: only {len(q)} samples; rehearse longer")
    paused = q.cols.get("issuer_paused")
    gates = {g: q.cols.get(col) or [""] * len(q) for g, col in zip(GATES, rs.QUEUE_GATE_COLUMNS,
                                                                   strict=True)}
    return [(q["calendar_at"][i], float(q["issuer_queue"][i]), float(q["issuer_busy"][i]),
             float(q["issuer_workers"][i]), bool(paused is not None and paused[i] == 1),
             {g: gates[g][i] for g in GATES}) for i in range(len(q))]


def _plan_times(plan: dict[str, Any], path: Path,
                ) -> tuple[dict[str, Any] | None, datetime, datetime, list[Start]]:
    """(the drain stage or None, the reopening, the drain deadline, each stage's (id, start,
    gates) by start time, then the stage table's order: never the file's order)."""
    stages = plan.get("stages") or []
    if not stages:
        raise InputFileError(f"{path}: no stages; the plan has no reopening to check")
    if any(not isinstance(st, dict) or not isinstance(st.get("id"), str) for st in stages):
        raise InputFileError(f"{path}: a stage without an id; re-run surgecast plan")
    first = stage(plan, DRAIN_STAGE)
    try:
        reopen = datetime.fromisoformat(plan["reopen_at"])
        drain_by = datetime.fromisoformat((first or {}).get("drained_at")
                                          or (first or {}).get("end") or plan["close"])
        starts = [(st["id"], datetime.fromisoformat(st["start"]), dict(st["gates"]))
                  for st in stages]
        starts.sort(key=lambda x: (x[1], _table_index(x[0])))
    except (KeyError, TypeError, ValueError) as e:
        raise InputFileError(f"{path}: missing or bad key ({e})") from None
    return first, reopen, drain_by, starts


def _drain_check(samples: list[Sample], reopen: datetime, drain_by: datetime,
                 resolution_s: float, *, has_stage: bool) -> dict[str, Any]:
    """The `drain` check: the issuer queue empty (and not paused) after the reopening, by the
    plan's drain deadline within two samples."""
    drained_at = next((s[0] for s in samples if s[0] >= reopen and s[1] == 0 and not s[4]),
                      None)
    ok = drained_at is not None and (drained_at - drain_by).total_seconds() <= 2 * resolution_s
    detail = (f"accepted stamping drained at {drained_at:%Y-%m-%d %H:%M}, plan "
              f"{drain_by:%Y-%m-%d %H:%M} (resolution {_span(resolution_s)} of calendar)"
              if drained_at else "the accepted stamping never drained during the rehearsal")
    return {"name": "drain", "ok": ok, "stage": DRAIN_STAGE if has_stage else None,
            "plan": drain_by.isoformat(),
            "measured": drained_at.isoformat() if drained_at else None, "detail": detail}


def _gates_check(starts: list[Start], ok: bool, lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The `gates` check from the lines `_gates` found."""
    detail = ("every stage's gates were set as planned" if ok else
              "; ".join(f"{x['stage']}: {x['gate']} was {x['measured'] or 'not sampled'}, "
                        f"plan {x['plan']}" for x in lines if not x["ok"]))
    return {"name": "gates", "ok": ok, "plan": {i: g for i, _, g in sorted(starts)},
            "measured": lines, "detail": detail}


def _integrity_check(recon: dict[str, Any]) -> dict[str, Any]:
    """The `integrity` check: reconciliation's verdict and its counts."""
    ok = bool(recon.get("ok"))
    return {"name": "integrity", "ok": ok, "plan": "no quota lost or duplicated",
            "measured": {k: recon.get(k)
                         for k in ("lost_quota", "duplicated_quota", "orphaned_payments")},
            "detail": "reconciliation " + ("found no quota lost or duplicated" if ok
                                           else "FAILED")}


def check_plan_followed(run_dir: Path, *, model: bool = True,
                        stamps_per_second: float | None = None) -> dict[str, Any]:
    """Compare the rehearsal in `run_dir` with the plan in the same directory (see module doc).

    `model=False` leaves out the model check (it needs arrivals.csv, run.json's
    admin_actions and capacity.json). `stamps_per_second` replaces the measured capacity
    the model runs at (test stamps/s): a mis-scaled one must turn the `model` check red."""
    plan = _json(run_dir / rs.PLAN)
    run = _json(run_dir / rs.RUN)
    recon = _json(run_dir / rs.RECONCILIATION)
    samples = _queue_rows(run_dir / rs.QUEUE)
    first, reopen, drain_by, starts = _plan_times(plan, run_dir / rs.PLAN)
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(samples, samples[1:], strict=False)]
    resolution_s = statistics.median(gaps) if gaps else 0.0
    gates_ok, gate_lines = _gates(starts, samples, resolution_s, _gate_lags(run))
    checks = [_drain_check(samples, reopen, drain_by, resolution_s, has_stage=first is not None),
              _gates_check(starts, gates_ok, gate_lines), _integrity_check(recon)]
    mvt = None
    if model:
        from analysis.rehearsal_compare import compare
        mvt = compare(run_dir, stamps_per_second=stamps_per_second)
        checks.append(_model_check(mvt))
    stamps_per_applicant = float(plan.get("stamps_per_applicant") or 1.0)
    scale = float(run.get("scale") or 0.0) or None
    peak_stamps = max((s[1] for s in samples if s[0] < reopen), default=0.0)
    return {
        "follows": all(c["ok"] for c in checks),
        "checks": checks,
        "resolution_s": resolution_s,
        "model_vs_testbed": mvt,
        "outage_peak_issuer_queue_stamps": peak_stamps,
        "outage_peak_issuer_queue_national_applicants": (
            round(peak_stamps / stamps_per_applicant / scale) if scale else None),
    }


def _model_check(mvt: dict[str, Any]) -> dict[str, Any]:
    """The `model` check from a model_vs_testbed block."""
    sv, pk = mvt["served"], mvt["peak_backlog"]
    return {
        "name": "model",
        "ok": mvt["ok"],
        "plan": f"served and peak backlog within {mvt['tolerance']:.0%}",
        "measured": {k: mvt[k] for k in ("served", "peak_backlog", "drain_s", "series_error")},
        "detail": (
            f"model at the rehearsal's parameters: served {sv['model']:.0f}{_sd(sv)} vs "
            f"{sv['measured']:.0f} measured ({_pct(sv['error'])}), peak backlog "
            f"{pk['model']:.0f}{_sd(pk)} vs {pk['measured']:.0f} stamps ({_pct(pk['error'])}), "
            f"series error {mvt['series_error']:.1%}"
        ),
    }


def _sd(block: dict[str, Any]) -> str:
    """' ±sd' of a model figure when the model gave one.

    >>> _sd({"model_sd": 4.2}), _sd({})
    (' ±4', '')
    """
    return "" if block.get("model_sd") is None else f" ±{block['model_sd']:.0f}"


def _span(seconds: float) -> str:
    """A calendar span in words.

    >>> _span(15.0), _span(7200.0)
    ('15 s', '2.0 h')
    """
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else (f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h")
    )


def _pct(e: float | None) -> str:
    return "n/a" if e is None else f"{e:+.1%}"


def check_by_name(check: dict[str, Any], name: str) -> dict[str, Any]:
    """One check of a plan_check.json by its name (KeyError names the known ones).

    >>> check_by_name({"checks": [{"name": "gates", "ok": True}]}, "gates")["ok"]
    True
    """
    for c in check.get("checks") or []:
        if c.get("name") == name:
            return c
    raise KeyError(f"no check {name!r}; known: {', '.join(CHECKS)}")


def _gate_lags(run: dict[str, Any]) -> dict[datetime, float]:
    """Calendar seconds between each instant of gate changes and the moment the rehearsal had
    applied the last of them (run.json `admin_actions`: applied_at_s - at_s, x compress).

    >>> lags = _gate_lags({"compress": 60, "admin_actions": [
    ...     {"kind": "gate", "calendar_at": "2024-09-05T20:00:00+07:00", "at_s": 9.0,
    ...      "applied_at_s": 9.1},
    ...     {"kind": "gate", "calendar_at": "2024-09-05T20:00:00+07:00", "at_s": 9.0,
    ...      "applied_at_s": 9.3}]})
    >>> round(list(lags.values())[0], 6)
    18.0
    """
    compress = float(run.get("compress") or 0.0)
    out: dict[datetime, float] = {}
    for a in run.get("admin_actions") or []:
        if not isinstance(a, dict) or a.get("kind") != "gate" or not a.get("calendar_at"):
            continue
        try:
            when = datetime.fromisoformat(str(a["calendar_at"]))
            lag = (
                max(
                    0.0,
                    float(a.get("applied_at_s", a.get("at_s", 0.0))) - float(a.get("at_s", 0.0)),
                )
                * compress
            )
        except (TypeError, ValueError):
            continue
        out[when] = max(out.get(when, 0.0), lag)
    return out


def _gates(
    starts: list[tuple[str, datetime, dict[str, str]]],
    samples: list[Any],
    resolution_s: float,
    lags: dict[datetime, float] | None = None,
) -> tuple[bool, list[dict[str, Any]]]:
    """Each stage's gates against the first sample one resolution after its start, or one resolution
    after the rehearsal had applied that instant's changes (a lag of at most two resolutions, the
    drain check's slack; a longer lag is not waited for), and before the next change."""
    lines = []
    changes = sorted({t for _, t, _ in starts})
    lags = lags or {}
    for sid, t, gates in starts:
        later = [c for c in changes if c > t]
        until = later[0] if later else None
        lag = lags.get(t, 0.0)
        # a sample answers from a moment a little before it is stamped: count from the applied
        # moment
        wait = resolution_s + (lag if lag <= 2 * resolution_s else 0.0)
        at = next(
            (
                s
                for s in samples
                if (s[0] - t).total_seconds() >= wait and (until is None or s[0] < until)
            ),
            None,
        )
        for g, mode in gates.items():
            want = _TARGET_MODE.get(str(mode), str(mode))
            got = (at[5].get(g) or "").split(":")[0] if at else None  # the target writes rate:R
            # a later stage at the same moment may set the same gate again; only the last one counts
            me = [x[0] for x in starts].index(sid)
            overridden = any(t2 == t and g in g2 and j > me for j, (_, t2, g2) in enumerate(starts))
            if overridden or at is None:
                continue
            lines.append(
                {
                    "stage": sid,
                    "gate": g,
                    "plan": want,
                    "measured": got,
                    "ok": got == want,
                    "applied_lag_s": round(lag, 1),
                }
            )
    return bool(lines) and all(x["ok"] for x in lines), lines
