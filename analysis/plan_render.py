"""The planner's terminal summary: verdict, plan against doing nothing, stages, timetable,
trade-offs (from plan.json, so what is printed is what is written)."""

from __future__ import annotations

import math
from typing import Any

from analysis.backlog import GATES
from analysis.plan_output import plan_json

__all__ = ["render"]


def _dur(s: float | None) -> str:
    if s is None or not math.isfinite(s):
        return "unbounded"
    if s < 90:
        return f"{s:.0f}s"
    if s < 5400:
        return f"{s / 60:.0f}m"
    return f"{s / 3600:.1f}h"


def render(plan: Any, j: dict[str, Any] | None = None) -> str:
    """The terminal summary: verdict, plan vs doing nothing, stages, timetable, trade-offs."""
    j = plan_json(plan) if j is None else j
    L = _header(plan)
    L.append("")
    L += _outcomes(plan, j)
    L.append("")
    L += _stages(j)
    L += _timetable(j)
    L += _answers(plan, j)
    L.append("")
    L.append("  " + _verdict(plan, j))
    return "\n".join(L)


def _header(plan: Any) -> list[str]:
    """Profile, capacity, demand, close in force and the outage with its decision time."""
    cal = plan.profile.calendar
    tot = plan.total
    L = [
        f"Plan for {plan.profile.title} ({plan.profile.name}), times {cal.tz.key}",
        f"  capacity {plan.capacity_stamps_per_second:g} stamps/s; {tot:,.0f} applicants; "
        f"close in force {cal.at(plan.close_s):%Y-%m-%d %H:%M}"
        + (f" (extended {plan.config.extend_days} d)" if plan.config.extend_days else ""),
    ]
    if plan.outage:
        L.append(
            f"  outage {plan.outage[0]:%Y-%m-%d %H:%M} .. {plan.outage[1]:%Y-%m-%d %H:%M}; "
            f"decision (reopening) {cal.at(plan.decision_s):%Y-%m-%d %H:%M}; "
            "the past before it is fixed"
        )
    return L


def _outcomes(plan: Any, j: dict[str, Any]) -> list[str]:
    """Served, still waiting and lost for the plan, doing nothing and the other candidates;
    what the plan beats doing nothing by, its assumption, pacing costs and bands."""
    o, b = j["outcome"], j["baseline"]
    L: list[str] = []
    L.append(f"  {'':<22}{'served':>12}{'still waiting':>15}{'lost':>12}")
    L.append(
        f"  {'recommended (' + plan.recommended + ')':<22}{o['served']:>12,}"
        f"{o['waiting']:>15,}{o['lost']:>12,}"
    )
    L.append(f"  {'do nothing':<22}{b['served']:>12,}{b['waiting']:>15,}{b['lost']:>12,}")
    for v, c in j["candidates"].items():
        if v not in (plan.recommended, "baseline"):
            L.append(f"  {v:<22}{c['served']:>12,}{c['waiting']:>15,}{c['lost']:>12,}")
    diff = j["beats_baseline_by"]
    L.append(
        f"  the plan serves {diff:+,} against doing nothing; lost who had paid: {j['lost_paid']:,}"
        f" (baseline {j['candidates']['baseline']['lost_paid']:,})"
    )
    if j["if_slots_do_not_hold"]:
        u = j["if_slots_do_not_hold"]
        L.append(
            f"  assumption: a booked slot stops the persistence clock; without it the plan "
            f"serves {u['served']:,} and loses {u['lost_paid']:,} who paid"
        )
    for v, cost in j["pacing_costs"].items():
        if cost > 0 and v != "baseline":
            L.append(f"  {v}: pacing costs {cost:,} applicants against the recommendation")
    if j["bands"]:
        bs = j["bands"]
        L.append(
            "  bands over the unpublished parameters (p5 / p50 / p95): "
            + "; ".join(
                f"{k} {bs[k]['p5']:,} / {bs[k]['p50']:,} / {bs[k]['p95']:,}"
                for k in ("served", "waiting", "lost")
            )
        )
    return L


