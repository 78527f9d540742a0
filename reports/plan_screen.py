"""The planner's first screen: its verdict, its stages in words, the timetable, the rooms, the
manager's trade-offs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from floor.vocabulary import GATES
from reports.i18n import Translator
from reports.load import RunData
from reports.screen import KeyFigures, Verdict

__all__ = ["plan_screen", "plan_verdict", "stage_text"]


def plan_verdict(run: RunData, tr: Translator) -> Verdict:
    """The planner's verdict: p5 of served against the stated target, by a dated close."""
    p = run.plan or {}
    tz = run.tz
    total = p.get("applicants_total") or 0
    close = (
        tr.when(datetime.fromisoformat(p["close"]).astimezone(tz))
        if p.get("close")
        else tr.t("the_deadline")
    )
    basis = tr.t("basis_p5") if p.get("bands") else tr.t("basis_nominal")
    served = p.get("verdict_served") or (p.get("outcome") or {}).get("served") or 0
    fields = dict(
        close=close,
        target=tr.pct(p.get("target_share"), 1),
        basis=basis,
        share=tr.pct(served / total if total else None, 1),
        n=tr.num(served),
    )
    if p.get("meets_target"):
        return Verdict(level="ok", text=tr.t("verdict_plan_met", **fields))
    text = tr.t("verdict_plan_not_met", **fields)
    ext = p.get("required_extension_days")
    if ext:
        text += " " + tr.t(
            "verdict_extend",
            days=tr.num(ext),
            date=tr.when(datetime.fromisoformat(p["extended_close"]).astimezone(tz)),
        )
    else:
        text += " " + tr.t(
            "verdict_no_extension", days=tr.num(len(p.get("extension_grid") or []) - 1)
        )
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


def plan_screen(run: RunData, tr: Translator, k: KeyFigures) -> None:
    """Plan against doing nothing, the timetable, the waiting rooms, what a manager decides on."""
    p = run.plan or {}
    if "outcome" not in p:
        return
    k.outcomes += _outcome_rows(p, tr)
    k.comparison = _comparison(p, tr)
    k.timetable += _timetable_rows(p, tr, run.tz)
    k.rooms += _room_rows(run, tr)
    k.manager += _manager_lines(p, tr, run.tz)


def _outcome_rows(p: dict[str, Any], tr: Translator) -> list[dict[str, Any]]:
    """Served, still waiting and lost: the plan, doing nothing, and the bands (p5 – p95)."""
    out: list[dict[str, Any]] = []
    rows = [
        ("plan", tr.t("row_plan", name=tr.t(f"variant_{p.get('recommended')}")), p["outcome"]),
        ("baseline", tr.t("row_baseline"), p["baseline"]),
    ]
    for key, label, o in rows:
        out.append(
            {
                "key": key,
                "label": label,
                "served": tr.num(o["served"]),
                "waiting": tr.num(o["waiting"]),
                "lost": tr.num(o["lost"]),
            }
        )
    if p.get("bands"):
        b = p["bands"]
        out.append(
            {
                "key": "bands",
                "label": tr.t("row_bands"),
                **{
                    x: f"{tr.num(b[x]['p5'])} – {tr.num(b[x]['p95'])}"
                    for x in ("served", "waiting", "lost")
                },
            }
        )
    return out


def _comparison(p: dict[str, Any], tr: Translator) -> str:
    """The plan against doing nothing in a sentence, with the cost of pacing."""
    diff = p["outcome"]["served"] - p["baseline"]["served"]
    costs = [(v, c) for v, c in (p.get("pacing_costs") or {}).items() if c > 0 and v != "baseline"]
    text = tr.t(
        "compare_better" if diff > 0 else "compare_same",
        n=tr.num(abs(diff)),
        paid=tr.num(p.get("lost_paid")),
        paid_base=tr.num(((p.get("candidates") or {}).get("baseline") or {}).get("lost_paid")),
    )
    if costs:
        text += (
            " "
            + "; ".join(
                tr.t("pacing_costs", name=tr.t(f"variant_{v}"), n=tr.num(c)) for v, c in costs
            )
            + "."
        )
    return text


def _timetable_rows(p: dict[str, Any], tr: Translator, tz: Any) -> list[dict[str, Any]]:
    """The first 12 hours of the timetable: admitted per gate, ETA to stamp, returns due."""
    out = []
    hours = sorted({r["hour"] for r in p.get("timetable") or []})[:12]
    for h in hours:
        cells = {r["gate"]: r for r in p["timetable"] if r["hour"] == h}
        out.append(
            {
                "hour": tr.when(datetime.fromisoformat(h).astimezone(tz)),
                "admit": [tr.num(cells[g]["admit"]) if g in cells else "–" for g in GATES],
                "eta": tr.seconds(cells["stamping"]["eta_s"]) if "stamping" in cells else "–",
                "returns": tr.num(sum(c.get("returns") or 0 for c in cells.values())),
            }
        )
    return out


def _room_rows(run: RunData, tr: Translator) -> list[dict[str, Any]]:
    """Per stage, the waiting-room settings of waiting_room.json."""
    p = run.plan or {}
    names = {st.get("id"): stage_text(st, "name", tr) for st in p.get("stages") or []}
    return [
        {
            "stage": names.get(st.get("id"), st.get("id")),
            "start": tr.when(datetime.fromisoformat(st["start"]).astimezone(run.tz)),
            "cf_new": tr.num(st["cloudflare"]["new_users_per_minute"]),
            "cf_active": tr.num(st["cloudflare"]["total_active_users"]),
            "cf_session": tr.num(st["cloudflare"]["session_duration_minutes"]),
            "aws": tr.num(st["aws_virtual_waiting_room"]["increment_per_minute"]),
            "qit": tr.num(st["queue_it"]["max_outflow_per_minute"]),
        }
        for st in (run.waiting_room or {}).get("stages") or []
    ]


def _manager_lines(p: dict[str, Any], tr: Translator, tz: Any) -> list[str]:
    """What a manager decides on: trade-offs, the last-day cut-off, the first two triggers and
    the applicants who paid and were lost before the decision."""
    out = []
    t = p.get("trade_offs") or {}
    if t:
        out.append(
            tr.t(
                "mgr_trade",
                day=tr.num(t.get("one_more_day")),
                stamp=tr.num(t.get("one_more_stamp_per_second")),
            )
        )
    if p.get("cutoff"):
        out.append(
            tr.t("mgr_cutoff", when=tr.when(datetime.fromisoformat(p["cutoff"]).astimezone(tz)))
        )
    for trig in (p.get("triggers") or [])[:2]:
        a = trig["alarm_if"]
        out.append(
            tr.t(
                "mgr_trigger",
                when=tr.when(datetime.fromisoformat(trig["at"]).astimezone(tz)),
                subs=tr.num(a["submissions_per_hour_below"]),
                queue=tr.num(a["issuer_queue_stamps_above"]),
                err=tr.pct(a["error_ratio_above"]),
            )
        )
    if p.get("lost_paid_before_decision"):
        out.append(tr.t("mgr_lost_paid_before", n=tr.num(p["lost_paid_before_decision"])))
    return out
