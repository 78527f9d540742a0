"""`JsonClient(keep_alive=True)`: GETs share one connection, nothing else does, and a kept
connection the server closed while idle costs a resend, never an error.

Against a real HTTP/1.1 server on a loopback port of its own (the standard library's), which
records the client port of every request it answers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from floor.jsonhttp import JsonClient


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    ports: list[tuple[str, int]]
    close_after_answer = False  # drop the connection silently after each answer
    say_close = False  # answer with "Connection: close"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def _answer(self) -> None:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.server.ports.append((self.command, self.client_address[1]))
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if self.server.say_close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        if self.server.close_after_answer:
            self.close_connection = True

    do_GET = do_POST = _answer

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _Server(("127.0.0.1", 0), _Handler)
    s.ports = []
    t = threading.Thread(target=s.serve_forever, daemon=True)
    t.start()
    yield s
    s.shutdown()
    s.server_close()


def _url(s: _Server) -> str:
    return f"http://127.0.0.1:{s.server_address[1]}"


def test_gets_share_one_connection_only_when_kept_alive(server: _Server) -> None:
    kept = JsonClient(_url(server), keep_alive=True)
    for _ in range(4):
        assert kept.request("GET", "/admin/metrics").json() == {"ok": True}
    kept.close()
    assert len({p for _m, p in server.ports}) == 1
    # ... and the check can fail: the default client opens one connection per request
    server.ports.clear()
    plain = JsonClient(_url(server))
    for _ in range(4):
        plain.request("GET", "/admin/metrics")
    assert len({p for _m, p in server.ports}) == 4


def test_a_post_never_rides_a_kept_connection(server: _Server) -> None:
    c = JsonClient(_url(server), keep_alive=True)
    c.request("GET", "/a")
    c.request("POST", "/admin/faults", json_body={"issuer": "pause"})
    c.request("GET", "/b")
    c.close()
    (g1, p1), (post, p2), (g2, p3) = server.ports
    assert (g1, post, g2) == ("GET", "POST", "GET")
    assert p1 == p3 != p2


def test_a_connection_closed_while_idle_is_resent_afresh(server: _Server) -> None:
    server.close_after_answer = True  # closed after each answer, without saying so
    c = JsonClient(_url(server), keep_alive=True)
    for _ in range(3):
        assert c.request("GET", "/admin/metrics").status == 200
    c.close()
    assert len(server.ports) == 3 and len({p for _m, p in server.ports}) == 3


def test_an_answer_saying_close_is_not_kept(server: _Server) -> None:
    server.say_close = True
    c = JsonClient(_url(server), keep_alive=True)
    for _ in range(3):
        c.request("GET", "/x")
    assert (
        c.kept is not None and c.kept.take(("http", "127.0.0.1", server.server_address[1])) is None
    )
    assert len({p for _m, p in server.ports}) == 3


def test_close_ends_the_kept_connection(server: _Server) -> None:
    c = JsonClient(_url(server), keep_alive=True)
    c.request("GET", "/x")
    c.close()
    c.request("GET", "/y")
    c.close()
    assert len({p for _m, p in server.ports}) == 2
