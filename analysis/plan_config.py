"""What the planner is asked (`PlanConfig`) and the calendar facts it starts from: the outages in
force, the decision time, the profile's own gate changes before it."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime

from analysis import bands as bands_mod
from analysis.backlog import Gate, Stage
from analysis.stages import STAGES, StageSpec, validate_table
from floor.errors import FieldError
from floor.rundir.schema import PLAN_COLUMNS, TIMELINE_COLUMNS  # noqa: F401  (re-exported)
from scenarios.profile_events import Outage
from scenarios.profile_model import Profile

__all__ = [
    "PlanConfig",
    "VARIANTS",
    "TIMELINE_COLUMNS",
    "DEFAULT_TARGET",
    "PAID_TOLERANCE",
    "RESOLVE_STEP_S",
    "outages_in_force",
    "decision_time",
    "past_stages",
]

VARIANTS = ("baseline", "book", "staged", "staged-paced")
# The timeline contract (the run directory's schema, floor.rundir.schema): the forecast's
# columns first, then the planner's own, which the report's charts read.
PAID_TOLERANCE = 0.5  # applicants: below this the model's lost_paid is zero
DEFAULT_TARGET = (
    0.85  # stated default: 85% of those who want to submit served by the close (--target)
)
RESOLVE_STEP_S = (
    300.0  # stage start conditions are found on 5-minute steps, then every plan runs at 1 minute
)


@dataclass(frozen=True, kw_only=True)
class PlanConfig:
    """What the planner is asked. Times are aware datetimes (the profile's zone).

    `stamps_per_second` None: the profile's capacity; `outage` None: the profile's first
    issuer outage; `reopen_at` None: the outage end (the decision time); `extend_days`:
    the extension to evaluate; `target`: the share of applicants (those who want to submit)
    served by the close, 85% unless given; None: within `target_gap` of what an unlimited
    issuer would serve under the same outage (rarely reachable: the rush re-aims at any new close).

    >>> PlanConfig(stamps_per_second=12.0).max_utilisation
    1.0
    """

    stamps_per_second: float | None = None
    outage: tuple[datetime, datetime] | None = None
    reopen_at: datetime | None = None
    max_utilisation: float = 1.0
    max_wait_s: float = 1800.0
    extend_days: int = 0
    target: float | None = DEFAULT_TARGET
    target_gap: float = 0.005
    max_extension_days: int = 14
    what_if_days: tuple[int, ...] = (0, 1, 2, 3, 4)
    bands: bool = True
    band_sets: int = bands_mod.N_SETS
    table: tuple[StageSpec, ...] = STAGES
    session_minutes: float = 5.0

    def __post_init__(self) -> None:
        if self.stamps_per_second is not None and not (
            math.isfinite(self.stamps_per_second) and self.stamps_per_second > 0
        ):
            raise FieldError(
                "--stamps-per-second",
                self.stamps_per_second,
                "give a capacity > 0 stamps per second",
            )
        if not (0 < self.max_utilisation <= 1):
            raise FieldError(
                "--max-utilisation", self.max_utilisation, "give a share in (0, 1], e.g. 0.9"
            )
        if not (math.isfinite(self.max_wait_s) and self.max_wait_s > 0):
            raise FieldError("--max-wait", self.max_wait_s, "give a duration > 0, like 30m")
        if self.target is not None and not (0 < self.target <= 1):
            raise FieldError(
                "--target", self.target, "give a share of applicants in (0, 1], e.g. 0.93"
            )
        if self.outage is not None and self.outage[1] <= self.outage[0]:
            raise FieldError("--outage", self.outage, "the end must be after the start")
        if (
            self.reopen_at is not None
            and self.outage is not None
            and self.reopen_at < self.outage[1]
        ):
            raise FieldError(
                "--reopen-at",
                self.reopen_at.isoformat(),
                f"reopen at or after the outage end ({self.outage[1].isoformat()})",
            )
        validate_table(self.table)


def outages_in_force(
    profile: Profile, cfg: PlanConfig
) -> tuple[tuple[Outage, ...], tuple[datetime, datetime] | None]:
    """The outages in force: the profile's, or its issuer outage moved to `--outage` (as `surgecast
    forecast`)."""
    issuer = [o for o in profile.outages if o.resource == "issuer"]
    if cfg.outage is None:
        return profile.outages, ((issuer[0].start, issuer[0].end) if issuer else None)
    a, b = cfg.outage
    base = (
        issuer[0]
        if issuer
        else Outage(start=a, end=b, resource="issuer", capacity_factor=0.0, label="--outage")
    )
    others = tuple(o for o in profile.outages if o is not base)
    return others + (replace(base, start=a, end=b),), cfg.outage


def past_stages(profile: Profile, cfg: PlanConfig, decision_s: float | None) -> list[Stage]:
    """The profile's own gate changes before the decision (only with the profile's own outage)."""
    if decision_s is None or cfg.outage is not None:
        return []
    cal = profile.calendar
    out = []
    for g in profile.reopening:
        at = cal.seconds(g.at)
        if at < decision_s:
            out.append(
                Stage(
                    name=g.label or f"{g.gate} {g.mode}",
                    at_s=at,
                    gates={g.gate: Gate(mode=g.mode, rate_per_s=g.rate_per_s, burst=g.burst)},
                )
            )
    return out


def decision_time(
    profile: Profile, cfg: PlanConfig, outage: tuple[datetime, datetime] | None
) -> float | None:
    cal = profile.calendar
    if outage is None:
        return None
    if outage[0] >= cal.close or outage[1] <= cal.window_start:
        raise FieldError(
            "--outage",
            f"{outage[0].isoformat()}/{outage[1].isoformat()}",
            f"the outage must fall inside the window "
            f"{cal.window_start:%Y-%m-%d}..{cal.close:%Y-%m-%d}",
        )
    reopen = cfg.reopen_at or outage[1]
    if reopen < outage[1]:
        raise FieldError(
            "--reopen-at",
            reopen.isoformat(),
            f"reopen at or after the outage end ({outage[1].isoformat()})",
        )
    if reopen >= cal.close:
        raise FieldError(
            "--reopen-at", reopen.isoformat(), f"reopen before the close ({cal.close.isoformat()})"
        )
    return cal.seconds(reopen)
