"""The reopening family: gate modes over the calendar, the reopening zoomed in."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from floor.vocabulary import GATES
from reports.charts.registry import register
from reports.charts.style import (
    COLOURS,
    Chart,
    calendar_marks,
    local_day,
    new_figure,
    time_axis,
    to_svg,
)
from reports.i18n import Translator
from reports.load import RunData
from reports.plan_screen import stage_text


def gate_changes(run: RunData) -> list[dict[str, Any]]:
    """The plan's gate changes: gate_schedule.json, else derived from plan.json stages."""
    if run.gate_schedule:
        return run.gate_schedule
    out = []
    for st in (run.plan or {}).get("stages") or []:
        for gate, mode in (st.get("gates") or {}).items():
            out.append(
                {
                    "at": st["start"],
                    "gate": gate,
                    "mode": mode,
                    "rate_per_s": st.get("rate_per_s") if mode == "rate" else None,
                    "label": st["name"],
                }
            )
    return sorted(out, key=lambda c: c["at"])


@register("gates", reads=("gate_schedule.json", "plan.json"), section="rooms")
def gates_chart(run: RunData, tr: Translator) -> Chart | None:
    """The reopening plan as a timeline: one band per gate, coloured by mode."""
    changes = gate_changes(run)
    if not changes:
        return None
    tz = run.tz
    gates = list(GATES)
    gates += sorted({c["gate"] for c in changes} - set(gates))
    start = min(c["at"] for c in changes)
    end = max(c["at"] for c in changes)
    if run.profile is not None:
        end = max(end, run.profile.calendar.close)
    stages = (run.plan or {}).get("stages") or []
    if stages:
        end = max(end, max(s["end"] for s in stages))
    pad = (end - start) * 0.04
    x0, x1 = local_day(start - pad, tz), local_day(end, tz)
    fig = new_figure(9.0, 2.6)
    ax = fig.add_subplot()
    seen = set()
    for row, gate in enumerate(gates):
        mine = [c for c in changes if c["gate"] == gate]
        for i, c in enumerate(mine):
            a = local_day(c["at"], tz)
            b = local_day(mine[i + 1]["at"], tz) if i + 1 < len(mine) else x1
            label = tr.t(f"mode_{c['mode']}") if c["mode"] not in seen else None
            seen.add(c["mode"])
            ax.broken_barh(
                [(a, b - a)], (row - 0.35, 0.7), color=COLOURS.get(c["mode"], "#999"), label=label
            )
            if c["mode"] == "rate" and c.get("rate_per_s") is not None:
                ax.text(
                    a + (b - a) / 2,
                    row,
                    tr.t("chart_rate_label", rate=tr.smart(c["rate_per_s"])),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="#111827",
                )
    ax.set_yticks(range(len(gates)), [tr.label("gate", g) for g in gates])
    ax.set_ylim(-0.6, len(gates) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(x0, x1)
    calendar_marks(ax, run, tr, tz)
    time_axis(ax, tr, tz)
    ax.set_title(tr.t("chart_gates_title"))
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return Chart(id="chart-gates", title=tr.t("chart_gates_title"), svg=to_svg(fig, "gates"))


def reopening_window(reopen: datetime, starts: list[datetime]) -> tuple[datetime, datetime]:
    """The zoom of the reopening chart: an hour before the reopening to 12 h after the last
    stage start, at least 25 h, so a stage of 12 hours spans at least a sixth of the width.

    >>> from datetime import datetime, timedelta
    >>> a = datetime(2024, 9, 5, 20)
    >>> b, e = reopening_window(a, [a, a + timedelta(hours=12)])
    >>> (e - b).total_seconds() / 3600
    25.0
    """
    from datetime import timedelta

    last = max(starts, default=reopen)
    start = reopen - timedelta(hours=1)
    return start, max(start + timedelta(hours=25), last + timedelta(hours=12))


@register("reopening", reads=("plan.json",), section="stages", say_absent=False)
def reopening_chart(run: RunData, tr: Translator) -> Chart | None:
    """The reopening zoomed in: from an hour before the decision to 12 h after the last stage
    start (at least a day), one band per gate by mode, stage starts marked and named."""
    plan = run.plan or {}
    stages = plan.get("stages") or []
    if not stages or not plan.get("reopen_at"):
        return None

    tz = run.tz
    reopen = datetime.fromisoformat(plan["reopen_at"])
    # the fixed past from the gate schedule, then the plan's stages with their own modes
    # (booked, paced)
    changes = [c for c in (run.gate_schedule or []) if c["at"] < reopen]
    order = {st.get("id"): i for i, st in enumerate(stages)}
    for st in sorted(stages, key=lambda x: (x["start"], order.get(x.get("id"), 0))):
        for gate, mode in (st.get("gates") or {}).items():
            changes.append({"at": st["start"], "gate": gate, "mode": mode})
    start, end = reopening_window(reopen, [s["start"] for s in stages])
    x0, x1 = local_day(start, tz), local_day(end, tz)
    gates = list(GATES)
    fig = new_figure(9.0, 2.8)
    ax = fig.add_subplot()
    seen: set[str] = set()
    for row, gate in enumerate(gates):
        mine = [c for c in changes if c["gate"] == gate]
        for i, c in enumerate(mine):
            a = max(local_day(c["at"], tz), x0)
            b = min(local_day(mine[i + 1]["at"], tz) if i + 1 < len(mine) else x1, x1)
            if b <= a:
                continue
            mode = c["mode"]
            label = tr.label("mode", mode) if mode not in seen and tr.knows("mode", mode) else None
            seen.add(mode)
            ax.broken_barh(
                [(a, b - a)], (row - 0.35, 0.7), color=COLOURS.get(mode, "#999"), label=label
            )
    for i, st in enumerate(sorted(stages, key=lambda s: s["start"])):
        x = local_day(st["start"], tz)
        ax.axvline(x, color="#111827", lw=0.8, ls="--")
        ax.text(
            x,
            -0.5 - 0.3 * i,
            f" {i + 1}. {stage_text(st, 'name', tr)}",
            fontsize=6.5,
            va="center",
            ha="left",
            color="#111827",
        )
    ax.set_yticks(range(len(gates)), [tr.label("gate", g) for g in gates])
    ax.set_ylim(-0.5 - 0.3 * len(stages) - 0.2, len(gates) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(x0, x1)
    time_axis(ax, tr, tz)
    ax.set_title(tr.t("chart_reopening_title"))
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return Chart(
        id="chart-reopening", title=tr.t("chart_reopening_title"), svg=to_svg(fig, "reopening")
    )
