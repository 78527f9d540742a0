"""The report's charts: matplotlib Figures (no pyplot) rendered to inline SVG.

Each function takes the loaded run (`reports.load.RunData`) and a `Translator`
and returns a `Chart`, or None when the data it needs are absent (the report then
says which file is missing). Text in the SVG stays text (`svg.fonttype = none`),
so it is translated, searchable and sharp when printed::

    >>> from pathlib import Path
    >>> from reports.load import load_run
    >>> from reports.i18n import Translator
    >>> c = usl_chart(load_run(Path("tests/fixtures/runs/probe")), Translator("en"))
    >>> c.svg.startswith("<svg")
    True
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import matplotlib
import numpy as np
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from analysis.usl import usl_throughput
from reports.i18n import Translator
from reports.load import STEPS, RunData

matplotlib.use("Agg")

COLOURS = {"demand": "#1f5fbf", "retry": "#7fa7e6", "capacity": "#1a7f37", "served": "#6b7280",
           "model": "#1f5fbf", "measured": "#d9480f", "wait": "#7048e8", "error": "#c92a2a",
           "open": "#2f9e44", "rate": "#f59f00", "closed": "#c92a2a", "outage": "#c92a2a",
           "booked": "#1971c2", "paced": "#f59f00",
           "scheduled": "#1f5fbf", "achieved": "#2f9e44", "dropped": "#c92a2a"}
_RC = {"svg.fonttype": "none", "font.family": "sans-serif",
       "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "sans-serif"],
       "font.size": 9, "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False}


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One rendered chart: an id for the page, its title, and the inline SVG text."""

    id: str
    title: str
    svg: str
    notes: tuple[str, ...] = ()  # translation keys the caption adds for what this drawing holds


# ---------------------------------------------------------------- helpers
PIXEL_COLUMNS = 900  # a chart is 9 in x 100 dpi wide: more points per series than 2 per column cannot show


