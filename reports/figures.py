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
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from reports.i18n import Translator
from reports.load import RunData

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)
INTEGRITY_FAILURES = ("lost_payments", "lost_quota", "duplicated_quota", "lost_stamps", "duplicated_stamps",
                      "orphaned_payments", "unknown_orders", "wrong_quantities", "wrong_amounts",
                      "serial_mismatches", "reissued_serials", "unclaimed_stamps", "charged_after_giving_up",
                      "overcharged_quota", "undercharged_quota", "stuck_payments")


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One sentence and its colour: ok (green), bad (red), warn (amber), info (blue)."""

    level: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Tile:
    """A labelled figure on the first screen (value and a short note)."""

    key: str
    label: str
    value: str
    note: str = ""
    level: str = ""


@dataclass(kw_only=True)
class KeyFigures:
    """What the first screen shows."""

    verdict: Verdict
    figures: list[Tile] = field(default_factory=list)
    need: str = ""
    integrity: Verdict | None = None
    stages: list[dict[str, str]] = field(default_factory=list)
    outcomes: list[dict[str, str]] = field(default_factory=list)    # plan against doing nothing
    comparison: str = ""                                            # one sentence: plan vs doing nothing
    timetable: list[dict[str, Any]] = field(default_factory=list)   # first hours of the reopening
    rooms: list[dict[str, Any]] = field(default_factory=list)       # waiting-room settings per stage
    manager: list[str] = field(default_factory=list)                # trade-offs, cut-off, triggers


def _close(run: RunData) -> Any:
    return run.profile.calendar.close if run.profile is not None else None


def verdict(run: RunData, tr: Translator) -> Verdict:
    """The verdict sentence: from the plan when there is one, else the rehearsal, else the probe."""
    if run.plan is not None and "meets_target" in run.plan:
        return _plan_verdict(run, tr)
    if run.plan is not None:
        v = run.plan["verdict"]
        margin = v.get("margin_hours")
        close = tr.when(_close(run)) if _close(run) else tr.t("the_deadline")
        if v["served_by_deadline"]:
            key = "verdict_served" if margin is not None else "verdict_served_nomargin"
            return Verdict(level="ok", text=tr.t(key, close=close, margin=tr.hours(margin)))
        key = "verdict_not_served" if margin is not None else "verdict_not_served_nomargin"
        return Verdict(level="bad", text=tr.t(key, close=close, margin=tr.hours(margin),
                                              share=tr.pct(run.plan.get("served_share"))))
    if run.summary is not None:
        s = run.summary
        th = s.get("thresholds") or []
        failed = [t for t in th if not t["ok"]]
        share = s["completed"] / s["scheduled"] if s["scheduled"] else None
        if th and failed:
            return Verdict(level="bad", text=tr.t("verdict_rehearsal_failed", failed=len(failed), n=len(th),
                                                  share=tr.pct(share)))
        return Verdict(level="ok" if th else "info",
                       text=tr.t("verdict_rehearsal_ok" if th else "verdict_rehearsal_nothresholds",
                                 n=len(th), share=tr.pct(share)))
    if run.capacity is not None:
        c = run.capacity
        st = (c.get("usl") or {}).get("stamps") or {}
        return Verdict(level="info", text=tr.t("verdict_probe", x=tr.smart(c.get("stamps_per_second")),
                                                n=tr.num(st.get("peak_load")), peak=tr.smart(st.get("peak_throughput"))))
    return Verdict(level="info", text=tr.t("verdict_nothing"))


def _plan_verdict(run: RunData, tr: Translator) -> Verdict:
    """The planner's verdict: p5 of served against the stated target, by a dated close."""
    p = run.plan or {}
    tz = run.tz
    total = p.get("applicants_total") or 0
    close = tr.when(datetime.fromisoformat(p["close"]).astimezone(tz)) if p.get("close") else tr.t("the_deadline")
    basis = tr.t("basis_p5") if p.get("bands") else tr.t("basis_nominal")
    served = p.get("verdict_served") or (p.get("outcome") or {}).get("served") or 0
    fields = dict(close=close, target=tr.pct(p.get("target_share"), 1), basis=basis,
                  share=tr.pct(served / total if total else None, 1), n=tr.num(served))
    if p.get("meets_target"):
        return Verdict(level="ok", text=tr.t("verdict_plan_met", **fields))
    text = tr.t("verdict_plan_not_met", **fields)
    ext = p.get("required_extension_days")
    if ext:
        text += " " + tr.t("verdict_extend", days=tr.num(ext),
                           date=tr.when(datetime.fromisoformat(p["extended_close"]).astimezone(tz)))
    else:
        text += " " + tr.t("verdict_no_extension", days=tr.num(len(p.get("extension_grid") or []) - 1))
    if p.get("required_capacity"):
        text += " " + tr.t("verdict_or_capacity", x=tr.smart(p["required_capacity"]))
    return Verdict(level="bad", text=text)


