"""Header-read timeout on the real server (uvicorn + httptools) on port 0, with raw sockets.

Issue 11: there was no header-read timeout; a client trickling header bytes held a
connection for ever (every byte reset uvicorn's keep-alive timer).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from testbed_fixtures import FAST

from testbed.process import TestbedServer

HEADER_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def tb() -> Iterator[TestbedServer]:
    with TestbedServer(
        extra_args=[*FAST, "--set", f"limits.header_timeout_s={HEADER_TIMEOUT_S}"]
    ) as server:
        yield server


def _connect(tb: TestbedServer) -> socket.socket:
    host, port = tb.url.removeprefix("http://").rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=0.25)


def test_trickled_headers_are_cut_off_with_408(tb: TestbedServer) -> None:
    s = _connect(tb)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    t0, reply, closed = time.monotonic(), b"", False
    while time.monotonic() - t0 < 8 * HEADER_TIMEOUT_S:  # the attacker never finishes its headers
        try:
            s.sendall(b"a")
            chunk = s.recv(4096)
            if not chunk:
                closed = True
                break
            reply += chunk
        except TimeoutError:
            continue
        except OSError:
            closed = True
            break
    elapsed = time.monotonic() - t0
    s.close()
    assert closed or reply, (
        f"the connection was still open after {elapsed:.1f} s of trickled headers"
    )
    assert elapsed < 4 * HEADER_TIMEOUT_S + 2
    if reply:
        assert reply.startswith(b"HTTP/1.1 408") and b"request_timeout" in reply


def _response(s: socket.socket) -> bytes:
    """One whole HTTP/1.1 response (headers and its
    Content-Length body): a recv may end mid-answer."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = s.recv(4096)
        assert chunk, f"connection closed mid-body after {data!r}"
        body += chunk
    return head + b"\r\n\r\n" + body


def test_an_idle_keep_alive_connection_still_serves_its_next_request(tb: TestbedServer) -> None:
    s = _connect(tb)
    s.settimeout(5)
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    s.sendall(request)
    assert _response(s).startswith(b"HTTP/1.1 200")
    time.sleep(HEADER_TIMEOUT_S * 1.5)  # idle between requests is the keep-alive timer's business
    s.sendall(request)
    assert _response(s).startswith(b"HTTP/1.1 200")
    s.close()


def test_many_slowloris_connections_do_not_starve_the_service(tb: TestbedServer) -> None:
    socks = [_connect(tb) for _ in range(50)]
    for s in socks:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    time.sleep(HEADER_TIMEOUT_S * 2.5)
    dropped = 0
    for s in socks:
        s.settimeout(1)
        try:
            s.sendall(b"X: y\r\n")
            data = s.recv(4096)
            dropped += (not data) or data.startswith(b"HTTP/1.1 408")
        except TimeoutError:
            pass  # still open, waiting for more headers: not dropped
        except OSError:
            dropped += 1  # reset by the server
        s.close()
    assert dropped == len(socks)
    fresh = _connect(tb)
    fresh.settimeout(5)
    fresh.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert fresh.recv(4096).startswith(b"HTTP/1.1 200")
    fresh.close()
