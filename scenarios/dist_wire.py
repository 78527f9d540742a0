"""The wire of a distributed rehearsal: message names, settings, versions, payload chunks and
threshold samples (see scenarios/distributed.py for the protocol)."""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

from floor.errors import IntegrityError
from scenarios.distributed_cli import READY_WAIT_S  # noqa: F401 (shared with the command line)
from scenarios.options import RunSettings
from scenarios.thresholds import ThresholdWatch, parse_threshold

MSG_SETUP = "surgecast_setup"
MSG_READY = "surgecast_ready"
MSG_GO = "surgecast_go"
MSG_STATUS = "surgecast_status"
MSG_FINISH = "surgecast_finish"
MSG_RESULT = "surgecast_result"
MSG_ERROR = "surgecast_error"
CHUNK_BYTES = 256 * 1024
STATUS_EVERY_S = 0.5
GO_LEAD_S = 0.5  # the origin is this far after the last worker is ready
STALE_S = 5.0  # a worker silent this long no longer holds the run open

RESULTS_GRACE_S = float(os.environ.get("SURGECAST_RESULTS_WAIT_S", "30"))


# ---- settings on the wire ------------------------------------------------------------------------
def settings_to_wire(
    s: RunSettings, *, index: int, workers: int, allow_remote: bool = False
) -> dict[str, Any]:
    """What worker `index` of `workers` needs of the master's settings (plain data; no admin token).

    >>> from scenarios.options import RunSettings
    >>> rs = RunSettings(host="http://127.0.0.1:1", embedded=True, arrival_rate=4.0, seed=3)
    >>> w = settings_to_wire(rs, index=1, workers=2)
    >>> s = settings_from_wire(w); (s.arrival_rate, s.seed, s.workers, s.admin_token)
    (4.0, 3, 2, None)
    """
    d: dict[str, Any] = {
        "index": index,
        "workers": workers,
        "allow_remote": allow_remote,
        "host": s.host,
        "embedded": s.embedded,
        "arrival_rate": s.arrival_rate,
        "arrival_shape": s.arrival_shape,
        "compress": s.compress,
        "scale": s.scale,
        "duration_s": s.duration_s,
        "seed": s.seed,
        "user_cap": s.user_cap,
        "max_rate": s.max_rate,
        "thresholds": [t.expr for t in s.thresholds],
        "threshold_window_s": s.threshold_window_s,
        "reuse_idempotency_keys": s.reuse_idempotency_keys,
        "headroom_s": s.headroom_s,
        "calendar_origin": s.calendar_origin.isoformat() if s.calendar_origin else None,
        "window_end": s.window_end.isoformat() if s.window_end else None,
        "profile_source": None,
        "profile_text": None,
    }
    if s.profile is not None:
        d["profile_source"] = s.profile.source
        d["profile_text"] = Path(s.profile.source).read_text(encoding="utf-8")
    return d


def settings_from_wire(d: dict[str, Any]) -> RunSettings:
    """The inverse of `settings_to_wire` (the profile is parsed from the text the master sent)."""
    from scenarios.profile import parse_profile

    profile = None
    if d.get("profile_text"):
        profile = parse_profile(
            tomllib.loads(d["profile_text"]), source=d["profile_source"] or "<master>"
        )

    def when(x: str | None) -> datetime | None:
        if x is None:
            return None
        t = datetime.fromisoformat(x)
        return t.astimezone(profile.calendar.tz) if profile is not None else t

    return RunSettings(
        host=d["host"],
        embedded=bool(d["embedded"]),
        profile=profile,
        profile_name=profile.name if profile else None,
        arrival_rate=d["arrival_rate"],
        arrival_shape=str(d.get("arrival_shape") or "constant"),
        compress=float(d["compress"]),
        scale=float(d["scale"]),
        duration_s=float(d["duration_s"]),
        calendar_origin=when(d["calendar_origin"]),
        window_end=when(d["window_end"]),
        seed=int(d["seed"]),
        user_cap=int(d["user_cap"]),
        max_rate=d["max_rate"],
        thresholds=tuple(parse_threshold(x) for x in d["thresholds"]),
        threshold_window_s=float(d["threshold_window_s"]),
        reuse_idempotency_keys=bool(d["reuse_idempotency_keys"]),
        quiet=True,
        headroom_s=float(d["headroom_s"]),
        workers=int(d["workers"]),
    )


def surgecast_version() -> str:
    """The version this process runs (workers and master must match).

    >>> surgecast_version() == __import__("floor.version").version.__version__
    True
    """
    from floor.version import __version__

    return str(__version__)


# ---- chunked payloads ---------------------------------------------------------------------------
def encode_payload(obj: Any, *, chunk_bytes: int = CHUNK_BYTES) -> tuple[list[bytes], str]:
    """JSON -> zlib -> chunks of at most `chunk_bytes`, and the SHA-256 of the compressed bytes."""
    raw = zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 6)
    chunks = [raw[i : i + chunk_bytes] for i in range(0, len(raw), chunk_bytes)] or [b""]
    return chunks, hashlib.sha256(raw).hexdigest()


class Assembler:
    """Collects the chunks of one payload; `add` returns True when it is complete and intact."""

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.total: int | None = None
        self.digest = ""

    def add(self, m: dict[str, Any]) -> bool:
        """Add one chunk message {seq, total, sha256, data}."""
        self.total, self.digest = int(m["total"]), str(m["sha256"])
        self.parts[int(m["seq"])] = bytes(m["data"])
        return len(self.parts) == self.total

    def payload(self) -> Any:
        """The decoded payload; `SurgecastError` (exit 3) when the bytes do not match the digest."""
        raw = b"".join(self.parts[i] for i in range(self.total or 0))
        if hashlib.sha256(raw).hexdigest() != self.digest:
            raise IntegrityError("a worker's results arrived damaged (SHA-256 mismatch); rerun")
        return json.loads(zlib.decompress(raw))


# ---- threshold samples ------------------------------------------------------------------------
def drain_watch(w: ThresholdWatch) -> list[list[Any]]:
    """Take every per-second sample bucket out of `w` as plain rows (the worker's side)."""
    rows = []
    while w._seconds:
        sec, b = w._seconds.popleft()
        rows.append(
            [
                sec,
                [[s, c, v] for (s, c), v in b.latencies.items()],
                b.requests,
                b.errors,
                b.outcomes,
            ]
        )
    return rows


def feed_watch(w: ThresholdWatch, rows: list[list[Any]]) -> None:
    """Add rows of `drain_watch` into `w` (the master's side), second by second.

    >>> from scenarios.thresholds import parse_threshold
    >>> a = ThresholdWatch([parse_threshold("errors<50%")], min_count=1)
    >>> a.request("login", 3.2, 0.1, ok=False)
    >>> m = ThresholdWatch([parse_threshold("errors<50%")], min_count=1)
    >>> feed_watch(m, drain_watch(a))
    >>> _ = m.evaluate(4.0); m.results[0].ok
    False
    """
    for sec, lat, req, err, outcomes in rows:
        b = w._bucket(float(sec))
        for step, clock, vals in lat:
            b.latencies.setdefault((step, clock), []).extend(vals)
        for src, dst in ((req, b.requests), (err, b.errors), (outcomes, b.outcomes)):
            for k, n in src.items():
                dst[k] = dst.get(k, 0) + int(n)
