"""Extensions of the close in whole days, with the past fixed, and the brute-force search.

An extension of `days` moves the close by that many days. What is already known stays:
arrivals before the decision time are exactly those of the close in force; of the demand
still to come, the profile's `demand.retarget_share` re-aims at the new close (the model's
rule, shared with `surgecast forecast`).

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

from analysis.backlog import FluidInputs, inputs_from_profile
from analysis.forecast import _closes, _ExtendedCurve
from floor.errors import FieldError
from scenarios.curve import AccountsCurve, ArrivalCurve
from scenarios.profile_events import Outage
from scenarios.profile_model import Profile

__all__ = ["extended_inputs", "smallest_meeting", "parse_days"]


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
        raise FieldError(
            flag, text, "give a whole number of days >= 0, like 2d (extensions are whole days)"
        )
    if v > 60:
        raise FieldError(flag, text, "give at most 60d")
    return int(round(v))


def extended_inputs(
    profile: Profile,
    days: int,
    decision_s: float,
    *,
    stamps_per_second: float | None,
    outages: Sequence[Outage],
    step_s: float = 60.0,
) -> FluidInputs:
    """Fluid inputs for the close moved by `days`, the past before `decision_s` fixed.

    Demand follows the model's own extension rule (`analysis.forecast`): with a [demand]
    accounts series, a share `demand.retarget_share` of those not yet ready re-aim at the
    new close; without one, the rest of the curve stretches onto the new close.

    >>> import numpy as np
    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> b = extended_inputs(p, 0, 1_400_000.0, stamps_per_second=None, outages=p.outages)
    >>> e = extended_inputs(p, 2, 1_400_000.0, stamps_per_second=None, outages=p.outages)
    >>> same = np.allclose(e.arrivals["registration"][:23333], b.arrivals["registration"][:23333])
    >>> e.n - b.n, bool(same)
    (2880, True)
    """
    cal = profile.calendar
    curve = None
    if days:
        new_close = cal.close + timedelta(days=days)
        if profile.demand is not None:
            curve = AccountsCurve(
                profile, closes=_closes(profile, decision_s, cal.seconds(new_close))
            )
        else:
            curve = _ExtendedCurve(ArrivalCurve(profile), decision_s, cal.seconds(new_close))
        profile = replace(profile, calendar=replace(cal, extension=new_close))
    return inputs_from_profile(
        profile, stamps_per_second=stamps_per_second, outages=outages, curve=curve, step_s=step_s
    )


def smallest_meeting(values: Sequence[float], target: float) -> int | None:
    """Index of the first value >= target (the smallest whole day on the grid), or None.

    >>> smallest_meeting([0.5, 0.96, 0.94, 0.96], 0.95)
    1
    """
    for i, v in enumerate(values):
        if v >= target - 1e-12:
            return i
    return None
