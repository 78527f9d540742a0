"""The types of the report's first screen: verdicts, figure tiles, the key figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["INTEGRITY_FAILURES", "KeyFigures", "Tile", "Verdict"]

INTEGRITY_FAILURES = (
    "lost_payments",
    "lost_quota",
    "duplicated_quota",
    "lost_stamps",
    "duplicated_stamps",
    "orphaned_payments",
    "unknown_orders",
    "wrong_quantities",
    "wrong_amounts",
    "serial_mismatches",
    "reissued_serials",
    "unclaimed_stamps",
    "charged_after_giving_up",
    "overcharged_quota",
    "undercharged_quota",
    "stuck_payments",
)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One sentence and its colour: ok (green), bad (red), warn (amber), info (blue)."""

    level: str
    text: str


@dataclass(frozen=True, kw_only=True)
class Tile:
    """A labelled figure on the first screen (value and a short note)."""

    key: str
    label: str
    value: str
    note: str = ""
    level: str = ""


@dataclass(kw_only=True)
class KeyFigures:
    """What the first screen shows."""

    verdict: Verdict
    figures: list[Tile] = field(default_factory=list)
    need: str = ""
    integrity: Verdict | None = None
    stages: list[dict[str, str]] = field(default_factory=list)
    outcomes: list[dict[str, str]] = field(default_factory=list)  # plan against doing nothing
    comparison: str = ""  # one sentence: plan vs doing nothing
    timetable: list[dict[str, Any]] = field(default_factory=list)  # first hours of the reopening
    rooms: list[dict[str, Any]] = field(default_factory=list)  # waiting-room settings per stage
    manager: list[str] = field(default_factory=list)  # trade-offs, cut-off, triggers
