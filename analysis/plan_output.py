"""What the planner writes: plan.json, timeline.csv rows, gate_schedule.json and
waiting_room.json (docs/run-directory.md describes each key); `plan_render` prints it.

    >>> from scenarios.profile import load_profile
    >>> from analysis.planner import PlanConfig, make_plan
    >>> cfg = PlanConfig(bands=False, what_if_days=(0,), max_extension_days=1)
    >>> p = make_plan(load_profile("steady"), cfg)
    >>> sorted(plan_json(p)["outcome"])
    ['lost', 'served', 'waiting']
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import numpy as np

from analysis import timetable as tt
from analysis import waiting_room as wr
from analysis.plan_config import DEFAULT_TARGET

__all__ = [
    "plan_json",
    "timeline_rows",
    "gate_schedule",
    "waiting_room_json",
    "stage_views",
]


def _r(v: float | None, nd: int = 2) -> float | None:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return None
    return round(float(v), nd)


def _f(v: float) -> str:
    v = float(v)
    return "inf" if not math.isfinite(v) else f"{v:.10g}"


def _ocome(o: dict[str, float]) -> dict[str, int]:
    return {k: round(o[k]) for k in ("served", "lost", "waiting")}


def stage_views(plan: Any) -> list[dict[str, Any]]:
    """The recommended plan's stages with times, gates, rates, backlog and waits (JSON-ready)."""
    r = plan.result
    cal = plan.profile.calendar
    cand = plan.candidates[plan.recommended]
    recs = {s.name: s for s in r.stages}
    starts = sorted(set(cand.starts.values()))
    out = []
    for spec in cand.specs:
        t0 = cand.starts[spec.id]
        later = [t for t in starts if t > t0 + 1e-9]
        t1 = later[0] if later else plan.close_s
        k0, k1 = r._index(t0), max(r._index(t0) + 1, r._index(t1))
        rec = recs.get(spec.id)
        gates = {g: v for g, v in spec.gates.items()}
        rate = None
        for g, v in rec.gates.items() if rec else []:
            if v["mode"] == "rate":
                rate = v["rate_per_s"]
                gates[g] = "booked" if spec.gates.get(g) == "booked" else "paced"
        sl = slice(k0, k1)
        watch = spec.watch
        peak = max(float(sum(r.rooms[g][sl].max() for g in watch)), 0.0) if k1 > k0 else 0.0
        waits = [float(x) for x in r.wait_s[sl]] if k1 > k0 else [0.0]
        visible = sum(r.rooms[g][k0:] for g in watch) + (
            r.issuer_queue[k0:] if "stamping" in watch else 0.0
        )
        below = np.nonzero(np.asarray(visible) <= 1.0)[0]
        drained = float(r.t_s[k0 + int(below[0])]) if len(below) else None
        util = r.utilisation[sl]
        out.append(
            {
                "id": spec.id,
                "name": spec.name["en"],
                "serves": list(spec.serves),
                "start": cal.at(t0).isoformat(),
                "end": cal.at(t1).isoformat(),
                "gates": gates,
                "rate_per_s": _r(rate, 4),
                "room": None,
                "backlog_start": round(
                    tt.stage_backlog(r, watch, k0 - 1 if k0 > 0 else 0)["total"]
                ),
                "backlog_end": round(tt.stage_backlog(r, watch, k1 - 1)["total"]),
                "backlog_detail_start": {
                    k: round(v) for k, v in tt.stage_backlog(r, watch, max(0, k0 - 1)).items()
                },
                "backlog_detail_end": {
                    k: round(v) for k, v in tt.stage_backlog(r, watch, k1 - 1).items()
                },
                "drained_at": None if drained is None else cal.at(drained).isoformat(),
                "peak_queue": round(peak),
                "max_wait_s": _r(max(waits), 0),
                "utilisation": _r(float(util.max()) if len(util) else 0.0, 4),
                "why": spec.why["en"],
            }
        )
    return out


def _timetable(plan: Any) -> list[dict[str, Any]]:
    if plan.decision_s is None:
        return []
    r, cal = plan.result, plan.profile.calendar
    last = max(plan.candidates[plan.recommended].starts.values(), default=plan.decision_s)
    hours = int(
        min(
            (plan.close_s - plan.decision_s) // 3600, max(36, (last - plan.decision_s) // 3600 + 12)
        )
    )
    rows = tt.timetable(r, r._index(plan.decision_s), hours)
    return [
        {
            "hour": cal.at(x["hour_s"]).isoformat(),
            "gate": x["gate"],
            "admit": round(x["admit"]),
            "eta_s": _r(x["eta_s"], 0),
            "returns": round(x["returns"]),
        }
        for x in rows
    ]


