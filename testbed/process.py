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

import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Mapping

from floor.children import child_env, python_module
from floor.errors import TargetError
from floor.jsonhttp import HttpError, JsonClient
from floor.launcher import ListeningChild

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
        self._child: ListeningChild | None = None

    # ---- lifecycle -------------------------------------------------------------
    def command(self) -> list[str]:
        """The command line that starts the server (``python -m testbed``, never the command
        package).

        >>> TestbedServer(db="/tmp/x.sqlite", admin_token="t").command()[1:5]
        ['-P', '-m', 'testbed', '--host']
        """
        # Test-only: SURGECAST_TESTBED_MUTANT=NAME starts a deliberately broken testbed through
        # `python -m tests.mutants NAME testbed ...` (the mutation tests of the oracle;
        # docs/reliability.md). The admin token goes in the environment (SURGECAST_ADMIN_TOKEN),
        # never on argv: ps shows argv.
        mutant = self.env.get(MUTANT_ENV)
        launcher = ["tests.mutants", mutant, "testbed"] if mutant else ["testbed"]
        cmd = [
            *python_module(launcher[0]),
            *launcher[1:],
            "--host",
            self.host,
            "--port",
            str(self.port),
            f"--db={self.db_path}",
        ]
        if self.config:
            cmd.append(f"--config={self.config}")
        return cmd + self.extra_args

    @property
    def proc(self) -> subprocess.Popen[str] | None:
        """The server process (None before the first start)."""
        return self._child.proc if self._child is not None else None

    def start(self) -> TestbedServer:
        """Start the process, read its URL from the first stdout line, wait for /healthz."""
        if self._child is not None and self._child.running:
            return self
        env = child_env(self.admin_token, base=self.env)  # and it stops itself if this process dies
        self._child = ListeningChild(
            self.command(), env=env, name="testbed", start_timeout_s=self.start_timeout_s
        )
        self.url = self._child.start()
        self.port = int(self.url.rsplit(":", 1)[1])
        self._wait_healthy(time.monotonic() + self.start_timeout_s)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL if it does not exit in time."""
        if self._child is not None:
            self._child.stop(timeout_s)

    def kill(self) -> None:
        """SIGKILL the server (kill -9): nothing gets to flush or shut down."""
        if self._child is not None:
            self._child.kill()

    def restart(self) -> TestbedServer:
        """Start again on the same database, on the same port if it is free."""
        self.stop()
        self._child = None
        try:
            return self.start()
        except TargetError:
            self.port = 0
            self._child = None
            return self.start()

    def close(self) -> None:
        """Stop the server and remove the temporary database it made (if it made one)."""
        self.stop()
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> TestbedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def stderr_tail(self) -> str:
        """The last lines the server wrote to stderr."""
        return self._child.stderr_tail if self._child is not None else ""

    # ---- internals ------------------------------------------------------------------
    def _wait_healthy(self, deadline: float) -> None:
        assert self._child is not None
        while time.monotonic() < deadline:
            if not self._child.running:
                self._child.fail("the server exited")
            try:
                if JsonClient(self.url, deadline_s=2.0).request("GET", "/healthz").status == 200:
                    return
            except HttpError:
                pass
            time.sleep(0.05)
        self._child.fail("GET /healthz did not answer 200 in time")


TestbedProcess = TestbedServer
