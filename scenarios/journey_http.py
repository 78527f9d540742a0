"""One bounded request of a journey on a Locust FastHttpSession, and how its answer is read."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import Any

import gevent


def _retry_after(resp: Any) -> float:
    try:
        h = resp.headers
        return max(0.0, float((h.get("retry-after") if h is not None else 0) or 0))
    except (TypeError, ValueError):
        return 0.0


def _json(resp: Any) -> dict[str, Any]:
    raw = resp.content or b"{}"
    try:
        # UTF-8 text straight to the decoder (json.loads of bytes first sniffs the encoding);
        # anything else (UTF-16/32 JSON, not JSON) takes the bytes path as before.
        v = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, TypeError):
        try:
            v = json.loads(raw)
        except (ValueError, TypeError):
            return {}
    return v if isinstance(v, dict) else {}


MAX_RESPONSE_BYTES = (
    8 << 20
)  # a stamped PDF is kilobytes; a bigger answer is refused, never buffered


@dataclass
class Reply:
    """What a journey reads of an answer: status (0 = no answer), headers, the capped body."""

    status_code: int
    headers: Any
    content: bytes
    error: str = ""


def bounded_request(client: Any, method: str, path: str, *, name: str, data: bytes | None = None,
                    json_body: Any = None, headers: dict[str, str] | None = None,
                    deadline_s: float = 10.0, max_bytes: int = MAX_RESPONSE_BYTES) -> Reply:
    """One request on a Locust FastHttpSession: no redirects followed, a total deadline, the body
    capped.

    The body is streamed and refused past `max_bytes`; the whole exchange (headers and
    body) must end within `deadline_s` (geventhttpclient's own timeout is per read). A
    refused or timed-out answer is status 0 and its connections are closed.

    Each request has a deadline of its own: a timer reused across a journey's requests let
    retried uploads time out unsent (the client-retries drill then saw no double charge).
    """
    h = {"Accept-Encoding": "identity", **(headers or {})}
    kw: dict[str, Any] = {"data": data} if data is not None else {"json": json_body}
    timer = gevent.Timeout(deadline_s)
    timer.start()
    try:
        r = client.request(method, path, name=name, headers=h, allow_redirects=False, stream=True,
                           **kw)
        return _read_capped(client, r, max_bytes)
    except gevent.Timeout as t:
        if t is not timer:
            raise
        _drop_connections(client)
        return Reply(0, None, b"", f"no whole answer within {deadline_s:g} s")
    except (OSError, ValueError) as e:  # the connection broke while reading the body
        _drop_connections(client)
        return Reply(0, None, b"", f"{type(e).__name__}")
    finally:
        timer.close()


def _read_capped(client: Any, r: Any, max_bytes: int) -> Reply:
    """The answer of a streamed request, its body read whole unless it passes `max_bytes`."""
    status = int(r.status_code or 0)
    hdrs = r.headers
    raw = getattr(r, "_response", None)
    if status == 0 or raw is None:
        return Reply(0, hdrs, b"", "no answer")
    # `is not None`, not `or {}`: an answer's Headers count their values in Python to be falsy
    declared = hdrs.get("content-length") if hdrs is not None else None
    if declared and str(declared).isdigit() and int(declared) > max_bytes:
        _drop_connections(client)
        return Reply(0, hdrs, b"", f"answer of {declared} bytes over the cap")
    chunks, size = [], 0
    while True:
        chunk = raw.read(64 << 10)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            _drop_connections(client)
            return Reply(0, hdrs, b"", f"answer over the cap of {max_bytes} bytes")
        chunks.append(chunk)
    raw.release()
    return Reply(status, hdrs, b"".join(chunks))


def _drop_connections(client: Any) -> None:
    """Close a session's pooled connections (one may hold a half-read answer)."""
    pool = getattr(getattr(client, "client", None), "clientpool", None)
    if pool is not None:
        with contextlib.suppress(Exception):  # closing is best effort
            pool.close()
