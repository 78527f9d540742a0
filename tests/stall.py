"""Stop a child process now and then, as an overloaded machine stops it (SIGSTOP / SIGCONT).

    with stalling(proc, stop_s=1.5, every_s=4.0):
        out, err = proc.communicate(timeout=120)

Used by tests/test_probe.py and benchmarks/bench_probe.py (`--stall`). On leaving, the process
is continued, so a timeout or a failed assertion never leaves it stopped.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def stalling(proc: subprocess.Popen, *, stop_s: float, every_s: float) -> Iterator[None]:
    """Stop `proc` for `stop_s` seconds after every `every_s` seconds it ran, until it ends."""
    done = threading.Event()

    def stall() -> None:
        while not done.wait(every_s) and proc.poll() is None:
            proc.send_signal(signal.SIGSTOP)
            time.sleep(stop_s)
            proc.send_signal(signal.SIGCONT)

    staller = threading.Thread(target=stall, daemon=True)
    staller.start()
    try:
        yield
    finally:
        done.set()
        staller.join()
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
