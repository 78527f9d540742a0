"""The demand family: demand against capacity, the backlog, the arrivals as sent."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib import dates as mdates

from reports.charts.registry import register
from reports.charts.style import (
    COLOURS,
    Chart,
    calendar_marks,
    legend,
    local_days,
    new_figure,
    num_axis,
    pixel_envelope,
    time_axis,
    to_svg,
)
from reports.i18n import Translator
from reports.load import RunData


@register("demand", reads=("timeline.csv", "profile.toml"))
def demand_chart(run: RunData, tr: Translator) -> Chart | None:
    """Demand (new and retrying applicants) against capacity over the calendar."""
    tz = run.tz
    fig = new_figure()
    ax = fig.add_subplot()
    caption = None
    if run.timeline is not None and len(run.timeline):
        _demand_from_timeline(ax, run.timeline, tr, tz)
    elif run.profile is not None:
        caption = "caption_demand_profile"  # drawn from the profile: the caption says so
        _demand_from_profile(ax, run.profile, tr, tz)
    else:
        return None
    ax.set_ylim(bottom=0)
    calendar_marks(ax, run, tr, tz)
    time_axis(ax, tr, tz)
    num_axis(ax, tr)
    ax.set_ylabel(tr.t("axis_applicants_per_s"))
    ax.set_title(tr.t("chart_demand_title"))
    legend(ax)
    return Chart(
        id="chart-demand",
        title=tr.t("chart_demand_title"),
        svg=to_svg(fig, "demand"),
        caption=caption,
    )


def _demand_from_timeline(ax: Any, tl: Any, tr: Translator, tz: Any) -> None:
    """New demand, demand with retries, served and capacity from timeline.csv."""
    x = local_days(tl["calendar_at"], tz)
    ax.fill_between(
        *pixel_envelope(x, tl["demand_per_s"]),
        0,
        color=COLOURS["demand"],
        alpha=0.25,
        linewidth=0,
        label=tr.t("chart_demand_new"),
    )
    ax.plot(
        *pixel_envelope(x, tl["demand_per_s"] + tl["retry_per_s"]),
        color=COLOURS["demand"],
        linewidth=1.2,
        label=tr.t("chart_demand_with_retries"),
    )
    ax.plot(
        *pixel_envelope(x, tl["served_per_s"]),
        color=COLOURS["served"],
        linewidth=1.0,
        label=tr.t("chart_served"),
    )
    ax.plot(
        *pixel_envelope(x, tl["capacity_per_s"]),
        color=COLOURS["capacity"],
        linewidth=1.8,
        drawstyle="steps-post",
        label=tr.t("chart_capacity"),
    )


def _demand_from_profile(ax: Any, p: Any, tr: Translator, tz: Any) -> None:
    """New demand from the profile's arrival curve against its capacity and outages (a run
    directory without a timeline)."""
    from scenarios.curve import ArrivalCurve

    curve = ArrivalCurve(p)
    t = np.arange(0.0, p.calendar.span_s, 600.0)
    x = local_days([p.calendar.at(float(s)) for s in t], tz)
    ax.fill_between(
        x,
        0,
        curve.rate(t),
        color=COLOURS["demand"],
        alpha=0.25,
        linewidth=0,
        label=tr.t("chart_demand_new"),
    )
    cap = np.full(t.size, p.capacity.stamps_per_second / p.mean_stamps_per_applicant)
    for o in p.outages:
        a, b = p.calendar.seconds(o.start), p.calendar.seconds(o.end)
        cap[(t >= a) & (t < b)] *= o.capacity_factor
    ax.plot(
        x,
        cap,
        color=COLOURS["capacity"],
        linewidth=1.8,
        drawstyle="steps-post",
        label=tr.t("chart_capacity_profile"),
    )


@register("backlog", reads=("timeline.csv", "queue.csv"))
def backlog_chart(run: RunData, tr: Translator) -> Chart | None:
    """Backlog and wait over time: the model (timeline.csv) and the measured queue (queue.csv)."""
    tl, q = run.timeline, run.queue
    if (tl is None or not len(tl)) and (q is None or not len(q)):
        return None
    tz = run.tz
    fig = new_figure(9.0, 5.2)
    ax, ax_w = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    twin = None
    model = tl is not None and len(tl) > 0
    if model:
        _model_backlog(ax, ax_w, tl, tr, tz)
    else:
        ax_w.text(
            0.5,
            0.5,
            tr.t("chart_no_model"),
            ha="center",
            va="center",
            transform=ax_w.transAxes,
            color="#6b7280",
        )
        ax_w.set_yticks([])
    if q is not None and len(q):
        twin = _measured_queue(ax, run, q, model, tr, tz)
    ax.set_ylim(bottom=0)
    num_axis(ax, tr)
    for a in (ax, ax_w):
        calendar_marks(a, run, tr, tz)
    time_axis(ax_w, tr, tz)
    ax.set_title(tr.t("chart_backlog_title"))
    legend(ax, *([twin] if twin is not None else []))
    legend(ax_w)
    return Chart(id="chart-backlog", title=tr.t("chart_backlog_title"), svg=to_svg(fig, "backlog"))


def _model_backlog(ax: Any, ax_w: Any, tl: Any, tr: Translator, tz: Any) -> None:
    """The model's backlog (upper axes) and wait in hours (lower axes) from timeline.csv."""
    x = local_days(tl["calendar_at"], tz)
    xq_, q_ = pixel_envelope(x, tl["queue"])
    ax.fill_between(xq_, 0, q_, color=COLOURS["model"], alpha=0.25, linewidth=0)
    ax.plot(xq_, q_, color=COLOURS["model"], linewidth=1.2, label=tr.t("chart_backlog_model"))
    ax.set_ylabel(tr.t("axis_backlog_applicants"))
    ax_w.plot(
        *pixel_envelope(x, tl["wait_s"] / 3600),
        color=COLOURS["wait"],
        linewidth=1.2,
        label=tr.t("chart_wait_model"),
    )
    ax_w.set_ylabel(tr.t("axis_wait_hours"))
    ax_w.set_ylim(bottom=0)
    num_axis(ax_w, tr)


