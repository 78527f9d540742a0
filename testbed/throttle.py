"""Login throttling: failed logins counted per account (email) and per client address.

A sliding window of ``login_window_s`` seconds: once an email has had
``login_failures_per_account`` failed logins in it, or a client address
``login_failures_per_client``, further attempts are refused (429) until the oldest
failure leaves the window, before any password is hashed. A successful login does
not count (so a surge of honest logins from one loopback address is never throttled)::

    >>> from testbed.config import SecurityConfig
    >>> t = LoginThrottle(SecurityConfig(login_failures_per_account=2, login_window_s=60))
    >>> t.failed("a@x.id", "127.0.0.1", now=0.0); t.failed("a@x.id", "127.0.0.1", now=1.0)
    >>> t.refused("a@x.id", "127.0.0.1", now=2.0)
    ('email', 58)
    >>> t.refused("a@x.id", "127.0.0.1", now=61.0) is None
    True
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque

from testbed.config import SecurityConfig

MAX_KEYS = 100_000  # bound on tracked emails and addresses (oldest dropped first)


class LoginThrottle:
    """Counts failed logins per email and per client address in a sliding window."""

    def __init__(self, cfg: SecurityConfig) -> None:
        self.window = float(cfg.login_window_s)
        self.limits = {
            "email": cfg.login_failures_per_account,
            "client": cfg.login_failures_per_client,
        }
        self._fails: dict[str, OrderedDict[str, deque[float]]] = {
            "email": OrderedDict(),
            "client": OrderedDict(),
        }
        self.refusals = 0

    def _recent(self, kind: str, key: str, now: float) -> deque[float] | None:
        q = self._fails[kind].get(key)
        if q is None:
            return None
        while q and q[0] <= now - self.window:
            q.popleft()
        if not q:
            del self._fails[kind][key]
            return None
        return q

    def refused(self, email: str, client: str, now: float | None = None) -> tuple[str, int] | None:
        """(what is throttled: "email" | "client", Retry-After seconds), or None to let the attempt
        in."""
        now = time.monotonic() if now is None else now
        for kind, key in (("email", email.lower()), ("client", client)):
            q = self._recent(kind, key, now)
            limit = self.limits[kind]
            if limit > 0 and q is not None and len(q) >= limit:
                self.refusals += 1
                return kind, max(1, math.ceil(q[-limit] + self.window - now))
        return None

    def failed(self, email: str, client: str, now: float | None = None) -> None:
        """Record one failed login."""
        now = time.monotonic() if now is None else now
        for kind, key in (("email", email.lower()), ("client", client)):
            table = self._fails[kind]
            table.setdefault(key, deque()).append(now)
            table.move_to_end(key)
            while len(table) > MAX_KEYS:
                table.popitem(last=False)
