"""Forecast a surge as the profile says it happens: demand, outage, bypass, reopening, close.

`forecast(profile)` runs the fluid model (`analysis.backlog`) with the profile's demand
(the registered-accounts series x conversion, ready by the close: `scenarios.curve.AccountsCurve`),
its partial outage, the quota sales that go on during it, the physical-stamp bypass, the
[[reopening]] gate changes and its close in force. Options change one thing at a time:
the issuer capacity, an outage's times, a whole-day extension decided at a stated time.

Outcome at the close in force, in applicants: `served` (stamped by the issuer or through
the bypass), `lost` (left for good), `waiting` (arrived, neither served nor lost).

    >>> from scenarios.profile import load_profile
    >>> f = forecast(load_profile("casn2024"))
    >>> o = f.outcome()
    >>> abs(o["served"] + o["lost"] + o["waiting"] - o["arrived"]) < 1.0
    True

Parameters named as in a profile's [ranges] (`demand.pull`, `outages.capacity_factor`,
`capacity.stamps_per_second`, ...) can be set with `params=`; `apply_params` lists them
(both in `analysis.forecast_params`, re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from analysis.backlog import FluidResult, inputs_from_profile, run_fluid, stages_from_profile
from analysis.forecast_params import (
    PARAMS,
    CapacityModel,
    _set,
    apply_params,
    capacity_from_json,
)
from floor.errors import FieldError
from floor.rundir.schema import FORECAST_COLUMNS
from scenarios.curve import AccountsCurve, ArrivalCurve
from scenarios.profile_events import Outage
from scenarios.profile_model import Profile

__all__ = ["PARAMS", "apply_params", "forecast", "Forecast", "TIMELINE_COLUMNS", "CapacityModel",
           "capacity_from_json", "predict_point"]


TIMELINE_COLUMNS = FORECAST_COLUMNS  # the run directory's schema (floor.rundir.schema)


def _g(x: float) -> str:
    """A count or rate with 12 significant digits."""
    return "inf" if x == math.inf else f"{x:.12g}"


@dataclass(frozen=True, kw_only=True, repr=False)
class Forecast:
    """A forecast run: the profile it ran (parameters applied), the fluid result, the close."""

    profile: Profile
    result: FluidResult
    close_s: float
    decided_at_s: float | None = None
    extend_days: int = 0

    def __repr__(self) -> str:
        o = self.outcome()
        return (
            f"Forecast(profile={self.profile.name!r}, served={o['served']:,.0f}, "
            f"lost={o['lost']:,.0f})"
        )

    def _k(self, t_s: float) -> int:
        """Index of the last step ending at or before t_s (-1 if none)."""
        dt = self.result.inputs.step_s
        return min(len(self.result.t_s), int(math.floor(t_s / dt + 1e-9))) - 1

    def at(self, series: np.ndarray, t_s: float) -> float:
        """A cumulative series' value at calendar second t_s (0 before the first step ends)."""
        k = self._k(t_s)
        return float(series[k]) if k >= 0 else 0.0

    def _k_close(self) -> int:
        """The step holding the close (the close is a step end at the 60 s default)."""
        dt = self.result.inputs.step_s
        return min(len(self.result.t_s), int(math.ceil(self.close_s / dt - 1e-9))) - 1

    def outcome(self) -> dict[str, float]:
        """served, lost, waiting and arrived applicants at the close in force (and stamps)."""
        r = self.result
        k = self._k_close()
        return {
            "served": float(r.done_cum[k]),
            "lost": float(r.lost_cum[k]),
            "waiting": float(r.in_system[k]),
            "arrived": float(r.arrived_cum[k]),
            "stamped": float(r.served_cum[k]),
            "bypassed": float(r.bypass_cum[k]),
            "stamps": float(r.served_cum[k] * r.inputs.stamps_per_applicant),
        }

    def timeline_rows(self) -> list[list[str]]:
        """timeline.csv rows (TIMELINE_COLUMNS), one per step, to the close in force."""
        r = self.result
        cal = self.profile.calendar
        m = r.inputs.stamps_per_applicant
        names = [s.name for s in r.stages]
        ins = r.in_system
        paid = r.orbits["stamping"] + r.rooms["stamping"] + r.issuer_queue
        rows = []
        for k in range(self._k_close() + 1):
            st = int(r.stage[k])
            values = (
                r.arrived_cum[k], r.done_cum[k], r.lost_cum[k], ins[k], r.served_cum[k],
                r.bypass_cum[k], r.served_per_s[k] * m, r.issuer_capacity_per_s[k] * m,
                r.arrivals_per_s[k],
                r.rooms["registration"][k], r.rooms["ordering"][k], r.rooms["stamping"][k],
                r.orbits["registration"][k], r.orbits["ordering"][k], r.orbits["stamping"][k],
                r.payments_queue[k], r.issuer_queue[k], paid[k], r.ghost[k],
            )  # fmt: skip
            rows.append(
                [cal.at(float(r.t_s[k] + r.inputs.step_s)).isoformat()]
                + [_g(float(x)) for x in values]
                + [names[st] if st >= 0 else "normal"]
            )
        return rows

    def stamps_on_day(self, day: datetime) -> float:
        """e-Meterai the issuer stamped on the local calendar day of `day`."""
        cal = self.profile.calendar
        d0 = day.astimezone(cal.tz).replace(hour=0, minute=0, second=0, microsecond=0)
        a, b = cal.seconds(d0), cal.seconds(d0 + timedelta(days=1))
        return (
            self.at(self.result.served_cum, b) - self.at(self.result.served_cum, a)
        ) * self.result.inputs.stamps_per_applicant

    def as_json(self) -> dict[str, Any]:
        """forecast.json."""
        p = self.profile
        cal = p.calendar
        o = self.outcome()
        i = self.result.inputs
        pts = [
            {
                "at": pt.at.isoformat(),
                "kind": pt.kind,
                "role": pt.role,
                "label": pt.label,
                "source": pt.source,
                "published": pt.cumulative,
                "model": round(predict_point(self, pt), 1),
                "error": round(predict_point(self, pt) / pt.cumulative - 1, 4)
                if pt.cumulative
                else None,
            }
            for pt in p.calibration
        ]
        return {
            "profile": p.name,
            "close": cal.at(self.close_s).isoformat(),
            "extend_days": self.extend_days,
            "decided_at": None
            if self.decided_at_s is None
            else cal.at(self.decided_at_s).isoformat(),
            "outcome": {
                "served": round(o["served"], 1),
                "lost": round(o["lost"], 1),
                "waiting": round(o["waiting"], 1),
            },
            "detail": {k: round(v, 1) for k, v in o.items()},
            "points": pts,
            "model": {
                "step_s": i.step_s,
                "session_patience_s": i.patience_s,
                "retry_after_s": i.retry_after_s,
                "persistence_s": i.persistence_s,
                "stamps_per_applicant": i.stamps_per_applicant,
                "issuer_stamps_per_second_max": float(
                    i.issuer_per_s.max() * i.stamps_per_applicant
                ),
                "overload": "unbounded" if i.waste else "shed",
                "usl": i.usl,
                "demand_total": round(i.total_applicants, 1),
                "units": "applicants unless a name says stamps; served = stamped + bypassed",
            },
            "timezone": cal.tz.key,
        }

    def render(self) -> str:
        """The short summary `surgecast forecast` prints."""
        o = self.outcome()
        cal = self.profile.calendar
        lines = [
            f"forecast {self.profile.name}: close {cal.at(self.close_s):%Y-%m-%d %H:%M %Z}"
            + (f" (extended {self.extend_days} d)" if self.extend_days else ""),
            f"  arrived {o['arrived']:>12,.0f} applicants",
            f"  served  {o['served']:>12,.0f}  "
            f"({o['stamped']:,.0f} stamped, {o['bypassed']:,.0f} by bypass)",
            f"  lost    {o['lost']:>12,.0f}",
            f"  waiting {o['waiting']:>12,.0f}",
        ]
        for pt in self.profile.calibration:
            v = predict_point(self, pt)
            lines.append(
                f"  {pt.role:<9} {pt.at:%d %b %H:%M} {pt.label[:38]:<38} model {v:>12,.0f}  "
                f"published {pt.cumulative:>12,.0f}  {v / pt.cumulative - 1:+.1%}"
            )
        return "\n".join(lines)


