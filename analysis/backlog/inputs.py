"""Fluid inputs from a profile: arrivals per entry gate, capacity schedules, returns, stages."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from analysis.backlog.model import FluidInputs, Gate, Stage
from floor.errors import FieldError
from floor.vocabulary import GATES
from scenarios.curve import AccountsCurve, ArrivalCurve
from scenarios.profile_events import Outage
from scenarios.profile_model import Profile

__all__ = ["capacity_schedule", "inputs_from_profile", "return_weights", "stages_from_profile"]

_ENTRY = {
    "new_applicant": "registration",
    "returning_applicant": "ordering",
    "stamp_only": "stamping",
}


def capacity_schedule(
    t_s: np.ndarray,
    profile: Profile,
    *,
    base: float,
    resource: str,
    outages: Sequence[Outage],
    added: Sequence[tuple[float, float]] = (),
) -> np.ndarray:
    """Capacity of `resource` per step (same unit as `base`): base, raised by `added`
    (calendar s, new capacity) steps, times the capacity_factor of any outage covering
    the step's midpoint.

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> t = np.array([p.calendar.seconds(p.outages[0].start) + 60.0])
    >>> cap = capacity_schedule(t, p, base=12.0, resource="issuer", outages=p.outages)
    >>> [round(float(v), 4) for v in cap]
    [3.3684]
    """
    cap = np.full(len(t_s), float(base))
    for at, value in sorted(added):
        cap[t_s >= at] = value
    cal = profile.calendar
    for o in outages:
        if o.resource != resource:
            continue
        a, b = cal.seconds(o.start), cal.seconds(o.end)
        cap[(t_s >= a) & (t_s < b)] *= o.capacity_factor
    return cap


def _arrivals_per_step(
    profile: Profile, curve: ArrivalCurve | None, horizon_s: float | None, step_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Step starts (calendar s) to the horizon (default: the close in force) and the
    applicants arriving in each step (the profile's curve unless `curve` is given)."""
    cal = profile.calendar
    horizon = cal.span_s if horizon_s is None else float(horizon_s)
    n = max(1, int(math.ceil(horizon / step_s - 1e-9)))
    edges = step_s * np.arange(n + 1)
    if curve is None:
        curve = AccountsCurve(profile) if profile.demand is not None else ArrivalCurve(profile)
    return edges[:-1], np.maximum(np.diff(curve.cumulative(edges)), 0.0)


def _arrivals_by_gate(profile: Profile, per_step: np.ndarray) -> dict[str, np.ndarray]:
    """Arrivals per step at each entry gate, split by the journey mix."""
    arrivals = {g: np.zeros(len(per_step)) for g in GATES}
    for journey, share in profile.journeys.mix.items():
        arrivals[_ENTRY[journey]] += per_step * share
    return arrivals


