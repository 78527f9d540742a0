"""What the ledger's parts share: identifiers, wall time, token digests, the quota counters in
memory, the 404 answer."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from testbed.validation import ApiError

Gone = Callable[[], Awaitable[Any]] | None

SERIAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def now_iso() -> str:
    """Wall time, UTC ISO 8601 with milliseconds: ``2024-09-05T01:00:00.123Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_digest(token: str) -> str:
    """What is stored for a session token (its SHA-256), never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def new_id(prefix: str) -> str:
    """A random identifier such as ``ord_3f2a9c1b7d5e4a60``."""
    return f"{prefix}_{secrets.token_hex(8)}"


@dataclass
class Quota:
    """One account's quota counters in memory (mirror of the ``quota`` table)."""

    credited: int = 0
    used: int = 0
    reserved: int = 0
    awaiting_payment: int = 0

    @property
    def available(self) -> int:
        return self.credited - self.used - self.reserved


def not_found(what: str) -> ApiError:
    """The 404 for a missing resource or one owned by another applicant (same answer)."""
    return ApiError(404, "not_found", f"no such {what}")
