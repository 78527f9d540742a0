"""Build a profile's sections from its TOML tables (the calendar's events are in
`scenarios.profile_events`): each reader takes the `TableReader` of the
whole file and returns its section's type, every error naming the field, the value and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from floor.errors import ProfileError
from floor.tomlfile import TableReader
from floor.vocabulary import JOURNEYS
from scenarios.patience import PATIENCE_LAWS
from scenarios.profile_base import Calendar, distribution, is_number, known_keys


@dataclass(frozen=True, kw_only=True)
class Rush:
    """Deadline rush: the rate is multiplied by 1 + amplitude * exp(-(close - t) / tau)."""

    amplitude: float
    tau_hours: float


@dataclass(frozen=True, kw_only=True)
class Spike:
    """An announced spike: the rate is multiplied by `factor` for `duration_hours` from `at`."""

    at: datetime
    duration_hours: float
    factor: float
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class ArrivalShape:
    """Relative arrival rate: base knots x daily cycle x deadline rush x spikes.

    `base` is a table of (day since window start, weight), linearly interpolated;
    `daily_cycle` has 24 hourly weights (local time). Normalised so the whole
    window holds `applicants.total` arrivals.
    """

    base: tuple[tuple[float, float], ...]
    daily_cycle: tuple[float, ...]
    rush: Rush | None = None
    spikes: tuple[Spike, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CapacityStep:
    """From `at`, the issuer serves `stamps_per_second` (capacity added on a date)."""

    at: datetime
    stamps_per_second: float


@dataclass(frozen=True, kw_only=True)
class Capacity:
    """The capacity assumed for planning when none is measured (calendar rates)."""

    stamps_per_second: float
    payments_per_second: float
    added: tuple[CapacityStep, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Behaviour:
    """How applicants behave, in calendar time (used by the analysis models)."""

    patience_minutes: float
    retry_probability: float
    retry_after_minutes: float
    persistence_days: float | None = (
        None  # mean days an applicant keeps coming back (None: loss per attempt)
    )
    return_boost: float = 1.0  # returns x this for announcement_hours after each reopening change
    announcement_hours: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Journeys:
    """What Locust users do, in seconds of the run (never compressed)."""

    mix: dict[str, float]
    think_time_s: tuple[float, float]
    patience_s: float
    poll_interval_s: float
    retry_mix: dict[str, float]
    backoff_base_s: float
    backoff_max_s: float
    max_attempts: int
    request_timeout_s: float
    # how patience varies between applicants (scenarios.patience): "fixed" or "exponential"
    patience_law: str = "fixed"


@dataclass(frozen=True, kw_only=True)
class Overload:
    """Issuer overload physics. mode "shed": excess waits or is refused, throughput stays at
    capacity. mode "unbounded": every pending request is in flight; work on requests whose
    client gave up is still done (waste), and past `timeout_s` of queued work per unit of
    capacity the USL (alpha, beta, peak concurrency) says throughput falls."""

    mode: str = "shed"
    alpha: float = 0.0
    beta: float = 0.0
    peak_concurrency: float = 1.0
    timeout_s: float = 60.0


RETRY_POLICIES = ("refresh", "backoff")


def arrivals_section(r: TableReader, cal: Calendar) -> ArrivalShape:
    """[arrivals]: the base curve's knots, the daily cycle, an optional rush and the spikes."""
    a = r.table("arrivals")
    known_keys(r, "arrivals", a, {"base", "daily_cycle", "rush", "spikes"})
    span_days = cal.span_s / 86400
    base_raw = r.get("arrivals.base", default=[[0.0, 1.0], [span_days, 1.0]])
    base = _base_knots(base_raw)
    cycle_raw = _daily_cycle(r)
    rush = _rush(r) if "rush" in a else None
    spikes = _spikes(r, cal)
    if not any(w > 0 for _, w in base):
        raise ProfileError("arrivals.base", base_raw, "at least one knot needs a weight above 0")
    return ArrivalShape(
        base=tuple(base),
        daily_cycle=tuple(float(v) for v in cycle_raw),
        rush=rush,
        spikes=tuple(spikes),
    )