def _capacities(
    profile: Profile,
    mids: np.ndarray,
    outages: Sequence[Outage],
    stamps_per_second: float | None,
    payments_per_second: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The issuer's capacity (applicants/s) and the payments' per step (at the step
    midpoints `mids`): the profile's (with its capacity added on a date) unless given."""
    cal = profile.calendar
    stamps = (
        profile.capacity.stamps_per_second
        if stamps_per_second is None
        else float(stamps_per_second)
    )
    added = (
        []
        if stamps_per_second is not None
        else [(cal.seconds(s.at), s.stamps_per_second) for s in profile.capacity.added]
    )
    issuer = (
        capacity_schedule(
            mids, profile, base=stamps, resource="issuer", outages=outages, added=added
        )
        / profile.mean_stamps_per_applicant
    )
    pay_base = (
        profile.capacity.payments_per_second if payments_per_second is None else payments_per_second
    )
    payments = capacity_schedule(mids, profile, base=pay_base, resource="payments", outages=outages)
    return issuer, payments


def _bypass_share(profile: Profile, mids: np.ndarray) -> np.ndarray | None:
    """Per step, the share of applicants taking the physical-stamp bypass (None without one)."""
    if profile.bypass is None:
        return None
    at = profile.calendar.seconds(profile.bypass.at)
    return np.where(mids >= at, profile.bypass.share, 0.0)


def inputs_from_profile(
    profile: Profile,
    *,
    stamps_per_second: float | None = None,
    payments_per_second: float | None = None,
    outages: Sequence[Outage] | None = None,
    horizon_s: float | None = None,
    step_s: float = 60.0,
    curve: ArrivalCurve | None = None,
) -> FluidInputs:
    """Build fluid inputs from a profile: arrivals per step split by the journey mix,
    capacity schedules (profile capacity or the given stamps/s, capacity added on a
    date, outages: the profile's unless `outages` is given), behaviour in calendar time.
    `horizon_s` (default: the close in force) may run past the close; no one arrives then.

    >>> from scenarios.profile import load_profile
    >>> i = inputs_from_profile(load_profile("casn2024"), stamps_per_second=12)
    >>> i.n, round(float(i.issuer_per_s.max()), 3)
    (31679, 5.455)
    """
    if stamps_per_second is not None and not (
        math.isfinite(stamps_per_second) and stamps_per_second > 0
    ):
        raise FieldError(
            "--stamps-per-second", stamps_per_second, "give a capacity > 0 stamps per second"
        )
    cal = profile.calendar
    t, per_step = _arrivals_per_step(profile, curve, horizon_s, step_s)
    outs = profile.outages if outages is None else tuple(outages)
    issuer, payments = _capacities(
        profile, t + step_s / 2, outs, stamps_per_second, payments_per_second
    )
    b = profile.behaviour
    ov = profile.overload
    unbounded = ov.mode == "unbounded"
    return FluidInputs(
        step_s=float(step_s),
        t0_s=0.0,
        arrivals=_arrivals_by_gate(profile, per_step),
        issuer_per_s=issuer,
        payments_per_s=payments,
        stamps_per_applicant=profile.mean_stamps_per_applicant,
        patience_s=b.patience_minutes * 60.0,
        retry_probability=b.retry_probability,
        retry_after_s=b.retry_after_minutes * 60.0,
        total_applicants=float(per_step.sum()),
        origin=cal.window_start,
        persistence_s=None if b.persistence_days is None else b.persistence_days * 86400.0,
        return_weight=return_weights(profile, t, step_s),
        bypass_share=_bypass_share(profile, t + step_s / 2),
        waste=unbounded,
        timeout_s=ov.timeout_s,
        usl=(ov.alpha, ov.beta, ov.peak_concurrency)
        if unbounded and (ov.alpha or ov.beta)
        else None,
    )


def return_weights(profile: Profile, t_s: np.ndarray, step_s: float) -> np.ndarray | None:
    """Per step multiplier of the return rate of deferred applicants: the daily cycle
    (normalised to mean 1) when the profile has persistence (two clocks), times
    `behaviour.return_boost` for `announcement_hours` after each [[reopening]] change
    that opens or paces a gate (a return wave). None for older profiles (flat returns).

    >>> from scenarios.profile import load_profile
    >>> p = load_profile("casn2024")
    >>> w = return_weights(p, np.arange(0.0, 86400.0, 3600.0), 3600.0)
    >>> round(float(w.mean()), 6)
    1.0
    """
    b = profile.behaviour
    if b.persistence_days is None:
        return None
    cal = profile.calendar
    cycle = np.asarray(profile.arrivals.daily_cycle, dtype=float)
    cycle = cycle / cycle.mean()
    hour0 = cal.window_start.hour + cal.window_start.minute / 60
    mids = np.asarray(t_s, dtype=float) + step_s / 2
    w = cycle[(np.floor(hour0 + mids / 3600.0) % 24).astype(int)]
    if b.return_boost != 1.0 and b.announcement_hours > 0:
        for g in profile.reopening:
            if g.mode != "closed":
                a = cal.seconds(g.at)
                w = np.where(
                    (mids >= a) & (mids < a + b.announcement_hours * 3600), w * b.return_boost, w
                )
    return w


def stages_from_profile(profile: Profile) -> list[Stage]:
    """The profile's own [[reopening]] gate changes as time-triggered stages.

    >>> from scenarios.profile import load_profile
    >>> [s.name for s in stages_from_profile(load_profile("casn2024"))][:2]
    ['pause quota sales: finish stamping in progress first', 'pause new e-Meterai accounts']
    """
    cal = profile.calendar
    out = []
    for g in profile.reopening:
        gate = Gate(mode=g.mode, rate_per_s=g.rate_per_s, rate_share=g.rate_share, burst=g.burst)
        out.append(
            Stage(
                name=g.label or f"{g.gate} {g.mode}", at_s=cal.seconds(g.at), gates={g.gate: gate}
            )
        )
    return out
