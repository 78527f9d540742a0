"""JSON over HTTP for every call the harness makes outside Locust: admin API, pre-flight, set-up,
drills.

One small client with three promises, and foreign exceptions mapped once, here:

* **a total deadline** per request (connect, send, status line, headers and body
  together), not a per-read timeout: a server trickling one byte every 2 s is cut
  at the deadline;
* **a capped, streamed body**: it is read in chunks and refused past `max_bytes`,
  so a 300 MB answer never sits in memory;
* **confinement to one origin**: no redirect is followed to another origin
  (scheme, host, port), and the bearer token is sent only to the origin the
  client was made for. A redirect within the origin is followed (at most 3).

Errors are `TargetError`s (exit 2) of a small family (`Unreachable`,
`DeadlineExceeded`, `RedirectRefused`, `BodyTooLarge`, `BadResponse`); their
messages name the method and URL, never a header or token::

    >>> origin_of("http://LOCALHOST:80/x") == origin_of("http://localhost/y")
    True
    >>> c = JsonClient("http://127.0.0.1:9", deadline_s=0.5)
    >>> try:
    ...     c.request("GET", "/healthz")
    ... except Unreachable as e:
    ...     print(type(e).__name__, e.url)
    Unreachable http://127.0.0.1:9/healthz

It imports only the standard library and `floor.errors`, so every room may use
it; it works in gevent-patched processes too (Locust), where its timer is a greenlet.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from floor.errors import TargetError

DEFAULT_DEADLINE_S = 10.0
DEFAULT_MAX_BYTES = 8 << 20
MAX_SAME_ORIGIN_REDIRECTS = 3
_CHUNK = 64 << 10


class HttpError(TargetError):
    """A request to the target failed; `method` and `url` say which (never a header or token)."""

    def __init__(self, message: str, *, method: str = "", url: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class Unreachable(HttpError):
    """Refused, reset or not resolvable before any answer."""


class DeadlineExceeded(HttpError):
    """No whole answer within the request's total deadline."""


class RedirectRefused(HttpError):
    """The target redirected off its origin (or too often); not followed."""


class BodyTooLarge(HttpError):
    """The answer's body passed the cap."""


class BadResponse(HttpError):
    """Not HTTP, or not the JSON the caller asked for."""


