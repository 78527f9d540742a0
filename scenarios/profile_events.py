"""Build the calendar's events of a profile: outages, the reopening's gate changes, calibration
points, account demand and the bypass (each from its TOML table, errors naming the field)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from floor.errors import ProfileError
from floor.tomlfile import TableReader
from floor.vocabulary import GATE_MODES, GATES, RESOURCES
from scenarios.profile_base import Calendar, known_keys

CONVERSION_FLOOR = 1e-9  # demand.conversion's least (see demand_section)


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


def outages_section(r: TableReader, cal: Calendar) -> tuple[Outage, ...]:
    out = []
    for i, o in enumerate(r.array_of_tables("outages")):
        f = f"outages[{i}]"
        known_keys(r, f, o, {"start", "end", "resource", "capacity_factor", "label"})
        start = r.when(f"{f}.start", cal.tz, value=o.get("start"))
        end = r.when(f"{f}.end", cal.tz, value=o.get("end"))
        if end <= start:
            raise ProfileError(f"{f}.end", end.isoformat(), f"must be after {f}.start")
        res = o.get("resource", "issuer")
        if res not in RESOURCES:
            raise ProfileError(f"{f}.resource", res, f"choose one of: {', '.join(RESOURCES)}")
        out.append(
            Outage(
                start=start,
                end=end,
                resource=res,
                capacity_factor=r.number(
                    f"{f}.capacity_factor",
                    value=o.get("capacity_factor", 0.0),
                    minimum=0,
                    maximum=1,
                ),
                label=str(o.get("label", "")),
            )
        )
    return tuple(sorted(out, key=lambda o: o.start))


def reopening_section(r: TableReader, cal: Calendar) -> tuple[GateChange, ...]:
    out = []
    for i, g in enumerate(r.array_of_tables("reopening")):
        f = f"reopening[{i}]"
        known_keys(r, f, g, {"at", "gate", "mode", "rate_per_s", "rate_share", "burst", "label"})
        gate = g.get("gate")
        if gate not in GATES:
            raise ProfileError(f"{f}.gate", gate, f"choose one of: {', '.join(GATES)}")
        mode = g.get("mode")
        if mode not in GATE_MODES:
            raise ProfileError(f"{f}.mode", mode, f"choose one of: {', '.join(GATE_MODES)}")
        rate = burst = share = None
        if mode == "rate" and "rate_share" in g:
            if "rate_per_s" in g:
                raise ProfileError(
                    f"{f}.rate_share", g["rate_share"], "give rate_per_s or rate_share, not both"
                )
            share = r.number(
                f"{f}.rate_share", value=g.get("rate_share"), minimum=1e-9, maximum=1e3
            )
            burst = (
                int(r.number(f"{f}.burst", value=g["burst"], minimum=1, maximum=1e9, integer=True))
                if "burst" in g
                else None
            )
        elif mode == "rate":
            rate = r.number(f"{f}.rate_per_s", value=g.get("rate_per_s"), minimum=1e-9, maximum=1e9)
            burst = int(
                r.number(
                    f"{f}.burst",
                    value=g.get("burst", max(1, math.ceil(rate))),
                    minimum=1,
                    maximum=1e9,
                    integer=True,
                )
            )
        out.append(
            GateChange(
                at=r.when(f"{f}.at", cal.tz, value=g.get("at")),
                gate=gate,
                mode=mode,
                rate_per_s=rate,
                burst=burst,
                label=str(g.get("label", "")),
                rate_share=share,
            )
        )
    return tuple(sorted(out, key=lambda g: g.at))


def calibration_section(r: TableReader, cal: Calendar) -> tuple[CalibrationPoint, ...]:
    out = []
    for i, c in enumerate(r.array_of_tables("calibration")):
        f = f"calibration[{i}]"
        known_keys(r, f, c, {"at", "cumulative", "label", "source", "role", "kind"})
        role = c.get("role", "in-sample")
        if role not in ("in-sample", "holdout"):
            raise ProfileError(f"{f}.role", role, "choose in-sample or holdout")
        kind = c.get("kind", "submitted")
        if kind not in ("submitted", "stamps_day"):
            raise ProfileError(f"{f}.kind", kind, "choose submitted or stamps_day")
        out.append(
            CalibrationPoint(
                at=r.when(f"{f}.at", cal.tz, value=c.get("at")),
                cumulative=r.number(f"{f}.cumulative", value=c.get("cumulative"), minimum=0),
                label=str(c.get("label", "")),
                source=str(c.get("source", "")),
                role=role,
                kind=kind,
            )
        )
    return tuple(out)


def demand_section(r: TableReader, cal: Calendar) -> AccountsDemand | None:
    d = r.get("demand", None)
    if d is None:
        return None
    d = r.table("demand")
    known_keys(
        r, "demand", d, {"accounts", "conversion", "pull", "extension_announced", "retarget_share"}
    )
    raw = r.get("demand.accounts")
    if not isinstance(raw, list) or len(raw) < 2:
        raise ProfileError(
            "demand.accounts", raw, "give at least 2 [date-time, cumulative accounts] pairs"
        )
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
        # a share of accounts; below 1e-9 every inflow nears a float's smallest numbers, where
        # it loses digits (at 5e-324 the curve's midpoint moved 4.5 times), so it is refused
        conversion=r.number("demand.conversion", minimum=CONVERSION_FLOOR, maximum=1),
        pull=r.number("demand.pull", minimum=0, exclusive=True),
        extension_announced=r.when("demand.extension_announced", cal.tz, optional=True),
        retarget_share=r.number("demand.retarget_share", default=1.0, minimum=0, maximum=1),
    )


def bypass_section(r: TableReader, cal: Calendar) -> Bypass | None:
    b = r.get("bypass", None)
    if b is None:
        return None
    b = r.table("bypass")
    known_keys(r, "bypass", b, {"at", "share", "label"})
    return Bypass(
        at=r.when("bypass.at", cal.tz),
        share=r.number("bypass.share", minimum=0, maximum=1),
        label=str(b.get("label", "")),
    )
