"""What every profile section stands on: the registration calendar and the checks of a table's
fields (known keys, numbers, probability distributions)."""

from __future__ import annotations

import difflib
import math
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from floor.errors import ProfileError
from floor.tomlfile import TableReader

__all__ = ["Calendar", "distribution", "is_number", "known_keys"]


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


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def known_keys(r: TableReader, prefix: str, table: Any, allowed: AbstractSet[str]) -> None:
    if not isinstance(table, dict):
        raise ProfileError(prefix or "<profile>", table, "must be a table")
    for key in table:
        if key not in allowed:
            name = f"{prefix}.{key}" if prefix else key
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = (
                f"did you mean {close[0]!r}?"
                if close
                else f"known fields: {', '.join(sorted(allowed))}"
            )
            raise ProfileError(name, table[key], f"unknown field; {hint}")


def distribution(
    r: TableReader, name: str, raw: Any, *, key_type: type, allowed: tuple[str, ...] | None = None
) -> dict[Any, float]:
    if not isinstance(raw, dict) or not raw:
        raise ProfileError(
            name, raw, "give a table of value = probability, e.g. { 2 = 0.8, 3 = 0.2 }"
        )
    out: dict[Any, float] = {}
    for k, v in raw.items():
        if key_type is int:
            try:
                key: Any = int(k)
            except ValueError:
                raise ProfileError(
                    f"{name}.{k}", k, "keys must be whole numbers, e.g. 2 or 3"
                ) from None
            if key < 1:
                raise ProfileError(f"{name}.{k}", k, "keys must be whole numbers >= 1")
        else:
            key = k
            if allowed and key not in allowed:
                raise ProfileError(f"{name}.{k}", v, f"choose keys from: {', '.join(allowed)}")
        if not is_number(v) or v < 0:
            raise ProfileError(f"{name}.{k}", v, "probabilities must be numbers >= 0")
        out[key] = float(v)
    s = sum(out.values())
    if abs(s - 1.0) > 1e-6:
        raise ProfileError(name, raw, f"probabilities sum to {s:g}; make them sum to 1")
    return out
