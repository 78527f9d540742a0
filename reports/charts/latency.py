"""The latency family: latency and throughput per step over time, the USL fit."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib import dates as mdates
from matplotlib.ticker import NullFormatter

from analysis.usl import usl_throughput
from reports.charts.registry import register
from reports.charts.style import (
    COLOURS,
    Chart,
    calendar_marks,
    legend,
    new_figure,
    num_axis,
    time_axis,
    to_svg,
    zone_name,
)
from reports.i18n import Translator
from reports.load import STEPS, RunData


def _history_by_step(run: RunData) -> dict[str, dict[str, np.ndarray]]:
    h = run.latency_history
    assert h is not None
    steps = np.array(h["step"])
    when = np.array([t.timestamp() for t in h["calendar_window_start_at"]])
    out = {}
    for step in [s for s in STEPS if s in set(h["step"])] + sorted(set(h["step"]) - set(STEPS)):
        sel = steps == step
        out[step] = {
            "t": when[sel],
            **{
                k: h[k][sel]
                for k in ("count", "errors", "p50_ms", "p99_ms", "intended_p99_ms", "p95_ms")
            },
        }
    return out


@register("latency", reads=("latency_history.csv",))
def latency_chart(run: RunData, tr: Translator) -> Chart | None:
    """Latency percentiles over time per journey step, both clocks (service and intended)."""
    if run.latency_history is None or not len(run.latency_history):
        return None
    tz = run.tz
    by = _history_by_step(run)
    cols = 2
    rows = math.ceil(len(by) / cols)
    fig = new_figure(9.0, 1.9 * rows + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True)).ravel()
    for ax, (step, d) in zip(axes, by.items(), strict=False):
        x = mdates.date2num([datetime.fromtimestamp(s, tz).replace(tzinfo=None) for s in d["t"]])
        ax.plot(x, d["p50_ms"], color="#1f5fbf", linewidth=1.0, label=tr.t("chart_p50_service"))
        ax.plot(x, d["p99_ms"], color="#d9480f", linewidth=1.0, label=tr.t("chart_p99_service"))
        ax.plot(
            x,
            d["intended_p99_ms"],
            color="#d9480f",
            linewidth=1.0,
            linestyle=":",
            label=tr.t("chart_p99_intended"),
        )
        ax.set_yscale("log")
        _log_ticks(ax, d)
        ax.set_title(tr.label("step", step), fontsize=9, loc="left")
        ax.set_ylabel(tr.t("axis_ms"))
        time_axis(ax, tr, tz, label=False, maxticks=5)
        ax.tick_params(labelsize=7)
    for ax in axes[len(by) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(tr.t("chart_latency_title"), fontsize=10)
    fig.supxlabel(tr.t("axis_calendar_time", zone=zone_name(tz)), fontsize=9)
    return Chart(id="chart-latency", title=tr.t("chart_latency_title"), svg=to_svg(fig, "latency"))


LOG_TICKS = np.array([1, 2, 5])  # ms ticks per decade: 1, 2, 5, 10, 20, 50, ...


def log_ticks(lo: float, hi: float, *, least: int = 3, most: int = 6) -> list[float]:
    """Ticks for a log axis over [lo, hi]: 1-2-5 per decade, padded out to at least `least` ticks,
    so a sub-chart spanning less than a decade still reads (a bare log axis gives it one or two);
    over `most`, 1-5 or decades only.

    >>> log_ticks(30, 90)
    [20.0, 50.0, 100.0]
    >>> log_ticks(1, 1000)
    [1.0, 10.0, 100.0, 1000.0]
    >>> log_ticks(120, 130)
    [50.0, 100.0, 200.0]
    """
    lo, hi = max(lo, 1e-3), max(hi, lo * 1.0001)
    grid = [
        float(m * 10.0**e)
        for e in range(math.floor(math.log10(lo)) - 2, math.ceil(math.log10(hi)) + 3)
        for m in LOG_TICKS
    ]
    inside = [g for g in grid if lo <= g <= hi]
    below = [g for g in grid if g < lo]
    above = [g for g in grid if g > hi]
    while len(inside) < least and (
        below or above
    ):  # pad with the mark nearest the data (in log terms)
        up = math.log10(above[0] / hi) if above else math.inf
        down = math.log10(lo / below[-1]) if below else math.inf
        if up <= down:
            inside.append(above.pop(0))
        else:
            inside.insert(0, below.pop())
    for keep in ((1, 5), (1,)):  # a wide range: fewer marks per decade, so the labels do not crowd
        if len(inside) > most and len([g for g in inside if _mantissa(g) in keep]) >= least:
            inside = [g for g in inside if _mantissa(g) in keep]
    return inside


def _mantissa(v: float) -> int:
    return round(v / 10.0 ** math.floor(math.log10(v) + 1e-9))


def _log_ticks(ax: Any, d: dict[str, np.ndarray]) -> None:
    """At least three labelled ticks on a latency sub-chart's log axis; the limits take them in."""
    vals = np.concatenate([d[k] for k in ("p50_ms", "p99_ms", "intended_p99_ms")])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    if not vals.size:
        return
    ticks = log_ticks(float(vals.min()), float(vals.max()))
    ax.set_yticks(ticks, [_ms(t) for t in ticks])
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylim(min(ticks[0], float(vals.min())) * 0.9, max(ticks[-1], float(vals.max())) * 1.1)


