"""One child-process launcher: a server whose first stdout line is ``listening on URL``.

It starts the child in its own session (a Ctrl-C to the harness does not reach it twice),
reads the URL from the first line within a deadline, keeps the last lines of stderr for the
message when something goes wrong, and stops it (SIGTERM, then SIGKILL) or kills it (kill -9)::

    >>> import sys
    >>> code = "import time; print('listening on http://127.0.0.1:9', flush=True); time.sleep(60)"
    >>> child = ListeningChild([sys.executable, "-c", code], name="echo")
    >>> child.start()
    'http://127.0.0.1:9'
    >>> child.stop(); child.running
    False

A child that never says where it listens is a TargetError with its stderr tail::

    >>> dud = ListeningChild([sys.executable, "-c", "import sys; sys.exit('boom')"], name="dud")
    >>> dud.start()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.TargetError: dud did not start: no 'listening on' line (it exited); ...boom
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import IO

from floor.errors import TargetError

__all__ = ["LISTENING", "ListeningChild"]

LISTENING = "listening on "
"""The first stdout line of a server child: ``listening on http://HOST:PORT``."""


class ListeningChild:
    """A server child process: ``start()`` returns its URL; ``stop()``, ``kill()``,
    ``stderr_tail``."""

    def __init__(
        self,
        command: list[str],
        *,
        env: Mapping[str, str] | None = None,
        name: str = "child",
        start_timeout_s: float = 20.0,
        keep_lines: int = 200,
    ) -> None:
        self.command = list(command)
        self.env = None if env is None else dict(env)
        self.name = name
        self.start_timeout_s = start_timeout_s
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self._stderr: deque[str] = deque(maxlen=keep_lines)
        self._stdout: deque[str] = deque(maxlen=keep_lines)

    @property
    def running(self) -> bool:
        """True while the child process lives."""
        return self.proc is not None and self.proc.poll() is None

    @property
    def stderr_tail(self) -> str:
        """The last lines the child wrote to stderr."""
        return "".join(self._stderr)

    def start(self) -> str:
        """Start the child and return the URL of its first stdout line (TargetError if it does not
        come)."""
        self._stderr.clear()
        self.proc = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
            start_new_session=True,
        )
        threading.Thread(target=_drain, args=(self.proc.stderr, self._stderr), daemon=True).start()
        first = self._first_line()
        if not first.startswith(LISTENING):
            self.fail(f"first stdout line was {first!r}, not 'listening on http://HOST:PORT'")
        self.url = first.removeprefix(LISTENING).strip()
        threading.Thread(target=_drain, args=(self.proc.stdout, self._stdout), daemon=True).start()
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL if it does not exit in time."""
        if self.running:
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL the child (kill -9): nothing gets to flush or shut down."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(5)

    def fail(self, why: str) -> None:
        """Kill the child and raise TargetError naming ``why``, the command and the stderr tail."""
        proc = self.proc
        self.kill()
        time.sleep(0.1)  # let the stderr reader catch up
        tail = self.stderr_tail.strip().splitlines()[-15:]
        if proc is not None:
            threading.Thread(target=_drain, args=(proc.stdout, self._stdout), daemon=True).start()
        raise TargetError(
            f"{self.name} did not start: {why}; command: {' '.join(self.command)}; "
            f"stderr tail: {' | '.join(tail) or '(empty)'}"
        )

    def _first_line(self) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        stdout = self.proc.stdout
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(self.start_timeout_s)
        if not box or not box[0]:
            if box:  # end of its output: the child is exiting; reap it before saying which
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
            self.fail(
                "no 'listening on' line"
                + (
                    " (it exited)"
                    if self.proc.poll() is not None
                    else f" within {self.start_timeout_s:.0f} s"
                )
            )
        return box[0]


def _drain(stream: IO[str] | None, sink: deque[str]) -> None:
    if stream is None:
        return
    with contextlib.suppress(ValueError, OSError):
        for line in stream:
            sink.append(line)
        stream.close()
