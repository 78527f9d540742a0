"""What a drill is (`Drill`), what it acts on while it runs (`DrillContext`), and its testbed's
admin API."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floor.jsonhttp import HttpError, JsonClient
from scenarios.profile import flat_profile_toml

DRAIN_TIMEOUT_S = 30.0
LOAD_START_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[2]

# Cheap password hashing and a quick testbed: drills test integrity, not speed.
BASE_TESTBED = (
    'security.password_hash="pbkdf2"',
    "security.pbkdf2_iterations=1000",
    "issuer.workers=8",
    "issuer.service.mean=0.05",
    "payments.workers=8",
    "payments.service.mean=0.05",
)


# ---- the admin API of the drill's testbed (stdlib only) ------------------------------------
def _admin(
    url: str, token: str, method: str, path: str, body: Any = None, timeout: float = 5.0
) -> Any:
    client = JsonClient(url, token=token, deadline_s=timeout, max_bytes=256 << 20)
    return client.json(method, path, json_body=body, ok=(200, 201, 202))


def _admin_optional(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    try:
        return _admin(url, token, method, path, body)
    except HttpError:
        return None


def _iso(unix: float) -> str:
    return (
        datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class DrillContext:
    """What a drill's fault function works with: the testbed, the clock and the timeline."""

    tb: Any  # testbed.process.TestbedServer
    load_start: float = 0.0  # unix time of the first registration the testbed saw
    timeline: list[dict[str, Any]] = field(default_factory=list)
    observed: dict[str, Any] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def event(self, what: str, **detail: Any) -> None:
        """Record a fault event at the current time (seconds since the load started)."""
        now = time.time()
        self.timeline.append(
            {"t_s": round(now - self.load_start, 3), "at": _iso(now), "event": what, **detail}
        )

    def sleep_until(self, load_s: float) -> bool:
        """Sleep until `load_s` seconds after the load started; False if the drill is stopping."""
        return not self.stop.wait(max(0.0, self.load_start + load_s - time.time()))

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the testbed's admin API (raises on failure)."""
        return _admin(self.tb.url, self.tb.admin_token, method, path, body)

    def metrics(self) -> dict[str, Any] | None:
        """`GET /admin/metrics`, or None while the testbed is down."""
        return _admin_optional(self.tb.url, self.tb.admin_token, "GET", "/admin/metrics")

    def records(self) -> dict[str, Any] | None:
        """`GET /admin/records` (the durable state, from the testbed's SQLite), or None while the
        testbed is down."""
        return _admin_optional(self.tb.url, self.tb.admin_token, "GET", "/admin/records")


@dataclass(frozen=True, kw_only=True)
class Drill:
    """One drill: its load, its testbed, its fault, and how to tell that the fault bit.

    ``fault(ctx)`` plays from a thread while the load runs; ``after(ctx)``, if given, acts once the
    load ended and the testbed is healed, before the queues drain (it may raise `HttpError`,
    `KeyError` or `TypeError`: recorded as a fault that could not be injected);
    ``observe(ctx, run)`` says, after the drain, whether the fault bit and how.
    """

    name: str
    proves: str
    injects: str
    fault: Callable[[DrillContext], None]
    observe: Callable[[DrillContext, dict[str, Any]], tuple[bool, str]]
    after: Callable[[DrillContext], None] | None = None
    rate_per_s: float = 5.0
    duration_s: float = 12.0
    testbed_set: tuple[str, ...] = ()
    journeys: dict[str, Any] = field(default_factory=dict)

    def profile_toml(self) -> str:
        """The drill's surge profile (flat arrivals, new applicants, its client timeouts)."""
        # 86,400 applicants over one calendar day: one per calendar second, so the arrival
        # rate is compress x scale.
        j = {
            "mix": {"new_applicant": 1.0},
            "think_time_s": [0.0, 0.1],
            "patience_s": 20,
            "poll_interval_s": 0.2,
            "retry_mix": {"backoff": 1.0},
            "backoff_base_s": 0.3,
            "backoff_max_s": 2,
            "max_attempts": 8,
            "request_timeout_s": 5,
            **self.journeys,
        }
        return flat_profile_toml(
            f"drill-{self.name}", total=86400, stamps_per_applicant={1: 0.5, 2: 0.5}, journeys=j
        )