def _ms(v: float) -> str:
    return f"{v:g}"


def window_steps(starts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-window values as a step line (drawstyle steps-post): each holds from its window's start
    to the next start, and the last window is closed one window later.

    >>> xs, ys = window_steps(np.array([0.0, 10.0, 20.0]), np.array([0.0, 0.0, 5.0]))
    >>> xs.tolist(), ys.tolist()
    ([0.0, 10.0, 20.0, 30.0], [0.0, 0.0, 5.0, 5.0])
    """
    starts = np.asarray(starts, dtype=float)
    values = np.asarray(values, dtype=float)
    step = starts[-1] - starts[-2] if starts.size > 1 else 10.0 / 86400
    return np.r_[starts, starts[-1] + step], np.r_[values, values[-1:]]


def step_value(xs: np.ndarray, ys: np.ndarray, at: float) -> float:
    """The value a steps-post line shows at `at` (what the eye reads off the chart).

    >>> step_value(np.array([0.0, 10.0, 20.0]), np.array([0.0, 0.0, 5.0]), 19.9)
    0.0
    """
    i = int(np.searchsorted(xs, at, side="right")) - 1
    return float(ys[max(i, 0)])


@register("throughput", reads=("latency_history.csv",))
def throughput_chart(run: RunData, tr: Translator) -> Chart | None:
    """Requests and errors per wall second (all steps), per latency-history window."""
    h = run.latency_history
    if h is None or not len(h):
        return None
    tz = run.tz
    when = np.array([t.timestamp() for t in h["calendar_window_start_at"]])
    wall = np.array([t.timestamp() for t in h["calendar_window_start_at"]])
    uniq, inv = np.unique(when, return_inverse=True)
    count = np.bincount(inv, weights=h["count"])
    errors = np.bincount(inv, weights=h["errors"])
    # Window length in wall seconds: the contract's 10 s.
    window_s = 10.0
    del wall
    x = mdates.date2num([datetime.fromtimestamp(s, tz).replace(tzinfo=None) for s in uniq])
    fig = new_figure()
    ax = fig.add_subplot()
    # Each window's rate is drawn flat from its start to its end (steps-post): a line from point to
    # point would show errors rising before the window they fell in.
    ax.plot(
        *window_steps(x, count / window_s),
        color=COLOURS["demand"],
        linewidth=1.2,
        drawstyle="steps-post",
        label=tr.t("chart_requests_per_s"),
    )
    tw = ax.twinx()
    tw.spines["right"].set_visible(True)
    tw.plot(
        *window_steps(x, errors / window_s),
        color=COLOURS["error"],
        linewidth=1.0,
        drawstyle="steps-post",
        label=tr.t("chart_errors_per_s"),
    )
    ax.set_ylim(bottom=0)
    tw.set_ylim(bottom=0)
    ax.set_ylabel(tr.t("axis_requests_per_wall_s"))
    tw.set_ylabel(tr.t("axis_errors_per_wall_s"), color=COLOURS["error"])
    num_axis(ax, tr)
    num_axis(tw, tr)
    calendar_marks(ax, run, tr, tz)
    time_axis(ax, tr, tz)
    ax.set_title(tr.t("chart_throughput_title"))
    legend(ax, tw)
    return Chart(
        id="chart-throughput", title=tr.t("chart_throughput_title"), svg=to_svg(fig, "throughput")
    )


def usl_steps(run: RunData) -> list[str]:
    """The USL fits worth drawing: completed stamps and whole journeys first, then steps."""
    usl = (run.capacity or {}).get("usl") or {}
    first = [s for s in ("stamps", "journey") if s in usl]
    return first or sorted(usl)[:2]


def usl_x(n: np.ndarray | float, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """analysis.usl's X(N) for drawing; values that overflow come out as inf and are not drawn.

    >>> float(usl_x(1.0, 0.1, 0.01, 5.0))
    5.0
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return usl_throughput(n, alpha=alpha, beta=beta, gamma=gamma)


@register("usl", reads=("capacity.json",))
def usl_chart(run: RunData, tr: Translator) -> Chart | None:
    """The USL fit of the probe with its measured points and its peak."""
    steps = usl_steps(run)
    if not steps:
        return None
    usl = run.capacity["usl"]  # type: ignore[index]
    fig = new_figure(9.0, 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(steps)))
    stars = 0
    for ax, step in zip(axes, steps, strict=True):
        stars += _usl_panel(ax, run, step, usl[step], tr)
    return Chart(
        id="chart-usl",
        title=tr.t("chart_usl_title"),
        svg=to_svg(fig, "usl"),
        notes=("caption_usl_star",) if stars else ("caption_usl_nostar",),
    )


