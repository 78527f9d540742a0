"""Bad live targets: a refused port, a server answering HTML, one that accepts and never answers,
and a refused admin token. `surgecast rehearse --host` and `surgecast probe --host` each answer one
line naming the host, what was wrong and the fix, exit 2, no traceback, and write nothing in --out.

Real sockets on loopback; the hanging target is a listening socket that never accepts (the kernel
completes the handshake, nobody reads), detected within the pre-flight's 5 s bound.
"""

from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios.target import PREFLIGHT_TIMEOUT_S
from testbed.process import TestbedServer

ROOT = Path(__file__).resolve().parents[1]


class _HtmlHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with a 200 HTML page, like a web server or a login portal."""

    def _page(self) -> None:
        body = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _page

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture(scope="module")
def html_target() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hanging_target() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)  # connections complete in the kernel's backlog; nobody ever reads them
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.fixture(scope="module")
def refused_target() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()               # nothing listens there now
    return f"http://127.0.0.1:{port}"


def _run(
    command: str, host: str, out: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    if command == "rehearse":
        args = [
            "rehearse",
            "--arrival-rate",
            "2",
            "--duration",
            "3",
            "--host",
            host,
            "--out",
            str(out),
            *extra,
        ]
    elif command == "locust":  # Locust's own entry: the same pre-flight from the locustfile
        t0 = time.monotonic()
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(ROOT / "locustfile.py"),
                "--headless",
                "--arrival-rate",
                "2",
                "--duration",
                "3",
                "--host",
                host,
                "--out",
                str(out),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        return r, time.monotonic() - t0
    else:
        args = [
            "probe",
            "--host",
            host,
            "--out",
            str(out),
            "--step-duration",
            "1",
            "--warmup",
            "0",
            *extra,
        ]
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "surgecast", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    return r, time.monotonic() - t0


def _assert_refused_cleanly(
    r: subprocess.CompletedProcess[str], host: str, out: Path, *words: str
) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    # Locust's own log lines ("[date] host/INFO/locust.main: ...") may come first under `locust -f`.
    err = "\n".join(
        line for line in r.stderr.strip().splitlines() if not line.startswith("[")
    ).strip()
    assert "Traceback" not in r.stderr + r.stdout
    assert err.count("\n") == 0, err  # one line
    assert err.startswith("TargetError: ") and host in err, err
    for w in words:
        assert w in err, (w, err)
    # nothing half-written: no directory, or an empty one (never a .tmp)
    assert not out.exists() or not any(out.rglob("*")), sorted(out.rglob("*"))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["rehearse", "probe", "locust"])
def test_refused_connection(tmp_path: Path, refused_target: str, command: str) -> None:
    out = tmp_path / "out"
    r, _ = _run(command, refused_target, out)
    _assert_refused_cleanly(r, refused_target, out, "refused the connection", "fix --host")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["rehearse", "probe", "locust"])
def test_html_instead_of_json(tmp_path: Path, html_target: str, command: str) -> None:
    out = tmp_path / "out"
    r, _ = _run(command, html_target, out, "--admin-token", "t0ken-for-html")
    _assert_refused_cleanly(
        r, html_target, out, "text/html", "not JSON", "--host must be the API's base URL"
    )


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["rehearse", "probe"])
def test_target_that_never_answers(tmp_path: Path, hanging_target: str, command: str) -> None:
    out = tmp_path / "out"
    r, elapsed = _run(command, hanging_target, out)
    _assert_refused_cleanly(r, hanging_target, out, f"within {PREFLIGHT_TIMEOUT_S:g} s", "hangs")
    # the bound holds: the pre-flight timeout plus interpreter start-up, not the run's duration
    assert elapsed < PREFLIGHT_TIMEOUT_S + 10, elapsed


@pytest.mark.timeout(60)
def test_wrong_admin_token_is_refused_before_any_load(tmp_path: Path) -> None:
    with TestbedServer(port=0, extra_args=["--set", "security.password_hash=pbkdf2"]) as tb:
        for command in ("rehearse", "probe"):
            out = tmp_path / command
            r, _ = _run(command, tb.url, out, "--admin-token", "not-the-token")
            _assert_refused_cleanly(r, tb.url, out, "--admin-token", "HTTP 401")
            assert "not-the-token" not in r.stderr  # the message never echoes a token
        # The real testbed passes the pre-flight: the same command gets past it (and fails later
        # only on what it is given, here nothing: no admin token is fine).
        from scenarios.target import preflight

        assert preflight(tb.url) is None
        assert preflight(tb.url, admin_token=tb.admin_token)["issuer"]["workers"] >= 1
