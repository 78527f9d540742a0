"""Helpers for the testbed tests: a tiny HTTP client, identities, PDFs, multipart bodies.

Tests import these directly (no conftest magic)::

    from tests.testbed_fixtures import Client, register_and_login
    with TestbedServer() as tb:
        c = Client(tb.url); token = register_and_login(c, 1)
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import secrets
import socket
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from testbed.pdf import stamped_pdf

FAST = ["--set", "security.password_hash=pbkdf2", "--set", "security.pbkdf2_iterations=1000"]
# well-formed one-page PDFs (the testbed checks the
# structure: header, xref, trailer, catalog, pages)
PDF = stamped_pdf(b"fixture letter", serial="FIXTURE", stamp_id="stp_fixture")
PDF_OTHER = stamped_pdf(b"another letter", serial="FIXTURE", stamp_id="stp_fixture")
_seq = itertools.count(1)


@dataclass
class Reply:
    """One HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes
    json: Any = field(default=None)


class Client:
    """A blocking HTTP/1.1 client on one keep-alive connection."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.timeout = u.hostname or "127.0.0.1", u.port or 80, timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, *, body: bytes | None = None, json_body: Any = None,
                token: str | None = None, headers: dict[str, str] | None = None) -> Reply:
        h = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body).encode()
            h.setdefault("Content-Type", "application/json")
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=h)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        if r.getheader("connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        rep = Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        if rep.headers.get("content-type", "").startswith("application/json"):
            rep.json = json.loads(data)
        return rep

    def get(self, path: str, **kw: Any) -> Reply:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Reply:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> Reply:
        return self.request("PUT", path, **kw)


def nik(n: int, woman: bool = False) -> str:
    """A valid NIK, different for each n."""
    day = 1 + n % 28 + (40 if woman else 0)
    return f"3171{n % 100:02d}{day:02d}0899{n % 10000:04d}"


def identity(n: int | None = None) -> dict[str, str]:
    """A registration body with a unique email."""
    n = next(_seq) if n is None else n
    tag = secrets.token_hex(4)
    return {"nik": nik(n), "name": f"Pelamar {n}", "email": f"p{n}.{tag}@example.id",
            "phone": "081234567890", "password": "rahasia-123"}


def register_and_login(c: Client, n: int | None = None) -> tuple[str, str, str]:
    """Register a fresh applicant and log in; return (token, account_id, email)."""
    ident = identity(n)
    r = c.post("/v1/accounts", json_body=ident)
    assert r.status == 201, r.json
    s = c.post("/v1/sessions", json_body={"email": ident["email"], "password": ident["password"]})
    assert s.status == 200, s.json
    return s.json["token"], r.json["account_id"], ident["email"]


def multipart(fields: Iterable[tuple[str, str | None, bytes]]) -> tuple[bytes, str]:
    """Encode (name, filename-or-None, data) parts; return (body, content type)."""
    boundary = "surgecast" + secrets.token_hex(8)
    out = bytearray()
    for name, filename, data in fields:
        out += f"--{boundary}\r\n".encode()
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"Content-Disposition: {disp}\r\n".encode()
        if filename:
            out += b"Content-Type: application/pdf\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def stamp(c: Client, token: str, key: str, doc: bytes = PDF) -> Reply:
    """POST /v1/stamps with one document."""
    body, ctype = multipart([("document", "surat.pdf", doc)])
    return c.post(
        "/v1/stamps",
        body=body,
        token=token,
        headers={"Content-Type": ctype, "Idempotency-Key": key},
    )


def buy(c: Client, token: str, quantity: int, key: str | None = None) -> str:
    """Order and pay; return the order id (payment still confirming)."""
    r = c.post(
        "/v1/orders",
        json_body={"quantity": quantity},
        token=token,
        headers={"Idempotency-Key": key or secrets.token_hex(8)},
    )
    assert r.status == 201, r.json
    p = c.post(f"/v1/orders/{r.json['order_id']}/pay", token=token)
    assert p.status == 202, p.json
    return r.json["order_id"]


def wait_for(pred: Callable[[], Any], timeout: float = 15.0, every: float = 0.05) -> Any:
    """Poll ``pred`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(every)


def admin(c: Client, tb: Any, method: str, path: str, body: Any = None) -> Reply:
    """An admin request with the testbed's admin token."""
    return c.request(method, path, json_body=body, token=tb.admin_token)


def send_chunks_until_answer(s: socket.socket, chunk: bytes, max_bytes: int) -> tuple[int, bytes]:
    """Send `chunk` as HTTP chunks until the server answers or `max_bytes` went out; (sent, reply).

    The socket should have a short timeout, so each round checks for an early answer.
    """
    sent, reply = 0, b""
    try:
        while sent < max_bytes and not reply:
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            with contextlib.suppress(TimeoutError):
                reply = s.recv(4096)
    except OSError:
        pass  # the server closed the connection after answering
    if not reply:
        s.settimeout(5)
        reply = s.recv(4096)
    s.close()
    return sent, reply
