"""The command-line side of distributed rehearsals: flags, their checks, Locust's own arguments.

Kept apart from scenarios/distributed.py (which imports gevent and runs inside
Locust) so `surgecast rehearse --help` and flag checking never import Locust.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from floor.children import TOKEN_ENV, child_env, python_module

# Seconds the master waits for every worker to finish its set-up.
READY_WAIT_S = float(os.environ.get("SURGECAST_READY_WAIT_S", "300"))
# Seconds a worker waits for its master to listen before giving up (exit 2), never for ever.
MASTER_WAIT_S = 60.0


def add_distributed_arguments(parser: Any) -> None:
    """`surgecast rehearse` flags of distributed runs (Locust's own names where Locust has them).

    >>> import argparse; p = argparse.ArgumentParser(); add_distributed_arguments(p)
    >>> a = p.parse_args(["--workers", "2"]); (a.workers, a.master, a.worker, a.master_port)
    (2, False, False, 5557)
    """
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="local worker processes (Locust --processes N); with --master: workers to wait for",
    )
    parser.add_argument(
        "--master",
        action="store_true",
        default=False,
        help="be the master of workers on other machines (they run `rehearse --worker`)",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        default=False,
        help="be a worker of a master at --master-host (all settings come from the master)",
    )
    parser.add_argument(
        "--master-host", default="127.0.0.1", metavar="H", help="(--worker) the master's address"
    )
    parser.add_argument(
        "--master-port",
        type=int,
        default=5557,
        metavar="P",
        help="the master's port (default 5557, Locust's)",
    )
    parser.add_argument(
        "--master-bind-host",
        default="*",
        metavar="H",
        help="(--master) interface to listen on (default all)",
    )
    parser.add_argument(
        "--master-wait",
        type=float,
        default=MASTER_WAIT_S,
        metavar="S",
        help=f"(--worker) seconds to wait for the master to listen (default {MASTER_WAIT_S:g})",
    )


def check_distributed_flags(args: Any) -> None:
    """Refuse contradictory distributed flags (exit 2) before anything starts.

    >>> import argparse; p = argparse.ArgumentParser(); add_distributed_arguments(p)
    >>> check_distributed_flags(p.parse_args(["--workers", "0"]))
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --workers = 0: give a whole number from 1 to 64
    """
    from floor.errors import FieldError

    if not 1 <= args.workers <= 64:
        raise FieldError("--workers", args.workers, "give a whole number from 1 to 64")
    if args.master and args.worker:
        raise FieldError("--worker", True, "give either --master or --worker")
    if not 1 <= args.master_port <= 65535:
        raise FieldError("--master-port", args.master_port, "give a TCP port from 1 to 65535")
    wait = getattr(args, "master_wait", MASTER_WAIT_S)
    if not (isinstance(wait, int | float) and 0 < wait <= 3600):
        raise FieldError("--master-wait", wait, "give seconds above 0 and at most 3600")
    if args.master and not getattr(args, "host", None):
        raise FieldError(
            "--master",
            True,
            "give --host: workers on other machines cannot reach the embedded "
            "testbed, which listens on loopback (or use --workers N on one machine)",
        )


def free_port() -> int:
    """A free TCP port on loopback (for the master of local workers)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def locust_distributed_args(args: Any) -> list[str]:
    """Extra Locust flags of the master process for `--workers N` / `--master`.

    `--workers N` uses Locust's `--processes N`: Locust forks N workers from the master
    after the locustfile is imported, reaps them and forwards Ctrl-C; they bind nothing
    but connect to the master on loopback (a free port, so runs side by side don't
    collide on 5557).

    >>> import argparse; p = argparse.ArgumentParser(); add_distributed_arguments(p)
    >>> locust_distributed_args(p.parse_args([]))
    []
    >>> locust_distributed_args(p.parse_args(["--master", "--workers", "3"]))[:3]
    ['--master', '--expect-workers', '3']
    """
    wait = str(int(READY_WAIT_S))
    if args.master:
        return [
            "--master",
            "--expect-workers",
            str(args.workers),
            "--expect-workers-max-wait",
            wait,
            "--master-bind-host",
            args.master_bind_host,
            "--master-bind-port",
            str(args.master_port),
        ]
    if args.workers > 1:
        port = str(free_port())
        return [
            "--processes",
            str(args.workers),
            "--expect-workers-max-wait",
            wait,
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            port,
            "--master-port",
            port,
        ]
    return []


def wait_for_master(host: str, port: int, wait_s: float) -> None:
    """Block until the master listens on host:port, saying so; TargetError (exit 2) after
    `wait_s`."""
    import socket
    import time

    from floor.errors import TargetError

    end = time.monotonic() + wait_s
    said = False
    while True:
        try:
            socket.create_connection((host, port), timeout=min(2.0, wait_s)).close()
            return
        except OSError as e:
            why = e.strerror or type(e).__name__
        if time.monotonic() >= end:
            raise TargetError(
                f"no master listens on {host}:{port} after waiting {wait_s:g} s ({why}); start "
                f"`surgecast rehearse --master ...` first, or fix --master-host/--master-port"
            )
        if not said:
            print(
                f"[surgecast] waiting up to {wait_s:g} s for the master at {host}:{port} ...",
                file=sys.stderr,
                flush=True,
            )
            said = True
        time.sleep(0.1)


def run_worker_process(args: Any, locust_file: str) -> int:
    """`surgecast rehearse --worker`: a Locust worker of the master at --master-host; returns its
    exit code."""
    import subprocess

    wait_for_master(args.master_host, args.master_port, getattr(args, "master_wait", MASTER_WAIT_S))
    cmd = [
        *python_module("locust"),
        "-f",
        locust_file,
        "--worker",
        "--headless",
        "--master-host",
        args.master_host,
        "--master-port",
        str(args.master_port),
        "--loglevel",
        "WARNING",
    ]
    try:
        return subprocess.call(cmd, env=child_env(os.environ.get(TOKEN_ENV)))
    except KeyboardInterrupt:
        return 130