def _measured_queue(
    ax: Any, run: RunData, q: Any, model: bool, tr: Translator, tz: Any
) -> Any | None:
    """The measured issuer queue (queue.csv): on a twin axis beside the model's backlog (the
    twin is returned), else on the backlog axes (None)."""
    scale = float((run.run or {}).get("scale") or 0) or None
    xq = local_days(q["calendar_at"], tz)
    target, twin = ax, None
    if model:
        twin = ax.twinx()
        twin.spines["right"].set_visible(True)
        target = twin
    label = tr.t("chart_backlog_measured", scale=tr.exact(scale) if scale else "?")
    target.plot(
        *pixel_envelope(xq, q["issuer_queue"]),
        color=COLOURS["measured"],
        linewidth=1.0,
        label=label,
    )
    target.set_ylabel(tr.t("axis_measured_queue"), color=COLOURS["measured"])
    target.set_ylim(bottom=0)
    num_axis(target, tr)
    return twin


@register("arrivals", reads=("arrivals.csv",))
def arrivals_chart(run: RunData, tr: Translator) -> Chart | None:
    """Arrivals per wall second, scheduled, achieved (started) and dropped, on calendar time."""
    a = run.arrivals
    if a is None or not len(a):
        return None
    tz = run.tz
    wall = np.array([t.timestamp() for t in a["intended_at"]])
    cal = np.array([t.timestamp() for t in a["calendar_intended_at"]])
    t0, span = wall.min(), max(1.0, wall.max() - wall.min())
    bucket = max(1.0, math.ceil(span / 120))
    idx = ((wall - t0) // bucket).astype(int)
    n = idx.max() + 1
    outcome = np.array(a["outcome"])
    sched = np.bincount(idx, minlength=n) / bucket
    dropped = np.bincount(idx, weights=(outcome == "dropped"), minlength=n) / bucket
    achieved = sched - dropped
    cal_first = np.full(n, np.nan)
    np.fmin.at(cal_first, idx, cal)  # calendar second of each bucket (first arrival in it)
    ok = ~np.isnan(cal_first)
    x = mdates.date2num([datetime.fromtimestamp(s, tz).replace(tzinfo=None) for s in cal_first[ok]])
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(x, sched[ok], color=COLOURS["scheduled"], linewidth=1.2, label=tr.t("chart_scheduled"))
    ax.plot(
        x,
        achieved[ok],
        color=COLOURS["achieved"],
        linewidth=1.0,
        linestyle="--",
        label=tr.t("chart_achieved"),
    )
    ax.bar(
        x,
        dropped[ok],
        width=(x[1] - x[0]) if x.size > 1 else 0.01,
        color=COLOURS["dropped"],
        label=tr.t("chart_dropped"),
    )
    ax.set_ylim(bottom=0)
    calendar_marks(ax, run, tr, tz)
    time_axis(ax, tr, tz)
    num_axis(ax, tr)
    ax.set_ylabel(tr.t("axis_arrivals_per_wall_s"))
    ax.set_title(tr.t("chart_arrivals_title", bucket=tr.num(bucket)))
    legend(ax)
    return Chart(
        id="chart-arrivals",
        title=tr.t("chart_arrivals_title", bucket=tr.num(bucket)),
        svg=to_svg(fig, "arrivals"),
    )
