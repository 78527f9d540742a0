"""The master's part of a distributed rehearsal (protocol: scenarios/distributed.py)."""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import gevent

from floor.errors import IntegrityError, RunFailed, SurgecastError, render
from scenarios.dist_wire import (
    GO_LEAD_S,
    MSG_ERROR,
    MSG_FINISH,
    MSG_GO,
    MSG_READY,
    MSG_RESULT,
    MSG_SETUP,
    MSG_STATUS,
    READY_WAIT_S,
    RESULTS_GRACE_S,
    STALE_S,
    Assembler,
    feed_watch,
    settings_to_wire,
    surgecast_version,
)
from scenarios.options import RunSettings
from scenarios.pool import MIN_IDLE, PoolStatus
from scenarios.recorder import Recorder
from scenarios.run import (
    PROGRESS_PREFIX,
    build_schedule,
    conclude,
    done_text,
    draining,
    monitor_loop,
)
from scenarios.schedule import admin_actions, play
from scenarios.target import AdminClient
from scenarios.thresholds import ThresholdWatch


class PoolView:
    """The workers' pools seen as one, for `OpenModelShape` on the master (a dispatcher
    look-alike)."""

    def __init__(self, master: MasterSide) -> None:
        self.m = master

    def _live(self) -> list[dict[str, Any]]:
        now = time.time()
        return [st for st in self.m.statuses.values() if now - st["_at"] < STALE_S]

    @property
    def finished(self) -> bool:
        """Every worker's schedule is done (a silent worker does not hold the run open), or time
        is up."""
        m = self.m
        if m.origin is None:
            return m.failed is not None
        if time.time() > m.origin + m.s.duration_s + STALE_S:
            return True
        now = time.time()
        return all(
            st["finished"] or now - st["_at"] >= STALE_S or m.gone(i)
            for i, st in m.statuses.items()
        )

    def trim(self) -> int:
        """Workers retire their own surplus idle users."""
        return 0

    def now_s(self) -> float:
        """Test seconds since the origin."""
        return 0.0 if self.m.origin is None else max(0.0, time.time() - self.m.origin)

    def desired_idle(self, _test_s: float) -> int:
        """The sum of the idle users the workers want."""
        live = self._live()
        return sum(int(st["desired"]) for st in live) if live else MIN_IDLE * max(1, self.m.n)

    def status(self) -> PoolStatus:
        """Busy and idle users summed over the workers."""
        live = self._live()
        return PoolStatus(
            busy=sum(int(st["busy"]) for st in live),
            idle=sum(int(st["idle"]) for st in live),
            rate_per_s=sum(float(st.get("rate", 0.0)) for st in live),
            finished=self.finished,
        )


