"""Process hygiene of the commands and their children (Locust, the embedded testbed).

* `signals_raise()`: in the main thread, SIGTERM and SIGINT raise `Interrupted` (a
  KeyboardInterrupt, so `with` blocks stop their children on the way out); a second
  signal while cleaning up is ignored, so the clean-up runs to its end.
* `child_env(token)`: the environment of a child: the admin token goes there
  (`SURGECAST_ADMIN_TOKEN`), never on its command line (`ps` shows argv to every user),
  and `SURGECAST_PARENT_PID` names the launcher.
* `watch_parent()`: in a child, SIGTERM itself when the launcher that set
  `SURGECAST_PARENT_PID` dies (even by SIGKILL), so no testbed or Locust is left running.
* `stop(proc, grace_s)`: SIGTERM, then SIGKILL after `grace_s`.

    >>> env = child_env("t0k", base={})
    >>> env["SURGECAST_ADMIN_TOKEN"], env["SURGECAST_PARENT_PID"] == str(os.getpid())
    ('t0k', True)
    >>> "SURGECAST_ADMIN_TOKEN" in child_env(None, base={"SURGECAST_ADMIN_TOKEN": "old"})
    False

Standard library only; every room may use it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping

TOKEN_ENV = "SURGECAST_ADMIN_TOKEN"
PARENT_ENV = "SURGECAST_PARENT_PID"


class Interrupted(KeyboardInterrupt):
    """SIGTERM or SIGINT reached a command; `signame` says which."""

    def __init__(self, signame: str = "SIGINT") -> None:
        super().__init__(signame)
        self.signame = signame


@contextlib.contextmanager
def signals_raise() -> Iterator[None]:
    """Within the block (main thread only), SIGTERM/SIGINT raise `Interrupted` once; handlers
    restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        if fired:
            return  # already stopping: let the clean-up finish
        fired.append(signal.Signals(signum).name)
        if _deliver_in_gevent(Interrupted(fired[0])):
            return
        raise Interrupted(fired[0])

    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for s in old:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h if h is not None else signal.SIG_DFL)


def _deliver_in_gevent(exc: BaseException) -> bool:
    """In a gevent process whose hub is running, throw `exc` into the main greenlet; False
    otherwise.

    A handler that raises while gevent's hub runs would only print a traceback from the hub;
    gevent itself delivers KeyboardInterrupt this way.
    """
    import sys

    gevent, greenlet = sys.modules.get("gevent"), sys.modules.get("greenlet")
    # gevent is there only where scenarios/ loaded it: the floor never imports gevent
    if gevent is None or greenlet is None:
        return False
    hub = gevent.get_hub()
    main = hub.parent
    if main is None or greenlet.getcurrent() is main:
        return False
    hub.loop.run_callback(main.throw, exc)
    return True


# The folder that holds the `surgecast` package (the repository root in a checkout or an editable
# install).
CODE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_module(module: str) -> list[str]:
    """The command line that runs `python -m module` in a child whatever its working directory.

    `-P` (Python 3.11+) keeps the working directory off `sys.path`, so a folder named `surgecast`
    (or `locust`, `scenarios`) where the user stands cannot shadow the real package; `child_env`
    puts CODE_ROOT first on the child's PYTHONPATH, so the child imports the same code as its
    parent.

    >>> python_module("surgecast")[1:]
    ['-P', '-m', 'surgecast']
    """
    return [sys.executable, "-P", "-m", module]


def child_env(token: str | None, *, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child process: the token (or none), this process as its parent, and
    CODE_ROOT first on PYTHONPATH (see `python_module`)."""
    env = dict(os.environ if base is None else base)
    paths = [
        p
        for p in env.get("PYTHONPATH", "").split(os.pathsep)
        if p and os.path.abspath(p) != CODE_ROOT
    ]
    env["PYTHONPATH"] = os.pathsep.join([CODE_ROOT, *paths])
    env.pop(TOKEN_ENV, None)
    if token:
        env[TOKEN_ENV] = token
    env[PARENT_ENV] = str(os.getpid())
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def watch_parent(every_s: float = 0.5) -> bool:
    """SIGTERM this process when the launcher named by SURGECAST_PARENT_PID dies; False if none to
    watch.

    Only a direct launcher is watched (the variable must name the current parent), so an
    inherited variable never stops an unrelated process.
    """
    try:
        parent = int(os.environ.get(PARENT_ENV, ""))
    except ValueError:
        return False
    if parent != os.getppid():
        return False

    def loop() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=loop, name="surgecast-watch-parent", daemon=True).start()
    return True


def stop(proc: subprocess.Popen, grace_s: float = 8.0) -> int | None:  # type: ignore[type-arg]
    """SIGTERM `proc`, wait up to `grace_s`, then SIGKILL; its exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode
