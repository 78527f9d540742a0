"""The key figures of the report's first screen, derived from a loaded run directory.

>>> from pathlib import Path
>>> from reports.load import load_run
>>> from reports.i18n import Translator
>>> k = key_figures(load_run(Path("tests/fixtures/runs/plan")), Translator("en"))
>>> k.verdict.level
'bad'
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from reports.i18n import Translator
from reports.load import RunData
from reports.plan_screen import plan_screen, plan_verdict, stage_text
from reports.screen import INTEGRITY_FAILURES, KeyFigures, Tile, Verdict


def _close(run: RunData) -> Any:
    return run.profile.calendar.close if run.profile is not None else None


def verdict(run: RunData, tr: Translator) -> Verdict:
    """The verdict sentence: from the plan when there is one, else the rehearsal, else the probe."""
    if run.plan is not None and "meets_target" in run.plan:
        return plan_verdict(run, tr)
    if run.plan is not None:
        v = run.plan["verdict"]
        margin = v.get("margin_hours")
        close = tr.when(_close(run)) if _close(run) else tr.t("the_deadline")
        if v["served_by_deadline"]:
            key = "verdict_served" if margin is not None else "verdict_served_nomargin"
            return Verdict(level="ok", text=tr.t(key, close=close, margin=tr.hours(margin)))
        key = "verdict_not_served" if margin is not None else "verdict_not_served_nomargin"
        return Verdict(
            level="bad",
            text=tr.t(
                key,
                close=close,
                margin=tr.hours(margin),
                share=tr.pct(run.plan.get("served_share")),
            ),
        )
    if run.summary is not None:
        s = run.summary
        th = s.get("thresholds") or []
        failed = [t for t in th if not t["ok"]]
        share = s["completed"] / s["scheduled"] if s["scheduled"] else None
        if th and failed:
            return Verdict(
                level="bad",
                text=tr.t(
                    "verdict_rehearsal_failed", failed=len(failed), n=len(th), share=tr.pct(share)
                ),
            )
        return Verdict(
            level="ok" if th else "info",
            text=tr.t(
                "verdict_rehearsal_ok" if th else "verdict_rehearsal_nothresholds",
                n=len(th),
                share=tr.pct(share),
            ),
        )
    if run.capacity is not None:
        c = run.capacity
        st = (c.get("usl") or {}).get("stamps") or {}
        return Verdict(
            level="info",
            text=tr.t(
                "verdict_probe",
                x=tr.smart(c.get("stamps_per_second")),
                n=tr.num(st.get("peak_load")),
                peak=tr.smart(st.get("peak_throughput")),
            ),
        )
    return Verdict(level="info", text=tr.t("verdict_nothing"))


def integrity(run: RunData, tr: Translator) -> Verdict | None:
    """Reconciliation in words, or None when there is no reconciliation.json.

    >>> from pathlib import Path
    >>> from reports.load import load_run
    >>> v = integrity(load_run(Path("tests/fixtures/runs/full")), Translator("en"))
    >>> v.text.startswith("No quota")
    True
    """
    r = run.reconciliation
    if r is None:
        return None
    parts = []
    for key in INTEGRITY_FAILURES:
        n = r.get(key) or 0
        if n:
            parts.append(tr.t(f"integrity_{key}", n=tr.num(n)))
    checked = tr.t(
        "integrity_checked",
        orders=tr.num(r.get("checked_orders")),
        stamps=tr.num(r.get("checked_stamps")),
    )
    # The contract: `ok` ignores unfinished_stamps (paid, still being issued when the run ended).
    pending = (
        tr.t("integrity_unfinished_stamps", n=tr.num(r["unfinished_stamps"])) + ". "
        if r.get("unfinished_stamps")
        else ""
    )
    if r["ok"] and not parts:
        return Verdict(level="ok", text=tr.t("integrity_ok") + " " + pending + checked)
    if not parts:
        parts.append(tr.t("integrity_failed_unspecified"))
    return Verdict(level="bad", text="; ".join(parts) + ". " + pending + checked)


def key_figures(run: RunData, tr: Translator) -> KeyFigures:
    """Everything on the first screen: verdict, figures, what is needed, integrity, stages."""
    k = KeyFigures(verdict=verdict(run, tr), integrity=integrity(run, tr))
    plan, tl, p = run.plan, run.timeline, run.profile
    cap = (plan or {}).get("capacity_stamps_per_second") or (run.capacity or {}).get(
        "stamps_per_second"
    )
    if tl is not None and len(tl):
        stamps = p.mean_stamps_per_applicant if p is not None else None
        k.figures.append(_peak_demand_tile(tl, tr, run.tz, cap, stamps))
        k.figures += _backlog_tiles(tl, tr, run.tz)
    elif p is not None:
        k.figures.append(_profile_demand_tile(p, tr, cap))
    if plan is not None:
        lost = _lost_tile(plan, p, tr)
        if lost is not None:
            k.figures.append(lost)
        if "outcome" in plan:
            plan_screen(run, tr, k)
        else:
            k.need = _legacy_need(plan, tr, cap)
    if run.summary is not None:
        k.figures.append(_rehearsal_tile(run.summary, tr))
    if run.capacity is not None and run.capacity.get("stamps_per_second") is not None:
        k.figures.append(
            Tile(
                key="capacity",
                label=tr.t("fig_capacity"),
                value=tr.t("unit_stamps_per_s", x=tr.smart(run.capacity["stamps_per_second"])),
                note=_capacity_note(run.capacity, tr),
            )
        )
    for st in (plan or {}).get("stages") or []:
        k.stages.append(_stage_row(st, tr, run.tz))
    return k


def _peak_demand_tile(tl: Any, tr: Translator, tz: Any, cap: Any, stamps: float | None) -> Tile:
    """Peak demand from the timeline, against the issuer's capacity at its peak."""
    # Headline: fresh demand (the profile's applicants), as `surgecast profile show` gives it;
    # the load with people coming back to retry is in the note.
    demand = tl["demand_per_s"]
    load = tl["demand_per_s"] + tl["retry_per_s"]
    i = int(np.argmax(demand))
    peak_cap = float(np.max(tl["capacity_per_s"]))
    ratio = float(demand[i]) / peak_cap if peak_cap > 0 else math.inf
    note = tr.t(
        "fig_peak_demand_note",
        when=tr.when(tl["calendar_at"][i].astimezone(tz)),
        cap=tr.smart(peak_cap),
        ratio=tr.smart(ratio),
    )
    if stamps:
        note += " " + tr.t(
            "fig_peak_demand_stamps", x=tr.smart(float(demand[i]) * stamps), cap=tr.smart(cap)
        )
    if float(np.max(tl["retry_per_s"])) > 0:
        note += " " + tr.t("fig_peak_load_retries", x=tr.smart(float(np.max(load))))
    return Tile(
        key="peak_demand",
        label=tr.t("fig_peak_demand"),
        value=tr.t("unit_applicants_per_s", x=tr.smart(float(demand[i]))),
        note=note,
        level="bad" if ratio > 1 else "ok",
    )


def _backlog_tiles(tl: Any, tr: Translator, tz: Any) -> list[Tile]:
    """The peak backlog and the longest wait from the timeline."""
    j = int(np.argmax(tl["queue"]))
    waits = np.asarray(tl["wait_s"], dtype=float)
    finite = np.where(np.isfinite(waits), waits, -1.0)
    w = int(np.argmax(finite))
    backlog = Tile(
        key="peak_backlog",
        label=tr.t("fig_peak_backlog"),
        value=tr.t("unit_applicants", x=tr.num(float(tl["queue"][j]))),
        note=tr.t("fig_at", when=tr.when(tl["calendar_at"][j].astimezone(tz))),
    )
    wait_note = tr.t("fig_at", when=tr.when(tl["calendar_at"][w].astimezone(tz)))
    if not np.all(np.isfinite(waits)):
        wait_note += "; " + tr.t("fig_wait_unbounded")
    wait = Tile(
        key="longest_wait",
        label=tr.t("fig_longest_wait"),
        value=tr.seconds(float(max(finite[w], 0.0))),
        note=wait_note,
    )
    return [backlog, wait]


def _profile_demand_tile(p: Any, tr: Translator, cap: Any) -> Tile:
    """Peak demand from the profile's arrival curve (a run directory without a timeline)."""
    from scenarios.curve import ArrivalCurve

    at, n = ArrivalCurve(p).peak(3600)
    c = cap or p.capacity.stamps_per_second
    return Tile(
        key="peak_demand",
        label=tr.t("fig_peak_demand"),
        value=tr.t("unit_applicants_per_s", x=tr.smart(n / 3600)),
        note=tr.t(
            "fig_peak_demand_profile",
            when=tr.when(at),
            x=tr.smart(n / 3600 * p.mean_stamps_per_applicant),
            cap=tr.smart(c),
        ),
    )


def _lost_tile(plan: dict[str, Any], p: Any, tr: Translator) -> Tile | None:
    """Applicants lost for good under the plan (None when plan.json does not say)."""
    lost = plan["verdict"].get("lost_applicants")
    if lost is None:
        return None
    if "outcome" in plan:
        total = plan.get("applicants_total")
        note = tr.t("fig_lost_only", share=tr.pct(lost / total, 1)) if total else ""
    else:
        total = p.applicants_total if p is not None else None
        note = tr.t("fig_lost_share", share=tr.pct(lost / total, 1)) if total else ""
    return Tile(
        key="lost",
        label=tr.t("fig_lost"),
        value=tr.t("unit_applicants", x=tr.num(lost)),
        note=note,
        level="bad" if lost > 0 else "ok",
    )


def _legacy_need(plan: dict[str, Any], tr: Translator, cap: Any) -> str:
    """What is needed, from a plan.json of earlier versions (no `outcome`)."""
    if plan["verdict"]["served_by_deadline"]:
        return tr.t("need_nothing")
    ext, req = plan.get("required_extension"), plan.get("required_capacity")
    opts = []
    if ext is not None:
        opts.append(tr.t("need_extension", h=tr.hours(ext)))
    if req is not None:
        more = tr.pct(req / cap - 1) if cap else "–"
        opts.append(tr.t("need_capacity", x=tr.smart(req), more=more, cap=tr.smart(cap)))
    if len(opts) > 1:
        return tr.t("need_either") + " " + tr.t("or").join(opts) + "."
    return (opts[0][:1].upper() + opts[0][1:] + ".") if opts else ""


def _rehearsal_tile(s: dict[str, Any], tr: Translator) -> Tile:
    """The rehearsal's journeys: completed of scheduled, abandoned, failed, dropped."""
    return Tile(
        key="rehearsal",
        label=tr.t("fig_rehearsal"),
        value=tr.t("fig_rehearsal_value", done=tr.num(s["completed"]), n=tr.num(s["scheduled"])),
        note=tr.t(
            "fig_rehearsal_note",
            ab=tr.num(s["abandoned"]),
            failed=tr.num(s["failed"]),
            dropped=tr.num(s["dropped"]),
        ),
    )


def _stage_row(st: dict[str, Any], tr: Translator, tz: Any) -> dict[str, str]:
    """One row of the stage table on the first screen, in words."""
    gates = st.get("gates") or {}
    return {
        "id": st.get("id") or "",
        "name": stage_text(st, "name", tr),
        "from": tr.when(st["start"].astimezone(tz)),
        "to": tr.when(st["end"].astimezone(tz)),
        "gates": ", ".join(
            f"{tr.label('gate', g)}: {tr.label('mode', m)}" for g, m in gates.items()
        ),
        "rate": (
            tr.t("unit_per_s", x=tr.smart(st["rate_per_s"]))
            + (f" ({tr.t('burst')} {tr.num(st['burst'])})" if st.get("burst") else "")
        )
        if st.get("rate_per_s")
        else "–",
        "peak_queue": tr.num(st.get("peak_queue")),
        "max_wait": tr.seconds(st.get("max_wait_s")),
        "utilisation": tr.pct(st.get("utilisation")),
        "why": stage_text(st, "why", tr),
        "backlog": (
            f"{tr.num(st['backlog_start'])} → {tr.num(st['backlog_end'])}"
            if st.get("backlog_start") is not None
            else "–"
        ),
    }


def _capacity_note(cap: dict[str, Any], tr: Translator) -> str:
    """The capacity tile's note: the probe's interval and, on a testbed, its configured capacity."""
    note = tr.t("fig_capacity_note")
    if cap.get("ci_low") is not None and cap.get("ci_high") is not None:
        note += "; " + tr.t(
            "fig_capacity_interval",
            lo=tr.smart(cap["ci_low"]),
            hi=tr.smart(cap["ci_high"]),
            conf=f"{float(cap.get('confidence') or 0.95):.0%}",
        )
    if cap.get("configured_stamps_per_second"):
        note += "; " + tr.t(
            "fig_capacity_configured", x=tr.smart(cap["configured_stamps_per_second"])
        )
    return note
