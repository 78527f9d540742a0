"""The rehearsal as a Locust file: `locust -f locustfile.py` (web UI or --headless) and
`surgecast rehearse` run this same code.

    locust -f locustfile.py --headless --profile casn2024 --duration 60 --out runs/x
    locust -f locustfile.py --arrival-rate 5 --host http://127.0.0.1:8080 --admin-token T   # web UI

Custom arguments are those of `scenarios.options.add_options`; `--profile` is
Locust's own flag (it groups test runs) and doubles as the surge profile. With no
--host the root locustfile.py (an entry point, like the command) starts a testbed on a free
loopback port (`STATE.start_target`) and it stops at exit.
With --out (and no --csv) Locust's CSVs are written with full history to a staging
prefix and moved into the run directory at exit. The pool of users is managed by
`OpenModelShape`: do not give -u/-r.

Distributed (`--processes N`, or `--master` plus `--worker` processes): the master
resolves the settings, starts the embedded testbed if needed and writes the run
directory; workers get everything from it (see `scenarios.distributed`)::

    locust -f locustfile.py --headless --processes 2 --arrival-rate 20 --duration 60 --out runs/d
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Locust puts the working directory first on sys.path before it loads this file; a folder named
# `scenarios` or `surgecast` where the user stands must not shadow ours (tests/test_term_start.py).
if sys.path[0] != str(Path(__file__).resolve().parent.parent):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gevent
from locust import FastHttpUser, events, task
from locust.runners import MasterRunner, WorkerRunner

from floor.errors import FieldError, SurgecastError, render
from scenarios.journeys import JourneyRun
from scenarios.locust_compat import one_sort_percentiles
from scenarios.options import (
    NO_SURGE_PROFILE,
    add_options,
    rehearsal_dests,
    resolve_settings,
    web_value,
)
from scenarios.patience import patience_bound_s
from scenarios.pool import OpenModelShape
from scenarios.run import Rehearsal, publish_locust_csvs
from scenarios.target import check_host, preflight

STAGING = ".locust-staging"
one_sort_percentiles()  # Locust's CSV percentiles, one sort per row (the same values)
_OUT_EXISTED: list[bool] = []  # did --out exist before Locust made its staging folder?


class _State:
    rehearsal: Rehearsal | None = None
    master: Any = None      # scenarios.distributed.MasterSide on a master
    worker: Any = None      # scenarios.distributed.WorkerSide on a worker
    embedded: Any = None    # the target an entry point started: has .url and .close()
    # Set by an entry point that may start a testbed (the root locustfile.py): admin token -> a
    # started
    # target with .url and .close(). scenarios/ never imports testbed/: the target is reached over
    # HTTP.
    start_target: Callable[[str], Any] | None = None
    out: Path | None = None
    staging: Path | None = None
    settings: Any = None
    target: Any = None      # (host, its /admin/config, embedded) found at init


STATE = _State()


def _argv_value(flag: str) -> str | None:
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


@events.init_command_line_parser.add_listener
def _add_arguments(parser: Any) -> None:
    add_options(parser, locust=True)
    out = _argv_value("--out") or os.environ.get("LOCUST_OUT")
    if out:
        _OUT_EXISTED.append(Path(out).exists())
    if out and not _argv_value("--csv"):
        # Locust creates its CSV writer before our init runs, so point it at the staging prefix now.
        parser.set_defaults(csv_prefix=str(Path(out) / STAGING / "locust"),
                            stats_history_enabled=True)


def _fail(e: SurgecastError) -> None:
    print(render(e), file=sys.stderr, flush=True)
    # Locust opened its CSV files in our staging folder before init ran: leave --out as it was.
    out = _argv_value("--out") or os.environ.get("LOCUST_OUT")
    if out:
        shutil.rmtree(Path(out) / STAGING, ignore_errors=True)
        if _OUT_EXISTED == [False]:
            with contextlib.suppress(OSError):
                Path(out).rmdir()  # made for this run and left empty
    os._exit(e.exit_code)


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    opts = environment.parsed_options
    if opts is None:  # used as a library (tests of the user class); nothing to set up
        return
    from floor.children import watch_parent

    # `surgecast rehearse` died (even kill -9): SIGTERM ourselves, publish, stop the load
    watch_parent()
    if isinstance(environment.runner, WorkerRunner):
        from scenarios.distributed import WorkerSide

        STATE.worker = WorkerSide(environment.runner,
                                  configure=lambda s: _configure(environment, s))
        OpenModelShape.source = staticmethod(_source)
        return
    try:
        host, token, embedded = _target_of(opts, environment)
        host = check_host(host, allow_remote=bool(opts.allow_remote))
        # Refused, hanging, HTML-answering targets and wrong admin tokens: one line, exit 2, no
        # files.
        config = preflight(host, admin_token=token)
        opts.admin_token = token
        settings = resolve_settings(opts, host=host, target_config=config, embedded=embedded,
                                    profile_value=_profile_value(opts))
        # another run's files there: exit 2 before any load (same run id: the parent's)
        if settings.out:
            from floor.rundir import claim, process_run_id
            claim(Path(settings.out), what="rehearsal", run_id=process_run_id())
    except SurgecastError as e:
        if STATE.embedded is not None:
            STATE.embedded.close()
        _fail(e)
        return
    STATE.target = (host, config, embedded)
    web_ui = _kw.get("web_ui")
    if web_ui is not None and not isinstance(environment.runner, MasterRunner):
        from scenarios.webui import explain_open_model, guard_swarm

        guard_swarm(web_ui.app, lambda form: _resettle(environment, form))
        explain_open_model(web_ui.app)
    STATE.settings = settings
    _configure(environment, settings)
    if isinstance(environment.runner, MasterRunner):
        from scenarios.distributed import MasterSide

        STATE.master = MasterSide(settings, environment.runner,
                                  allow_remote=bool(opts.allow_remote))
    if settings.out:
        STATE.out = Path(settings.out)
        STATE.staging = STATE.out / STAGING
        atexit.register(_publish)
    OpenModelShape.source = staticmethod(_source)


def _target_of(opts: Any, environment: Any) -> tuple[str, str | None, bool]:
    """(host, admin token, embedded): --host, else a testbed the entry point starts here."""
    host = opts.host or environment.host
    token = opts.admin_token
    if host:
        return host, token, False
    if STATE.start_target is None:
        raise FieldError("--host", "", "give the target's URL, e.g. --host http://127.0.0.1:8080 "
                                       "(the root locustfile.py starts a testbed when --host is "
                                       "left out)")
    token = token or secrets.token_hex(16)
    STATE.embedded = STATE.start_target(token)
    atexit.register(STATE.embedded.close)
    return STATE.embedded.url, token, True


def _profile_value(opts: Any) -> str | None:
    """The surge profile: --surge-profile when chosen (the web UI's list), else Locust's
    --profile."""
    chosen = getattr(opts, "surge_profile", NO_SURGE_PROFILE)
    return opts.profile if chosen in (None, NO_SURGE_PROFILE) else chosen


def _resettle(environment: Any, form: dict[str, str]) -> str | None:
    """START in the web UI: resolve the settings again from the edited form; None or why not to
    start."""
    if STATE.rehearsal is not None and not STATE.rehearsal.finished:
        return "a rehearsal is running; its parameters are fixed once it starts. Press STOP first"
    if STATE.rehearsal is not None:
        where = f" into {STATE.out}" if STATE.out else ""
        return (f"this Locust process has already run its rehearsal{where}; the testbed's accounts "
                "and the run directory belong to that run. Stop Locust and start it again (with a "
                "new --out) to run another")
    opts = environment.parsed_options
    ns = argparse.Namespace(**vars(opts))
    try:
        for key, text in form.items():
            if key in rehearsal_dests() and key not in ("out", "admin_token", "embedded_testbed"):
                setattr(ns, key, web_value(key, text))
        host, config, embedded = STATE.target
        given = (form.get("host") or "").strip().rstrip("/")
        if given and given != host:
            host = check_host(given, allow_remote=bool(ns.allow_remote))
            config, embedded = preflight(host, admin_token=ns.admin_token), False
        chosen = getattr(ns, "surge_profile", NO_SURGE_PROFILE)
        profile = (chosen if chosen not in (None, NO_SURGE_PROFILE)
                   else (form.get("profile", ns.profile) or None))
        settings = resolve_settings(ns, host=host, target_config=config, embedded=embedded,
                                    profile_value=profile)
    except SurgecastError as e:
        return f"{type(e).__name__}: {e}"
    STATE.settings = settings
    STATE.target = (host, config, embedded)
    _configure(environment, settings)
    return None


def _configure(environment: Any, settings: Any) -> None:
    environment.host = settings.host
    Applicant.host = settings.host
    Applicant.network_timeout = (settings.profile.journeys.request_timeout_s if settings.profile
                                 else 10.0)
    Applicant.connection_timeout = Applicant.network_timeout
    j = settings.profile.journeys if settings.profile else None
    # a user busy at the end finishes its journey: its patience bounds it (the law's longest)
    patience = patience_bound_s(j.patience_law, j.patience_s) if j else 30.0
    environment.stop_timeout = patience + Applicant.network_timeout + 2


def _source() -> tuple[Any, int, float]:
    s = STATE.settings
    if STATE.master is not None:
        m = STATE.master
        return (m.view if m.n else None, s.user_cap, s.duration_s)
    r = STATE.rehearsal
    return (r.dispatcher if r else None, s.user_cap if s else 1, s.duration_s if s else 0.0)


def _publish() -> None:
    if STATE.out is not None and STATE.staging is not None:
        publish_locust_csvs(STATE.staging, STATE.out)


def _on_sigterm(environment: Any) -> None:
    """SIGTERM: stop every user now, mark the run interrupted, then let Locust end as usual (files
    published)."""
    if STATE.master is not None:
        STATE.master.interrupted = True
    r = STATE.rehearsal
    stop_load_now(environment)
    if r is not None and not r.finished:
        r.interrupted = True
        environment.process_exit_code = r.finish(STATE.out)
    if environment.runner is not None:
        environment.runner.quit()


def _install_sigterm(environment: Any) -> None:
    # Locust's own SIGTERM watcher (gevent.signal_handler) does not always fire, and would let busy
    # users
    # run on for the whole stop timeout; a plain handler that hands over to a greenlet does both
    # right.
    if STATE.worker is None:
        signal.signal(signal.SIGTERM, lambda *_a: gevent.spawn(_on_sigterm, environment))


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    _install_sigterm(environment)
    if STATE.master is not None:
        STATE.master.begin()
        return
    if STATE.settings is None:
        return
    STATE.rehearsal = Rehearsal(STATE.settings, runner=environment.runner)
    STATE.rehearsal._greenlets.append(gevent.spawn(STATE.rehearsal.start))


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_kw: Any) -> None:
    if STATE.worker is not None:
        STATE.worker.send_results()
        return
    if STATE.master is not None:
        environment.process_exit_code = STATE.master.finish(STATE.out, environment.stop_timeout)
        return
    r = STATE.rehearsal
    if r is None:
        return
    code = r.finish(STATE.out)
    environment.process_exit_code = code


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kw: Any) -> None:
    if STATE.master is not None:
        if not STATE.master.finished:
            STATE.master.interrupted = True
            STATE.master.finish(STATE.out, min(environment.stop_timeout or 0, 5))
        environment.process_exit_code = STATE.master.exit_code
        return
    r = STATE.rehearsal
    if r is not None:
        if not r.finished:  # a signal (SIGTERM, Ctrl-C) stops Locust before the run's end
            stop_load_now(environment)
            r.interrupted = True
            r.finish(STATE.out)
        end = time.time() + 60
        # another greenlet is writing the run directory
        while not r.concluded and time.time() < end:
            gevent.sleep(0.05)
        environment.process_exit_code = r.exit_code


def stop_load_now(environment: Any) -> None:
    """Kill every user at once (no stop_timeout): after a signal no more load goes to the target."""
    environment.stop_timeout = 0
    runner = environment.runner
    if runner is not None:
        with contextlib.suppress(Exception):
            runner.user_greenlets.kill(block=True, timeout=5)


def _rehearsal() -> Any:
    return STATE.worker.rehearsal if STATE.worker is not None else STATE.rehearsal


class Applicant(FastHttpUser):
    """A pool member: waits for an arrival, plays its journey, waits again.

    It waits in `wait_time()`, Locust's documented hand-off: Locust marks the user WAITING
    before it calls `wait_time()`, so an idle user may be stopped at once, and RUNNING
    after, so a busy one finishes its journey. A user stopped in the one-loop gap after
    `wait_time()` returned still begins its journey (gevent queues the kill behind its
    wake-up) and is killed at its first request, recorded as abandoned; had the kill come
    first, `on_stop` gives the arrival back. OpenModelShape never shrinks the pool, so
    only the end of a run or a signal stops users.
    """

    host = "http://127.0.0.1"
    network_timeout = 10.0
    connection_timeout = 10.0
    next_plan: Any = None

    def wait_time(self) -> float:
        """Block until the next arrival comes for this user (kept in `next_plan`)."""
        r = _rehearsal()
        d = r.dispatcher if r else None
        if d is None:
            return 0.2
        self.next_plan = d.take()
        return 0.0

    def on_stop(self) -> None:
        """Give back an arrival taken but not yet begun."""
        plan, self.next_plan = self.next_plan, None
        r = _rehearsal()
        if plan is not None and r is not None and r.dispatcher is not None:
            r.dispatcher.give_back(plan)

    @task
    def serve(self) -> None:
        """Run the journey of the arrival taken in `wait_time()` (none on the first call)."""
        r = _rehearsal()
        plan, self.next_plan = self.next_plan, None
        if r is None or plan is None:
            return
        d = r.dispatcher
        rec = r.recorder
        started = time.time()
        rec.arrival_started(plan.applicant_id, started)
        run = JourneyRun(self.client, plan, r.journeys, rec, watch=r.watch,
                         to_test_s=lambda u: u - (r.origin_unix or 0.0),
                         reuse_keys=r.s.reuse_idempotency_keys, on_refused=r.refuse)
        outcome, step = "abandoned", ""
        try:
            outcome, step = run.run()
        finally:
            if outcome == "abandoned" and not step:
                step = run.step
            end = time.time()
            rec.arrival_finished(plan.applicant_id, outcome, step, run.requests, end)
            r.watch.outcome(outcome, end - (r.origin_unix or end))
            d.release()
