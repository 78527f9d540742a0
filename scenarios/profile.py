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
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from floor.errors import ProfileError
from floor.tomlfile import TableReader, read_toml
from scenarios.profile_base import Calendar, distribution, known_keys
from scenarios.profile_build import (
    arrivals_section,
    behaviour_section,
    capacity_section,
    journeys_section,
    overload_section,
    ranges_section,
)
from scenarios.profile_events import (
    bypass_section,
    calibration_section,
    demand_section,
    outages_section,
    reopening_section,
)
from scenarios.profile_model import Profile

__all__ = [
    "PROFILES_DIR",
    "available_profiles",
    "flat_profile_toml",
    "load_profile",
    "parse_profile",
    "resolve_profile_path",
]

PROFILES_DIR = Path(__file__).with_name("profiles")


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
            raise ProfileError(
                "--profile",
                text,
                "no such file; give a TOML file or one of: " + ", ".join(available_profiles()),
            )
        return path
    shipped = PROFILES_DIR / f"{text}.toml"
    if not shipped.is_file():
        close = difflib.get_close_matches(text, available_profiles(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ProfileError(
            "--profile",
            text,
            f"{hint}choose one of: {', '.join(available_profiles())}, or a .toml file",
        )
    return shipped


def load_profile(name_or_file: str | Path) -> Profile:
    """Load and validate a profile by shipped name or file path.

    >>> load_profile("flash-crowd").applicants_total > 0
    True
    """
    path = resolve_profile_path(name_or_file)
    return parse_profile(read_toml(path, field="--profile", error=ProfileError), source=str(path))


SECTIONS = frozenset(
    {
        "profile",
        "calendar",
        "applicants",
        "arrivals",
        "behaviour",
        "journeys",
        "capacity",
        "outages",
        "reopening",
        "calibration",
        "demand",
        "bypass",
        "overload",
        "ranges",
    }
)
"""The top-level tables a profile may hold."""


def parse_profile(data: dict[str, Any], *, source: str = "<dict>") -> Profile:
    """Validate a profile already parsed from TOML (a dict) and build it.

    >>> import tomllib
    >>> d = tomllib.loads(resolve_profile_path("steady").read_text())
    >>> parse_profile(d).name
    'steady'
    """
    r = TableReader(
        data, error=ProfileError, missing="missing; add it to the profile", zone="profile.timezone"
    )
    known_keys(r, "", data, SECTIONS)
    meta = r.table("profile")
    known_keys(r, "profile", meta, {"name", "title", "description", "timezone"})
    name = r.string("profile.name")
    calendar = _calendar(r, _timezone(r))
    app = r.table("applicants")
    known_keys(r, "applicants", app, {"total", "stamps_per_applicant"})
    total = r.number("applicants.total", minimum=1, integer=True)
    stamps_raw = r.get("applicants.stamps_per_applicant")
    stamps = distribution(r, "applicants.stamps_per_applicant", stamps_raw, key_type=int)
    return Profile(
        name=name,
        applicants_total=int(total),
        stamps_per_applicant=stamps,
        **_sections(r, calendar),
        title=r.string("profile.title", default=name),
        description=r.string("profile.description") if "description" in meta else "",
        source=source,
        calendar=calendar,
        raw=data,
    )


def _timezone(r: TableReader) -> ZoneInfo:
    """`profile.timezone` (default UTC) as a zone."""
    tz_name = r.string("profile.timezone", default="UTC")
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ProfileError(
            "profile.timezone", tz_name, "give an IANA zone such as 'Asia/Jakarta'"
        ) from None


def _calendar(r: TableReader, tz: ZoneInfo) -> Calendar:
    """[calendar]: the registration window, its deadline and an optional extension, in order."""
    cal = r.table("calendar")
    known_keys(r, "calendar", cal, {"window_start", "deadline", "extension"})
    start = r.when("calendar.window_start", tz)
    deadline = r.when("calendar.deadline", tz)
    if deadline <= start:
        raise ProfileError(
            "calendar.deadline", deadline.isoformat(), "must be after calendar.window_start"
        )
    extension = r.when("calendar.extension", tz, optional=True)
    if extension is not None and extension <= deadline:
        raise ProfileError(
            "calendar.extension", extension.isoformat(), "must be after calendar.deadline"
        )
    return Calendar(tz=tz, window_start=start, deadline=deadline, extension=extension)


def _sections(r: TableReader, calendar: Calendar) -> dict[str, Any]:
    """The profile's other sections, read in this order (the first bad field is the one named)."""
    return {
        "arrivals": arrivals_section(r, calendar),
        "behaviour": behaviour_section(r),
        "journeys": journeys_section(r),
        "capacity": capacity_section(r, calendar),
        "outages": outages_section(r, calendar),
        "reopening": reopening_section(r, calendar),
        "calibration": calibration_section(r, calendar),
        "demand": demand_section(r, calendar),
        "bypass": bypass_section(r, calendar),
        "overload": overload_section(r),
        "ranges": ranges_section(r),
    }


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


def flat_profile_toml(
    name: str,
    *,
    total: int,
    stamps_per_applicant: dict[int, float],
    journeys: dict[str, Any],
    stamps_per_second: float = 10.0,
) -> str:
    """A one-day profile with a flat arrival rate (total / 86,400 per calendar second), as TOML.

    Drills, tests and benchmarks use it where the arrival curve is not the point:
    with compress x scale = c, the test arrival rate is c x total / 86,400 per second.

    >>> text = flat_profile_toml("t", total=86400, stamps_per_applicant={2: 1.0},
    ...                          journeys={"mix": {"new_applicant": 1.0}, "patience_s": 10})
    >>> import tomllib
    >>> p = parse_profile(tomllib.loads(text)); p.name, p.applicants_total, p.journeys.patience_s
    ('t', 86400, 10.0)
    """
    return "\n".join(
        [
            "[profile]",
            f"name = {_toml_value(name)}",
            'timezone = "Asia/Jakarta"',
            "[calendar]",
            "window_start = 2024-09-01T00:00:00",
            "deadline = 2024-09-02T00:00:00",
            "[applicants]",
            f"total = {int(total)}",
            f"stamps_per_applicant = {_toml_value(stamps_per_applicant)}",
            "[arrivals]",
            "base = [[0, 1.0], [1, 1.0]]",
            f"daily_cycle = {_toml_value([1.0] * 24)}",
            "[journeys]",
            *(f"{k} = {_toml_value(v)}" for k, v in journeys.items()),
            "[capacity]",
            f"stamps_per_second = {_toml_value(float(stamps_per_second))}",
            "",
        ]
    )
