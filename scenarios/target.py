"""The target: the loopback safety check and a small client for its admin API.

Load goes only to loopback unless the user says otherwise::

    >>> (is_loopback("http://127.0.0.1:8080"), is_loopback("http://[::1]:80"),
    ...  is_loopback("https://example.com"))
    (True, True, False)
    >>> check_host("https://example.com", allow_remote=False)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --host = 'https://example.com': not a loopback address; load goes
    only to 127.0.0.0/8, ::1 or localhost unless you add --allow-remote

The admin client uses `floor.jsonhttp` (standard library only), so it works both in
the command's process and inside Locust (where gevent patches sockets).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from floor.errors import FieldError, TargetError
from floor.jsonhttp import (
    BadResponse,
    BodyTooLarge,
    DeadlineExceeded,
    HttpError,
    JsonClient,
    RedirectRefused,
    Unreachable,
)
from floor.netaddr import is_loopback


def check_host(url: str, *, allow_remote: bool) -> str:
    """Validate `--host`: an http(s) URL, loopback unless `allow_remote`. Returns it without a
    trailing slash.

    >>> check_host("http://localhost:8080/", allow_remote=False)
    'http://localhost:8080'
    """
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port outside 0..65535 or not a number
    except ValueError:
        raise FieldError("--host", url,
                         "not a valid URL (check the brackets of an IPv6 address and the port "
                         "0..65535); give a URL such as http://127.0.0.1:8080") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or port == 0:
        raise FieldError("--host", url, "give a URL such as http://127.0.0.1:8080")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise FieldError("--host", url,
                         "give only scheme, host, port and path: no user, password, query or "
                                        "fragment (e.g. http://127.0.0.1:8080)")
    if not allow_remote and not is_loopback(url):
        raise FieldError("--host", url,
                         "not a loopback address; load goes only to 127.0.0.0/8, ::1 "
                                        "or localhost unless you add --allow-remote")
    return url.rstrip("/")


class AdminClient:
    """The target's admin API (`/admin/...`), or None-returning calls when it has none.

    Every call has a total deadline and a capped body, follows no redirect off the
    target's origin and sends the token only there (`floor.jsonhttp`). What went
    wrong with optional calls (a refused redirect, a wrong-typed answer) is kept in
    `problems`, so the run can report it instead of hiding it::

        >>> c = AdminClient("http://127.0.0.1:9", token="t", timeout=0.2)
        >>> c.get_optional("/admin/config") is None
        True
    """

    def __init__(self, host: str, *, token: str | None, timeout: float = 5.0) -> None:
        self.host = host.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.client = JsonClient(self.host, token=token, deadline_s=timeout,
                                 max_bytes=ADMIN_MAX_BYTES, keep_alive=True)
        self.problems: list[str] = []

    def __repr__(self) -> str:
        return f"AdminClient({self.host!r}, token={'***' if self.token else None})"

    def close(self) -> None:
        """Close the kept-alive connection of its GETs (a later call opens another)."""
        self.client.close()

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        big = path.startswith(("/admin/ledger",
                               "/admin/audit"))  # a big run's ledger; the rest is small
        reply = self.client.request(method, path, json_body=body,
                                    max_bytes=None if big else ADMIN_SMALL_BYTES)
        if reply.status >= 400:
            raise BadResponse(f"{method} {self.host}{path} answered HTTP {reply.status}",
                              method=method,
                              url=self.host + path)
        return reply.json()

    @property
    def refused(self) -> list[str]:
        """Messages of the redirects this client refused (empty when none)."""
        return self.client.refused

    def get(self, path: str) -> Any:
        """GET an admin path; raise TargetError when it fails."""
        try:
            return self._request("GET", path)
        except HttpError as e:
            raise TargetError(f"{e}; check --host and --admin-token") from None

    def get_optional(self, path: str, kind: type | None = None) -> Any:
        """GET an admin path; None when the target has no admin API, refuses, or (with `kind`)
        answers another type."""
        try:
            value = self._request("GET", path)
        except RedirectRefused as e:
            self._note(str(e))
            return None
        except HttpError:
            return None
        if kind is not None and value is not None and not isinstance(value, kind):
            self._note(f"GET {self.host}{path} answered a JSON {type(value).__name__}, not an "
                       f"{kind.__name__}; ignored")
            return None
        return value

    def _note(self, problem: str) -> None:
        if problem not in self.problems and len(self.problems) < 20:
            self.problems.append(problem)

    def send(self, method: str, path: str, body: Any) -> Any:
        """PUT/POST an admin change; raise TargetError when it fails."""
        try:
            return self._request(method, path, body)
        except HttpError as e:
            raise TargetError(f"{e}; check --admin-token") from None

    def metrics(self) -> dict[str, Any] | None:
        """`GET /admin/metrics`, or None."""
        return self.get_optional("/admin/metrics", dict)

    def issuer(self) -> dict[str, Any] | None:
        """The issuer's figures from `/admin/metrics`, as the probe reads them at a batch edge:
        its finished counts (`completed`, `failed`), `queue` and `busy` workers, and
        `busy_share`; None when the target has no such figures."""
        m = self.metrics()
        try:
            r = m["resources"]["issuer"]  # type: ignore[index]
            return {"completed": int(r["completed"]), "failed": int(r.get("failed") or 0),
                    "queue": int(r["queue_depth"]), "busy": int(r["busy"]),
                    "busy_share": round(int(r["busy"]) / max(1, int(r["workers"])), 4)}
        except (TypeError, KeyError, ValueError, AttributeError):
            return None

    def config(self) -> dict[str, Any] | None:
        """`GET /admin/config`, or None."""
        return self.get_optional("/admin/config", dict)

    def set_gate(self, gate: str, mode: str, rate_per_s: float | None = None,
                 burst: int | None = None) -> Any:
        """`PUT /admin/gates/{gate}`."""
        body: dict[str, Any] = {"mode": mode}
        if mode == "rate":
            body.update(rate_per_s=float(rate_per_s or 0.0), burst=int(burst or 1))
        return self.send("PUT", f"/admin/gates/{gate}", body)

    def faults(self, **changes: Any) -> Any:
        """`POST /admin/faults`, e.g. `faults(issuer="pause")` or `faults(issuer_slow_factor=4)`."""
        return self.send("POST", "/admin/faults", changes)


ADMIN_MAX_BYTES = 256 << 20   # a big run's /admin/ledger or audit; anything larger is refused
ADMIN_SMALL_BYTES = 4 << 20   # metrics, config, gates, faults
PREFLIGHT_TIMEOUT_S = 5.0
_PREFLIGHT_MAX_BYTES = 1 << 20


def _endpoint(host: str) -> str:
    parts = urlsplit(host)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _preflight_get(host: str, path: str, token: str | None,
                   timeout_s: float) -> tuple[int, str, bytes]:
    """(status, content type, body) of one GET, or TargetError naming what went wrong and the
    fix."""
    client = JsonClient(host, token=token, deadline_s=timeout_s, max_bytes=_PREFLIGHT_MAX_BYTES)
    try:
        reply = client.request("GET", path)
    except DeadlineExceeded:
        raise TargetError(f"{host} did not answer GET {path} in full within {timeout_s:g} s; the "
                          f"target hangs or trickles: check that --host is the API (not a stuck "
                          f"proxy) and that it is not overloaded") from None
    except RedirectRefused as e:
        raise TargetError(f"{e}; give the API's own base URL as --host") from None
    except BodyTooLarge:
        raise TargetError(f"{host} answered GET {path} with more than {_PREFLIGHT_MAX_BYTES:,} "
                          f"bytes; it is not the stamping API: fix --host") from None
    except Unreachable as e:
        if "refused" in str(e):
            port = _endpoint(host).rsplit(":", 1)[1]
            raise TargetError(f"{host} refused the connection: nothing listens on "
                              f"{_endpoint(host)}; start the target (e.g. surgecast testbed "
                              f"--port {port}) or fix --host") from None
        raise TargetError(f"{host}: cannot reach it ({str(e).split(': ', 1)[-1]}); "
                          "fix --host") from None
    except HttpError as e:  # broken HTTP (e.g. not an HTTP server at all)
        raise TargetError(f"{host}: GET {path} failed ({str(e).split(': ', 1)[-1]}); check that "
                          f"--host is the target's HTTP API") from None
    return reply.status, reply.content_type, reply.body


def _json_or_none(ctype: str, body: bytes) -> Any:
    try:
        return json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None


def preflight(host: str, *, admin_token: str | None = None,
              timeout_s: float = PREFLIGHT_TIMEOUT_S) -> dict[str, Any] | None:
    """Check, before any load or file, that `host` answers its JSON API; return its `/admin/config`
    or None.

    `GET /healthz` must answer in full within `timeout_s` (a total deadline) with a
    JSON body (any status: a service without /healthz still answers a JSON 404), and
    without redirecting to another origin. With `admin_token`, `GET /admin/config`
    must not refuse the token (401/403); a target without an admin API (404) gives
    None. Everything else raises `TargetError` (exit 2) in one line naming the host,
    what was wrong and the fix::

        >>> import socket as s; sock = s.socket(); sock.bind(("127.0.0.1", 0))
        >>> port = sock.getsockname()[1]; sock.close()
        >>> preflight(f"http://127.0.0.1:{port}")  # doctest: +ELLIPSIS, +NORMALIZE_WHITESPACE
        Traceback (most recent call last):
        ...
        floor.errors.TargetError: http://127.0.0.1:... refused the connection: nothing listens on
        127.0.0.1:...; start the target (e.g. surgecast testbed --port ...) or fix --host
    """
    host = host.rstrip("/")
    status, ctype, body = _preflight_get(host, "/healthz", None, timeout_s)
    if _json_or_none(ctype, body) is None:
        kind = (ctype.split(";")[0].strip() or "no content type")
        raise TargetError(f"{host} answered GET /healthz with HTTP {status} {kind}, not JSON: "
                          f"it is not the stamping API; --host must be the API's base URL (e.g. "
                          f"http://127.0.0.1:8080), not a web page, login portal or proxy")
    if not admin_token:
        return None
    status, ctype, body = _preflight_get(host, "/admin/config", admin_token, timeout_s)
    if status in (401, 403):
        raise TargetError(f"{host} refused --admin-token on GET /admin/config (HTTP {status}); "
                          f"give the target's admin token, or leave --admin-token out for a target "
                          f"without an admin API")
    config = _json_or_none(ctype, body)
    if status == 200 and isinstance(config, dict):
        return config
    if status == 200:
        raise TargetError(f"{host} answered GET /admin/config with HTTP 200 but not a JSON object; "
                          "check --host")
    return None


def issuer_capacity(config: dict[str, Any] | None) -> float | None:
    """Stamps per second the target's issuer can serve, from its `/admin/config`.

    >>> issuer_capacity({"issuer": {"workers": 4, "service": {"mean": 0.25}}})
    16.0
    >>> issuer_capacity(None) is None
    True
    """
    try:
        issuer = config["issuer"]  # type: ignore[index]
        mean = float(issuer["service"]["mean"])
        workers = int(issuer["workers"])
    except (TypeError, KeyError, ValueError):
        return None
    return workers / mean if mean > 0 else None
