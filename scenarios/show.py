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


def render_profile(p: Profile) -> str:
    """The text `surgecast profile show` prints."""
    c = p.calendar
    curve = ArrivalCurve(p)
    fmt = "%Y-%m-%d %H:%M %Z"
    peak_at, peak_n = curve.peak(3600)
    starts, per_hour = curve.buckets(3600)
    day_starts, per_day = curve.buckets(86400)
    stamps = p.mean_stamps_per_applicant
    lines = [
        f"{p.title}  ({p.name}, {p.source})",
        p.description,
        "",
        "calendar",
        f"  window opens   {c.window_start.strftime(fmt)}",
        f"  deadline       {c.deadline.strftime(fmt)}",
    ]
    if c.extension:
        lines.append(f"  extended to    {c.extension.strftime(fmt)}")
    lines += [
        f"  span           {c.span_s / 86400:.1f} days",
        "",
        "totals",
        f"  applicants     {p.applicants_total:,}",
        f"  e-Meterai      {p.applicants_total * stamps:,.0f}  ({stamps:g} per applicant: "
        + ", ".join(f"{k} x {v:.0%}" for k, v in sorted(p.stamps_per_applicant.items())) + ")",
        f"  mean rate      {p.applicants_total / c.span_s:,.2f} applicants/s",
        "",
        f"peak hour        {peak_at.strftime(fmt)}: {peak_n:,.0f} applicants "
        f"({peak_n / 3600:,.2f}/s, {peak_n * stamps / 3600:,.1f} e-Meterai/s)",
        f"busiest day      {c.at(float(day_starts[int(np.argmax(per_day))])).strftime('%Y-%m-%d')}: "
        f"{per_day.max():,.0f} applicants ({per_day.max() * stamps:,.0f} e-Meterai)",
        f"planning capacity {p.capacity.stamps_per_second:g} e-Meterai/s "
        f"(peak demand is {peak_n * stamps / 3600 / p.capacity.stamps_per_second:.1f}x that)",
        "",
        f"arrivals per hour, {c.window_start:%d %b} .. {c.close:%d %b}",
        f"  {sparkline(per_hour)}",
    ]
    if p.outages:
        lines += ["", "outages"]
        lines += [f"  {o.start.strftime(fmt)} .. {o.end.strftime(fmt)}  {o.resource} at {o.capacity_factor:.0%}  {o.label}"
                  for o in p.outages]
    if p.reopening:
        lines += ["", "reopening plan"]
        for g in p.reopening:
            if g.mode == "rate" and g.rate_share is not None:
                rate = f" {g.rate_share:g} x issuer capacity"
            else:
                rate = f" {g.rate_per_s:g}/s burst {g.burst}" if g.mode == "rate" else ""
            lines.append(f"  {g.at.strftime(fmt)}  {g.gate:<12} {g.mode}{rate}  {g.label}")
    if p.demand is not None:
        d = p.demand
        lines += ["", "demand (registered accounts x conversion, ready by the close)",
                  f"  accounts       {d.accounts[-1][1]:,.0f} by {d.accounts[-1][0].strftime(fmt)}; conversion "
                  f"{d.conversion:g}; pull {d.pull:g}; {d.retarget_share:.0%} re-aim at an extension"]
    if p.bypass is not None:
        lines.append(f"  bypass         from {p.bypass.at.strftime(fmt)}: {p.bypass.share:.0%}  {p.bypass.label}")
    if p.calibration:
        lines += ["", "published points (demand by then; what the model serves: surgecast forecast)"]
        for pt in p.calibration:
            if pt.kind != "submitted":
                lines.append(f"  {pt.at.strftime(fmt)}  {pt.cumulative:>12,.0f}  {pt.label} [{pt.role}]  {pt.source}")
                continue
            got = curve.cumulative_at(pt.at)
            lines.append(f"  {pt.at.strftime(fmt)}  {pt.cumulative:>12,.0f}  demand {got:>12,.0f}  "
                         f"[{pt.role}]  {pt.source}")
    return "\n".join(lines)
