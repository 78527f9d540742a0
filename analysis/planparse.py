"""Parsing of the planner's --outage flag (durations and times: floor.timegrammar).

    >>> from zoneinfo import ZoneInfo
    >>> a, b = parse_outage("2024-09-03T08:00/2024-09-03T20:00", ZoneInfo("Asia/Jakarta"))
    >>> (b - a).seconds
    43200
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from floor.errors import FieldError
from floor.timegrammar import parse_local_time

__all__ = ["parse_outage"]


def parse_outage(text: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """'START/END' (ISO local times) -> (start, end).

    >>> from zoneinfo import ZoneInfo
    >>> a, b = parse_outage("2024-09-03T08:00/2024-09-05T20:00", ZoneInfo("Asia/Jakarta"))
    >>> (b - a).total_seconds() / 3600
    60.0
    """
    parts = str(text).split("/")
    if len(parts) != 2:
        raise FieldError(
            "--outage", text, "write START/END, e.g. 2024-09-03T08:00/2024-09-05T20:00"
        )
    a = parse_local_time(parts[0], tz, "--outage")
    b = parse_local_time(parts[1], tz, "--outage")
    if b <= a:
        raise FieldError("--outage", text, "the end must be after the start")
    return a, b


