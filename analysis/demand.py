"""Demand over a profile's whole window: applicants and e-Meterai stamps per bucket.

λ(t) comes from the profile's arrival curve (`scenarios.curve.ArrivalCurve`,
applicants per calendar second). Stamp demand = applicants × the mean stamps per
applicant of the profile (`Profile.mean_stamps_per_applicant`): an expectation, not
a draw. Bucket counts are exact integrals of the curve (differences of its
cumulative), so they add up to `applicants.total`.

    >>> from scenarios.profile import load_profile
    >>> d = demand(load_profile("casn2024"), bucket_s=3600)
    >>> round(float(d.applicants.sum()))
    3765640
    >>> round(float(d.stamps.sum() / d.applicants.sum()), 2)
    2.2
    >>> d.peak()[0].isoformat()     # the busiest hour, in the profile's zone
    '2024-09-10T23:00:00+07:00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np

from floor.errors import FieldError
from scenarios.curve import ArrivalCurve
from scenarios.profile_model import Profile

__all__ = ["Demand", "demand", "per_minute", "per_hour"]


@dataclass(frozen=True, kw_only=True, repr=False)
class Demand:
    """Demand per bucket. `start_s`: bucket starts (calendar s since window start);
    `applicants`, `stamps`: expected counts in each bucket; `bucket_s`: bucket length."""

    profile: Profile
    bucket_s: float
    start_s: np.ndarray
    applicants: np.ndarray
    stamps: np.ndarray

    def __repr__(self) -> str:
        return (
            f"Demand(profile={self.profile.name!r}, "
            f"buckets={len(self.start_s)} x {self.bucket_s:g} s, "
            f"applicants={self.applicants.sum():,.0f}, stamps={self.stamps.sum():,.0f})"
        )

    @property
    def rate_per_s(self) -> np.ndarray:
        """Mean applicants per calendar second in each bucket."""
        return self.applicants / self.bucket_s

    @property
    def stamps_per_s(self) -> np.ndarray:
        """Mean stamps per calendar second in each bucket."""
        return self.stamps / self.bucket_s

    def times(self) -> list[datetime]:
        """Bucket starts as aware datetimes in the profile's zone."""
        cal = self.profile.calendar
        return [cal.at(float(s)) for s in self.start_s]

    def peak(self) -> tuple[datetime, float]:
        """The busiest bucket's start and its expected applicants."""
        i = int(np.argmax(self.applicants))
        return self.profile.calendar.at(float(self.start_s[i])), float(self.applicants[i])

    def rows(self) -> list[tuple[str, float, float]]:
        """(calendar_at ISO, applicants, stamps) per bucket, e.g. for a CSV."""
        return [
            (t.isoformat(), float(a), float(s))
            for t, a, s in zip(self.times(), self.applicants, self.stamps, strict=True)
        ]


def demand(
    profile: Profile, *, bucket_s: float = 60.0, curve: ArrivalCurve | None = None
) -> Demand:
    """Applicants and stamps per `bucket_s` seconds over the whole window.

    >>> from scenarios.profile import load_profile
    >>> len(demand(load_profile("steady"), bucket_s=86400).start_s)
    7
    """
    if not (bucket_s > 0):
        raise FieldError("bucket_s", bucket_s, "give a bucket length in seconds > 0")
    curve = curve or ArrivalCurve(profile)
    starts, counts = curve.buckets(bucket_s)
    counts = np.maximum(counts, 0.0)
    return Demand(
        profile=profile,
        bucket_s=float(bucket_s),
        start_s=starts,
        applicants=counts,
        stamps=counts * profile.mean_stamps_per_applicant,
    )


def per_minute(profile: Profile) -> Demand:
    """Demand per minute (the fluid model's grid).

    >>> from scenarios.profile import load_profile
    >>> per_minute(load_profile("steady")).bucket_s
    60.0
    """
    return demand(profile, bucket_s=60.0)


def per_hour(profile: Profile) -> Demand:
    """Demand per hour.

    >>> from scenarios.profile import load_profile
    >>> round(float(per_hour(load_profile("steady")).rate_per_s.max()), 3)
    0.165
    """
    return demand(profile, bucket_s=3600.0)