def _stages(j: dict[str, Any]) -> list[str]:
    """The stage table and each stage's reason (nothing without stages)."""
    if not j["stages"]:
        return []
    L: list[str] = []
    L.append(
        f"  {'stage':<24} {'start':<17} {'gates':<38} {'rate/s':>7} {'backlog start':>14} "
        f"{'end':>10}"
    )
    for s in j["stages"]:
        gates = " ".join(f"{g[:3]}={m}" for g, m in s["gates"].items())
        rate = "-" if s["rate_per_s"] is None else f"{s['rate_per_s']:.2f}"
        L.append(
            f"  {s['id']:<24} {s['start'][:16].replace('T', ' '):<17} {gates:<38} {rate:>7} "
            f"{s['backlog_start']:>14,} {s['backlog_end']:>10,}"
        )
    for s in j["stages"]:
        L.append(f"    {s['id']}: {s['why']}")
    L.append("")
    return L


def _timetable(j: dict[str, Any]) -> list[str]:
    """The first 12 hours of the reopening timetable (nothing without one)."""
    if not j["timetable"]:
        return []
    L: list[str] = []
    L.append("  reopening timetable (applicants per hour admitted; ETA to stamp; returns due):")
    hours = sorted({x["hour"] for x in j["timetable"]})
    for h in hours[:12]:
        cells = {x["gate"]: x for x in j["timetable"] if x["hour"] == h}
        L.append(
            f"    {h[5:16].replace('T', ' ')}  "
            + "  ".join(
                f"{g[:3]} {cells[g]['admit']:>7,} eta {_dur(cells[g]['eta_s']):>9} ret "
                f"{cells[g]['returns']:>6,}"
                for g in GATES
            )
        )
    if len(hours) > 12:
        L.append(f"    ... {len(hours) - 12} more hours in plan.json")
    L.append("")
    return L


def _answers(plan: Any, j: dict[str, Any]) -> list[str]:
    """Target, minimum extension, capacity that meets the target, trade-offs, cut-off and
    the first trigger."""
    L: list[str] = []
    L.append(
        f"  target: {plan.target_share:.1%} of applicants served by the close ({j['target_rule']})"
    )
    ext = j["required_extension_days"]
    L.append(
        "  minimum extension (whole days, brute force 0.."
        + f"{plan.config.max_extension_days} d): "
        + (
            f"{ext} d (close {j['extended_close'][:16].replace('T', ' ')})"
            if ext
            else ("none needed" if ext == 0 else f"none ({j['required_extension_reason']})")
        )
    )
    rc = j["required_capacity"]
    L.append(
        "  capacity that meets the target by the close: "
        + ("not reachable" if rc is None else f"{rc:.1f} stamps/s")
    )
    t = j["trade_offs"]
    L.append(
        f"  one more day serves {t['one_more_day']:+,}; one more stamp/s serves "
        f"{t['one_more_stamp_per_second']:+,}"
    )
    if j["cutoff"]:
        L.append(
            f"  last-day cut-off: arrivals after {j['cutoff'][:16].replace('T', ' ')} are not "
            f"served by the close"
        )
    if j["triggers"]:
        tr = j["triggers"][0]
        L.append(
            f"  trigger at {tr['at'][5:16].replace('T', ' ')}: off track if submissions/h < "
            f"{tr['alarm_if']['submissions_per_hour_below']:,.0f}, issuer queue > "
            f"{tr['alarm_if']['issuer_queue_stamps_above']:,.0f} stamps or error ratio > "
            f"{tr['alarm_if']['error_ratio_above']:.0%} (all checkpoints in plan.json)"
        )
    return L


def _verdict(plan: Any, j: dict[str, Any]) -> str:
    """VERDICT: target met or not by the close, and what would meet it."""
    cal = plan.profile.calendar
    tot = plan.total
    ext = j["required_extension_days"]
    rc = j["required_capacity"]
    served = plan.verdict_served
    basis = "p5" if plan.bands else "nominal"
    if plan.meets_target:
        v = (
            f"VERDICT: target met by {cal.at(plan.close_s):%Y-%m-%d %H:%M} ({basis} served "
            f"{served / tot:.1%} >= {plan.target_share:.1%})"
        )
    else:
        v = (
            f"VERDICT: target NOT met by {cal.at(plan.close_s):%Y-%m-%d %H:%M} ({basis} served "
            f"{served / tot:.1%} < {plan.target_share:.1%}); "
        )
        v += (
            f"extend by {ext} d to {j['extended_close'][:16].replace('T', ' ')}"
            if ext
            else "no extension up to the grid meets it"
        ) + (f" or raise capacity to {rc:.1f} stamps/s" if rc else "")
    return v
