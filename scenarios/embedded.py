"""Start the embedded testbed for `locust -f locustfile.py` with no --host.

It runs `python -m surgecast testbed --port 0` as a subprocess and reads its URL
from the first stdout line: the target is reached only over HTTP, so nothing
here imports `testbed/`. (`surgecast rehearse` uses `testbed.process.TestbedServer`.)

    >>> cmd = testbed_command(admin_token="-t")  # the token goes in the environment, never on argv
    >>> cmd[1:4], any("-t" == a or "token" in a for a in cmd)
    (['-m', 'surgecast', 'testbed'], False)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading

from floor.children import child_env
from floor.errors import TargetError


def testbed_command(*, admin_token: str, db: str | None = None, extra: list[str] | None = None) -> list[str]:
    """The command line of an embedded testbed on a free loopback port."""
    cmd = [sys.executable, "-m", "surgecast", "testbed", "--host", "127.0.0.1", "--port", "0"]
    if db:
        cmd += ["--db", db]
    return cmd + list(extra or [])


class EmbeddedTestbed:
    """A testbed subprocess; `start()` returns its URL, `stop()` ends it."""

    def __init__(self, *, admin_token: str, extra: list[str] | None = None, timeout_s: float = 30.0) -> None:
        self.admin_token = admin_token
        self.extra = extra or []
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[str] | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="surgecast-embedded-")
        self.url = ""

    def start(self) -> str:
        """Start it and wait for the `listening on http://HOST:PORT` line."""
        db = os.path.join(self._dir.name, "testbed.sqlite")
        self.proc = subprocess.Popen(testbed_command(admin_token=self.admin_token, db=db, extra=self.extra),
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     start_new_session=True, env=child_env(self.admin_token))
        box: list[str] = []
        t = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        t.start()
        t.join(self.timeout_s)
        line = box[0] if box else ""
        if not line.startswith("listening on "):
            self.stop()
            raise TargetError(f"the embedded testbed did not start (first line {line!r}); "
                              "try `surgecast testbed --port 0` to see why")
        self.url = line.removeprefix("listening on ").strip()
        threading.Thread(target=self._drain, daemon=True).start()
        return self.url

    def _drain(self) -> None:
        if self.proc is not None and self.proc.stdout is not None:
            for _ in self.proc.stdout:
                pass

    def stop(self) -> None:
        """Terminate the testbed (SIGTERM, then SIGKILL after 10 s)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._dir.cleanup()
