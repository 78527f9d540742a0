"""One grammar of durations and times for every flag, profile key and file.

Durations: plain seconds or parts of days, hours, minutes and seconds, each may carry
decimals (``90``, ``90s``, ``5m``, ``1.5h``, ``1h30m``, ``1d``)::

    >>> [parse_duration(t) for t in ("1h30m", "90", " 1.5h ", "1d")]
    [5400.0, 90.0, 5400.0, 86400.0]

Times: ISO 8601; a time without an offset is read in the zone given (the profile's)::

    >>> from zoneinfo import ZoneInfo
    >>> parse_local_time("2024-09-05T20:00", ZoneInfo("Asia/Jakarta"), "--reopen-at").isoformat()
    '2024-09-05T20:00:00+07:00'
"""

from __future__ import annotations

import math
import re
from datetime import datetime, tzinfo

from floor.errors import FieldError

__all__ = ["parse_duration", "parse_local_time", "unix_seconds", "DURATION_EXAMPLES"]

DURATION_EXAMPLES = "90s, 5m, 1h30m or 1d"
_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_DURATION = re.compile(rf"(?:{_NUM}d)?(?:{_NUM}h)?(?:{_NUM}m)?(?:{_NUM}s?)?")
_UNITS = (86400.0, 3600.0, 60.0, 1.0)


def parse_duration(
    text: str | float, flag: str = "--duration", *, most_s: float | None = None
) -> float:
    """Seconds of a duration given as a number or text like '90s', '5m', '1h30m', '1.5h', '1d'.

    ``most_s`` bounds it from above (the message says the bound). Errors name ``flag``:

    >>> parse_duration("30m", "--max-wait"), parse_duration(45)
    (1800.0, 45.0)
    >>> parse_duration("soon", "--max-wait")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --max-wait = 'soon': give seconds or a duration like 90s, 5m, ...
    """
    if isinstance(text, bool):
        raise FieldError(flag, text, f"give seconds or a duration like {DURATION_EXAMPLES}")
    if isinstance(text, int | float):
        value = float(text)
    else:
        m = _DURATION.fullmatch(re.sub(r"\s+", "", str(text)))
        if not m or not any(m.groups()):
            raise FieldError(flag, text, f"give seconds or a duration like {DURATION_EXAMPLES}")
        value = sum(float(g) * unit for g, unit in zip(m.groups(), _UNITS, strict=True) if g)
    if not math.isfinite(value) or value <= 0 or (most_s is not None and value > most_s):
        bound = f" and at most {_spoken(most_s)}" if most_s is not None else ""
        raise FieldError(flag, text, f"give a duration above 0{bound}")
    return value


def _spoken(seconds: float) -> str:
    """A bound as the message says it: '7 days', '2 hours', '90 s'."""
    for unit, name in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= unit and seconds % unit == 0:
            n = int(seconds // unit)
            return f"{n} {name}{'s' if n != 1 else ''}"
    return f"{seconds:g} s"


def parse_local_time(text: str, tz: tzinfo, flag: str) -> datetime:
    """An ISO 8601 time, in the zone ``tz`` unless it carries an offset, as an aware datetime in
    ``tz``.

    >>> from zoneinfo import ZoneInfo
    >>> parse_local_time("2024-09-05T13:00Z", ZoneInfo("Asia/Jakarta"), "--at").isoformat()
    '2024-09-05T20:00:00+07:00'
    >>> parse_local_time("tomorrow", ZoneInfo("Asia/Jakarta"), "--at")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --at = 'tomorrow': write an ISO local time like 2024-09-05T20:00 ...
    """
    try:
        dt = datetime.fromisoformat(str(text).strip())
    except ValueError:
        zone = getattr(tz, "key", None) or str(tz)
        raise FieldError(
            flag, text, f"write an ISO local time like 2024-09-05T20:00 ({zone})"
        ) from None
    return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)


def unix_seconds(text: object) -> float | None:
    """Unix seconds of an ISO 8601 time as the run files write it ('...Z' or an offset); None if it
    is not one.

    >>> [unix_seconds(t) for t in ("1970-01-01T00:00:01.500Z", "1970-01-01T07:00:00+07:00", "")]
    [1.5, 0.0, None]
    """
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
