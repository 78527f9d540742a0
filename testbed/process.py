"""Run the testbed as a real subprocess: the API every other part (tests, demos,
benchmarks, rehearsals) uses to get a target::

    from testbed.process import TestbedServer
    with TestbedServer(port=0, extra_args=["--set", "issuer.workers=64"]) as tb:
        urllib.request.urlopen(tb.url + "/healthz")
        tb.kill(); tb.restart()            # kill -9, then the same db on the same port

``TestbedProcess`` is the same class (``__test__ = False`` keeps pytest off it).
Test-only: with ``SURGECAST_TESTBED_MUTANT=NAME`` in its environment it starts a deliberately
broken testbed (``python -m tests.mutants NAME testbed ...``) for the oracle's mutation tests
(docs/reliability.md); nothing else reads the variable.
``start`` waits for ``/healthz`` and raises ``TargetError`` (with the stderr
tail) if the server does not come up in time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import IO

from floor.children import child_env
from floor.errors import TargetError
from floor.jsonhttp import HttpError, JsonClient

START_TIMEOUT_S = 20.0
MUTANT_ENV = "SURGECAST_TESTBED_MUTANT"  # test-only, see TestbedServer.command


class TestbedServer:
    """A testbed subprocess (context manager); see the module docstring."""

    __test__ = False

    def __init__(self, *, port: int = 0, db: str | None = None, config: str | None = None,
                 admin_token: str | None = None, extra_args: list[str] | None = None,
                 env: Mapping[str, str] | None = None, host: str = "127.0.0.1",
                 start_timeout_s: float = START_TIMEOUT_S) -> None:
        self.host = host
        self.port = port
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None
        if db is None:
            self._tmpdir = tempfile.TemporaryDirectory(prefix="surgecast-tb-")
            db = os.path.join(self._tmpdir.name, "testbed.sqlite")
        self.db_path: str = db
        self.config = config
        self.admin_token: str = admin_token or secrets.token_hex(24)
        self.extra_args = list(extra_args or [])
        self.env = dict(os.environ if env is None else env)
        self.start_timeout_s = start_timeout_s
        self.url: str = ""
        self.proc: subprocess.Popen[str] | None = None
        self._stderr: deque[str] = deque(maxlen=200)
        self._stdout: deque[str] = deque(maxlen=200)

    # ---- lifecycle -------------------------------------------------------------
    def command(self) -> list[str]:
        """The command line that starts the server.

        >>> TestbedServer(db="/tmp/x.sqlite", admin_token="t").command()[1:4]
        ['-m', 'surgecast', 'testbed']
        """
        # Test-only: SURGECAST_TESTBED_MUTANT=NAME starts a deliberately broken testbed through
        # `python -m tests.mutants NAME testbed ...` (the mutation tests of the oracle; docs/reliability.md).
        # The admin token goes in the environment (SURGECAST_ADMIN_TOKEN), never on argv: ps shows argv.
        mutant = self.env.get(MUTANT_ENV)
        launcher = ["tests.mutants", mutant] if mutant else ["surgecast"]
        cmd = [sys.executable, "-m", *launcher, "testbed", "--host", self.host, "--port", str(self.port),
               f"--db={self.db_path}"]
        if self.config:
            cmd.append(f"--config={self.config}")
        return cmd + self.extra_args

    def start(self) -> TestbedServer:
        """Start the process, read its URL from the first stdout line, wait for /healthz."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        self._stderr.clear()
        env = child_env(self.admin_token, base=self.env)  # and it stops itself if this process dies
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=env, start_new_session=True)
        threading.Thread(target=self._drain, args=(self.proc.stderr, self._stderr), daemon=True).start()
        first = self._first_line(self.start_timeout_s)
        if not first.startswith("listening on "):
            self._fail(f"first stdout line was {first!r}, not 'listening on http://HOST:PORT'")
        self.url = first.removeprefix("listening on ").strip()
        self.port = int(self.url.rsplit(":", 1)[1])
        threading.Thread(target=self._drain, args=(self.proc.stdout, self._stdout), daemon=True).start()
        self._wait_healthy(time.monotonic() + self.start_timeout_s)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL if it does not exit in time."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the server (kill -9): nothing gets to flush or shut down."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def restart(self) -> TestbedServer:
        """Start again on the same database, on the same port if it is free."""
        self.stop()
        self.proc = None
        try:
            return self.start()
        except TargetError:
            self.port = 0
            self.proc = None
            return self.start()

    def __enter__(self) -> TestbedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()

    @property
    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr."""
        return "".join(self._stderr)

    # ---- internals ------------------------------------------------------------------
    @staticmethod
    def _drain(stream: IO[str] | None, sink: deque[str]) -> None:
        if stream is None:
            return
        with contextlib.suppress(ValueError, OSError):
            for line in stream:
                sink.append(line)
            stream.close()

    def _first_line(self, timeout_s: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout_s)
        if not box or not box[0]:
            self._fail("no 'listening on' line" + (" (it exited)" if self.proc.poll() is not None
                                                     else f" within {timeout_s:.0f} s"))
        return box[0]

    def _wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                self._fail("the server exited")
            try:
                if JsonClient(self.url, deadline_s=2.0).request("GET", "/healthz").status == 200:
                    return
            except HttpError:
                pass
            time.sleep(0.05)
        self._fail("GET /healthz did not answer 200 in time")

    def _fail(self, why: str) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        time.sleep(0.1)  # let the stderr reader catch up
        tail = self.stderr_tail.strip().splitlines()[-15:]
        if proc is not None:
            threading.Thread(target=self._drain, args=(proc.stdout, self._stdout), daemon=True).start()
        raise TargetError(f"testbed did not start: {why}; command: {' '.join(self.command())}; "
                          f"stderr tail: {' | '.join(tail) or '(empty)'}")


TestbedProcess = TestbedServer
