"""The `Profile`: one surge described whole (its calendar, applicants, arrivals, behaviour,
journeys, capacity, outages, reopening, calibration, demand, bypass, overload).

Build one with `scenarios.profile.load_profile`. Each section's type sits beside its reader:
`profile_build` (arrivals, behaviour, journeys, capacity, overload), `profile_events` (outages,
reopening, calibration points, account demand, bypass), `profile_base` (the calendar).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scenarios.profile_base import Calendar
from scenarios.profile_build import ArrivalShape, Behaviour, Capacity, Journeys, Overload
from scenarios.profile_events import AccountsDemand, Bypass, CalibrationPoint, GateChange, Outage

__all__ = ["Profile"]


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