class MasterSide:
    """The master's part: hands out shares, plays the admin schedule, watches, merges, writes."""

    def __init__(self, settings: RunSettings, runner: Any, *, allow_remote: bool = False) -> None:
        self.s = settings
        self.allow_remote = allow_remote
        self.runner = runner
        self.admin = (
            AdminClient(settings.host, token=settings.admin_token) if settings.admin_token else None
        )
        self.recorder = Recorder(origin_unix=time.time(), calendar_of=self._calendar_iso)
        self.watch = ThresholdWatch(list(settings.thresholds), window_s=settings.threshold_window_s)
        self.view = PoolView(self)
        self.clients: dict[int, str] = {}  # our index -> Locust client id
        self.n = 0
        self.statuses: dict[int, dict[str, Any]] = {}
        self.ready: set[int] = set()
        self.results: dict[int, dict[str, Any]] = {}
        self.parts: dict[int, Assembler] = {}
        self.origin: float | None = None
        self.started_unix = time.time()
        self.action_log: list[dict[str, Any]] = []
        self.gates_before: dict[str, Any] | None = None
        self.cpu_max: float | None = None
        self.aborted_by: str | None = None
        self.refused: list[str] = []
        self.interrupted = False
        self.failed: str | None = None
        self.finished = False
        self.exit_code = 0
        self._greenlets: list[gevent.Greenlet] = []
        for kind, fn in (
            (MSG_READY, self.on_ready),
            (MSG_STATUS, self.on_status),
            (MSG_RESULT, self.on_result),
            (MSG_ERROR, self.on_error),
        ):
            runner.register_message(kind, fn)

    def _calendar_iso(self, test_s: float) -> str:
        at = self.s.calendar_at(test_s)
        if at is None:
            from scenarios.recorder import iso_utc

            return iso_utc((self.origin or self.started_unix) + test_s).replace("Z", "+00:00")
        return at.isoformat(timespec="milliseconds")

    def refuse(self, message: str) -> None:
        """The target redirected off its origin: record it and stop the run."""
        if message not in self.refused:
            self.refused.append(message)
        if len(self.refused) == 1:
            print(f"[surgecast] refused: {message}; stopping the run", flush=True)
            gevent.spawn(self.runner.quit)

    def gone(self, index: int) -> bool:
        """Locust lost worker `index` (no heartbeat for 3 s, or it quit)."""
        from locust.runners import STATE_MISSING

        cid = self.clients.get(index)
        return (
            cid is None
            or cid not in self.runner.clients
            or self.runner.clients[cid].state == STATE_MISSING
        )

    def name(self, index: int) -> str:
        """'worker 1 (host_abcd)' for messages."""
        return f"worker {index} ({self.clients.get(index, '?')})"

    # ---- messages ----------------------------------------------------------------------------
    def on_ready(self, environment: Any, msg: Any, **_kw: Any) -> None:
        i = int(msg.data["index"])
        theirs, ours = msg.data.get("version"), surgecast_version()
        if theirs != ours:
            # Settings, messages and the merge are only known to match within one version:
            # refuse the run.
            self.failed = (
                f"VersionMismatch: {self.name(i)} runs surgecast "
                f"{theirs or 'older than 0.1.0'}, the "
                f"master {ours}; install the same surgecast version on every machine"
            )
            print(self.failed, file=sys.stderr, flush=True)
            self.exit_code = 2
            gevent.spawn(self.runner.quit)
            return
        self.ready.add(i)

    def on_status(self, environment: Any, msg: Any, **_kw: Any) -> None:
        d = dict(msg.data)
        d["_at"] = time.time()
        feed_watch(self.watch, d.pop("watch", []))
        self.statuses[int(d["index"])] = d
        if d.get("cpu") is not None:
            self.cpu_max = max(self.cpu_max or 0.0, float(d["cpu"]))

    def on_result(self, environment: Any, msg: Any, **_kw: Any) -> None:
        i = int(msg.data["index"])
        a = self.parts.setdefault(i, Assembler())
        if a.add(msg.data):
            self.results[i] = a.payload()

    def on_error(self, environment: Any, msg: Any, **_kw: Any) -> None:
        self.failed = f"{self.name(int(msg.data['index']))}: {msg.data['message']}"
        print(render(RunFailed(self.failed)), file=sys.stderr, flush=True)
        self.exit_code = RunFailed.exit_code  # a run that failed (1), not a usage error
        gevent.spawn(self.runner.quit)

    # ---- the run -------------------------------------------------------------------------------
    def begin(self) -> None:
        """At test start (before Locust sends the first spawn): give each worker its index and
        settings."""
        from locust.runners import STATE_MISSING

        nodes = [c for c in self.runner.clients.all if c.state != STATE_MISSING]
        nodes.sort(key=lambda c: self.runner.get_worker_index(c.id))
        self.n = len(nodes)
        self.s = dataclasses.replace(self.s, workers=self.n)
        for i, c in enumerate(nodes):
            self.clients[i] = c.id
            self.runner.send_message(
                MSG_SETUP,
                settings_to_wire(self.s, index=i, workers=self.n, allow_remote=self.allow_remote),
                client_id=c.id,
            )
        self._greenlets.append(gevent.spawn(self.run))

    def run(self) -> None:
        """Wait for every worker's set-up (bounded), give the origin, play the admin schedule,
        watch."""
        if self.admin is not None:
            self.gates_before = (self.admin.metrics() or {}).get("gates")
        deadline = time.time() + READY_WAIT_S
        while (
            len(self.ready) < self.n
            and time.time() < deadline
            and not self.finished
            and self.failed is None
        ):
            gevent.sleep(0.05)
        if self.failed is not None or self.finished:
            return
        if len(self.ready) < self.n:
            missing = ", ".join(self.name(i) for i in range(self.n) if i not in self.ready)
            self.failed = f"{missing} did not finish its set-up within {READY_WAIT_S:g} s; stopping"
            print(render(RunFailed(self.failed)), file=sys.stderr, flush=True)
            self.exit_code = RunFailed.exit_code
            gevent.spawn(self.runner.quit)
            return
        origin = time.time() + GO_LEAD_S
        self.origin = origin
        self.recorder.origin_unix = origin
        for c in self.clients.values():
            self.runner.send_message(MSG_GO, {"origin_unix": origin}, client_id=c)
        if self.admin is not None:
            acts = admin_actions(self.s)
            if acts:
                self._greenlets.append(
                    gevent.spawn(play, self.admin, acts, origin, self.action_log, gevent.sleep)
                )
        self.monitor()

    def monitor(self) -> None:
        """Each second: queue sample, thresholds over all workers' samples, progress every 5 s."""
        monitor_loop(self, lambda: self.origin)

    def progress_line(self, t: float) -> str:
        """Like the single-process line, summed over the workers."""
        c: dict[str, int] = {}
        for st in self.statuses.values():
            for k, v in st["counts"].items():
                c[k] = c.get(k, 0) + int(v)
        busy = self.view.status().busy
        q = self.recorder.queue_rows[-1][2] if self.recorder.queue_rows else "-"
        cal = self._calendar_iso(min(t, self.s.duration_s))
        return (
            f"{PROGRESS_PREFIX} t={t:5.0f}s/{self.s.duration_s:.0f}s"
            + draining(t, self.s.duration_s)
            + f"  calendar {cal[:16].replace('T', ' ')}"
            f"  workers {len(self.view._live())}/{self.n}  arrivals {c.get('scheduled', 0)}"
            f"  dropped {c.get('dropped', 0)}  in journey {busy}  {done_text(c)}  issuer queue {q}"
        )

    # ---- the end -------------------------------------------------------------------------
    def finish(self, out: Path | None, stop_timeout: float) -> int:
        """Ask the workers for their results (bounded wait), merge them exactly, write the run
        directory."""
        if self.finished:
            return self.exit_code
        self.finished = True
        for g in self._greenlets:
            g.kill(block=False)
        if self.failed is not None or self.n == 0:
            return self.exit_code or RunFailed.exit_code
        for c in self.clients.values():
            self.runner.send_message(MSG_FINISH, {}, client_id=c)
        lost = self._await_results(stop_timeout + RESULTS_GRACE_S)
        setup = self._merge_results(lost)
        if self.origin is not None:
            self.watch.evaluate(time.time() - self.origin)
        self.exit_code = conclude(
            self.s,
            self.recorder,
            out=out,
            admin=self.admin,
            gates_before=self.gates_before,
            action_log=self.action_log,
            watch=self.watch,
            origin_unix=self.origin or self.started_unix,
            started_unix=self.started_unix,
            scheduled_expected=build_schedule(self.s).expected(),
            cpu_max=self.cpu_max,
            lost_workers=lost,
            extra={
                **setup,
                "aborted_by": self.aborted_by,
                "worker_clients": [self.clients[i] for i in range(self.n)],
            },
            refused=self.refused,
            interrupted=self.interrupted,
        )
        return self.exit_code

    def _await_results(self, wait_s: float) -> list[dict[str, Any]]:
        """Wait (bounded) for every worker's results; name each that never came (data lost)."""
        deadline = time.time() + wait_s
        while time.time() < deadline:
            waiting = [i for i in range(self.n) if i not in self.results]
            if not waiting or all(self.gone(i) for i in waiting):
                break
            gevent.sleep(0.05)
        lost = [{"index": i, "client_id": self.clients[i]} for i in range(self.n)
                if i not in self.results]
        for w in lost:
            got = self.parts.get(w["index"])
            more = f" ({len(got.parts)} of {got.total} chunks)" if got else ""
            why = ("stopped answering (no heartbeat)" if self.gone(w["index"])
                   else "did not send its results")
            print(render(IntegrityError(
                f"{self.name(w['index'])} {why}: nothing after waiting up to {wait_s:g} s"
                f"{more}; its arrivals, ledger and latencies are missing from the run "
                "directory (data lost, exit 3)")), file=sys.stderr, flush=True)
        return lost

    def _merge_results(self, lost: list[dict[str, Any]]) -> dict[str, Any]:
        """Absorb every worker's recorder and threshold samples; the summed set-up figures."""
        setup = {"setup_s": 0.0, "setup_accounts": 0, "setup_failed": 0}
        try:
            for i in sorted(self.results):
                r = self.results[i]
                self.recorder.absorb(r["recorder"])
                feed_watch(self.watch, r["watch"])
                setup["setup_s"] = max(setup["setup_s"], float(r["setup"]["setup_s"]))
                setup["setup_accounts"] += int(r["setup"]["setup_accounts"])
                setup["setup_failed"] += int(r["setup"]["setup_failed"])
        except SurgecastError as e:
            print(render(e), file=sys.stderr, flush=True)
            lost.append({"index": -1, "client_id": "", "error": str(e)})
        return setup