def plan_json(plan: Any) -> dict[str, Any]:
    """plan.json (docs/run-directory.md)."""
    return {
        **_setting_json(plan),
        **_outcomes_json(plan),
        **_target_json(plan),
        **_schedule_json(plan),
        "notes": plan.notes,
        "model": {
            "step_s": plan.result.inputs.step_s,
            "patience_s": plan.result.inputs.patience_s,
            "retry_probability": plan.result.inputs.retry_probability,
            "retry_after_s": plan.result.inputs.retry_after_s,
            "units": "applicants unless a name says stamps",
        },
        **_legacy_json(plan),
    }


def _setting_json(plan: Any) -> dict[str, Any]:
    """What the plan was asked: profile, capacity, outage, decision time, close, limits."""
    cal, cfg, total = plan.profile.calendar, plan.config, plan.total
    close = cal.at(plan.close_s)
    return {
        "profile": plan.profile.name,
        "timezone": cal.tz.key,
        "capacity_stamps_per_second": plan.capacity_stamps_per_second,
        "capacity_applicants_per_second": _r(
            plan.capacity_stamps_per_second / plan.profile.mean_stamps_per_applicant, 4
        ),
        "stamps_per_applicant": plan.profile.mean_stamps_per_applicant,
        "outage": None
        if plan.outage is None
        else {"start": plan.outage[0].isoformat(), "end": plan.outage[1].isoformat()},
        "reopen_at": None if plan.decision_s is None else cal.at(plan.decision_s).isoformat(),
        "decision_at": None if plan.decision_s is None else cal.at(plan.decision_s).isoformat(),
        "close": close.isoformat(),
        "extend_days": cfg.extend_days,
        "max_utilisation": cfg.max_utilisation,
        "max_wait_s": cfg.max_wait_s,
        "applicants_total": round(total),
    }


def _outcomes_json(plan: Any) -> dict[str, Any]:
    """The recommendation against doing nothing and the other candidates, pacing costs,
    bands and the applicants lost who had paid."""
    cal, cfg = plan.profile.calendar, plan.config
    costs = {
        v: round(plan.outcome["served"] - c.outcome["served"])
        for v, c in plan.candidates.items()
        if v != plan.recommended
    }
    return {
        "recommended": plan.recommended,
        "outcome": _ocome(plan.outcome),
        "baseline": _ocome(plan.baseline),
        "beats_baseline_by": round(plan.outcome["served"] - plan.baseline["served"]),
        "candidates": {
            v: {
                **_ocome(c.outcome),
                "lost_paid": round(c.lost_paid),
                "starts": {k: cal.at(t).isoformat() for k, t in c.starts.items()},
            }
            for v, c in plan.candidates.items()
        },
        "pacing_costs": costs,
        "bands": None
        if plan.bands is None
        else {k: {q: round(v) for q, v in b.items()} for k, b in plan.bands.items()},
        "band_parameters": {
            "ranges": {k: list(v) for k, v in _ranges(plan).items()},
            "sets": cfg.band_sets,
            "p5_set": plan.p5_set,
        }
        if plan.bands
        else None,
        "lost_paid": round(plan.lost_paid),
        "lost_paid_before_decision": round(plan.lost_paid_before_decision),
        "if_slots_do_not_hold": None
        if plan.unheld is None
        else {k: round(v) for k, v in plan.unheld.items()},
    }


def _target_json(plan: Any) -> dict[str, Any]:
    """The target and whether it is met, the extension and capacity that meet it, what-ifs
    and trade-offs."""
    cal, cfg = plan.profile.calendar, plan.config
    ext_date = (
        None
        if plan.required_extension_days is None
        else (cal.close + timedelta(days=plan.required_extension_days)).isoformat()
    )
    return {
        "target_share": _r(plan.target_share, 5),
        "attainable_share": _r(plan.attainable_share, 5),
        "target_rule": (
            (
                "the stated default (--target to change)"
                if cfg.target == DEFAULT_TARGET
                else "given by --target"
            )
            if cfg.target is not None
            else f"within {cfg.target_gap:.1%} of the share an unlimited issuer would serve "
            "after this outage"
        ),
        "meets_target": plan.meets_target,
        "verdict_served": round(plan.verdict_served),
        "required_extension_days": plan.required_extension_days,
        "required_extension_reason": plan.extension_reason,
        "extended_close": ext_date,
        "extension_grid": [
            {
                "days": g["days"],
                "served_share": _r(g["served_share"], 5),
                "served": round(g["served"]),
                "waiting": round(g["waiting"]),
                "lost": round(g["lost"]),
            }
            for g in plan.grid
        ],
        "required_capacity": _r(plan.required_capacity, 3),
        "what_if": plan.what_if,
        "trade_offs": {k: None if v is None else round(v) for k, v in plan.trade_offs.items()},
    }


def _schedule_json(plan: Any) -> dict[str, Any]:
    """The last-day cut-off, the stages, the reopening timetable and the triggers."""
    cal = plan.profile.calendar
    cut = tt.cutoff_s(plan.result, plan.close_s)
    return {
        "cutoff": None if cut is None else cal.at(cut).isoformat(),
        "stages": stage_views(plan),
        "timetable": _timetable(plan),
        "triggers": [
            {"at": cal.at(t["at_s"]).isoformat(), **{k: v for k, v in t.items() if k != "at_s"}}
            for t in tt.triggers(plan.result, r_index(plan))
        ],
    }


