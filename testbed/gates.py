"""Admission gates: open, closed, or a token bucket.

A gate answers ``None`` (admit) or a refusal carrying the HTTP status and the
Retry-After seconds: 503 when closed, 429 when the bucket is empty::

    >>> g = Gate("stamping", mode="rate", rate_per_s=1.0, burst=1); t = g.stamp
    >>> g.admit(now=t) is None, g.admit(now=t).status
    (True, 429)
    >>> g.admit(now=t + 1.0) is None
    True
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from floor.vocabulary import GATE_MODES
from testbed.config import GateConfig


@dataclass(frozen=True, kw_only=True)
class Refusal:
    """Why a gate refused: ``error`` code, HTTP ``status`` and ``retry_after`` seconds."""

    error: str
    status: int
    retry_after: int
    detail: str


class Gate:
    """One admission gate; change it with :meth:`set`."""

    def __init__(self, name: str, *, mode: str = "open", rate_per_s: float = 0.0,
                 burst: int = 0, retry_after_s: int = 60) -> None:
        self.name = name
        self.retry_after_s = retry_after_s
        self.admitted = 0
        self.refused = 0
        self.set(mode=mode, rate_per_s=rate_per_s, burst=burst)

    @classmethod
    def from_config(cls, name: str, cfg: GateConfig) -> Gate:
        """Build a gate from its configuration.

        >>> Gate.from_config("ordering", GateConfig()).mode
        'open'
        """
        return cls(name, mode=cfg.mode, rate_per_s=cfg.rate_per_s, burst=cfg.burst,
                   retry_after_s=cfg.retry_after_s)

    def set(self, *, mode: str, rate_per_s: float = 0.0, burst: int = 0) -> None:
        """Change mode and bucket; a rate gate starts with a full bucket.

        >>> g = Gate("registration"); g.set(mode="closed"); g.admit().status
        503
        """
        if mode not in GATE_MODES:
            raise ValueError(f"mode must be one of {GATE_MODES}")
        if mode == "rate" and (rate_per_s <= 0 or burst < 1):
            raise ValueError("a rate gate needs rate_per_s > 0 and burst >= 1")
        self.mode = mode
        self.rate_per_s = float(rate_per_s)
        self.burst = int(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def admit(self, now: float | None = None, *, consume: bool = True) -> Refusal | None:
        """Take one token; return None if admitted, else the refusal.

        With `consume=False` (the second request of one admitted purchase: paying
        the order the gate admitted), a closed gate still refuses but a rate gate
        lets it through without taking a token, so one purchase costs one token.
        """
        if self.mode == "rate" and not consume:
            self.admitted += 1
            return None
        if self.mode == "open":
            self.admitted += 1
            return None
        if self.mode == "closed":
            self.refused += 1
            return Refusal(error="gate_closed", status=503, retry_after=self.retry_after_s,
                           detail=f"the {self.name} gate is closed; come back later")
        now = time.monotonic() if now is None else now
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.stamp) * self.rate_per_s)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.admitted += 1
            return None
        self.refused += 1
        wait = max(1, math.ceil((1.0 - self.tokens) / self.rate_per_s))
        return Refusal(error="rate_limited", status=429, retry_after=wait,
                       detail=f"the {self.name} gate admits {self.rate_per_s:g} requests/s")

    def state(self) -> dict[str, Any]:
        """The gate as served in /admin/metrics and by PUT /admin/gates/{name}."""
        return {"mode": self.mode, "rate_per_s": self.rate_per_s, "burst": self.burst,
                "admitted": self.admitted, "refused": self.refused}
