"""Security beyond tests/test_testbed_security.py (which covers cross-applicant 404s, admin tokens,
an over-long Content-Length and a chunked upload past the limit):

* slow bodies: a body trickled byte by byte, with or without Content-Length, is answered 408 and
  disconnected within `limits.body_timeout_s`, while other clients are served meanwhile;
* a JSON body past `limits.max_json_bytes` without Content-Length (chunked) is cut off early;
* secrets: after a real rehearsal and `surgecast report`, no applicant's password, no session
  token and not the admin token appear in any file of the run directory (locust CSVs and log,
  report.html included) nor in the commands' stdout/stderr.

Real testbed processes on loopback; every socket has a timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from testbed_fixtures import FAST, Client, register_and_login, send_chunks_until_answer

from floor.rundir.files import read_ledger_rows
from scenarios.identities import make_identity
from testbed.passwords import verify_password
from testbed.process import TestbedServer

ROOT = Path(__file__).resolve().parents[1]
UPLOAD_LIMIT = 64 * 1024
BODY_TIMEOUT_S = 2.0
JSON_LIMIT = 16 * 1024


@pytest.fixture(scope="module")
def tb() -> Iterator[TestbedServer]:
    args = [*FAST, "--set", f"limits.max_upload_bytes={UPLOAD_LIMIT}",
            "--set", f"limits.body_timeout_s={BODY_TIMEOUT_S}"]
    with TestbedServer(extra_args=args) as server:
        yield server


@pytest.fixture(scope="module")
def token(tb: TestbedServer) -> str:
    t, *_ = register_and_login(Client(tb.url))
    return t


def _open(tb: TestbedServer, head: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", tb.port), timeout=5)
    s.sendall(head.encode())
    return s


def _trickle(
    s: socket.socket, piece: bytes, every_s: float, bound_s: float
) -> tuple[bytes, float, int]:
    """Send `piece` every `every_s` until the server
    answers or closes; (reply, seconds, bytes sent)."""
    s.settimeout(every_s)
    t0, reply, sent = time.monotonic(), b"", 0
    while time.monotonic() - t0 < bound_s:
        try:
            s.sendall(piece)
            sent += len(piece)
        except OSError:
            break
        try:
            data = s.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            break
        if not data:
            break
        reply += data
        if b"\r\n\r\n" in reply:
            break
    with contextlib.suppress(OSError):
        s.settimeout(2)
        while data := s.recv(4096):  # then the server closes the connection
            reply += data
    return reply, time.monotonic() - t0, sent


def _closed(s: socket.socket) -> bool:
    s.settimeout(2)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@pytest.mark.timeout(60)
def test_slow_upload_with_content_length_is_cut_off_in_bounded_time(
    tb: TestbedServer, token: str
) -> None:
    head = (
        f"POST /v1/stamps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nIdempotency-Key: "
        f"slow-{secrets.token_hex(4)}\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f'Content-Length: {UPLOAD_LIMIT}\r\n\r\n--b\r\nContent-Disposition: form-data; '
        'name="document"; filename="a.pdf"\r\n\r\n%PDF-1.4\n'
    )
    s = _open(tb, head)
    # Meanwhile the service answers everyone else (the slow client holds no lock, no loop).
    healthy: list[float] = []

    def probe() -> None:
        time.sleep(0.5)
        t0 = time.monotonic()
        with urllib.request.urlopen(tb.url + "/healthz", timeout=5) as r:
            assert r.status == 200
        healthy.append(time.monotonic() - t0)

    t = threading.Thread(target=probe)
    t.start()
    reply, seconds, sent = _trickle(s, b"x", 0.1, bound_s=BODY_TIMEOUT_S + 8)
    t.join(10)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b'"request_timeout"' in reply and b'"field":"document"' in reply
    assert BODY_TIMEOUT_S - 0.5 <= seconds <= BODY_TIMEOUT_S + 3, (
        seconds
    )  # answered at the bound, not never
    assert sent < 100  # we sent a few dozen bytes
    assert _closed(s)
    s.close()
    assert healthy and healthy[0] < 1.0
    assert (
        Client(tb.url).get("/v1/quota", token=token).json["reserved"] == 0
    )  # nothing was accepted


@pytest.mark.timeout(60)
def test_slow_chunked_json_without_content_length_is_cut_off(tb: TestbedServer) -> None:
    s = _open(
        tb,
        "POST /v1/accounts HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
    )
    reply, seconds, _ = _trickle(s, b"1\r\n \r\n", 0.1, bound_s=BODY_TIMEOUT_S + 8)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert seconds <= BODY_TIMEOUT_S + 3
    assert _closed(s)
    s.close()


@pytest.mark.timeout(60)
def test_many_slow_clients_are_all_dropped_and_the_service_stays_up(tb: TestbedServer) -> None:
    socks = [
        _open(
            tb,
            "POST /v1/sessions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{",
        )
        for _ in range(40)
    ]
    t0 = time.monotonic()
    c = Client(tb.url, timeout=5)
    assert c.get("/healthz").status == 200 and time.monotonic() - t0 < 1.5
    deadline = t0 + BODY_TIMEOUT_S + 5
    replies = []
    for s in socks:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            replies.append(s.recv(4096))
        except TimeoutError:
            replies.append(b"")
        s.close()
    assert all(r.startswith(b"HTTP/1.1 408") for r in replies), [
        r[:40] for r in replies if not r.startswith(b"HTTP/1.1 408")
    ][:3]


@pytest.mark.timeout(60)
def test_chunked_json_past_the_limit_is_refused_before_the_end(tb: TestbedServer) -> None:
    s = _open(
        tb,
        "POST /v1/accounts HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
    )
    chunk = b'{"name": "' + b"x" * 4000
    s.settimeout(0.05)
    sent, reply = send_chunks_until_answer(s, chunk, 200 * JSON_LIMIT)  # we would send 3 MiB
    assert reply.startswith(b"HTTP/1.1 413"), reply[:120]
    assert sent <= 8 * JSON_LIMIT, sent  # refused soon after the limit


# ---- secrets never reach the run directory -----------------------------------------------------
TOKEN_RE = re.compile(
    rb"[A-Za-z0-9_-]{43}"
)  # secrets.token_urlsafe(32), the testbed's session tokens


def _session_tokens_in(data: bytes, digests: set[str]) -> set[str]:
    return {m.decode() for m in TOKEN_RE.findall(data) if hashlib.sha256(m).hexdigest() in digests}


def _passwords(out: Path, seed: int, db_path: str) -> dict[str, str]:
    """Each applicant's password, regenerated from the seed, checked against the server's hash."""
    hashes = dict(sqlite3.connect(db_path).execute("SELECT email, password_hash FROM accounts"))
    found: dict[str, str] = {}
    for row in read_ledger_rows(out / "ledger.csv"):
        email = row["email"]
        if row["kind"] != "account" or not email or email in found:
            continue
        aid = row["applicant_id"]
        worker, index = aid.split("-")
        tag = email.split("@")[0].rsplit(".", 1)[1]
        ident = make_identity(
            random.Random(f"{seed}:{int(worker)}:{int(index) - 1}"), applicant_id=aid, run_tag=tag
        )
        assert ident.email == email
        assert verify_password(ident.password, hashes[email])  # really the password the server has
        found[email] = ident.password
    return found


@pytest.mark.timeout(120)
def test_no_password_or_token_in_the_run_directory_or_output(tmp_path: Path) -> None:
    admin_token = "adm-" + secrets.token_urlsafe(24)
    out = tmp_path / "run"
    seed = 5
    fast = [
        "--set",
        "security.password_hash=pbkdf2",
        "--set",
        "security.pbkdf2_iterations=1000",
        "--set",
        "issuer.workers=16",
        "--set",
        "issuer.service.mean=0.02",
    ]
    with TestbedServer(port=0, admin_token=admin_token, extra_args=fast) as tb:
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "surgecast",
                "rehearse",
                "--arrival-rate",
                "4",
                "--duration",
                "4",
                "--host",
                tb.url,
                f"--admin-token={admin_token}",
                "--seed",
                str(seed),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=ROOT,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        rep = subprocess.run(
            [sys.executable, "-m", "surgecast", "report", str(out)],
            capture_output=True,
            text=True,
            timeout=90,
            cwd=ROOT,
        )
        assert rep.returncode == 0, rep.stderr[-2000:]
        digests = {d for (d,) in sqlite3.connect(tb.db_path).execute("SELECT token FROM sessions")}
        passwords = _passwords(out, seed, tb.db_path)
    files = [p for p in out.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {
        "report.html",
        "locust.log",
        "locust_stats.csv",
        "locust_failures.csv",
        "ledger.csv",
        "run.json",
        "server_ledger.json",
    } <= names, names
    assert len(passwords) >= 8 and len(digests) >= len(passwords)  # every applicant logged in
    # Positive control: the scanners do find a planted secret.
    planted = secrets.token_urlsafe(32)
    assert _session_tokens_in(
        b"Bearer " + planted.encode(), {hashlib.sha256(planted.encode()).hexdigest()}
    )
    blobs = [(p.name, p.read_bytes()) for p in files]
    blobs += [
        ("rehearse stdout", r.stdout.encode()),
        ("rehearse stderr", r.stderr.encode()),
        ("report stdout", rep.stdout.encode()),
        ("report stderr", rep.stderr.encode()),
    ]
    for name, data in blobs:
        assert admin_token.encode() not in data, f"the admin token is in {name}"
        leaked = [pw for pw in passwords.values() if pw.encode() in data]
        assert not leaked, f"{len(leaked)} applicant passwords are in {name}"
        tokens = _session_tokens_in(data, digests)
        assert not tokens, f"{len(tokens)} session tokens are in {name}"
    run = json.loads((out / "run.json").read_text())
    assert "admin_token" not in json.dumps(run)
