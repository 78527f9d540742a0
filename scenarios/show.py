"""Render a profile for the terminal: calendar, totals, peak hour and a sparkline of arrivals.

    >>> from scenarios.profile import load_profile
    >>> "peak hour" in render_profile(load_profile("steady"))
    True
"""

from __future__ import annotations

import numpy as np

from scenarios.curve import ArrivalCurve
from scenarios.profile_model import Profile

_BARS = " ▁▂▃▄▅▆▇█"


def sparkline(values: np.ndarray, width: int = 66) -> str:
    """An ASCII-art sparkline of `values`, resampled to `width` characters by summing.

    >>> sparkline(np.array([0, 1, 2, 4, 8]), width=5)
    ' ▁▂▄█'
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return ""
    if v.size > width:
        edges = np.linspace(0, v.size, width + 1).astype(int)
        v = np.add.reduceat(v, edges[:-1])
    top = v.max()
    if top <= 0:
        return _BARS[0] * v.size
    idx = np.ceil(v / top * (len(_BARS) - 1)).astype(int)
    return "".join(_BARS[i] for i in idx)


FMT = "%Y-%m-%d %H:%M %Z"


def render_profile(p: Profile) -> str:
    """The text `surgecast profile show` prints."""
    curve = ArrivalCurve(p)
    lines = [*_calendar_lines(p), *_load_lines(p, curve), *_event_lines(p)]
    lines += _demand_lines(p, curve)
    return "\n".join(lines)


def _calendar_lines(p: Profile) -> list[str]:
    """Title, description and the registration calendar."""
    c = p.calendar
    lines = [
        f"{p.title}  ({p.name}, {p.source})",
        p.description,
        "",
        "calendar",
        f"  window opens   {c.window_start.strftime(FMT)}",
        f"  deadline       {c.deadline.strftime(FMT)}",
    ]
    if c.extension:
        lines.append(f"  extended to    {c.extension.strftime(FMT)}")
    return lines


def _load_lines(p: Profile, curve: ArrivalCurve) -> list[str]:
    """Totals, the peak hour, the busiest day, the planning capacity and the sparkline."""
    c = p.calendar
    peak_at, peak_n = curve.peak(3600)
    _starts, per_hour = curve.buckets(3600)
    day_starts, per_day = curve.buckets(86400)
    stamps = p.mean_stamps_per_applicant
    busiest = c.at(float(day_starts[int(np.argmax(per_day))]))
    return [
        f"  span           {c.span_s / 86400:.1f} days",
        "",
        "totals",
        f"  applicants     {p.applicants_total:,}",
        f"  e-Meterai      {p.applicants_total * stamps:,.0f}  ({stamps:g} per applicant: "
        + ", ".join(f"{k} x {v:.0%}" for k, v in sorted(p.stamps_per_applicant.items()))
        + ")",
        f"  mean rate      {p.applicants_total / c.span_s:,.2f} applicants/s",
        "",
        f"peak hour        {peak_at.strftime(FMT)}: {peak_n:,.0f} applicants "
        f"({peak_n / 3600:,.2f}/s, {peak_n * stamps / 3600:,.1f} e-Meterai/s)",
        f"busiest day      {busiest.strftime('%Y-%m-%d')}: "
        f"{per_day.max():,.0f} applicants ({per_day.max() * stamps:,.0f} e-Meterai)",
        f"planning capacity {p.capacity.stamps_per_second:g} e-Meterai/s "
        f"(peak demand is {peak_n * stamps / 3600 / p.capacity.stamps_per_second:.1f}x that)",
        "",
        f"arrivals per hour, {c.window_start:%d %b} .. {c.close:%d %b}",
        f"  {sparkline(per_hour)}",
    ]


def _event_lines(p: Profile) -> list[str]:
    """The outages and the reopening plan."""
    lines: list[str] = []
    if p.outages:
        lines += ["", "outages"]
        lines += [
            f"  {o.start.strftime(FMT)} .. {o.end.strftime(FMT)}  {o.resource} at "
            f"{o.capacity_factor:.0%}  {o.label}"
            for o in p.outages
        ]
    if p.reopening:
        lines += ["", "reopening plan"]
        for g in p.reopening:
            if g.mode == "rate" and g.rate_share is not None:
                rate = f" {g.rate_share:g} x issuer capacity"
            else:
                rate = f" {g.rate_per_s:g}/s burst {g.burst}" if g.mode == "rate" else ""
            lines.append(f"  {g.at.strftime(FMT)}  {g.gate:<12} {g.mode}{rate}  {g.label}")
    return lines


def _demand_lines(p: Profile, curve: ArrivalCurve) -> list[str]:
    """The demand model, the bypass and the published points against the curve's demand."""
    lines: list[str] = []
    if p.demand is not None:
        d = p.demand
        lines += [
            "",
            "demand (registered accounts x conversion, ready by the close)",
            f"  accounts       {d.accounts[-1][1]:,.0f} by {d.accounts[-1][0].strftime(FMT)}; "
            f"conversion {d.conversion:g}; pull {d.pull:g}; {d.retarget_share:.0%} re-aim at an "
            "extension",
        ]
    if p.bypass is not None:
        b = p.bypass
        lines.append(f"  bypass         from {b.at.strftime(FMT)}: {b.share:.0%}  {b.label}")
    if p.calibration:
        lines += [
            "",
            "published points (demand by then; what the model serves: surgecast forecast)",
        ]
        for pt in p.calibration:
            head = f"  {pt.at.strftime(FMT)}  {pt.cumulative:>12,.0f}  "
            if pt.kind != "submitted":
                lines.append(f"{head}{pt.label} [{pt.role}]  {pt.source}")
                continue
            got = curve.cumulative_at(pt.at)
            lines.append(f"{head}demand {got:>12,.0f}  [{pt.role}]  {pt.source}")
    return lines