def _base_knots(base_raw: Any) -> list[tuple[float, float]]:
    """arrivals.base: [day, weight] pairs, days increasing, weights finite and >= 0."""
    if not isinstance(base_raw, list) or len(base_raw) < 1:
        raise ProfileError(
            "arrivals.base",
            base_raw,
            "give a list of [day, weight] pairs, e.g. [[0, 1.0], [17, 3.0]]",
        )
    base: list[tuple[float, float]] = []
    for i, knot in enumerate(base_raw):
        fname = f"arrivals.base[{i}]"
        if not (isinstance(knot, list) and len(knot) == 2 and all(is_number(v) for v in knot)):
            raise ProfileError(fname, knot, "give a [day, weight] pair of numbers")
        d, w = float(knot[0]), float(knot[1])
        if w < 0 or not math.isfinite(w):
            raise ProfileError(fname, knot, "the weight must be a finite number >= 0")
        if base and d <= base[-1][0]:
            raise ProfileError(fname, knot, "days must increase from one knot to the next")
        base.append((d, w))
    return base


def _daily_cycle(r: TableReader) -> list[Any]:
    """arrivals.daily_cycle: 24 hourly weights >= 0, not all 0 (default flat)."""
    cycle_raw = r.get("arrivals.daily_cycle", default=[1.0] * 24)
    if not (
        isinstance(cycle_raw, list)
        and len(cycle_raw) == 24
        and all(is_number(v) and v >= 0 for v in cycle_raw)
    ):
        raise ProfileError(
            "arrivals.daily_cycle", cycle_raw, "give 24 hourly weights >= 0 (local hours 00..23)"
        )
    if sum(cycle_raw) <= 0:
        raise ProfileError(
            "arrivals.daily_cycle", cycle_raw, "at least one hour needs a weight above 0"
        )
    return cycle_raw


def _rush(r: TableReader) -> Rush:
    """[arrivals.rush]: the deadline rush's amplitude and time constant."""
    rt = r.table("arrivals.rush")
    known_keys(r, "arrivals.rush", rt, {"amplitude", "tau_hours"})
    return Rush(
        amplitude=r.number("arrivals.rush.amplitude", minimum=0),
        tau_hours=r.number("arrivals.rush.tau_hours", minimum=0, exclusive=True),
    )


def _spikes(r: TableReader, cal: Calendar) -> list[Spike]:
    """[[arrivals.spikes]]: when each starts, how long it lasts, its factor and label."""
    spikes = []
    for i, s in enumerate(r.array_of_tables("arrivals.spikes")):
        f = f"arrivals.spikes[{i}]"
        known_keys(r, f, s, {"at", "duration_hours", "factor", "label"})
        spikes.append(
            Spike(
                at=r.when(f"{f}.at", cal.tz, value=s.get("at")),
                duration_hours=r.number(
                    f"{f}.duration_hours", value=s.get("duration_hours"), minimum=0, exclusive=True
                ),
                factor=r.number(f"{f}.factor", value=s.get("factor"), minimum=0),
                label=str(s.get("label", "")),
            )
        )
    return spikes


def behaviour_section(r: TableReader) -> Behaviour:
    b = r.table("behaviour", default={})
    known_keys(
        r,
        "behaviour",
        b,
        {
            "patience_minutes",
            "retry_probability",
            "retry_after_minutes",
            "persistence_days",
            "return_boost",
            "announcement_hours",
        },
    )
    pers = b.get("persistence_days")
    return Behaviour(
        patience_minutes=r.number(
            "behaviour.patience_minutes", default=120.0, minimum=0, exclusive=True
        ),
        retry_probability=r.number(
            "behaviour.retry_probability", default=0.8, minimum=0, maximum=1
        ),
        retry_after_minutes=r.number(
            "behaviour.retry_after_minutes", default=150.0, minimum=0, exclusive=True
        ),
        persistence_days=None
        if pers is None
        else r.number("behaviour.persistence_days", minimum=0, exclusive=True),
        return_boost=r.number("behaviour.return_boost", default=1.0, minimum=0),
        announcement_hours=r.number("behaviour.announcement_hours", default=0.0, minimum=0),
    )


