"""A misbehaving front for a real testbed, on loopback: per path prefix it forwards,
redirects to another origin, trickles, answers a huge or wrong-typed body, or a status; and
a `Sink` (another origin: another port on 127.0.0.1) that records every request it gets,
with its Authorization header.

    with TestbedServer(port=0) as tb, Sink() as sink:
        with FaultyFront(tb.url, {"/admin/metrics": ("redirect", sink.url)}) as front:
            ...  # run the harness against front.url; afterwards sink.requests must be empty
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import time
from typing import Any
from urllib.parse import urlsplit

Rule = tuple[Any, ...]


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Sink:
    """Another origin that records (method, path,
    Authorization) of every request and answers JSON {}."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str]] = []
        sink = self

        class H(http.server.BaseHTTPRequestHandler):
            def _any(self) -> None:
                sink.requests.append(
                    (self.command, self.path, self.headers.get("Authorization", ""))
                )
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                body = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, *_a: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Sink:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_e: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class FaultyFront:
    """Forwards to `upstream` except where a rule (longest matching path prefix) says otherwise.

    Rules: ("redirect", base) 302 to base + path; ("trickle", every_s) a JSON 200 whose
    body comes one byte every `every_s`; ("huge", n_bytes) a chunked JSON 200 of n_bytes;
    ("json", value) a 200 with that JSON; ("status", code) that status with a JSON body.
    """

    def __init__(self, upstream: str, rules: dict[str, Rule]) -> None:
        self.upstream = urlsplit(upstream)
        self.rules = rules
        self.hits: dict[str, int] = {}
        front = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                rule = front.rule_for(self.path)
                front.hits[self.path.split("?")[0]] = front.hits.get(self.path.split("?")[0], 0) + 1
                try:
                    if rule is None:
                        self._forward(body)
                    else:
                        getattr(self, "_" + rule[0])(*rule[1:])
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def _send(
                self,
                code: int,
                payload: bytes,
                ctype: str = "application/json",
                extra: dict[str, str] | None = None,
            ) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, body: bytes) -> None:
                u = front.upstream
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
                }
                conn.request(self.command, self.path, body=body or None, headers=headers)
                r = conn.getresponse()
                data = r.read()
                self._send(
                    r.status,
                    data,
                    r.getheader("Content-Type", "application/json"),
                    {k: v for k, v in r.getheaders() if k.lower() in ("retry-after", "location")},
                )
                conn.close()

            def _redirect(self, base: str) -> None:
                self._send(302, b"{}", extra={"Location": base + self.path})

            def _trickle(self, every_s: float) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.flush()
                end = time.monotonic() + 120
                while time.monotonic() < end:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(every_s)
                self.close_connection = True

            def _huge(self, n_bytes: int) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                block = b" " * (1 << 20)
                sent = 0
                while sent < n_bytes:
                    self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                    sent += len(block)
                self.wfile.write(b"0\r\n\r\n")

            def _json(self, value: Any) -> None:
                self._send(200, json.dumps(value).encode())

            def _status(self, code: int) -> None:
                self._send(code, b'{"error": "injected"}')

            def log_message(self, *_a: object) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def rule_for(self, path: str) -> Rule | None:
        """The rule of the longest prefix of `path`, or None (forward)."""
        best = [p for p in self.rules if path.startswith(p)]
        return self.rules[max(best, key=len)] if best else None

    def __enter__(self) -> FaultyFront:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_e: object) -> None:
        self.server.shutdown()
        self.server.server_close()
