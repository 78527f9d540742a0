"""Parsing of the planner's flags: durations, local times, outages.

    >>> parse_duration("30m")
    1800.0
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from floor.errors import FieldError

__all__ = ["parse_duration", "parse_local_time", "parse_outage"]


def parse_duration(text: str, flag: str = "--max-wait") -> float:
    """'90s', '30m', '2h', '1.5h', '1d' or plain seconds -> seconds.

    >>> parse_duration("30m"), parse_duration("2h"), parse_duration("90s"), parse_duration("45")
    (1800.0, 7200.0, 90.0, 45.0)
    """
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)\s*", str(text))
    if not m:
        raise FieldError(flag, text, "give a duration like 90s, 30m, 2h or 1d")
    value = float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    if value <= 0:
        raise FieldError(flag, text, "give a duration > 0, like 30m")
    return value


def parse_local_time(text: str, tz: ZoneInfo, flag: str) -> datetime:
    """An ISO local time (in the profile's zone unless it carries an offset) -> aware datetime.

    >>> from zoneinfo import ZoneInfo
    >>> parse_local_time("2024-09-05T20:00", ZoneInfo("Asia/Jakarta"), "--reopen-at").isoformat()
    '2024-09-05T20:00:00+07:00'
    """
    try:
        dt = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise FieldError(flag, text, f"write an ISO local time like 2024-09-05T20:00 ({tz.key})") from None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)


def parse_outage(text: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """'START/END' (ISO local times) -> (start, end).

    >>> from zoneinfo import ZoneInfo
    >>> a, b = parse_outage("2024-09-03T08:00/2024-09-05T20:00", ZoneInfo("Asia/Jakarta"))
    >>> (b - a).total_seconds() / 3600
    60.0
    """
    parts = str(text).split("/")
    if len(parts) != 2:
        raise FieldError("--outage", text, "write START/END, e.g. 2024-09-03T08:00/2024-09-05T20:00")
    a = parse_local_time(parts[0], tz, "--outage")
    b = parse_local_time(parts[1], tz, "--outage")
    if b <= a:
        raise FieldError("--outage", text, "the end must be after the start")
    return a, b


