"""Is an address loopback? One answer for the harness (a --host URL) and the testbed (a bind
address).

    >>> is_loopback("http://127.0.0.1:8080"), is_loopback("http://[::1]:80"), is_loopback("https://example.com")
    (True, True, False)
    >>> [is_loopback(a) for a in ("127.9.9.9", "::1", "localhost", "0.0.0.0")]
    [True, True, True, False]
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback"]

_NAMES = ("localhost", "localhost.localdomain")


def is_loopback(address: str) -> bool:
    """True when ``address`` (a URL, or a bare host or IP) is 127.0.0.0/8, ::1 or localhost."""
    host: str | None = address
    if "://" in address:
        try:
            host = urlsplit(address).hostname
        except ValueError:
            return False
    if not host:
        return False
    if host.lower() in _NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
