"""A known latency law on chosen routes: the truth the harness's latency figures are held to.

With ``[latency_law] enabled = true`` the testbed answers every request to ``paths``
exactly at ``answer_at(received, n)`` (n = the request's number on those routes, from 0):

* ``base_s`` after it was received, except every ``tail_every``-th request (n % tail_every
  == tail_every - 1: exactly 1 % at 100), which gets ``tail_s``;
* a stall of ``stall_s`` every ``stall_every_s`` seconds of Unix time (the last ``stall_s``
  of each period: [k·P − S, k·P)): an answer due inside a stall waits for its end, as if
  the process froze (a GC pause, a lock convoy).

The work of the request runs first (it must take less than its delay); the answer is held
until its time. Each answered request is recorded (received, n, delay by the law,
answer_at, sent) and served at ``GET /admin/latency-law`` (admin token), and each answer
carries its ``n`` in an ``x-latency-law-n`` header, so a test knows the truth request by
request::

    >>> law = LatencyLaw(enabled=True, base_s=0.05, tail_s=0.5, tail_every=100, stall_s=2,
    ...                  stall_every_s=10)
    >>> law.delay(0), law.delay(99)
    (0.05, 0.5)
    >>> round(law.answer_at(1000.0, 0) - 1000.0, 3), round(law.answer_at(1007.99, 0) - 1007.99, 3)
    (0.05, 2.01)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

MAX_ROWS = 500_000


@dataclass(frozen=True, kw_only=True)
class LatencyLaw:
    """The law's parameters (``[latency_law]`` of the testbed config)."""

    enabled: bool = False
    base_s: float = 0.05
    tail_s: float = 0.5
    tail_every: int = 100
    stall_s: float = 2.0
    stall_every_s: float = 10.0
    paths: tuple[str, ...] = ("/v1/accounts",)

    @property
    def mean_delay_s(self) -> float:
        """d̄: the law's mean delay before stalls.

        >>> round(LatencyLaw().mean_delay_s, 4)
        0.0545
        """
        p = 1 / self.tail_every if self.tail_every else 0.0
        return (1 - p) * self.base_s + p * self.tail_s

    def delay(self, n: int) -> float:
        """The law's delay of request number `n` (before any stall)."""
        return (
            self.tail_s
            if self.tail_every and n % self.tail_every == self.tail_every - 1
            else self.base_s
        )

    def stall_end(self, t: float) -> float | None:
        """The end of the stall holding Unix time `t`, or None when `t` is outside every stall.

        >>> law = LatencyLaw(stall_s=2, stall_every_s=10)
        >>> law.stall_end(1009.5), law.stall_end(1003.0)
        (1010.0, None)
        """
        if self.stall_s <= 0:
            return None
        p = self.stall_every_s
        phase = t % p
        return t - phase + p if phase >= p - self.stall_s else None

    def answer_at(self, received: float, n: int) -> float:
        """When request `n` received at `received` is answered (Unix seconds)."""
        due = received + self.delay(n)
        end = self.stall_end(due)
        return due if end is None else end


SPIN_S = 0.002  # uvloop's timers tick in whole milliseconds: sleep to this close, then yield


async def until(at: float) -> None:
    """Return at Unix time `at`, not up to a millisecond after it (uvloop's timer granularity).

    Sleeps to `SPIN_S` before `at`, then yields to the loop (``sleep(0)``) until it is time, so
    other requests run meanwhile; measured at 10 requests/s, the target answered +0.53 ms
    (p50) after its law with a plain ``asyncio.sleep`` (docs/benchmarks.md, latency truth).
    """
    wait = at - time.time() - SPIN_S
    if wait > 0:
        await asyncio.sleep(wait)
    while time.time() < at:
        await asyncio.sleep(0)


class LatencyLawMiddleware:
    """ASGI middleware holding answers on the law's routes (see the module docstring)."""

    def __init__(self, app: Any, law: LatencyLaw, *, admin_token: str) -> None:
        self.app = app
        self.law = law
        self.admin_token = admin_token
        self.n = 0
        self.rows: list[list[float]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/admin/latency-law" and scope.get("method") == "GET":
            await self._truth(scope, send)
            return
        if path not in self.law.paths:
            await self.app(scope, receive, send)
            return
        received = time.time()
        n = self.n
        self.n += 1
        held: list[dict[str, Any]] = []

        async def hold(message: dict[str, Any]) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        at = self.law.answer_at(received, n)
        await until(at)
        for m in held:
            if m.get("type") == "http.response.start":
                m = {**m, "headers": [*m.get("headers", []), (b"x-latency-law-n", str(n).encode())]}
            await send(m)
        if len(self.rows) < MAX_ROWS:
            self.rows.append([received, n, self.law.delay(n), at, time.time()])

    async def _truth(self, scope: dict[str, Any], send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        ok = headers.get(b"authorization", b"") == f"Bearer {self.admin_token}".encode()
        status, body = (
            (
                200,
                {
                    "law": {**asdict(self.law), "paths": list(self.law.paths)},
                    "columns": ["received_unix", "n", "law_delay_s", "answer_at_unix", "sent_unix"],
                    "requests": self.rows,
                },
            )
            if ok
            else (401, {"error": "unauthorized", "field": None, "detail": "give the admin token"})
        )
        raw = json.dumps(body, allow_nan=False).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(raw)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": raw})


def law_from_table(r: Any) -> LatencyLaw:
    """Read ``[latency_law]`` with a `floor.tomlfile.TableReader` (names each field in errors)."""
    d = LatencyLaw()  # a key left out keeps the dataclass default
    paths = r.get("paths", list(d.paths))
    if not isinstance(paths, list) or not all(
        isinstance(p, str) and p.startswith("/") for p in paths
    ):
        raise r.fail("paths", paths, 'give a list of paths, e.g. ["/v1/accounts"]')
    law = LatencyLaw(
        enabled=r.boolean("enabled", d.enabled),
        base_s=r.bounded("base_s", d.base_s, 0.0, 60.0),
        tail_s=r.bounded("tail_s", d.tail_s, 0.0, 60.0),
        tail_every=r.integer("tail_every", d.tail_every, 0),
        stall_s=r.bounded("stall_s", d.stall_s, 0.0, 3600.0),
        stall_every_s=r.bounded("stall_every_s", d.stall_every_s, 0.001, 86400.0),
        paths=tuple(paths),
    )
    if law.stall_s >= law.stall_every_s or not math.isfinite(law.stall_every_s):
        raise r.fail("stall_s", law.stall_s, "give a stall shorter than stall_every_s")
    return law
