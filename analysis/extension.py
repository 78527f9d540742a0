"""Extensions of the close in whole days, with the past fixed, and the brute-force search.

An extension of `days` moves the close by that many days. What is already known stays:
arrivals before the decision time are exactly those of the close in force. Of the demand
still to come, a stated share `RETARGET_SHARE` follows the new close (the rush re-aims at
the new deadline, as it did in 2024), the rest arrives as it would have; the total is
unchanged (an extension brings no new applicants, it gives time to those who want to come).

`smallest_meeting(values, target)` is the minimum extension: the smallest whole day on
the grid whose value meets the target, found by trying every day (the served share need
not grow monotonically with the extension: the daily cycle makes it oscillate, so a
bisection can miss the true minimum).

    >>> smallest_meeting([0.80, 0.93, 0.92, 0.95, 0.97], 0.93)
    1
    >>> smallest_meeting([0.80, 0.90], 0.93) is None
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

import numpy as np

from analysis.backlog import FluidInputs, inputs_from_profile
from scenarios.curve import ArrivalCurve
from scenarios.profile import Outage, Profile
from surgecast.errors import FieldError

__all__ = ["RETARGET_SHARE", "extended_inputs", "smallest_meeting", "parse_days"]

RETARGET_SHARE = 0.5   # stated default: half of the demand still to come re-aims at the new close


def parse_days(text: str, flag: str = "--extend") -> int:
    """'2d', '2' (whole days) or '48h' (a whole number of days in hours) -> days.

    >>> parse_days("2d"), parse_days("3"), parse_days("48h"), parse_days("0d")
    (2, 3, 2, 0)
    """
    t = str(text).strip().lower()
    try:
        if t.endswith("d"):
            v = float(t[:-1])
        elif t.endswith("h"):
            v = float(t[:-1]) / 24.0
        else:
            v = float(t)
    except ValueError:
        raise FieldError(flag, text, "give whole days, like 2d") from None
    if not math.isfinite(v) or v < 0 or abs(v - round(v)) > 1e-9:
        raise FieldError(flag, text, "give a whole number of days >= 0, like 2d (extensions are whole days)")
    if v > 60:
        raise FieldError(flag, text, "give at most 60d")
    return int(round(v))


def extended_inputs(profile: Profile, base: FluidInputs, days: int, decision_s: float, *,
                    stamps_per_second: float | None, outages: Sequence[Outage],
                    retarget_share: float = RETARGET_SHARE) -> FluidInputs:
    """Fluid inputs for the close moved by `days`, the past before `decision_s` fixed.

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> b = inputs_from_profile(p)
    >>> e = extended_inputs(p, b, 2, 1_400_000.0, stamps_per_second=None, outages=p.outages)
    >>> e.n - b.n, bool(np.allclose(e.arrivals["registration"][:23333], b.arrivals["registration"][:23333]))
    (2880, True)
    >>> round(sum(float(v.sum()) for v in e.arrivals.values())) == round(b.total_applicants)
    True
    """
    if days == 0:
        return base
    cal = replace(profile.calendar, extension=profile.calendar.close + timedelta(days=days))
    p = replace(profile, calendar=cal)
    ext = inputs_from_profile(p, stamps_per_second=stamps_per_second, outages=outages, curve=ArrivalCurve(p))
    n0, n1 = base.n, ext.n
    k = max(0, min(n0, int(math.ceil((decision_s - base.t0_s) / base.step_s - 1e-9))))
    arrivals = {}
    for g, a0 in base.arrivals.items():
        a0 = np.asarray(a0, dtype=float)
        a1 = np.asarray(ext.arrivals[g], dtype=float)
        rest0 = float(a0[k:].sum())
        new = np.zeros(n1)
        new[:k] = a0[:k]
        stay = np.zeros(n1)
        stay[k:n0] = a0[k:]
        moved = a1[k:].copy()
        tot = float(moved.sum())
        moved = moved * (rest0 / tot) if tot > 0 else np.zeros_like(moved)
        new[k:] = (1.0 - retarget_share) * stay[k:] + retarget_share * moved
        arrivals[g] = new
    return replace(ext, arrivals=arrivals, total_applicants=base.total_applicants)


def smallest_meeting(values: Sequence[float], target: float) -> int | None:
    """Index of the first value >= target (the smallest whole day on the grid), or None.

    >>> smallest_meeting([0.5, 0.96, 0.94, 0.96], 0.95)
    1
    """
    for i, v in enumerate(values):
        if v >= target - 1e-12:
            return i
    return None