def pixel_envelope(x: Any, y: Any, columns: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Downsample a series to what `columns` pixel columns can show: per column its min and its max
    (in their order), plus the first and last point; a series that fits is returned as it is.

    The drawn line covers the same pixels: every peak and trough survives (the planner's
    timeline has 31,679 one-minute points; the chart is 900 pixels wide)::

        >>> x = np.arange(31_679.0); y = np.sin(x / 500.0); y[12_345] = 9.0
        >>> x2, y2 = pixel_envelope(x, y)
        >>> len(x2) <= 2 * PIXEL_COLUMNS + 2, float(y2.max()), float(y2.min()) == float(y.min())
        (True, 9.0, True)
    """
    columns = columns or PIXEL_COLUMNS
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    if n <= 2 * columns + 2:
        return x, y
    lo, hi = x[0], x[-1]
    col = np.clip(((x - lo) / ((hi - lo) or 1.0) * columns).astype(int), 0, columns - 1)
    starts = np.flatnonzero(np.r_[True, col[1:] != col[:-1]])
    ends = np.r_[starts[1:], n]
    keep = [0, n - 1]
    finite = np.where(np.isnan(y), np.inf, y), np.where(np.isnan(y), -np.inf, y)
    for a, b in zip(starts, ends, strict=True):
        keep.append(a + int(np.argmin(finite[0][a:b])))
        keep.append(a + int(np.argmax(finite[1][a:b])))
        if np.isnan(y[a:b]).any():  # keep a gap a gap
            keep.append(a + int(np.flatnonzero(np.isnan(y[a:b]))[0]))
    idx = np.unique(np.array(keep))
    return x[idx], y[idx]


def _figure(width: float = 9.0, height: float = 3.6) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _svg(fig: Figure, chart_id: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:]
    # Scale to the page width; keep the aspect ratio.
    return svg.replace("<svg ", '<svg class="chart" preserveAspectRatio="xMinYMin meet" ', 1)


def _local(times: list[datetime], tz: Any) -> np.ndarray:
    """Aware datetimes -> matplotlib day numbers of the naive local time in `tz`."""
    return mdates.date2num([t.astimezone(tz).replace(tzinfo=None) for t in times])


def _local1(t: datetime, tz: Any) -> float:
    return float(mdates.date2num(t.astimezone(tz).replace(tzinfo=None)))


def _time_axis(ax: Any, tr: Translator, tz: Any, *, label: bool = True, maxticks: int = 9) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=maxticks)
    ax.xaxis.set_major_locator(loc)

    def fmt(x: float, _pos: int | None = None) -> str:
        d = mdates.num2date(x)
        return tr.when(d.replace(tzinfo=None), zone=False).replace(" ", "\n", 2).replace("\n", " ", 1)

    ax.xaxis.set_major_formatter(FuncFormatter(fmt))
    if label:
        ax.set_xlabel(tr.t("axis_calendar_time", zone=_zone_name(tz)))


def _zone_name(tz: Any) -> str:
    now = datetime(2024, 9, 1, tzinfo=tz)
    name, off = now.tzname() or "", now.utcoffset()
    hours = off.total_seconds() / 3600 if off is not None else 0
    utc = f"UTC{hours:+g}"
    return f"{name}, {utc}" if name and not name.startswith(("UTC", "+", "-")) else utc


def _num_axis(ax: Any, tr: Translator, axis: str = "y") -> None:
    f = FuncFormatter(lambda v, _p: tr.smart(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(f)


def _marks(ax: Any, run: RunData, tr: Translator, tz: Any) -> None:
    """Shade the outage and draw the deadline and the extension, where known."""
    p = run.profile
    lo, hi = ax.get_xlim()
    if p is not None:
        for o in p.outages:
            ax.axvspan(_local1(o.start, tz), _local1(o.end, tz), color=COLOURS["outage"], alpha=0.08,
                       label=tr.t("chart_outage"))
        for when, key, style in ((p.calendar.deadline, "chart_deadline", "--"),
                                 (p.calendar.extension, "chart_extension", ":")):
            if when is not None:
                x = _local1(when, tz)
                if lo <= x <= hi:
                    ax.axvline(x, color="#111827", linestyle=style, linewidth=1.1, label=tr.t(key))
    ax.set_xlim(lo, hi)


def _legend(ax: Any, *others: Any, loc: str = "upper left") -> None:
    handles, labels, seen = [], [], set()
    for a in (ax, *others):
        for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
            if lab not in seen:
                seen.add(lab)
                handles.append(h)
                labels.append(lab)
    if handles:
        ax.legend(handles, labels, loc=loc, fontsize=8, frameon=False)


# ---------------------------------------------------------------- charts
def demand_chart(run: RunData, tr: Translator) -> Chart | None:
    """Demand (new and retrying applicants) against capacity over the calendar."""
    tz = run.tz
    fig = _figure()
    ax = fig.add_subplot()
    if run.timeline is not None and len(run.timeline):
        tl = run.timeline
        x = _local(tl["calendar_at"], tz)
        ax.fill_between(*pixel_envelope(x, tl["demand_per_s"]), 0, color=COLOURS["demand"], alpha=0.25,
                        linewidth=0, label=tr.t("chart_demand_new"))
        ax.plot(*pixel_envelope(x, tl["demand_per_s"] + tl["retry_per_s"]), color=COLOURS["demand"], linewidth=1.2,
                label=tr.t("chart_demand_with_retries"))
        ax.plot(*pixel_envelope(x, tl["served_per_s"]), color=COLOURS["served"], linewidth=1.0,
                label=tr.t("chart_served"))
        ax.plot(*pixel_envelope(x, tl["capacity_per_s"]), color=COLOURS["capacity"], linewidth=1.8,
                drawstyle="steps-post", label=tr.t("chart_capacity"))
    elif run.profile is not None:
        from scenarios.curve import ArrivalCurve

        p = run.profile
        curve = ArrivalCurve(p)
        t = np.arange(0.0, p.calendar.span_s, 600.0)
        x = _local([p.calendar.at(float(s)) for s in t], tz)
        ax.fill_between(x, 0, curve.rate(t), color=COLOURS["demand"], alpha=0.25, linewidth=0,
                        label=tr.t("chart_demand_new"))
        cap = np.full(t.size, p.capacity.stamps_per_second / p.mean_stamps_per_applicant)
        for o in p.outages:
            a, b = p.calendar.seconds(o.start), p.calendar.seconds(o.end)
            cap[(t >= a) & (t < b)] *= o.capacity_factor
        ax.plot(x, cap, color=COLOURS["capacity"], linewidth=1.8, drawstyle="steps-post",
                label=tr.t("chart_capacity_profile"))
    else:
        return None
    ax.set_ylim(bottom=0)
    _marks(ax, run, tr, tz)
    _time_axis(ax, tr, tz)
    _num_axis(ax, tr)
    ax.set_ylabel(tr.t("axis_applicants_per_s"))
    ax.set_title(tr.t("chart_demand_title"))
    _legend(ax)
    return Chart(id="chart-demand", title=tr.t("chart_demand_title"), svg=_svg(fig, "demand"))


def backlog_chart(run: RunData, tr: Translator) -> Chart | None:
    """Backlog and wait over time: the model (timeline.csv) and the measured queue (queue.csv)."""
    tl, q = run.timeline, run.queue
    if (tl is None or not len(tl)) and (q is None or not len(q)):
        return None
    tz = run.tz
    fig = _figure(9.0, 5.2)
    ax, ax_w = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    twin = None
    if tl is not None and len(tl):
        x = _local(tl["calendar_at"], tz)
        xq_, q_ = pixel_envelope(x, tl["queue"])
        ax.fill_between(xq_, 0, q_, color=COLOURS["model"], alpha=0.25, linewidth=0)
        ax.plot(xq_, q_, color=COLOURS["model"], linewidth=1.2, label=tr.t("chart_backlog_model"))
        ax.set_ylabel(tr.t("axis_backlog_applicants"))
        ax_w.plot(*pixel_envelope(x, tl["wait_s"] / 3600), color=COLOURS["wait"], linewidth=1.2,
                  label=tr.t("chart_wait_model"))
        ax_w.set_ylabel(tr.t("axis_wait_hours"))
        ax_w.set_ylim(bottom=0)
        _num_axis(ax_w, tr)
    else:
        ax_w.text(0.5, 0.5, tr.t("chart_no_model"), ha="center", va="center", transform=ax_w.transAxes,
                  color="#6b7280")
        ax_w.set_yticks([])
    if q is not None and len(q):
        scale = float((run.run or {}).get("scale") or 0) or None
        xq = _local(q["calendar_at"], tz)
        target = ax
        if tl is not None and len(tl):
            twin = ax.twinx()
            twin.spines["right"].set_visible(True)
            target = twin
        label = tr.t("chart_backlog_measured", scale=tr.exact(scale) if scale else "?")
        target.plot(*pixel_envelope(xq, q["issuer_queue"]), color=COLOURS["measured"], linewidth=1.0, label=label)
        target.set_ylabel(tr.t("axis_measured_queue"), color=COLOURS["measured"])
        target.set_ylim(bottom=0)
        _num_axis(target, tr)
    ax.set_ylim(bottom=0)
    _num_axis(ax, tr)
    for a in (ax, ax_w):
        _marks(a, run, tr, tz)
    _time_axis(ax_w, tr, tz)
    ax.set_title(tr.t("chart_backlog_title"))
    _legend(ax, *( [twin] if twin is not None else []))
    _legend(ax_w)
    return Chart(id="chart-backlog", title=tr.t("chart_backlog_title"), svg=_svg(fig, "backlog"))


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
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(x, sched[ok], color=COLOURS["scheduled"], linewidth=1.2, label=tr.t("chart_scheduled"))
    ax.plot(x, achieved[ok], color=COLOURS["achieved"], linewidth=1.0, linestyle="--", label=tr.t("chart_achieved"))
    ax.bar(x, dropped[ok], width=(x[1] - x[0]) if x.size > 1 else 0.01, color=COLOURS["dropped"],
           label=tr.t("chart_dropped"))
    ax.set_ylim(bottom=0)
    _marks(ax, run, tr, tz)
    _time_axis(ax, tr, tz)
    _num_axis(ax, tr)
    ax.set_ylabel(tr.t("axis_arrivals_per_wall_s"))
    ax.set_title(tr.t("chart_arrivals_title", bucket=tr.num(bucket)))
    _legend(ax)
    return Chart(id="chart-arrivals", title=tr.t("chart_arrivals_title", bucket=tr.num(bucket)),
                 svg=_svg(fig, "arrivals"))


def _history_by_step(run: RunData) -> dict[str, dict[str, np.ndarray]]:
    h = run.latency_history
    assert h is not None
    steps = np.array(h["step"])
    when = np.array([t.timestamp() for t in h["calendar_window_start_at"]])
    out = {}
    for step in [s for s in STEPS if s in set(h["step"])] + sorted(set(h["step"]) - set(STEPS)):
        sel = steps == step
        out[step] = {"t": when[sel], **{k: h[k][sel] for k in
                                        ("count", "errors", "p50_ms", "p99_ms", "intended_p99_ms", "p95_ms")}}
    return out


def latency_chart(run: RunData, tr: Translator) -> Chart | None:
    """Latency percentiles over time per journey step, both clocks (service and intended)."""
    if run.latency_history is None or not len(run.latency_history):
        return None
    tz = run.tz
    by = _history_by_step(run)
    cols = 2
    rows = math.ceil(len(by) / cols)
    fig = _figure(9.0, 1.9 * rows + 0.8)
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True)).ravel()
    for ax, (step, d) in zip(axes, by.items(), strict=False):
        x = mdates.date2num([datetime.fromtimestamp(s, tz).replace(tzinfo=None) for s in d["t"]])
        ax.plot(x, d["p50_ms"], color="#1f5fbf", linewidth=1.0, label=tr.t("chart_p50_service"))
        ax.plot(x, d["p99_ms"], color="#d9480f", linewidth=1.0, label=tr.t("chart_p99_service"))
        ax.plot(x, d["intended_p99_ms"], color="#d9480f", linewidth=1.0, linestyle=":",
                label=tr.t("chart_p99_intended"))
        ax.set_yscale("log")
        _log_ticks(ax, d)
        ax.set_title(tr.t(f"step_{step}") if f"step_{step}" in tr.table else step, fontsize=9, loc="left")
        ax.set_ylabel(tr.t("axis_ms"))
        _time_axis(ax, tr, tz, label=False, maxticks=5)
        ax.tick_params(labelsize=7)
    for ax in axes[len(by):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=7, frameon=False, loc="upper left")
    fig.suptitle(tr.t("chart_latency_title"), fontsize=10)
    fig.supxlabel(tr.t("axis_calendar_time", zone=_zone_name(tz)), fontsize=9)
    return Chart(id="chart-latency", title=tr.t("chart_latency_title"), svg=_svg(fig, "latency"))


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
    grid = [float(m * 10.0 ** e) for e in range(math.floor(math.log10(lo)) - 2, math.ceil(math.log10(hi)) + 3)
            for m in LOG_TICKS]
    inside = [g for g in grid if lo <= g <= hi]
    below = [g for g in grid if g < lo]
    above = [g for g in grid if g > hi]
    while len(inside) < least and (below or above):  # pad with the mark nearest the data (in log terms)
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
    fig = _figure()
    ax = fig.add_subplot()
    # Each window's rate is drawn flat from its start to its end (steps-post): a line from point to
    # point would show errors rising before the window they fell in.
    ax.plot(*window_steps(x, count / window_s), color=COLOURS["demand"], linewidth=1.2,
            drawstyle="steps-post", label=tr.t("chart_requests_per_s"))
    tw = ax.twinx()
    tw.spines["right"].set_visible(True)
    tw.plot(*window_steps(x, errors / window_s), color=COLOURS["error"], linewidth=1.0,
            drawstyle="steps-post", label=tr.t("chart_errors_per_s"))
    ax.set_ylim(bottom=0)
    tw.set_ylim(bottom=0)
    ax.set_ylabel(tr.t("axis_requests_per_wall_s"))
    tw.set_ylabel(tr.t("axis_errors_per_wall_s"), color=COLOURS["error"])
    _num_axis(ax, tr)
    _num_axis(tw, tr)
    _marks(ax, run, tr, tz)
    _time_axis(ax, tr, tz)
    ax.set_title(tr.t("chart_throughput_title"))
    _legend(ax, tw)
    return Chart(id="chart-throughput", title=tr.t("chart_throughput_title"), svg=_svg(fig, "throughput"))


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


def usl_chart(run: RunData, tr: Translator) -> Chart | None:
    """The USL fit of the probe with its measured points and its peak."""
    steps = usl_steps(run)
    if not steps:
        return None
    usl = run.capacity["usl"]  # type: ignore[index]
    fig = _figure(9.0, 3.4)
    axes = np.atleast_1d(fig.subplots(1, len(steps)))
    stars = 0
    for ax, step in zip(axes, steps, strict=True):
        f = usl[step]
        nmax = 1.0
        if run.probe is not None:
            sel = np.array(run.probe["step"]) == step
            n, x = run.probe["concurrency"][sel], run.probe["throughput_per_s"][sel]
            if n.size:
                nmax = float(n.max())
                ax.plot(n, x, "o", color=COLOURS["measured"], markersize=5, label=tr.t("chart_usl_measured"))
        peak = f.get("peak_load")
        top = max(nmax, peak or 0) * 1.3 if peak and math.isfinite(peak) else nmax * 1.5
        grid = np.linspace(0.5, max(top, 2.0), 300)
        ax.plot(grid, usl_x(grid, f["alpha"], f["beta"], f["gamma"]), color=COLOURS["model"], linewidth=1.5,
                label=tr.t("chart_usl_fit", r2=tr.num(f.get("r2"), 3) if f.get("r2") is not None else "–"))
        if peak and math.isfinite(peak):
            xp = f.get("peak_throughput") or float(usl_x(peak, f["alpha"], f["beta"], f["gamma"]))
            ax.plot([peak], [xp], marker="*", markersize=13, color="#111827", linestyle="none",
                    label=tr.t("chart_usl_peak", n=tr.num(peak), x=tr.smart(xp)))
            stars += 1
            if peak > nmax:
                ax.axvspan(nmax, top, color="#f59f00", alpha=0.08, label=tr.t("chart_usl_extrapolated"))
        if step == "stamps" and (run.capacity or {}).get("stamps_per_second"):
            ax.axhline(run.capacity["stamps_per_second"], color=COLOURS["capacity"], linestyle="--", linewidth=1,  # type: ignore[index]
                       label=tr.t("chart_usl_sustainable"))
        ax.set_xlim(0, top)
        ax.set_ylim(bottom=0)
        ax.set_xlabel(tr.t("axis_concurrency"))
        unit = "axis_stamps_per_s" if step == "stamps" else "axis_journeys_per_s" if step == "journey" else "axis_requests_per_s"
        ax.set_ylabel(tr.t(unit))
        _num_axis(ax, tr)
        label = tr.t(f"step_{step}") if f"step_{step}" in tr.table else step
        ax.set_title(tr.t("chart_usl_title_step", step=label), fontsize=9)
        ax.legend(fontsize=7, frameon=False, loc="lower right")
    return Chart(id="chart-usl", title=tr.t("chart_usl_title"), svg=_svg(fig, "usl"),
                 notes=("caption_usl_star",) if stars else ("caption_usl_nostar",))


def gate_changes(run: RunData) -> list[dict[str, Any]]:
    """The plan's gate changes: gate_schedule.json, else derived from plan.json stages."""
    if run.gate_schedule:
        return run.gate_schedule
    out = []
    for st in (run.plan or {}).get("stages") or []:
        for gate, mode in (st.get("gates") or {}).items():
            out.append({"at": st["start"], "gate": gate, "mode": mode,
                        "rate_per_s": st.get("rate_per_s") if mode == "rate" else None, "label": st["name"]})
    return sorted(out, key=lambda c: c["at"])


def gates_chart(run: RunData, tr: Translator) -> Chart | None:
    """The reopening plan as a timeline: one band per gate, coloured by mode."""
    changes = gate_changes(run)
    if not changes:
        return None
    tz = run.tz
    gates = ["registration", "ordering", "stamping"]
    gates += sorted({c["gate"] for c in changes} - set(gates))
    start = min(c["at"] for c in changes)
    end = max(c["at"] for c in changes)
    if run.profile is not None:
        end = max(end, run.profile.calendar.close)
    stages = (run.plan or {}).get("stages") or []
    if stages:
        end = max(end, max(s["end"] for s in stages))
    pad = (end - start) * 0.04
    x0, x1 = _local1(start - pad, tz), _local1(end, tz)
    fig = _figure(9.0, 2.6)
    ax = fig.add_subplot()
    seen = set()
    for row, gate in enumerate(gates):
        mine = [c for c in changes if c["gate"] == gate]
        for i, c in enumerate(mine):
            a = _local1(c["at"], tz)
            b = _local1(mine[i + 1]["at"], tz) if i + 1 < len(mine) else x1
            label = tr.t(f"mode_{c['mode']}") if c["mode"] not in seen else None
            seen.add(c["mode"])
            ax.broken_barh([(a, b - a)], (row - 0.35, 0.7), color=COLOURS.get(c["mode"], "#999"), label=label)
            if c["mode"] == "rate" and c.get("rate_per_s") is not None:
                ax.text(a + (b - a) / 2, row, tr.t("chart_rate_label", rate=tr.smart(c["rate_per_s"])),
                        ha="center", va="center", fontsize=7, color="#111827")
    ax.set_yticks(range(len(gates)), [tr.t(f"gate_{g}") if f"gate_{g}" in tr.table else g for g in gates])
    ax.set_ylim(-0.6, len(gates) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(x0, x1)
    _marks(ax, run, tr, tz)
    _time_axis(ax, tr, tz)
    ax.set_title(tr.t("chart_gates_title"))
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return Chart(id="chart-gates", title=tr.t("chart_gates_title"), svg=_svg(fig, "gates"))


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


def reopening_chart(run: RunData, tr: Translator) -> Chart | None:
    """The reopening zoomed in: from an hour before the decision to 12 h after the last stage
    start (at least a day), one band per gate by mode, stage starts marked and named."""
    plan = run.plan or {}
    stages = plan.get("stages") or []
    if not stages or not plan.get("reopen_at"):
        return None

    from reports.figures import stage_text
    tz = run.tz
    reopen = datetime.fromisoformat(plan["reopen_at"])
    # the fixed past from the gate schedule, then the plan's stages with their own modes (booked, paced)
    changes = [c for c in (run.gate_schedule or []) if c["at"] < reopen]
    order = {st.get("id"): i for i, st in enumerate(stages)}
    for st in sorted(stages, key=lambda x: (x["start"], order.get(x.get("id"), 0))):
        for gate, mode in (st.get("gates") or {}).items():
            changes.append({"at": st["start"], "gate": gate, "mode": mode})
    start, end = reopening_window(reopen, [s["start"] for s in stages])
    x0, x1 = _local1(start, tz), _local1(end, tz)
    gates = ["registration", "ordering", "stamping"]
    fig = _figure(9.0, 2.8)
    ax = fig.add_subplot()
    seen: set[str] = set()
    for row, gate in enumerate(gates):
        mine = [c for c in changes if c["gate"] == gate]
        for i, c in enumerate(mine):
            a = max(_local1(c["at"], tz), x0)
            b = min(_local1(mine[i + 1]["at"], tz) if i + 1 < len(mine) else x1, x1)
            if b <= a:
                continue
            mode = c["mode"]
            label = tr.t(f"mode_{mode}") if mode not in seen and f"mode_{mode}" in tr.table else None
            seen.add(mode)
            ax.broken_barh([(a, b - a)], (row - 0.35, 0.7), color=COLOURS.get(mode, "#999"), label=label)
    for i, st in enumerate(sorted(stages, key=lambda s: s["start"])):
        x = _local1(st["start"], tz)
        ax.axvline(x, color="#111827", lw=0.8, ls="--")
        ax.text(x, -0.5 - 0.3 * i, f" {i + 1}. {stage_text(st, 'name', tr)}", fontsize=6.5,
                va="center", ha="left", color="#111827")
    ax.set_yticks(range(len(gates)), [tr.t(f"gate_{g}") if f"gate_{g}" in tr.table else g for g in gates])
    ax.set_ylim(-0.5 - 0.3 * len(stages) - 0.2, len(gates) - 0.4)
    ax.invert_yaxis()
    ax.set_xlim(x0, x1)
    _time_axis(ax, tr, tz)
    ax.set_title(tr.t("chart_reopening_title"))
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return Chart(id="chart-reopening", title=tr.t("chart_reopening_title"), svg=_svg(fig, "reopening"))


ALL_CHARTS = (
    ("demand", demand_chart, ("timeline.csv", "profile.toml")),
    ("backlog", backlog_chart, ("timeline.csv", "queue.csv")),
    ("arrivals", arrivals_chart, ("arrivals.csv",)),
    ("latency", latency_chart, ("latency_history.csv",)),
    ("throughput", throughput_chart, ("latency_history.csv",)),
    ("usl", usl_chart, ("capacity.json",)),
    ("gates", gates_chart, ("gate_schedule.json", "plan.json")),
    ("reopening", reopening_chart, ("plan.json",)),
)
"""(name, function, the files it reads: any one of them is enough)."""
