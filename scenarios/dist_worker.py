"""A Locust worker's part of a distributed rehearsal (protocol: scenarios/distributed.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent
from gevent.event import AsyncResult

from floor.errors import SurgecastError
from scenarios.dist_wire import (
    MSG_ERROR,
    MSG_FINISH,
    MSG_GO,
    MSG_READY,
    MSG_RESULT,
    MSG_SETUP,
    MSG_STATUS,
    STATUS_EVERY_S,
    drain_watch,
    encode_payload,
    settings_from_wire,
    surgecast_version,
)
from scenarios.locust_compat import cache_locust_default_args, send_last_stats
from scenarios.options import RunSettings
from scenarios.pool import MIN_IDLE, chunked_spawning
from scenarios.run import (
    Rehearsal,
)
from scenarios.target import check_host


# ---- the worker's side ---------------------------------------------------------------------------
class WorkerSide:
    """A Locust worker's part of a rehearsal (see the module docstring)."""

    def __init__(self, runner: Any, *, configure: Callable[[RunSettings], None]) -> None:
        self.runner = runner
        self.configure = configure
        self.rehearsal: Rehearsal | None = None
        self.index = -1
        self.origin = AsyncResult()
        self.sent = False
        cache_locust_default_args()
        chunked_spawning(runner)  # a worker spawns what the master's shape asks for, in chunks
        runner.register_message(MSG_SETUP, self.on_setup)
        runner.register_message(MSG_GO, self.on_go)
        runner.register_message(MSG_FINISH, self.on_finish, concurrent=True)

    def send(self, kind: str, data: dict[str, Any]) -> None:
        """Send one message to the master."""
        self.runner.send_message(kind, data)

    def on_setup(self, environment: Any, msg: Any, **_kw: Any) -> None:
        """The master's settings: build this worker's rehearsal and start its set-up."""
        d = msg.data
        self.index = int(d["index"])
        try:
            s = settings_from_wire(d)
            check_host(s.host, allow_remote=bool(d.get("allow_remote")))
            self.configure(s)
            self.rehearsal = Rehearsal(s, worker=self.index, workers=s.workers, runner=self.runner)
        except (SurgecastError, ValueError, KeyError) as e:
            self.send(MSG_ERROR, {"index": self.index, "message": f"{type(e).__name__}: {e}"})
            return
        gevent.spawn(self.rehearsal.start, self.ready_then_wait)
        gevent.spawn(self.status_loop)

    def ready_then_wait(self) -> float | None:
        """Tell the master this worker is set up; block until it gives the origin (None:
        stopped)."""
        self.send(MSG_READY, {"index": self.index, "version": surgecast_version()})
        return self.origin.get()

    def on_go(self, environment: Any, msg: Any, **_kw: Any) -> None:
        """The common origin (Unix seconds)."""
        self.origin.set(float(msg.data["origin_unix"]))

    def status_loop(self) -> None:
        """Each 0.5 s: retire surplus idle users and report the pool and samples to the master."""
        r = self.rehearsal
        assert r is not None
        while not self.sent and not r.finished:
            d = r.dispatcher
            if d is not None:
                d.trim()
            self.send(
                MSG_STATUS,
                {
                    "index": self.index,
                    "busy": d.busy if d else 0,
                    "idle": len(d.idle) if d else 0,
                    "desired": d.desired_idle(d.now_s()) if d else MIN_IDLE,
                    "rate": d.rate_at(d.now_s()) if d else 0.0,
                    "finished": bool(d and d.finished),
                    "counts": dict(r.recorder.counts),
                    "cpu": getattr(self.runner, "current_cpu_usage", None),
                    "watch": drain_watch(r.watch),
                },
            )
            gevent.sleep(STATUS_EVERY_S)

    def on_finish(self, environment: Any, msg: Any, **_kw: Any) -> None:
        """The master ends the run: stop the users (busy ones finish), which fires test_stop."""
        if self.origin.ready() is False:
            self.origin.set(None)
        self.runner.stop()
        self.send_results()

    def send_results(self) -> None:
        """Once: close journeys, flush Locust's statistics, send the recorder in chunks."""
        r = self.rehearsal
        if r is None or self.sent:
            return
        self.sent = True
        if not self.origin.ready():
            self.origin.set(None)
        r.close_journeys()
        payload = {
            "index": self.index,
            "recorder": r.recorder.export(),
            "setup": r.setup_extra(),
            "dispatched": r.dispatcher.dispatched if r.dispatcher else 0,
            "drawn": len(r.times),
            "watch": drain_watch(r.watch),
        }
        send_last_stats(
            self.runner
        )  # Locust's own last report goes before our results (same socket, in order)
        chunks, digest = encode_payload(payload)
        for i, c in enumerate(chunks):
            self.send(
                MSG_RESULT,
                {"index": self.index, "seq": i, "total": len(chunks), "sha256": digest, "data": c},
            )
            gevent.sleep(0)


# ---- the master's side ---------------------------------------------------------------------------