def _legacy_json(plan: Any) -> dict[str, Any]:
    """Kept for older readers (the report, the demo of earlier versions)."""
    total = plan.total
    return {
        "served_share": _r(plan.outcome["served"] / total, 5),
        "verdict": {
            "served_by_deadline": plan.meets_target,
            "margin_hours": None,
            "lost_applicants": round(plan.outcome["lost"]),
            "unserved_applicants": round(total - plan.outcome["served"]),
        },
    }


def r_index(plan: Any) -> int:
    """Step index of the decision time (0 without one)."""
    return plan.result._index(plan.decision_s) if plan.decision_s is not None else 0


def _ranges(plan: Any) -> dict[str, tuple[float, float]]:
    from analysis.bands import profile_ranges

    return profile_ranges(plan.profile)


def waiting_room_json(plan: Any, views: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """waiting_room.json for the recommended plan's stages (analysis/waiting_room.py)."""
    cap = plan.capacity_stamps_per_second / plan.profile.mean_stamps_per_applicant
    views = stage_views(plan) if views is None else views
    stages = [
        {
            "id": v["id"],
            "start": v["start"],
            "admit_per_s": v["rate_per_s"] if v["rate_per_s"] else cap,
            "basis": "plan" if v["rate_per_s"] else "capacity",
        }
        for v in views
    ]
    return wr.settings(stages, capacity_per_s=cap, session_minutes=plan.config.session_minutes)


def _col(x: Any) -> list[str]:
    """A column as the forecast writes numbers: 12 significant digits, "inf" for infinity."""
    return list(map("{:.12g}".format, np.asarray(x, dtype=float).tolist()))


def forecast_columns(r: Any, cal: Any, n: int) -> list[list[str]]:
    """The forecast's timeline columns (analysis.forecast.TIMELINE_COLUMNS) for the first n steps,
    vectorised; `tests/test_analysis_planner.py` checks them equal to `Forecast.timeline_rows`."""
    m = r.inputs.stamps_per_applicant
    names = [s.name for s in r.stages]
    paid = r.orbits["stamping"] + r.rooms["stamping"] + r.issuer_queue
    ends = r.t_s[:n] + r.inputs.step_s
    cols = [[cal.at(float(t)).isoformat() for t in ends]]
    for x in (
        r.arrived_cum,
        r.done_cum,
        r.lost_cum,
        r.in_system,
        r.served_cum,
        r.bypass_cum,
        r.served_per_s * m,
        r.issuer_capacity_per_s * m,
        r.arrivals_per_s,
        r.rooms["registration"],
        r.rooms["ordering"],
        r.rooms["stamping"],
        r.orbits["registration"],
        r.orbits["ordering"],
        r.orbits["stamping"],
        r.payments_queue,
        r.issuer_queue,
        paid,
        r.ghost,
    ):
        cols.append(_col(np.asarray(x)[:n]))
    cols.append([names[int(st)] if st >= 0 else "normal" for st in r.stage[:n]])
    return cols


def timeline_rows(plan: Any) -> list[list[Any]]:
    """timeline.csv rows, one per model step to the close in force: the forecast's columns
    (the shared contract, `analysis.forecast.TIMELINE_COLUMNS`), then the planner's."""
    r, cal, m = plan.result, plan.profile.calendar, plan.profile.mean_stamps_per_applicant
    dt = r.inputs.step_s
    n = min(len(r.t_s), int(math.ceil(plan.close_s / dt - 1e-9)))
    cols = forecast_columns(r, cal, n)
    for x in (
        r.arrivals_per_s,
        r.retry_per_s,
        r.issuer_capacity_per_s,
        r.served_per_s,
        r.queue,
        r.wait_s,
        r.abandoned_per_s,
        r.turned_away_per_s,
        r.utilisation,
        r.issuer_capacity_per_s * m,
        r.queue * m,
    ):
        cols.append(_col(np.asarray(x)[:n]))
    return [list(row) for row in zip(*cols, strict=True)]


def gate_schedule(plan: Any) -> list[dict[str, Any]]:
    """Every gate change of the recommended plan, the fixed past first, in calendar time."""
    r, cal = plan.result, plan.profile.calendar
    out = []
    for s in r.stages:
        for g, v in s.gates.items():
            room = v.get("room")
            out.append(
                {
                    "at": cal.at(s.start_s).isoformat(),
                    "gate": g,
                    "mode": v["mode"],
                    "rate_per_s": v.get("rate_per_s"),
                    "burst": v.get("burst"),
                    "room": None if room is None or not math.isfinite(float(room)) else room,
                    "label": s.name,
                }
            )
    return out