def journeys_section(r: TableReader) -> Journeys:
    j = r.table("journeys", default={})
    known_keys(
        r,
        "journeys",
        j,
        {
            "mix",
            "think_time_s",
            "patience_s",
            "patience_law",
            "poll_interval_s",
            "retry_mix",
            "backoff_base_s",
            "backoff_max_s",
            "max_attempts",
            "request_timeout_s",
        },
    )
    mix = distribution(
        r,
        "journeys.mix",
        r.get("journeys.mix", default={"new_applicant": 1.0}),
        key_type=str,
        allowed=JOURNEYS,
    )
    retry_mix = distribution(
        r,
        "journeys.retry_mix",
        r.get("journeys.retry_mix", default={"backoff": 1.0}),
        key_type=str,
        allowed=RETRY_POLICIES,
    )
    think = r.get("journeys.think_time_s", default=[0.5, 2.0])
    if not (
        isinstance(think, list)
        and len(think) == 2
        and all(is_number(v) and v >= 0 for v in think)
        and think[0] <= think[1]
    ):
        raise ProfileError(
            "journeys.think_time_s", think, "give [min, max] seconds with 0 <= min <= max"
        )
    bmin = r.number("journeys.backoff_base_s", default=0.5, minimum=0, exclusive=True)
    return Journeys(
        mix=mix,
        think_time_s=(float(think[0]), float(think[1])),
        patience_s=r.number("journeys.patience_s", default=30.0, minimum=0, exclusive=True),
        poll_interval_s=r.number(
            "journeys.poll_interval_s", default=0.5, minimum=0, exclusive=True
        ),
        retry_mix=retry_mix,
        backoff_base_s=bmin,
        backoff_max_s=r.number("journeys.backoff_max_s", default=10.0, minimum=bmin),
        max_attempts=int(r.number("journeys.max_attempts", default=5, minimum=1, integer=True)),
        request_timeout_s=r.number(
            "journeys.request_timeout_s", default=10.0, minimum=0, exclusive=True
        ),
        patience_law=_patience_law(r),
    )


def _patience_law(r: TableReader) -> str:
    """journeys.patience_law: one of PATIENCE_LAWS (scenarios.patience), "fixed" if absent."""
    law = r.get("journeys.patience_law", default="fixed")
    if law not in PATIENCE_LAWS:
        raise ProfileError(
            "journeys.patience_law", law, f"give one of {', '.join(map(repr, PATIENCE_LAWS))}"
        )
    return str(law)


def capacity_section(r: TableReader, cal: Calendar) -> Capacity:
    c = r.table("capacity", default={})
    known_keys(r, "capacity", c, {"stamps_per_second", "payments_per_second", "added"})
    steps = []
    for i, s in enumerate(r.array_of_tables("capacity.added")):
        f = f"capacity.added[{i}]"
        known_keys(r, f, s, {"at", "stamps_per_second"})
        steps.append(
            CapacityStep(
                at=r.when(f"{f}.at", cal.tz, value=s.get("at")),
                stamps_per_second=r.number(
                    f"{f}.stamps_per_second",
                    value=s.get("stamps_per_second"),
                    minimum=0,
                    exclusive=True,
                ),
            )
        )
    return Capacity(
        stamps_per_second=r.number(
            "capacity.stamps_per_second", default=12.0, minimum=0, exclusive=True
        ),
        payments_per_second=r.number(
            "capacity.payments_per_second", default=50.0, minimum=0, exclusive=True
        ),
        added=tuple(sorted(steps, key=lambda s: s.at)),
    )


def overload_section(r: TableReader) -> Overload:
    o = r.table("overload", default={})
    known_keys(r, "overload", o, {"mode", "alpha", "beta", "peak_concurrency", "timeout_s"})
    mode = o.get("mode", "shed")
    if mode not in ("shed", "unbounded"):
        raise ProfileError("overload.mode", mode, "choose shed or unbounded")
    return Overload(
        mode=mode,
        alpha=r.number("overload.alpha", default=0.0, minimum=0, maximum=1),
        beta=r.number("overload.beta", default=0.0, minimum=0),
        peak_concurrency=r.number("overload.peak_concurrency", default=1.0, minimum=1),
        timeout_s=r.number("overload.timeout_s", default=60.0, minimum=0, exclusive=True),
    )


def ranges_section(r: TableReader) -> dict[str, tuple[float, float]]:
    t = r.table("ranges", default={})
    out: dict[str, tuple[float, float]] = {}
    for key, v in t.items():
        if not (
            isinstance(v, list) and len(v) == 2 and all(is_number(x) for x in v) and v[0] <= v[1]
        ):
            raise ProfileError(f"ranges.{key}", v, "give [low, high] numbers with low <= high")
        out[key] = (float(v[0]), float(v[1]))
    return out
