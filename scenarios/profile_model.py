"""The profile's types: the calendar, arrivals, behaviour, journeys, capacity, outages, the
reopening, calibration points, demand, bypass, overload and the `Profile` that holds them.

Build one with `scenarios.profile.load_profile`; the readers of each section are in
`scenarios.profile_build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "Calendar",
    "Rush",
    "Spike",
    "ArrivalShape",
    "Outage",
    "GateChange",
    "CapacityStep",
    "Capacity",
    "Behaviour",
    "Journeys",
    "CalibrationPoint",
    "AccountsDemand",
    "Bypass",
    "Overload",
    "Profile",
]


@dataclass(frozen=True, kw_only=True)
class Calendar:
    """The registration window, in the profile's time zone (aware datetimes)."""

    tz: ZoneInfo
    window_start: datetime
    deadline: datetime
    extension: datetime | None = None

    @property
    def close(self) -> datetime:
        """The close in force: the extension if there is one, else the deadline."""
        return self.extension or self.deadline

    @property
    def span_s(self) -> float:
        """Seconds from window start to close."""
        return (self.close - self.window_start).total_seconds()

    def seconds(self, when: datetime) -> float:
        """Calendar seconds since window start.

        >>> from scenarios.profile import load_profile
        >>> c = load_profile("steady").calendar
        >>> c.seconds(c.window_start + timedelta(hours=1))
        3600.0
        """
        return (when - self.window_start).total_seconds()

    def at(self, seconds: float) -> datetime:
        """The local datetime `seconds` after window start."""
        return (self.window_start + timedelta(seconds=float(seconds))).astimezone(self.tz)


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
class Outage:
    """A resource runs at `capacity_factor` (0 = down) from `start` to `end`."""

    start: datetime
    end: datetime
    resource: str = "issuer"
    capacity_factor: float = 0.0
    label: str = ""


@dataclass(frozen=True, kw_only=True)
class GateChange:
    """At `at`, set gate `gate` to `mode` (open, closed, or rate with rate_per_s and burst)."""

    at: datetime
    gate: str
    mode: str
    rate_per_s: float | None = None
    burst: int | None = None
    label: str = ""
    rate_share: float | None = (
        None  # rate as a share of the issuer's capacity (applicants/s), instead of rate_per_s
    )


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


@dataclass(frozen=True, kw_only=True)
class CalibrationPoint:
    """A published cumulative count. `role` "in-sample" may be fitted on; "holdout" may not
    (it is only predicted). `kind`: "submitted" (cumulative submitted applications) or
    "stamps_day" (stamps on the local day of `at`, at least `cumulative`)."""

    at: datetime
    cumulative: float
    label: str = ""
    source: str = ""
    role: str = "in-sample"
    kind: str = "submitted"


@dataclass(frozen=True, kw_only=True)
class AccountsDemand:
    """Demand from an uncensored signal: registered accounts (a cumulative series), times
    `conversion` (the share who will want to submit), each ready to submit after a lag
    whose hazard is `pull` / (time left to the close) in the daily-cycle clock.
    An extension announced at `extension_announced` retargets `retarget_share` of those
    not yet ready (and every later account) to the new close; the rest keep the old one."""

    accounts: tuple[tuple[datetime, float], ...]
    conversion: float
    pull: float
    extension_announced: datetime | None = None
    retarget_share: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Bypass:
    """From `at`, a `share` of applicants who would stamp use another route (physical stamps)."""

    at: datetime
    share: float
    label: str = ""


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


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A whole surge profile. Build it with `load_profile`."""

    name: str
    title: str
    description: str
    source: str
    calendar: Calendar
    applicants_total: int
    stamps_per_applicant: dict[int, float]
    arrivals: ArrivalShape
    behaviour: Behaviour
    journeys: Journeys
    capacity: Capacity
    outages: tuple[Outage, ...] = ()
    reopening: tuple[GateChange, ...] = ()
    calibration: tuple[CalibrationPoint, ...] = ()
    demand: AccountsDemand | None = None
    bypass: Bypass | None = None
    overload: Overload = field(default_factory=Overload)
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def mean_stamps_per_applicant(self) -> float:
        """Expected e-Meterai per applicant.

        >>> from scenarios.profile import load_profile
        >>> load_profile("casn2024").mean_stamps_per_applicant
        2.2
        """
        return round(sum(k * p for k, p in self.stamps_per_applicant.items()), 12)

    def __repr__(self) -> str:
        c = self.calendar
        return (
            f"Profile(name={self.name!r}, window={c.window_start:%Y-%m-%d}..{c.close:%Y-%m-%d}, "
            f"applicants={self.applicants_total:,}, tz={c.tz.key!r})"
        )