def origin_of(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `url`, with default ports filled in; ValueError for a bad URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return scheme, parts.hostname.lower(), parts.port or (443 if scheme == "https" else 80)


@dataclass(frozen=True)
class Reply:
    """One answer: status, content type, the body (at most the cap) and, for a redirect, its
    Location."""

    status: int
    content_type: str
    body: bytes
    url: str
    location: str = ""

    def json(self) -> Any:
        """The body as JSON (None when empty); BadResponse when it is not JSON."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise BadResponse(
                f"{self.url} answered HTTP {self.status} that is not JSON", url=self.url
            ) from None

    def json_or_none(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON."""
        try:
            return self.json()
        except BadResponse:
            return None


class _Cutter:
    """Shuts a connection's socket at the deadline, so a blocked read returns at once."""

    def __init__(self, conn: http.client.HTTPConnection, seconds: float) -> None:
        self.conn = conn
        self.fired = False
        self.timer = threading.Timer(max(0.0, seconds), self._cut)
        self.timer.daemon = True
        self.timer.start()

    def _cut(self) -> None:
        self.fired = True
        sock = self.conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self.timer.cancel()


def _read_capped(resp: http.client.HTTPResponse, method: str, url: str, max_bytes: int,
                 until: float) -> bytes:
    """The answer's body, streamed: refused (BodyTooLarge) past `max_bytes`, declared or read;
    TimeoutError once the monotonic clock passes `until`."""
    what = f"{method} {url}"
    declared = resp.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge(f"{what}: the answer declares {int(declared):,} bytes, over the cap of "
                           f"{max_bytes:,}; refused without reading it", method=method, url=url)
    chunks: list[bytes] = []
    size = 0
    while chunk := resp.read(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge(f"{what}: the answer passed the cap of {max_bytes:,} bytes; "
                               f"refused (read {size:,})", method=method, url=url)
        chunks.append(chunk)
        if time.monotonic() > until:
            raise TimeoutError
    return b"".join(chunks)


def exchange(
    method: str,
    url: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    deadline_s: float = DEFAULT_DEADLINE_S,
    max_bytes: int = DEFAULT_MAX_BYTES,
    kept: KeptConnection | None = None,
) -> Reply:
    """One HTTP request, redirects not followed, within `deadline_s` in total, body capped at
    `max_bytes`.

    With `kept`, a GET goes on its idle connection when it has one and leaves its own there
    when the answer was read whole and the server keeps it open; a GET whose kept connection
    turns out closed before any answer is sent once more, on a new connection. Every other
    request has a connection of its own.
    """
    origin = origin_of(url)
    pool = kept if method == "GET" else None
    conn = pool.take(origin) if pool is not None else None
    if conn is not None:
        try:
            return _exchange_on(conn, origin, method, url, body, headers, deadline_s, max_bytes,
                                pool)
        except _StaleConnection:
            pass  # closed while idle (the server's keep-alive timeout): once more, afresh
    scheme, host, port = origin
    cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    return _exchange_on(cls(host, port, timeout=deadline_s), origin, method, url, body, headers,
                        deadline_s, max_bytes, pool, fresh=True)


class KeptConnection:
    """The idle keep-alive connection of one client (one per origin); `close()` ends it."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    def take(self, origin: tuple[str, str, int]) -> http.client.HTTPConnection | None:
        """The idle connection to `origin`, now the caller's, or None."""
        return self._idle.pop(origin, None)

    def give(self, origin: tuple[str, str, int], conn: http.client.HTTPConnection) -> None:
        """Keep `conn` idle for the next GET (closed at once if one is already kept)."""
        if origin in self._idle:
            conn.close()
        else:
            self._idle[origin] = conn

    def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, {}
        for conn in idle.values():
            conn.close()


class _StaleConnection(Exception):
    """A kept connection was closed by the server before it answered (resend afresh)."""


def _exchange_on(conn: http.client.HTTPConnection, origin: tuple[str, str, int], method: str,
                 url: str, body: bytes | None, headers: dict[str, str] | None, deadline_s: float,
                 max_bytes: int, kept: KeptConnection | None, *, fresh: bool = False) -> Reply:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    start = time.monotonic()
    if conn.sock is not None:
        conn.sock.settimeout(deadline_s)
    cutter = _Cutter(conn, deadline_s)
    what = f"{method} {url}"
    keep = False
    try:
        try:
            conn.request(method, target, body=body, headers=dict(headers or {}))
            resp = conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if fresh or cutter.fired:
                raise
            raise _StaleConnection from None
        body_read = _read_capped(resp, method, url, max_bytes, start + deadline_s)
        if cutter.fired:
            raise TimeoutError
        keep = kept is not None and not resp.will_close
        return Reply(
            status=int(resp.status),
            content_type=resp.getheader("Content-Type", "") or "",
            body=body_read,
            url=url,
            location=resp.getheader("Location", "") or "",
        )
    except (HttpError, _StaleConnection):
        raise
    except TimeoutError:
        raise DeadlineExceeded(
            f"{what}: no whole answer within {deadline_s:g} s", method=method, url=url
        ) from None
    except ConnectionRefusedError:
        raise Unreachable(f"{what}: connection refused", method=method, url=url) from None
    except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError, ValueError) as e:
        if cutter.fired:
            raise DeadlineExceeded(
                f"{what}: no whole answer within {deadline_s:g} s", method=method, url=url
            ) from None
        if isinstance(e, socket.gaierror):
            raise Unreachable(
                f"{what}: cannot resolve the host ({e.strerror})", method=method, url=url
            ) from None
        if isinstance(e, http.client.HTTPException | ValueError) and not isinstance(
            e, ConnectionError
        ):
            raise BadResponse(
                f"{what}: not a valid HTTP answer ({type(e).__name__})", method=method, url=url
            ) from None
        raise Unreachable(f"{what}: {type(e).__name__}: {e}", method=method, url=url) from None
    finally:
        cutter.cancel()
        if keep and kept is not None and not cutter.fired:
            kept.give(origin, conn)
        else:
            conn.close()


class JsonClient:
    """A JSON client confined to the origin of `base` (see the module docstring).

    `token` goes as `Authorization: Bearer` only to that origin. `refused` keeps
    the message of every redirect refused, for the caller to report.
    """

    def __init__(
        self,
        base: str,
        *,
        token: str | None = None,
        deadline_s: float = DEFAULT_DEADLINE_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        keep_alive: bool = False,
    ) -> None:
        self.base = base.rstrip("/")
        # GETs on one kept connection (a sampler polling every second opens no connection and
        # resolves no name per sample); `close()` ends it
        self.kept = KeptConnection() if keep_alive else None
        self.origin = origin_of(self.base)
        self.token = token
        self.deadline_s = deadline_s
        self.max_bytes = max_bytes
        self.refused: list[str] = []

    def __repr__(self) -> str:
        return f"JsonClient({self.base!r}, token={'***' if self.token else None})"

    def close(self) -> None:
        """Close the kept connection, if any (the next request opens another)."""
        if self.kept is not None:
            self.kept.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        deadline_s: float | None = None,
        max_bytes: int | None = None,
    ) -> Reply:
        """Send one request (path relative to the base); follow redirects only within the origin."""
        deadline = time.monotonic() + (self.deadline_s if deadline_s is None else deadline_s)
        url = self.base + path
        data = None if json_body is None else json.dumps(json_body).encode()
        for _hop in range(MAX_SAME_ORIGIN_REDIRECTS + 1):
            h = {"Accept": "application/json", **(headers or {})}
            if data is not None:
                h.setdefault("Content-Type", "application/json")
            if self.token and origin_of(url) == self.origin:
                h["Authorization"] = f"Bearer {self.token}"
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(
                    f"{method} {url}: no whole answer within the deadline", method=method, url=url
                )
            reply = exchange(
                method,
                url,
                body=data,
                headers=h,
                deadline_s=left,
                max_bytes=self.max_bytes if max_bytes is None else max_bytes,
                kept=self.kept,
            )
            if reply.status not in (301, 302, 303, 307, 308) or not reply.location:
                return reply
            nxt = urljoin(url, reply.location)
            try:
                same = origin_of(nxt) == self.origin
            except ValueError:
                same = False
            if not same:
                msg = (
                    f"{method} {url} redirected (HTTP {reply.status}) to another origin "
                    f"{_origin_text(nxt)}; surgecast follows no redirect off its target {self.base}"
                )
                self.refused.append(msg)
                raise RedirectRefused(msg, method=method, url=url)
            url = nxt
            if reply.status == 303:
                method, data = "GET", None
        msg = (f"{method} {self.base + path} redirected more than {MAX_SAME_ORIGIN_REDIRECTS} "
               "times; not followed")
        self.refused.append(msg)
        raise RedirectRefused(msg, method=method, url=self.base + path)

    def json(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        ok: tuple[int, ...] = (200, 201, 202),
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON of an answer whose status is in `ok`; HttpError otherwise."""
        reply = self.request(method, path, json_body=json_body, headers=headers)
        if reply.status not in ok:
            raise BadResponse(
                f"{method} {reply.url} answered HTTP {reply.status}", method=method, url=reply.url
            )
        return reply.json()


def _origin_text(url: str) -> str:
    try:
        scheme, host, port = origin_of(url)
    except ValueError:
        return repr(url[:80])
    return f"{scheme}://{host}:{port}"