def _usl_panel(ax: Any, run: RunData, step: str, f: dict[str, Any], tr: Translator) -> int:
    """One step's panel: measured points, the fitted curve, its peak (a star; 1 if drawn, else
    0), the extrapolated region and, for stamps, the sustainable rate."""
    nmax = _usl_measured(ax, run, step, tr)
    peak = f.get("peak_load")
    top = max(nmax, peak or 0) * 1.3 if peak and math.isfinite(peak) else nmax * 1.5
    grid = np.linspace(0.5, max(top, 2.0), 300)
    ax.plot(
        grid,
        usl_x(grid, f["alpha"], f["beta"], f["gamma"]),
        color=COLOURS["model"],
        linewidth=1.5,
        label=tr.t("chart_usl_fit", r2=tr.num(f.get("r2"), 3) if f.get("r2") is not None else "–"),
    )
    star = 0
    if peak and math.isfinite(peak):
        xp = f.get("peak_throughput") or float(usl_x(peak, f["alpha"], f["beta"], f["gamma"]))
        ax.plot(
            [peak],
            [xp],
            marker="*",
            markersize=13,
            color="#111827",
            linestyle="none",
            label=tr.t("chart_usl_peak", n=tr.num(peak), x=tr.smart(xp)),
        )
        star = 1
        if peak > nmax:
            ax.axvspan(nmax, top, color="#f59f00", alpha=0.08, label=tr.t("chart_usl_extrapolated"))
    if step == "stamps" and (run.capacity or {}).get("stamps_per_second"):
        ax.axhline(
            run.capacity["stamps_per_second"],  # type: ignore[index]
            color=COLOURS["capacity"],
            linestyle="--",
            linewidth=1,
            label=tr.t("chart_usl_sustainable"),
        )
    _usl_axes(ax, step, top, tr)
    return star


def _usl_measured(ax: Any, run: RunData, step: str, tr: Translator) -> float:
    """The probe's measured points of `step`; returns the largest measured load (1 if none)."""
    if run.probe is None:
        return 1.0
    sel = np.array(run.probe["step"]) == step
    n, x = run.probe["concurrency"][sel], run.probe["throughput_per_s"][sel]
    if not n.size:
        return 1.0
    ax.plot(n, x, "o", color=COLOURS["measured"], markersize=5, label=tr.t("chart_usl_measured"))
    return float(n.max())


def _usl_axes(ax: Any, step: str, top: float, tr: Translator) -> None:
    """Limits, axis labels in the step's unit, the title and the legend of a USL panel."""
    ax.set_xlim(0, top)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(tr.t("axis_concurrency"))
    unit = (
        "axis_stamps_per_s"
        if step == "stamps"
        else "axis_journeys_per_s"
        if step == "journey"
        else "axis_requests_per_s"
    )
    ax.set_ylabel(tr.t(unit))
    num_axis(ax, tr)
    label = tr.label("step", step)
    ax.set_title(tr.t("chart_usl_title_step", step=label), fontsize=9)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
