"""Surge profiles: the single description of a surge, and its one loader.

A profile (TOML, see scenarios/profiles/*.toml) holds the registration calendar,
the applicants, the arrival curve, applicant behaviour, outages and a reopening
plan. Rehearsals, the planner and reports all read it through `load_profile`::

    >>> p = load_profile("casn2024")
    >>> p.name, p.calendar.tz.key
    ('casn2024', 'Asia/Jakarta')
    >>> p.calendar.close.isoformat()
    '2024-09-10T23:59:00+07:00'

Every error names the field, the value and the fix, as one line::

    ProfileError: calendar.deadline = '2024-13-01': write a date-time like 2024-09-06T23:59:00

Times in the file are local to `profile.timezone` unless they carry an offset.
Two clocks, never mixed: [behaviour] is in calendar time (what the analysis
models use); [journeys] is in seconds of the run (what Locust users do) and is
never compressed.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from floor.errors import ProfileError
from floor.tomlfile import TableReader, read_toml
from floor.vocabulary import GATE_MODES, GATES, JOURNEYS, RESOURCES

PROFILES_DIR = Path(__file__).with_name("profiles")
RETRY_POLICIES = ("refresh", "backoff")


# ---------------------------------------------------------------- the model
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
    rate_share: float | None = None   # rate as a share of the issuer's capacity (applicants/s), instead of rate_per_s


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
    persistence_days: float | None = None   # mean days an applicant keeps coming back (None: loss per attempt)
    return_boost: float = 1.0               # returns x this for announcement_hours after each reopening change
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

        >>> load_profile("casn2024").mean_stamps_per_applicant
        2.2
        """
        return round(sum(k * p for k, p in self.stamps_per_applicant.items()), 12)

    def __repr__(self) -> str:
        c = self.calendar
        return (f"Profile(name={self.name!r}, window={c.window_start:%Y-%m-%d}..{c.close:%Y-%m-%d}, "
                f"applicants={self.applicants_total:,}, tz={c.tz.key!r})")


