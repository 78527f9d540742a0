"""The charts' common style: colours, figure and SVG output, calendar axes and marks.

Text in the SVG stays text (`svg.fonttype = none`), so it is translated, searchable and sharp
when printed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import matplotlib
import numpy as np
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from reports.i18n import Translator
from reports.load import RunData

matplotlib.use("Agg")

COLOURS = {
    "demand": "#1f5fbf",
    "retry": "#7fa7e6",
    "capacity": "#1a7f37",
    "served": "#6b7280",
    "model": "#1f5fbf",
    "measured": "#d9480f",
    "wait": "#7048e8",
    "error": "#c92a2a",
    "open": "#2f9e44",
    "rate": "#f59f00",
    "closed": "#c92a2a",
    "outage": "#c92a2a",
    "booked": "#1971c2",
    "paced": "#f59f00",
    "scheduled": "#1f5fbf",
    "achieved": "#2f9e44",
    "dropped": "#c92a2a",
}
_RC = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "sans-serif"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True, kw_only=True)
class Chart:
    """One rendered chart: an id for the page, its title, and the inline SVG text."""

    id: str
    title: str
    svg: str
    notes: tuple[str, ...] = ()  # translation keys the caption adds for what this drawing holds
    caption: str | None = None  # the caption's key when it is not the registry's


# ---------------------------------------------------------------- helpers
PIXEL_COLUMNS = (
    900  # a chart is 9 in x 100 dpi wide: more points per series than 2 per column cannot show
)


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


def new_figure(width: float = 9.0, height: float = 3.6) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height), dpi=100, layout="constrained")


def to_svg(fig: Figure, chart_id: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({**_RC, "svg.hashsalt": chart_id}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    start = text.find("<svg")
    svg = text[start:]
    # Scale to the page width; keep the aspect ratio.
    return svg.replace("<svg ", '<svg class="chart" preserveAspectRatio="xMinYMin meet" ', 1)


def local_days(times: list[datetime], tz: Any) -> np.ndarray:
    """Aware datetimes -> matplotlib day numbers of the naive local time in `tz`."""
    return mdates.date2num([t.astimezone(tz).replace(tzinfo=None) for t in times])


def local_day(t: datetime, tz: Any) -> float:
    return float(mdates.date2num(t.astimezone(tz).replace(tzinfo=None)))


def time_axis(ax: Any, tr: Translator, tz: Any, *, label: bool = True, maxticks: int = 9) -> None:
    loc = mdates.AutoDateLocator(minticks=3, maxticks=maxticks)
    ax.xaxis.set_major_locator(loc)

    def fmt(x: float, _pos: int | None = None) -> str:
        d = mdates.num2date(x)
        return (
            tr.when(d.replace(tzinfo=None), zone=False).replace(" ", "\n", 2).replace("\n", " ", 1)
        )

    ax.xaxis.set_major_formatter(FuncFormatter(fmt))
    if label:
        ax.set_xlabel(tr.t("axis_calendar_time", zone=zone_name(tz)))


def zone_name(tz: Any) -> str:
    now = datetime(2024, 9, 1, tzinfo=tz)
    name, off = now.tzname() or "", now.utcoffset()
    hours = off.total_seconds() / 3600 if off is not None else 0
    utc = f"UTC{hours:+g}"
    return f"{name}, {utc}" if name and not name.startswith(("UTC", "+", "-")) else utc


def num_axis(ax: Any, tr: Translator, axis: str = "y") -> None:
    f = FuncFormatter(lambda v, _p: tr.smart(v))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(f)


def calendar_marks(ax: Any, run: RunData, tr: Translator, tz: Any) -> None:
    """Shade the outage and draw the deadline and the extension, where known."""
    p = run.profile
    lo, hi = ax.get_xlim()
    if p is not None:
        for o in p.outages:
            ax.axvspan(
                local_day(o.start, tz),
                local_day(o.end, tz),
                color=COLOURS["outage"],
                alpha=0.08,
                label=tr.t("chart_outage"),
            )
        for when, key, style in (
            (p.calendar.deadline, "chart_deadline", "--"),
            (p.calendar.extension, "chart_extension", ":"),
        ):
            if when is not None:
                x = local_day(when, tz)
                if lo <= x <= hi:
                    ax.axvline(x, color="#111827", linestyle=style, linewidth=1.1, label=tr.t(key))
    ax.set_xlim(lo, hi)


def legend(ax: Any, *others: Any, loc: str = "upper left") -> None:
    handles, labels, seen = [], [], set()
    for a in (ax, *others):
        for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
            if lab not in seen:
                seen.add(lab)
                handles.append(h)
                labels.append(lab)
    if handles:
        ax.legend(handles, labels, loc=loc, fontsize=8, frameon=False)