def stage_text(st: dict[str, Any], what: str, tr: Translator) -> str:
    """A stage's name or reason in the report's language, from the stage table by id.

    >>> stage_text({"id": "finish-paid", "name": "x"}, "name", Translator("id"))
    'Selesaikan pembubuhan bagi yang sudah membayar'
    >>> stage_text({"name": "old plan"}, "name", Translator("id"))
    'old plan'
    """
    from analysis.stages import stage_by_id
    sid = st.get("id")
    if isinstance(sid, str):
        try:
            return getattr(stage_by_id(sid), what).get(tr.lang) or str(st.get(what) or "")
        except KeyError:
            pass
    return str(st.get(what) or "")


def _plan_screen(run: RunData, tr: Translator, k: KeyFigures) -> None:
    """Plan against doing nothing, the timetable, the waiting rooms, what a manager decides on."""
    p = run.plan or {}
    tz = run.tz
    if "outcome" not in p:
        return
    rows = [("plan", tr.t("row_plan", name=tr.t(f"variant_{p.get('recommended')}")), p["outcome"]),
            ("baseline", tr.t("row_baseline"), p["baseline"])]
    for key, label, o in rows:
        k.outcomes.append({"key": key, "label": label, "served": tr.num(o["served"]), "waiting": tr.num(o["waiting"]),
                           "lost": tr.num(o["lost"])})
    if p.get("bands"):
        b = p["bands"]
        k.outcomes.append({"key": "bands", "label": tr.t("row_bands"),
                           **{x: f"{tr.num(b[x]['p5'])} – {tr.num(b[x]['p95'])}" for x in ("served", "waiting", "lost")}})
    diff = p["outcome"]["served"] - p["baseline"]["served"]
    costs = [(v, c) for v, c in (p.get("pacing_costs") or {}).items() if c > 0 and v != "baseline"]
    k.comparison = tr.t("compare_better" if diff > 0 else "compare_same", n=tr.num(abs(diff)),
                        paid=tr.num(p.get("lost_paid")), paid_base=tr.num(((p.get("candidates") or {}).get("baseline")
                                                                          or {}).get("lost_paid")))
    if costs:
        k.comparison += " " + "; ".join(tr.t("pacing_costs", name=tr.t(f"variant_{v}"), n=tr.num(c)) for v, c in costs) + "."
    hours = sorted({r["hour"] for r in p.get("timetable") or []})[:12]
    for h in hours:
        cells = {r["gate"]: r for r in p["timetable"] if r["hour"] == h}
        gates = ("registration", "ordering", "stamping")
        k.timetable.append({"hour": tr.when(datetime.fromisoformat(h).astimezone(tz)),
                            "admit": [tr.num(cells[g]["admit"]) if g in cells else "–" for g in gates],
                            "eta": tr.seconds(cells["stamping"]["eta_s"]) if "stamping" in cells else "–",
                            "returns": tr.num(sum(c.get("returns") or 0 for c in cells.values()))})
    names = {st.get("id"): stage_text(st, "name", tr) for st in p.get("stages") or []}
    for st in (run.waiting_room or {}).get("stages") or []:
        k.rooms.append({"stage": names.get(st.get("id"), st.get("id")),
                        "start": tr.when(datetime.fromisoformat(st["start"]).astimezone(tz)),
                        "cf_new": tr.num(st["cloudflare"]["new_users_per_minute"]),
                        "cf_active": tr.num(st["cloudflare"]["total_active_users"]),
                        "cf_session": tr.num(st["cloudflare"]["session_duration_minutes"]),
                        "aws": tr.num(st["aws_virtual_waiting_room"]["increment_per_minute"]),
                        "qit": tr.num(st["queue_it"]["max_outflow_per_minute"])})
    t = p.get("trade_offs") or {}
    if t:
        k.manager.append(tr.t("mgr_trade", day=tr.num(t.get("one_more_day")), stamp=tr.num(t.get("one_more_stamp_per_second"))))
    if p.get("cutoff"):
        k.manager.append(tr.t("mgr_cutoff", when=tr.when(datetime.fromisoformat(p["cutoff"]).astimezone(tz))))
    for trig in (p.get("triggers") or [])[:2]:
        a = trig["alarm_if"]
        k.manager.append(tr.t("mgr_trigger", when=tr.when(datetime.fromisoformat(trig["at"]).astimezone(tz)),
                              subs=tr.num(a["submissions_per_hour_below"]), queue=tr.num(a["issuer_queue_stamps_above"]),
                              err=tr.pct(a["error_ratio_above"])))
    if p.get("lost_paid_before_decision"):
        k.manager.append(tr.t("mgr_lost_paid_before", n=tr.num(p["lost_paid_before_decision"])))