# ---------------------------------------------------------------- loading
def available_profiles() -> list[str]:
    """Names of the profiles shipped in scenarios/profiles/.

    >>> "casn2024" in available_profiles()
    True
    """
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def resolve_profile_path(name_or_file: str | Path) -> Path:
    """A shipped profile name or a path to a TOML file -> an existing path."""
    text = str(name_or_file)
    path = Path(text)
    if path.suffix == ".toml" or path.exists() or "/" in text:
        if not path.is_file():
            raise ProfileError("--profile", text, "no such file; give a TOML file or one of: "
                               + ", ".join(available_profiles()))
        return path
    shipped = PROFILES_DIR / f"{text}.toml"
    if not shipped.is_file():
        close = difflib.get_close_matches(text, available_profiles(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ProfileError("--profile", text, f"{hint}choose one of: {', '.join(available_profiles())}, or a .toml file")
    return shipped


def load_profile(name_or_file: str | Path) -> Profile:
    """Load and validate a profile by shipped name or file path.

    >>> load_profile("flash-crowd").applicants_total > 0
    True
    """
    path = resolve_profile_path(name_or_file)
    return parse_profile(read_toml(path, field="--profile", error=ProfileError), source=str(path))


def parse_profile(data: dict[str, Any], *, source: str = "<dict>") -> Profile:
    """Validate a profile already parsed from TOML (a dict) and build it.

    >>> import tomllib
    >>> d = tomllib.loads(resolve_profile_path("steady").read_text())
    >>> parse_profile(d).name
    'steady'
    """
    r = TableReader(data, error=ProfileError, missing="missing; add it to the profile", zone="profile.timezone")
    _known(r, "", data, {"profile", "calendar", "applicants", "arrivals", "behaviour", "journeys",
                         "capacity", "outages", "reopening", "calibration",
                         "demand", "bypass", "overload", "ranges"})
    meta = r.table("profile")
    _known(r, "profile", meta, {"name", "title", "description", "timezone"})
    name = r.string("profile.name")
    tz_name = r.string("profile.timezone", default="UTC")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProfileError("profile.timezone", tz_name, "give an IANA zone such as 'Asia/Jakarta'") from None

    cal = r.table("calendar")
    _known(r, "calendar", cal, {"window_start", "deadline", "extension"})
    start = r.when("calendar.window_start", tz)
    deadline = r.when("calendar.deadline", tz)
    if deadline <= start:
        raise ProfileError("calendar.deadline", deadline.isoformat(), "must be after calendar.window_start")
    extension = r.when("calendar.extension", tz, optional=True)
    if extension is not None and extension <= deadline:
        raise ProfileError("calendar.extension", extension.isoformat(), "must be after calendar.deadline")
    calendar = Calendar(tz=tz, window_start=start, deadline=deadline, extension=extension)

    app = r.table("applicants")
    _known(r, "applicants", app, {"total", "stamps_per_applicant"})
    total = r.number("applicants.total", minimum=1, integer=True)
    stamps_raw = r.get("applicants.stamps_per_applicant")
    stamps = _distribution(r, "applicants.stamps_per_applicant", stamps_raw, key_type=int)

    arrivals = _arrivals(r, calendar)
    behaviour = _behaviour(r)
    journeys = _journeys(r)
    capacity = _capacity(r, calendar)
    outages = _outages(r, calendar)
    reopening = _reopening(r, calendar)
    calibration = _calibration(r, calendar)
    demand = _demand(r, calendar)
    bypass = _bypass(r, calendar)
    overload = _overload(r)
    ranges = _ranges(r)

    return Profile(
        name=name, title=r.string("profile.title", default=name),
        description=r.string("profile.description") if "description" in meta else "", source=source,
        calendar=calendar, applicants_total=int(total), stamps_per_applicant=stamps,
        arrivals=arrivals, behaviour=behaviour, journeys=journeys, capacity=capacity,
        outages=outages, reopening=reopening, calibration=calibration, demand=demand, bypass=bypass,
        overload=overload, ranges=ranges, raw=data,
    )


# ---------------------------------------------------------------- sections
def _arrivals(r: TableReader, cal: Calendar) -> ArrivalShape:
    a = r.table("arrivals")
    _known(r, "arrivals", a, {"base", "daily_cycle", "rush", "spikes"})
    span_days = cal.span_s / 86400
    base_raw = r.get("arrivals.base", default=[[0.0, 1.0], [span_days, 1.0]])
    if not isinstance(base_raw, list) or len(base_raw) < 1:
        raise ProfileError("arrivals.base", base_raw, "give a list of [day, weight] pairs, e.g. [[0, 1.0], [17, 3.0]]")
    base: list[tuple[float, float]] = []
    for i, knot in enumerate(base_raw):
        fname = f"arrivals.base[{i}]"
        if not (isinstance(knot, list) and len(knot) == 2 and all(_is_num(v) for v in knot)):
            raise ProfileError(fname, knot, "give a [day, weight] pair of numbers")
        d, w = float(knot[0]), float(knot[1])
        if w < 0 or not math.isfinite(w):
            raise ProfileError(fname, knot, "the weight must be a finite number >= 0")
        if base and d <= base[-1][0]:
            raise ProfileError(fname, knot, "days must increase from one knot to the next")
        base.append((d, w))
    cycle_raw = r.get("arrivals.daily_cycle", default=[1.0] * 24)
    if not (isinstance(cycle_raw, list) and len(cycle_raw) == 24 and all(_is_num(v) and v >= 0 for v in cycle_raw)):
        raise ProfileError("arrivals.daily_cycle", cycle_raw, "give 24 hourly weights >= 0 (local hours 00..23)")
    if sum(cycle_raw) <= 0:
        raise ProfileError("arrivals.daily_cycle", cycle_raw, "at least one hour needs a weight above 0")
    rush = None
    if "rush" in a:
        rt = r.table("arrivals.rush")
        _known(r, "arrivals.rush", rt, {"amplitude", "tau_hours"})
        rush = Rush(amplitude=r.number("arrivals.rush.amplitude", minimum=0),
                    tau_hours=r.number("arrivals.rush.tau_hours", minimum=0, exclusive=True))
    spikes = []
    for i, s in enumerate(r.array_of_tables("arrivals.spikes")):
        f = f"arrivals.spikes[{i}]"
        _known(r, f, s, {"at", "duration_hours", "factor", "label"})
        spikes.append(Spike(at=r.when(f"{f}.at", cal.tz, value=s.get("at")),
                            duration_hours=r.number(f"{f}.duration_hours", value=s.get("duration_hours"), minimum=0, exclusive=True),
                            factor=r.number(f"{f}.factor", value=s.get("factor"), minimum=0),
                            label=str(s.get("label", ""))))
    if not any(w > 0 for _, w in base):
        raise ProfileError("arrivals.base", base_raw, "at least one knot needs a weight above 0")
    return ArrivalShape(base=tuple(base), daily_cycle=tuple(float(v) for v in cycle_raw), rush=rush, spikes=tuple(spikes))


def _behaviour(r: TableReader) -> Behaviour:
    b = r.table("behaviour", default={})
    _known(r, "behaviour", b, {"patience_minutes", "retry_probability", "retry_after_minutes",
                               "persistence_days", "return_boost", "announcement_hours"})
    pers = b.get("persistence_days")
    return Behaviour(
        patience_minutes=r.number("behaviour.patience_minutes", default=120.0, minimum=0, exclusive=True),
        retry_probability=r.number("behaviour.retry_probability", default=0.8, minimum=0, maximum=1),
        retry_after_minutes=r.number("behaviour.retry_after_minutes", default=150.0, minimum=0, exclusive=True),
        persistence_days=None if pers is None else r.number("behaviour.persistence_days", minimum=0, exclusive=True),
        return_boost=r.number("behaviour.return_boost", default=1.0, minimum=0),
        announcement_hours=r.number("behaviour.announcement_hours", default=0.0, minimum=0),
    )


def _journeys(r: TableReader) -> Journeys:
    j = r.table("journeys", default={})
    _known(r, "journeys", j, {"mix", "think_time_s", "patience_s", "poll_interval_s", "retry_mix",
                              "backoff_base_s", "backoff_max_s", "max_attempts", "request_timeout_s"})
    mix = _distribution(r, "journeys.mix", r.get("journeys.mix", default={"new_applicant": 1.0}),
                        key_type=str, allowed=JOURNEYS)
    retry_mix = _distribution(r, "journeys.retry_mix", r.get("journeys.retry_mix", default={"backoff": 1.0}),
                              key_type=str, allowed=RETRY_POLICIES)
    think = r.get("journeys.think_time_s", default=[0.5, 2.0])
    if not (isinstance(think, list) and len(think) == 2 and all(_is_num(v) and v >= 0 for v in think) and think[0] <= think[1]):
        raise ProfileError("journeys.think_time_s", think, "give [min, max] seconds with 0 <= min <= max")
    bmin = r.number("journeys.backoff_base_s", default=0.5, minimum=0, exclusive=True)
    return Journeys(
        mix=mix, think_time_s=(float(think[0]), float(think[1])),
        patience_s=r.number("journeys.patience_s", default=30.0, minimum=0, exclusive=True),
        poll_interval_s=r.number("journeys.poll_interval_s", default=0.5, minimum=0, exclusive=True),
        retry_mix=retry_mix, backoff_base_s=bmin,
        backoff_max_s=r.number("journeys.backoff_max_s", default=10.0, minimum=bmin),
        max_attempts=int(r.number("journeys.max_attempts", default=5, minimum=1, integer=True)),
        request_timeout_s=r.number("journeys.request_timeout_s", default=10.0, minimum=0, exclusive=True),
    )


def _capacity(r: TableReader, cal: Calendar) -> Capacity:
    c = r.table("capacity", default={})
    _known(r, "capacity", c, {"stamps_per_second", "payments_per_second", "added"})
    steps = []
    for i, s in enumerate(r.array_of_tables("capacity.added")):
        f = f"capacity.added[{i}]"
        _known(r, f, s, {"at", "stamps_per_second"})
        steps.append(CapacityStep(at=r.when(f"{f}.at", cal.tz, value=s.get("at")),
                                  stamps_per_second=r.number(f"{f}.stamps_per_second", value=s.get("stamps_per_second"), minimum=0, exclusive=True)))
    return Capacity(
        stamps_per_second=r.number("capacity.stamps_per_second", default=12.0, minimum=0, exclusive=True),
        payments_per_second=r.number("capacity.payments_per_second", default=50.0, minimum=0, exclusive=True),
        added=tuple(sorted(steps, key=lambda s: s.at)),
    )


def _outages(r: TableReader, cal: Calendar) -> tuple[Outage, ...]:
    out = []
    for i, o in enumerate(r.array_of_tables("outages")):
        f = f"outages[{i}]"
        _known(r, f, o, {"start", "end", "resource", "capacity_factor", "label"})
        start = r.when(f"{f}.start", cal.tz, value=o.get("start"))
        end = r.when(f"{f}.end", cal.tz, value=o.get("end"))
        if end <= start:
            raise ProfileError(f"{f}.end", end.isoformat(), f"must be after {f}.start")
        res = o.get("resource", "issuer")
        if res not in RESOURCES:
            raise ProfileError(f"{f}.resource", res, f"choose one of: {', '.join(RESOURCES)}")
        out.append(Outage(start=start, end=end, resource=res,
                          capacity_factor=r.number(f"{f}.capacity_factor", value=o.get("capacity_factor", 0.0), minimum=0, maximum=1),
                          label=str(o.get("label", ""))))
    return tuple(sorted(out, key=lambda o: o.start))


def _reopening(r: TableReader, cal: Calendar) -> tuple[GateChange, ...]:
    out = []
    for i, g in enumerate(r.array_of_tables("reopening")):
        f = f"reopening[{i}]"
        _known(r, f, g, {"at", "gate", "mode", "rate_per_s", "rate_share", "burst", "label"})
        gate = g.get("gate")
        if gate not in GATES:
            raise ProfileError(f"{f}.gate", gate, f"choose one of: {', '.join(GATES)}")
        mode = g.get("mode")
        if mode not in GATE_MODES:
            raise ProfileError(f"{f}.mode", mode, f"choose one of: {', '.join(GATE_MODES)}")
        rate = burst = share = None
        if mode == "rate" and "rate_share" in g:
            if "rate_per_s" in g:
                raise ProfileError(f"{f}.rate_share", g["rate_share"], "give rate_per_s or rate_share, not both")
            share = r.number(f"{f}.rate_share", value=g.get("rate_share"), minimum=1e-9, maximum=1e3)
            burst = (int(r.number(f"{f}.burst", value=g["burst"], minimum=1, maximum=1e9, integer=True))
                     if "burst" in g else None)
        elif mode == "rate":
            rate = r.number(f"{f}.rate_per_s", value=g.get("rate_per_s"), minimum=1e-9, maximum=1e9)
            burst = int(r.number(f"{f}.burst", value=g.get("burst", max(1, math.ceil(rate))), minimum=1,
                                 maximum=1e9, integer=True))
        out.append(GateChange(at=r.when(f"{f}.at", cal.tz, value=g.get("at")), gate=gate, mode=mode,
                              rate_per_s=rate, burst=burst, label=str(g.get("label", "")), rate_share=share))
    return tuple(sorted(out, key=lambda g: g.at))


def _calibration(r: TableReader, cal: Calendar) -> tuple[CalibrationPoint, ...]:
    out = []
    for i, c in enumerate(r.array_of_tables("calibration")):
        f = f"calibration[{i}]"
        _known(r, f, c, {"at", "cumulative", "label", "source", "role", "kind"})
        role = c.get("role", "in-sample")
        if role not in ("in-sample", "holdout"):
            raise ProfileError(f"{f}.role", role, "choose in-sample or holdout")
        kind = c.get("kind", "submitted")
        if kind not in ("submitted", "stamps_day"):
            raise ProfileError(f"{f}.kind", kind, "choose submitted or stamps_day")
        out.append(CalibrationPoint(at=r.when(f"{f}.at", cal.tz, value=c.get("at")),
                                    cumulative=r.number(f"{f}.cumulative", value=c.get("cumulative"), minimum=0),
                                    label=str(c.get("label", "")), source=str(c.get("source", "")),
                                    role=role, kind=kind))
    return tuple(out)


def _demand(r: TableReader, cal: Calendar) -> AccountsDemand | None:
    d = r.get("demand", None)
    if d is None:
        return None
    d = r.table("demand")
    _known(r, "demand", d, {"accounts", "conversion", "pull", "extension_announced", "retarget_share"})
    raw = r.get("demand.accounts")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ProfileError("demand.accounts", raw, "give at least 2 [date-time, cumulative accounts] pairs")
    series: list[tuple[datetime, float]] = []
    for i, pair in enumerate(raw):
        fname = f"demand.accounts[{i}]"
        if not (isinstance(pair, list) and len(pair) == 2):
            raise ProfileError(fname, pair, "give a [date-time, cumulative accounts] pair")
        at = r.when(fname, cal.tz, value=pair[0])
        n = r.number(fname, value=pair[1], minimum=0)
        if series and (at <= series[-1][0] or n < series[-1][1]):
            raise ProfileError(fname, pair, "times must increase and counts never fall")
        series.append((at, n))
    return AccountsDemand(
        accounts=tuple(series),
        conversion=r.number("demand.conversion", minimum=0, maximum=1, exclusive=True),
        pull=r.number("demand.pull", minimum=0, exclusive=True),
        extension_announced=r.when("demand.extension_announced", cal.tz, optional=True),
        retarget_share=r.number("demand.retarget_share", default=1.0, minimum=0, maximum=1))


def _bypass(r: TableReader, cal: Calendar) -> Bypass | None:
    b = r.get("bypass", None)
    if b is None:
        return None
    b = r.table("bypass")
    _known(r, "bypass", b, {"at", "share", "label"})
    return Bypass(at=r.when("bypass.at", cal.tz), share=r.number("bypass.share", minimum=0, maximum=1),
                  label=str(b.get("label", "")))


def _overload(r: TableReader) -> Overload:
    o = r.table("overload", default={})
    _known(r, "overload", o, {"mode", "alpha", "beta", "peak_concurrency", "timeout_s"})
    mode = o.get("mode", "shed")
    if mode not in ("shed", "unbounded"):
        raise ProfileError("overload.mode", mode, "choose shed or unbounded")
    return Overload(mode=mode, alpha=r.number("overload.alpha", default=0.0, minimum=0, maximum=1),
                    beta=r.number("overload.beta", default=0.0, minimum=0),
                    peak_concurrency=r.number("overload.peak_concurrency", default=1.0, minimum=1),
                    timeout_s=r.number("overload.timeout_s", default=60.0, minimum=0, exclusive=True))


def _ranges(r: TableReader) -> dict[str, tuple[float, float]]:
    t = r.table("ranges", default={})
    out: dict[str, tuple[float, float]] = {}
    for key, v in t.items():
        if not (isinstance(v, list) and len(v) == 2 and all(_is_num(x) for x in v) and v[0] <= v[1]):
            raise ProfileError(f"ranges.{key}", v, "give [low, high] numbers with low <= high")
        out[key] = (float(v[0]), float(v[1]))
    return out


# ---------------------------------------------------------------- helpers
def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _known(r: TableReader, prefix: str, table: Any, allowed: set[str]) -> None:
    if not isinstance(table, dict):
        raise ProfileError(prefix or "<profile>", table, "must be a table")
    for key in table:
        if key not in allowed:
            name = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(sorted(allowed))}"
            raise ProfileError(name, table[key], f"unknown field; {hint}")


def _distribution(r: TableReader, name: str, raw: Any, *, key_type: type, allowed: tuple[str, ...] | None = None) -> dict[Any, float]:
    if not isinstance(raw, dict) or not raw:
        raise ProfileError(name, raw, "give a table of value = probability, e.g. { 2 = 0.8, 3 = 0.2 }")
    out: dict[Any, float] = {}
    for k, v in raw.items():
        if key_type is int:
            try:
                key: Any = int(k)
            except ValueError:
                raise ProfileError(f"{name}.{k}", k, "keys must be whole numbers, e.g. 2 or 3") from None
            if key < 1:
                raise ProfileError(f"{name}.{k}", k, "keys must be whole numbers >= 1")
        else:
            key = k
            if allowed and key not in allowed:
                raise ProfileError(f"{name}.{k}", v, f"choose keys from: {', '.join(allowed)}")
        if not _is_num(v) or v < 0:
            raise ProfileError(f"{name}.{k}", v, "probabilities must be numbers >= 0")
        out[key] = float(v)
    s = sum(out.values())
    if abs(s - 1.0) > 1e-6:
        raise ProfileError(name, raw, f"probabilities sum to {s:g}; make them sum to 1")
    return out


# ---------------------------------------------------------------- flat profiles
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def flat_profile_toml(name: str, *, total: int, stamps_per_applicant: dict[int, float],
                      journeys: dict[str, Any], stamps_per_second: float = 10.0) -> str:
    """A one-day profile with a flat arrival rate (total / 86,400 per calendar second), as TOML.

    Drills, tests and benchmarks use it where the arrival curve is not the point:
    with compress x scale = c, the test arrival rate is c x total / 86,400 per second.

    >>> text = flat_profile_toml("t", total=86400, stamps_per_applicant={2: 1.0},
    ...                          journeys={"mix": {"new_applicant": 1.0}, "patience_s": 10})
    >>> import tomllib
    >>> p = parse_profile(tomllib.loads(text)); p.name, p.applicants_total, p.journeys.patience_s
    ('t', 86400, 10.0)
    """
    return "\n".join([
        "[profile]", f"name = {_toml_value(name)}", 'timezone = "Asia/Jakarta"',
        "[calendar]", "window_start = 2024-09-01T00:00:00", "deadline = 2024-09-02T00:00:00",
        "[applicants]", f"total = {int(total)}", f"stamps_per_applicant = {_toml_value(stamps_per_applicant)}",
        "[arrivals]", "base = [[0, 1.0], [1, 1.0]]", f"daily_cycle = {_toml_value([1.0] * 24)}",
        "[journeys]", *(f"{k} = {_toml_value(v)}" for k, v in journeys.items()),
        "[capacity]", f"stamps_per_second = {_toml_value(float(stamps_per_second))}", "",
    ])
