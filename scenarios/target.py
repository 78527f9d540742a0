"""The target: the loopback safety check and a small client for its admin API.

Load goes only to loopback unless the user says otherwise::

    >>> is_loopback("http://127.0.0.1:8080"), is_loopback("http://[::1]:80"), is_loopback("https://example.com")
    (True, True, False)
    >>> check_host("https://example.com", allow_remote=False)
    Traceback (most recent call last):
    ...
    surgecast.errors.FieldError: --host = 'https://example.com': not a loopback address; load goes only to 127.0.0.0/8, ::1 or localhost unless you add --allow-remote

The admin client uses only the standard library (urllib), so it works both in
the command's process and inside Locust (where gevent patches sockets).
"""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from surgecast.errors import FieldError, TargetError


def is_loopback(url: str) -> bool:
    """True when `url`'s host is 127.0.0.0/8, ::1 or localhost."""
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(url: str, *, allow_remote: bool) -> str:
    """Validate `--host`: an http(s) URL, loopback unless `allow_remote`. Returns it without a trailing slash.

    >>> check_host("http://localhost:8080/", allow_remote=False)
    'http://localhost:8080'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FieldError("--host", url, "give a URL such as http://127.0.0.1:8080")
    if not allow_remote and not is_loopback(url):
        raise FieldError("--host", url, "not a loopback address; load goes only to 127.0.0.0/8, ::1 "
                                        "or localhost unless you add --allow-remote")
    return url.rstrip("/")


class AdminClient:
    """The target's admin API (`/admin/...`), or None-returning calls when it has none.

    >>> c = AdminClient("http://127.0.0.1:9", token="t", timeout=0.2)
    >>> c.get_optional("/admin/config") is None
    True
    """

    def __init__(self, host: str, *, token: str | None, timeout: float = 5.0) -> None:
        self.host = host.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.host + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 (checked host)
            raw = resp.read()
        return json.loads(raw) if raw else None

    def get(self, path: str) -> Any:
        """GET an admin path; raise TargetError when it fails."""
        try:
            return self._request("GET", path)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise TargetError(f"GET {self.host}{path} failed ({e}); check --host and --admin-token") from None

    def get_optional(self, path: str) -> Any:
        """GET an admin path; None when the target has no admin API or refuses."""
        try:
            return self._request("GET", path)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def send(self, method: str, path: str, body: Any) -> Any:
        """PUT/POST an admin change; raise TargetError when it fails."""
        try:
            return self._request(method, path, body)
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise TargetError(f"{method} {self.host}{path} failed ({e}); check --admin-token") from None

    def metrics(self) -> dict[str, Any] | None:
        """`GET /admin/metrics`, or None."""
        return self.get_optional("/admin/metrics")

    def config(self) -> dict[str, Any] | None:
        """`GET /admin/config`, or None."""
        return self.get_optional("/admin/config")

    def set_gate(self, gate: str, mode: str, rate_per_s: float | None = None, burst: int | None = None) -> Any:
        """`PUT /admin/gates/{gate}`."""
        body: dict[str, Any] = {"mode": mode}
        if mode == "rate":
            body.update(rate_per_s=float(rate_per_s or 0.0), burst=int(burst or 1))
        return self.send("PUT", f"/admin/gates/{gate}", body)

    def faults(self, **changes: Any) -> Any:
        """`POST /admin/faults`, e.g. `faults(issuer="pause")` or `faults(issuer_slow_factor=4)`."""
        return self.send("POST", "/admin/faults", changes)


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