def predict_point(f: Forecast, pt: Any) -> float:
    """The model's value for a calibration point: submitted (served) by `pt.at`, or stamps
    on its day.

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> predict_point(forecast(p), p.calibration[0]) > 0
    True
    """
    if pt.kind == "stamps_day":
        return f.stamps_on_day(pt.at)
    return f.at(f.result.done_cum, f.profile.calendar.seconds(pt.at))


class _ExtendedCurve:
    """An arrival curve after an extension decided at `d`: arrivals before `d` unchanged; a
    share `retarget` (1 for profiles without [demand]) of the rest stretched from [d, close]
    onto [d, new close]."""

    def __init__(
        self, base: ArrivalCurve, d: float, new_close: float, retarget: float = 1.0
    ) -> None:
        self.base, self.d, self.c0, self.c1, self.r = base, d, base.span_s, new_close, retarget

    def cumulative(self, t: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        cd = self.base.cumulative(self.d)
        stay = self.base.cumulative(np.minimum(t, self.c0))
        moved = self.base.cumulative(
            self.d
            + (np.clip(t, self.d, self.c1) - self.d) * (self.c0 - self.d) / (self.c1 - self.d)
        )
        after = cd + (1 - self.r) * (stay - cd) + self.r * (moved - cd)
        return np.where(t <= self.d, self.base.cumulative(t), after)


def _closes(profile: Profile, decided_s: float, new_close_s: float) -> list[tuple[float, float]]:
    cal = profile.calendar
    closes = []
    if cal.extension is not None:
        d = profile.demand
        closes.append(
            (
                cal.seconds(d.extension_announced) if d and d.extension_announced else 0.0,
                cal.seconds(cal.extension),
            )
        )
    closes.append((decided_s, new_close_s))
    return closes


def _with_capacity(profile: Profile, capacity: CapacityModel) -> Profile:
    """The profile with the probe's USL of `stamps` in its [overload] (if the probe fitted one)."""
    if capacity.alpha is None:
        return profile
    return _set(
        profile,
        overload=_set(
            profile.overload,
            alpha=capacity.alpha,
            beta=capacity.beta,
            peak_concurrency=capacity.peak_concurrency,
        ),
    )


def _with_outage(profile: Profile, outage: tuple[datetime, datetime]) -> Profile:
    """The profile with its (first) issuer outage moved to `outage`, or a full one added."""
    a, b = outage
    issuer = [o for o in profile.outages if o.resource == "issuer"]
    base = issuer[0] if issuer else Outage(start=a, end=b, capacity_factor=0.0, label="--outage")
    others = tuple(o for o in profile.outages if o is not base)
    return _set(profile, outages=others + (_set(base, start=a, end=b),))


def _decided_s(profile: Profile, decided_at: datetime | None) -> float:
    """When the extension is decided (calendar s): `decided_at`, else the end of the last
    issuer outage, else a day before the close."""
    cal = profile.calendar
    if decided_at is None:
        ends = [cal.seconds(o.end) for o in profile.outages if o.resource == "issuer"]
        decided_s = max(ends) if ends else cal.span_s - 86400.0
    else:
        decided_s = cal.seconds(decided_at)
    if not (0.0 <= decided_s <= cal.span_s):
        raise FieldError(
            "--decided-at",
            cal.at(decided_s).isoformat(),
            "give a time inside the window, before the close",
        )
    return decided_s


def _extended(
    profile: Profile, extend_days: int, decided_at: datetime | None
) -> tuple[Profile, Any, float]:
    """The profile with its close moved `extend_days` later, the arrival curve that follows
    the extension, and when it was decided (calendar s)."""
    cal = profile.calendar
    new_close = cal.close + timedelta(days=extend_days)
    decided_s = _decided_s(profile, decided_at)
    curve: Any
    if profile.demand is not None:
        curve = AccountsCurve(profile, closes=_closes(profile, decided_s, cal.seconds(new_close)))
    else:
        curve = _ExtendedCurve(ArrivalCurve(profile), decided_s, cal.seconds(new_close))
    return _set(profile, calendar=_set(cal, extension=new_close)), curve, decided_s


def forecast(
    profile: Profile,
    *,
    stamps_per_second: float | None = None,
    capacity: CapacityModel | None = None,
    outage: tuple[datetime, datetime] | None = None,
    extend_days: int = 0,
    decided_at: datetime | None = None,
    params: Mapping[str, float] | None = None,
    step_s: float = 60.0,
    overload: str | None = None,
) -> Forecast:
    """Run the profile as it says (see module doc); options change one thing each.

    `extend_days` (whole days) moves the close in force; demand before `decided_at`
    (default: the end of the last issuer outage, else a day before the close) is unchanged,
    and `demand.retarget_share` of those not yet ready by then re-aim at the new close.

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> a, b = forecast(p), forecast(p, extend_days=2)
    >>> b.outcome()["served"] >= a.outcome()["served"]
    True
    """
    if params:
        profile = apply_params(profile, params)
    if capacity is not None:
        stamps_per_second = capacity.stamps_per_second
        profile = _with_capacity(profile, capacity)
    if overload is not None:
        profile = _set(profile, overload=_set(profile.overload, mode=overload))
    if outage is not None:
        profile = _with_outage(profile, outage)
    if int(extend_days) != extend_days or extend_days < 0:
        raise FieldError("--extend", extend_days, "give whole days >= 0, e.g. 2d")
    curve = None
    decided_s = None
    if extend_days:
        profile, curve, decided_s = _extended(profile, int(extend_days), decided_at)
    close_s = profile.calendar.span_s
    inputs = inputs_from_profile(
        profile, stamps_per_second=stamps_per_second, step_s=step_s, curve=curve
    )
    result = run_fluid(inputs, stages_from_profile(profile))
    return Forecast(
        profile=profile,
        result=result,
        close_s=close_s,
        decided_at_s=decided_s,
        extend_days=int(extend_days),
    )


def bands(
    profile: Profile, samples: Sequence[Mapping[str, float]], *, step_s: float = 300.0, **kw: Any
) -> dict[str, tuple[float, float, float]]:
    """p5 / p50 / p95 of served, lost and waiting over parameter sets (one run each).

    >>> from scenarios.profile import load_profile
    >>> b = bands(load_profile("casn2024"),
    ...           [{"demand.conversion": 0.9}, {"demand.conversion": 1.0}])
    >>> b["served"][0] <= b["served"][2]
    True
    """
    outs = [forecast(profile, params=s, step_s=step_s, **kw).outcome() for s in samples]
    return {
        k: tuple(  # type: ignore[misc]
            float(np.percentile([o[k] for o in outs], q)) for q in (5, 50, 95)
        )
        for k in ("served", "lost", "waiting")
    }