def integrity(run: RunData, tr: Translator) -> Verdict | None:
    """Reconciliation in words, or None when there is no reconciliation.json.

    >>> from pathlib import Path
    >>> from reports.load import load_run
    >>> integrity(load_run(Path("tests/fixtures/runs/full")), Translator("en")).text.startswith("No quota")
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
    checked = tr.t("integrity_checked", orders=tr.num(r.get("checked_orders")), stamps=tr.num(r.get("checked_stamps")))
    # The contract: `ok` ignores unfinished_stamps (paid, still being issued when the run ended).
    pending = tr.t("integrity_unfinished_stamps", n=tr.num(r["unfinished_stamps"])) + ". " if r.get("unfinished_stamps") else ""
    if r["ok"] and not parts:
        return Verdict(level="ok", text=tr.t("integrity_ok") + " " + pending + checked)
    if not parts:
        parts.append(tr.t("integrity_failed_unspecified"))
    return Verdict(level="bad", text="; ".join(parts) + ". " + pending + checked)


def key_figures(run: RunData, tr: Translator) -> KeyFigures:
    """Everything on the first screen: verdict, figures, what is needed, integrity, stages."""
    k = KeyFigures(verdict=verdict(run, tr), integrity=integrity(run, tr))
    plan, tl, p = run.plan, run.timeline, run.profile
    stamps = p.mean_stamps_per_applicant if p is not None else None
    cap = (plan or {}).get("capacity_stamps_per_second") or (run.capacity or {}).get("stamps_per_second")
    tz = run.tz
    if tl is not None and len(tl):
        # Headline: fresh demand (the profile's applicants), as `surgecast profile show` gives it;
        # the load with people coming back to retry is in the note.
        demand = tl["demand_per_s"]
        load = tl["demand_per_s"] + tl["retry_per_s"]
        i = int(np.argmax(demand))
        peak_cap = float(np.max(tl["capacity_per_s"]))
        ratio = float(demand[i]) / peak_cap if peak_cap > 0 else math.inf
        note = tr.t("fig_peak_demand_note", when=tr.when(tl["calendar_at"][i].astimezone(tz)),
                    cap=tr.smart(peak_cap), ratio=tr.smart(ratio))
        if stamps:
            note += " " + tr.t("fig_peak_demand_stamps", x=tr.smart(float(demand[i]) * stamps), cap=tr.smart(cap))
        if float(np.max(tl["retry_per_s"])) > 0:
            note += " " + tr.t("fig_peak_load_retries", x=tr.smart(float(np.max(load))))
        k.figures.append(Tile(key="peak_demand", label=tr.t("fig_peak_demand"),
                                 value=tr.t("unit_applicants_per_s", x=tr.smart(float(demand[i]))), note=note,
                                 level="bad" if ratio > 1 else "ok"))
        j = int(np.argmax(tl["queue"]))
        waits = np.asarray(tl["wait_s"], dtype=float)
        finite = np.where(np.isfinite(waits), waits, -1.0)
        w = int(np.argmax(finite))
        k.figures.append(Tile(key="peak_backlog", label=tr.t("fig_peak_backlog"),
                                 value=tr.t("unit_applicants", x=tr.num(float(tl["queue"][j]))),
                                 note=tr.t("fig_at", when=tr.when(tl["calendar_at"][j].astimezone(tz)))))
        wait_note = tr.t("fig_at", when=tr.when(tl["calendar_at"][w].astimezone(tz)))
        if not np.all(np.isfinite(waits)):
            wait_note += "; " + tr.t("fig_wait_unbounded")
        k.figures.append(Tile(key="longest_wait", label=tr.t("fig_longest_wait"),
                                 value=tr.seconds(float(max(finite[w], 0.0))), note=wait_note))
    elif p is not None:
        from scenarios.curve import ArrivalCurve

        at, n = ArrivalCurve(p).peak(3600)
        c = cap or p.capacity.stamps_per_second
        k.figures.append(Tile(key="peak_demand", label=tr.t("fig_peak_demand"),
                                 value=tr.t("unit_applicants_per_s", x=tr.smart(n / 3600)),
                                 note=tr.t("fig_peak_demand_profile", when=tr.when(at), x=tr.smart(n / 3600 * p.mean_stamps_per_applicant),
                                           cap=tr.smart(c))))
    if plan is not None:
        lost = plan["verdict"].get("lost_applicants")
        if lost is not None and "outcome" in plan:
            total = plan.get("applicants_total")
            k.figures.append(Tile(key="lost", label=tr.t("fig_lost"), value=tr.t("unit_applicants", x=tr.num(lost)),
                                  note=tr.t("fig_lost_only", share=tr.pct(lost / total, 1)) if total else "",
                                  level="bad" if lost > 0 else "ok"))
        elif lost is not None:
            total = p.applicants_total if p is not None else None
            k.figures.append(Tile(key="lost", label=tr.t("fig_lost"), value=tr.t("unit_applicants", x=tr.num(lost)),
                                     note=tr.t("fig_lost_share", share=tr.pct(lost / total, 1)) if total else "",
                                     level="bad" if lost > 0 else "ok"))
        ext, req = plan.get("required_extension"), plan.get("required_capacity")
        if "outcome" in plan:
            _plan_screen(run, tr, k)
        elif plan["verdict"]["served_by_deadline"]:
            k.need = tr.t("need_nothing")
        else:
            opts = []
            if ext is not None:
                opts.append(tr.t("need_extension", h=tr.hours(ext)))
            if req is not None:
                more = tr.pct(req / cap - 1) if cap else "–"
                opts.append(tr.t("need_capacity", x=tr.smart(req), more=more, cap=tr.smart(cap)))
            if len(opts) > 1:
                k.need = tr.t("need_either") + " " + tr.t("or").join(opts) + "."
            else:
                k.need = (opts[0][:1].upper() + opts[0][1:] + ".") if opts else ""
    if run.summary is not None:
        s = run.summary
        k.figures.append(Tile(key="rehearsal", label=tr.t("fig_rehearsal"),
                                 value=tr.t("fig_rehearsal_value", done=tr.num(s["completed"]), n=tr.num(s["scheduled"])),
                                 note=tr.t("fig_rehearsal_note", ab=tr.num(s["abandoned"]), failed=tr.num(s["failed"]),
                                           dropped=tr.num(s["dropped"]))))
    if run.capacity is not None and run.capacity.get("stamps_per_second") is not None:
        k.figures.append(Tile(key="capacity", label=tr.t("fig_capacity"),
                                 value=tr.t("unit_stamps_per_s", x=tr.smart(run.capacity["stamps_per_second"])),
                                 note=_capacity_note(run.capacity, tr)))
    for st in (plan or {}).get("stages") or []:
        gates = st.get("gates") or {}
        k.stages.append({
            "id": st.get("id") or "",
            "name": stage_text(st, "name", tr),
            "from": tr.when(st["start"].astimezone(tz)),
            "to": tr.when(st["end"].astimezone(tz)),
            "gates": ", ".join(f"{tr.t('gate_' + g) if 'gate_' + g in tr.table else g}: "
                               f"{tr.t('mode_' + m) if 'mode_' + m in tr.table else m}" for g, m in gates.items()),
            "rate": (tr.t("unit_per_s", x=tr.smart(st["rate_per_s"])) + (f" ({tr.t('burst')} {tr.num(st['burst'])})"
                     if st.get("burst") else "")) if st.get("rate_per_s") else "–",
            "peak_queue": tr.num(st.get("peak_queue")),
            "max_wait": tr.seconds(st.get("max_wait_s")),
            "utilisation": tr.pct(st.get("utilisation")),
            "why": stage_text(st, "why", tr),
            "backlog": (f"{tr.num(st['backlog_start'])} → {tr.num(st['backlog_end'])}"
                        if st.get("backlog_start") is not None else "–"),
        })
    return k


def latency_rows(run: RunData, tr: Translator) -> list[dict[str, Any]]:
    """Per-step latency from the HDR files: count and p50..p99.9 (ms) on both clocks.

    A percentile with fewer than 10 / (1 - q) samples is flagged `thin` (shown with a mark).
    """
    rows = []
    order = [s for s in ("register", "login", "order", "pay", "wait_quota", "stamp", "poll_stamp", "download")
             if s in run.hdr] + sorted(set(run.hdr) - set(("register", "login", "order", "pay", "wait_quota",
                                                             "stamp", "poll_stamp", "download")))
    for step in order:
        for clock in ("service", "intended"):
            h = run.hdr[step].get(clock)
            if h is None:
                continue
            n = h.get_total_count()
            cells = []
            for q in PERCENTILES:
                v = h.get_value_at_percentile(q) / 1000 if n else None
                thin = n < 10 / (1 - q / 100)
                cells.append({"value": tr.smart(v), "thin": thin})
            rows.append({"step": tr.t(f"step_{step}") if f"step_{step}" in tr.table else step,
                         "clock": tr.t(f"clock_{clock}"), "count": tr.num(n), "cells": cells})
    return rows


def error_rows(run: RunData, tr: Translator) -> list[dict[str, str]]:
    """Requests and errors per step (summary.json) with the error ratio."""
    out = []
    for step, v in ((run.summary or {}).get("steps") or {}).items():
        n, e = v.get("count", 0), v.get("errors", 0) or 0
        out.append({"step": tr.t(f"step_{step}") if f"step_{step}" in tr.table else step,
                    "count": tr.num(n), "errors": tr.num(e), "ratio": tr.pct(e / n if n else None, 2),
                    "bad": e / n > 0.01 if n else False})
    return out


def plan_check_lines(run: RunData, tr: Translator) -> tuple[str, str, list[str]] | None:
    """The rehearsal-vs-plan check (plan_check.json) in words: (level, headline, one line per check).

    >>> from pathlib import Path
    >>> from reports.load import RunData
    >>> plan_check_lines(RunData(run_dir=Path(".")), Translator("en")) is None
    True
    """
    pc = run.plan_check
    if not pc:
        return None
    tz = run.tz
    lines = []
    for c in pc.get("checks") or []:
        if not isinstance(c, dict):
            continue
        mark = "✔" if c.get("ok") else "✘"
        name, measured, planned = c.get("name"), c.get("measured"), c.get("plan")
        if name == "drain":
            res = tr.seconds(float(pc.get("resolution_s") or 0))
            when = tr.when(datetime.fromisoformat(measured).astimezone(tz)) if measured else "–"
            text = tr.t("check_drain", measured=when, plan=tr.when(datetime.fromisoformat(planned).astimezone(tz)),
                        res=res) if measured else tr.t("check_drain_never")
        elif name == "utilisation":
            text = tr.t("check_utilisation", measured=tr.pct(measured) if measured is not None else "–",
                        plan=tr.pct(planned))
        elif name == "gates":
            text = (tr.t("check_gates_ok") if c.get("ok")
                    else tr.t("check_gates_failed", detail=_gate_detail(c, tr)))
        elif name == "integrity":
            text = tr.t("integrity_ok") if c.get("ok") else tr.t("check_integrity_failed")
        elif name == "model" and isinstance(measured, dict):
            sv, pk = measured.get("served") or {}, measured.get("peak_backlog") or {}
            text = tr.t("check_model", served_m=tr.num(sv.get("model")), served=tr.num(sv.get("measured")),
                        served_e=_signed_pct(sv.get("error"), tr), peak_m=tr.num(pk.get("model")),
                        peak=tr.num(pk.get("measured")), peak_e=_signed_pct(pk.get("error"), tr),
                        tol=tr.pct((pc.get("model_vs_testbed") or {}).get("tolerance", 0.1)))
        else:
            text = str(c.get("detail", name))
        lines.append(f"{mark} {text}")
    follows = bool(pc.get("follows"))
    return ("ok" if follows else "bad", tr.t("plan_check_follows" if follows else "plan_check_not"), lines)


def _gate_detail(c: dict[str, Any], tr: Translator) -> str:
    """The gates that were not set as planned, in the report's language (follow's gate lines)."""
    lines = c.get("measured")
    if not isinstance(lines, list):
        return str(c.get("detail", ""))
    return "; ".join(tr.t("check_gate_line", stage=x.get("stage"), gate=x.get("gate"),
                          plan=x.get("plan"),
                          measured=x.get("measured") or tr.t("check_gate_unsampled"))
                     for x in lines if isinstance(x, dict) and not x.get("ok"))


def pvb_verdict(run: RunData, tr: Translator) -> str | None:
    """The plan-against-doing-nothing verdict in the report's language, from plan_check.json's
    figures (`served_gain`, the two sides, `conditions`, `gate_effect`); its English `verdict`
    when those figures are absent."""
    pvb = (run.plan_check or {}).get("plan_vs_baseline")
    if not isinstance(pvb, dict):
        return None
    sg = pvb.get("served_gain")
    if not isinstance(sg, dict) or sg.get("measured") is None:
        return pvb.get("verdict")
    gain, noise = float(sg["measured"]), float(sg.get("noise") or 0.0)
    kind = "more" if gain > noise else "fewer" if gain < -noise else "none"
    text = tr.t(f"pvb_verdict_{kind}", n=tr.num(abs(gain)), gain=_signed_num(gain, tr),
                noise=tr.num(noise), model=_signed_num(sg.get("model"), tr))

    def side(name: str, key: str) -> Any:
        return (((pvb.get(name) or {}).get(key)) or {}).get("measured")

    def share(name: str) -> float | None:
        served, lost = side(name, "served"), side(name, "lost")
        return None if served is None or lost is None else served / max(1, served + lost)

    def peak(name: str) -> Any:
        mvt = (pvb.get(name) or {}).get("model_vs_testbed") or {}
        return (mvt.get("peak_backlog") or {}).get("measured")

    text += "; " + tr.t("pvb_verdict_why", plan=tr.pct(share("plan")),
                        base=tr.pct(share("baseline")),
                        peak_plan=tr.num(peak("plan")), peak_base=tr.num(peak("baseline")))
    cond = pvb.get("conditions") or {}
    if cond.get("differ"):
        r, t = cond.get("issuer_stamps_per_second") or {}, cond.get("transit_s") or {}
        text += "; " + tr.t("pvb_verdict_machine", rate_plan=tr.num(r.get("plan"), 1),
                            rate_base=tr.num(r.get("baseline"), 1),
                            transit_plan=tr.num(t.get("plan"), 1),
                            transit_base=tr.num(t.get("baseline"), 1))
    ge = pvb.get("gate_effect") or {}
    if ge.get("gain") is not None:
        text += "; " + tr.t("pvb_verdict_gates", gain=_signed_num(ge["gain"], tr),
                            se=tr.num(2 * float(ge.get("gain_se") or 0.0)))
    return text


def _signed_num(x: Any, tr: Translator) -> str:
    sign = "+" if x is not None and x > 0 else "−" if x is not None and x < 0 else ""
    return "–" if x is None else sign + tr.num(abs(float(x)))


def _signed_pct(e: Any, tr: Translator) -> str:
    return "–" if e is None else ("+" if e > 0 else "") + tr.pct(e, 1)


PVB_KEYS = ("served", "lost", "duplicated", "p95_wait_s")


def plan_vs_baseline_rows(run: RunData, tr: Translator) -> list[dict[str, str]] | None:
    """Plan against doing nothing on the testbed (plan_check.json `plan_vs_baseline`): one row per
    measure, measured beside the model for the plan and for doing nothing; None without it.

    >>> from pathlib import Path
    >>> from reports.load import RunData
    >>> plan_vs_baseline_rows(RunData(run_dir=Path(".")), Translator("en")) is None
    True
    """
    pvb = (run.plan_check or {}).get("plan_vs_baseline")
    if not isinstance(pvb, dict):
        return None
    def cell(side: str, key: str, which: str) -> str:
        v = ((pvb.get(side) or {}).get(key) or {}).get(which)
        if v is None:
            return "–"
        return tr.seconds(float(v)) if key == "p95_wait_s" else tr.num(v)

    rows = []
    for key in PVB_KEYS:
        rows.append({"key": key, "label": tr.t(f"pvb_{key}"), "plan_measured": cell("plan", key, "measured"),
                     "plan_model": cell("plan", key, "model"), "baseline_measured": cell("baseline", key, "measured"),
                     "baseline_model": cell("baseline", key, "model")})
    return rows


def _capacity_note(cap: dict[str, Any], tr: Translator) -> str:
    """The capacity tile's note: the probe's interval and, on a testbed, its configured capacity."""
    note = tr.t("fig_capacity_note")
    if cap.get("ci_low") is not None and cap.get("ci_high") is not None:
        note += "; " + tr.t("fig_capacity_interval", lo=tr.smart(cap["ci_low"]), hi=tr.smart(cap["ci_high"]),
                                conf=f"{float(cap.get('confidence') or 0.95):.0%}")
    if cap.get("configured_stamps_per_second"):
        note += "; " + tr.t("fig_capacity_configured", x=tr.smart(cap["configured_stamps_per_second"]))
    return note
