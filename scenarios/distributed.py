"""Distributed rehearsals on Locust's own master/worker mode.

    surgecast rehearse --workers 2 --profile casn2024 --out runs/x            # 2 local worker processes
    surgecast rehearse --master --workers 4 --host http://10.0.0.9:8080 --allow-remote --out runs/y
    surgecast rehearse --worker --master-host 10.0.0.5                        # on each load machine
    locust -f locustfile.py --headless --processes 2 --arrival-rate 20 --duration 60 --out runs/z

Locust moves users and statistics between processes; this module adds the
rehearsal's part, all in Locust custom messages (`runner.register_message` /
`runner.send_message`):

1. At test start the master gives each connected worker an index i of N and the
   resolved settings (`surgecast_setup`; the profile travels as its TOML text, the
   admin token never does). Worker i draws its share 1/N of the arrival rate from
   its own seed stream `SeedSequence(seed).spawn(N)[i]`; its applicant ids are
   `i-NNNNNN`.
2. Each worker makes its set-up accounts, warms its pool and says `surgecast_ready`;
   when all are ready (bounded wait) the master sends one origin (`surgecast_go`),
   so every worker walks its arrivals on the same clock.
3. Every 0.5 s each worker sends `surgecast_status`: busy and idle users, the idle
   users it wants, whether its schedule is done, its outcome counts and the
   threshold samples since the last status. The master's `OpenModelShape` sizes the
   whole pool from the sum (`PoolView`); the master alone plays gates and outages,
   samples queues and evaluates thresholds.
4. At the end the master asks every worker to stop (`surgecast_finish`); each
   stops its users (busy ones finish their journey), flushes its Locust statistics
   and sends its recorder — arrival rows, dropped arrivals, ledger rows, raw
   latency-history samples and the HDR histograms as encoded text — zlib-compressed
   in chunks of at most 256 KiB with a SHA-256 (`surgecast_result`). The master
   merges them exactly (`Recorder.absorb`: rows are united, histograms decoded and
   added, counts checked) and writes one run directory with `scenarios.run.conclude`,
   the same writer as a single-process run. A worker whose results do not come in
   time is named and the run exits 3 (data lost); its absence is written to
   `run.json`/`summary.json` as `lost_workers`.

Chunks round-trip exactly::

    >>> chunks, digest = encode_payload({"rows": list(range(5))}, chunk_bytes=8)
    >>> a = Assembler()
    >>> done = [a.add({"seq": i, "total": len(chunks), "sha256": digest, "data": c}) for i, c in enumerate(chunks)]
    >>> done[-1], a.payload()
    (True, {'rows': [0, 1, 2, 3, 4]})
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
import tomllib
import zlib
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import gevent
from gevent.event import AsyncResult

from floor.errors import IntegrityError, RunFailed, SurgecastError, render
from scenarios.locust_compat import cache_locust_default_args, send_last_stats
from scenarios.options import RunSettings
from scenarios.pool import MIN_IDLE, PoolStatus, chunked_spawning
from scenarios.recorder import Recorder
from scenarios.run import (
    PROGRESS_PREFIX,
    Rehearsal,
    build_schedule,
    conclude,
    done_text,
    draining,
    monitor_loop,
)
from scenarios.schedule import admin_actions, play
from scenarios.target import AdminClient, check_host
from scenarios.thresholds import ThresholdWatch, parse_threshold

MSG_SETUP = "surgecast_setup"
MSG_READY = "surgecast_ready"
MSG_GO = "surgecast_go"
MSG_STATUS = "surgecast_status"
MSG_FINISH = "surgecast_finish"
MSG_RESULT = "surgecast_result"
MSG_ERROR = "surgecast_error"
CHUNK_BYTES = 256 * 1024
STATUS_EVERY_S = 0.5
GO_LEAD_S = 0.5            # the origin is this far after the last worker is ready
STALE_S = 5.0              # a worker silent this long no longer holds the run open
from scenarios.distributed_cli import READY_WAIT_S  # noqa: E402 (shared with the command line)

RESULTS_GRACE_S = float(os.environ.get("SURGECAST_RESULTS_WAIT_S", "30"))


# ---- settings on the wire ------------------------------------------------------------------------
def settings_to_wire(s: RunSettings, *, index: int, workers: int, allow_remote: bool = False) -> dict[str, Any]:
    """What worker `index` of `workers` needs of the master's settings (plain data; no admin token).

    >>> from scenarios.options import RunSettings
    >>> w = settings_to_wire(RunSettings(host="http://127.0.0.1:1", embedded=True, arrival_rate=4.0, seed=3),
    ...                      index=1, workers=2)
    >>> s = settings_from_wire(w); (s.arrival_rate, s.seed, s.workers, s.admin_token)
    (4.0, 3, 2, None)
    """
    d: dict[str, Any] = {"index": index, "workers": workers, "allow_remote": allow_remote, "host": s.host, "embedded": s.embedded,
                         "arrival_rate": s.arrival_rate, "arrival_shape": s.arrival_shape, "compress": s.compress, "scale": s.scale,
                         "duration_s": s.duration_s, "seed": s.seed, "user_cap": s.user_cap, "max_rate": s.max_rate,
                         "thresholds": [t.expr for t in s.thresholds], "threshold_window_s": s.threshold_window_s,
                         "reuse_idempotency_keys": s.reuse_idempotency_keys, "headroom_s": s.headroom_s,
                         "calendar_origin": s.calendar_origin.isoformat() if s.calendar_origin else None,
                         "window_end": s.window_end.isoformat() if s.window_end else None,
                         "profile_source": None, "profile_text": None}
    if s.profile is not None:
        d["profile_source"] = s.profile.source
        d["profile_text"] = Path(s.profile.source).read_text(encoding="utf-8")
    return d


def settings_from_wire(d: dict[str, Any]) -> RunSettings:
    """The inverse of `settings_to_wire` (the profile is parsed from the text the master sent)."""
    from scenarios.profile import parse_profile

    profile = None
    if d.get("profile_text"):
        profile = parse_profile(tomllib.loads(d["profile_text"]), source=d["profile_source"] or "<master>")

    def when(x: str | None) -> datetime | None:
        if x is None:
            return None
        t = datetime.fromisoformat(x)
        return t.astimezone(profile.calendar.tz) if profile is not None else t
    return RunSettings(host=d["host"], embedded=bool(d["embedded"]), profile=profile,
                       profile_name=profile.name if profile else None, arrival_rate=d["arrival_rate"],
                       arrival_shape=str(d.get("arrival_shape") or "constant"),
                       compress=float(d["compress"]), scale=float(d["scale"]), duration_s=float(d["duration_s"]),
                       calendar_origin=when(d["calendar_origin"]), window_end=when(d["window_end"]),
                       seed=int(d["seed"]), user_cap=int(d["user_cap"]), max_rate=d["max_rate"],
                       thresholds=tuple(parse_threshold(x) for x in d["thresholds"]),
                       threshold_window_s=float(d["threshold_window_s"]),
                       reuse_idempotency_keys=bool(d["reuse_idempotency_keys"]), quiet=True,
                       headroom_s=float(d["headroom_s"]), workers=int(d["workers"]))


def surgecast_version() -> str:
    """The version this process runs (workers and master must match).

    >>> surgecast_version() == __import__("floor.version").version.__version__
    True
    """
    from floor.version import __version__

    return str(__version__)


# ---- chunked payloads ---------------------------------------------------------------------------
def encode_payload(obj: Any, *, chunk_bytes: int = CHUNK_BYTES) -> tuple[list[bytes], str]:
    """JSON -> zlib -> chunks of at most `chunk_bytes`, and the SHA-256 of the compressed bytes."""
    raw = zlib.compress(json.dumps(obj, separators=(",", ":")).encode(), 6)
    chunks = [raw[i:i + chunk_bytes] for i in range(0, len(raw), chunk_bytes)] or [b""]
    return chunks, hashlib.sha256(raw).hexdigest()


class Assembler:
    """Collects the chunks of one payload; `add` returns True when it is complete and intact."""

    def __init__(self) -> None:
        self.parts: dict[int, bytes] = {}
        self.total: int | None = None
        self.digest = ""

    def add(self, m: dict[str, Any]) -> bool:
        """Add one chunk message {seq, total, sha256, data}."""
        self.total, self.digest = int(m["total"]), str(m["sha256"])
        self.parts[int(m["seq"])] = bytes(m["data"])
        return len(self.parts) == self.total

    def payload(self) -> Any:
        """The decoded payload; `SurgecastError` (exit 3) when the bytes do not match the digest."""
        raw = b"".join(self.parts[i] for i in range(self.total or 0))
        if hashlib.sha256(raw).hexdigest() != self.digest:
            raise IntegrityError("a worker's results arrived damaged (SHA-256 mismatch); rerun")
        return json.loads(zlib.decompress(raw))


# ---- threshold samples ------------------------------------------------------------------------
def drain_watch(w: ThresholdWatch) -> list[list[Any]]:
    """Take every per-second sample bucket out of `w` as plain rows (the worker's side)."""
    rows = []
    while w._seconds:
        sec, b = w._seconds.popleft()
        rows.append([sec, [[s, c, v] for (s, c), v in b.latencies.items()], b.requests, b.errors, b.outcomes])
    return rows


def feed_watch(w: ThresholdWatch, rows: list[list[Any]]) -> None:
    """Add rows of `drain_watch` into `w` (the master's side), second by second.

    >>> from scenarios.thresholds import parse_threshold
    >>> a = ThresholdWatch([parse_threshold("errors<50%")], min_count=1); a.request("login", 3.2, 0.1, ok=False)
    >>> m = ThresholdWatch([parse_threshold("errors<50%")], min_count=1); feed_watch(m, drain_watch(a))
    >>> _ = m.evaluate(4.0); m.results[0].ok
    False
    """
    for sec, lat, req, err, outcomes in rows:
        b = w._bucket(float(sec))
        for step, clock, vals in lat:
            b.latencies.setdefault((step, clock), []).extend(vals)
        for src, dst in ((req, b.requests), (err, b.errors), (outcomes, b.outcomes)):
            for k, n in src.items():
                dst[k] = dst.get(k, 0) + int(n)


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
        """Tell the master this worker is set up; block until it gives the origin (None: stopped)."""
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
            self.send(MSG_STATUS, {
                "index": self.index, "busy": d.busy if d else 0, "idle": len(d.idle) if d else 0,
                "desired": d.desired_idle(d.now_s()) if d else MIN_IDLE,
                "rate": d.rate_at(d.now_s()) if d else 0.0,
                "finished": bool(d and d.finished), "counts": dict(r.recorder.counts),
                "cpu": getattr(self.runner, "current_cpu_usage", None), "watch": drain_watch(r.watch)})
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
        payload = {"index": self.index, "recorder": r.recorder.export(), "setup": r.setup_extra(),
                   "dispatched": r.dispatcher.dispatched if r.dispatcher else 0, "drawn": len(r.times),
                   "watch": drain_watch(r.watch)}
        send_last_stats(self.runner)  # Locust's own last report goes before our results (same socket, in order)
        chunks, digest = encode_payload(payload)
        for i, c in enumerate(chunks):
            self.send(MSG_RESULT, {"index": self.index, "seq": i, "total": len(chunks), "sha256": digest, "data": c})
            gevent.sleep(0)


# ---- the master's side ---------------------------------------------------------------------------
class PoolView:
    """The workers' pools seen as one, for `OpenModelShape` on the master (a dispatcher look-alike)."""

    def __init__(self, master: MasterSide) -> None:
        self.m = master

    def _live(self) -> list[dict[str, Any]]:
        now = time.time()
        return [st for st in self.m.statuses.values() if now - st["_at"] < STALE_S]

    @property
    def finished(self) -> bool:
        """Every worker's schedule is done (a silent worker does not hold the run open), or time is up."""
        m = self.m
        if m.origin is None:
            return m.failed is not None
        if time.time() > m.origin + m.s.duration_s + STALE_S:
            return True
        now = time.time()
        return all(st["finished"] or now - st["_at"] >= STALE_S or m.gone(i) for i, st in m.statuses.items())

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
        return PoolStatus(busy=sum(int(st["busy"]) for st in live), idle=sum(int(st["idle"]) for st in live),
                          rate_per_s=sum(float(st.get("rate", 0.0)) for st in live), finished=self.finished)


class MasterSide:
    """The master's part: hands out shares, plays the admin schedule, watches, merges, writes."""

    def __init__(self, settings: RunSettings, runner: Any, *, allow_remote: bool = False) -> None:
        self.s = settings
        self.allow_remote = allow_remote
        self.runner = runner
        self.admin = AdminClient(settings.host, token=settings.admin_token) if settings.admin_token else None
        self.recorder = Recorder(origin_unix=time.time(), calendar_of=self._calendar_iso)
        self.watch = ThresholdWatch(list(settings.thresholds), window_s=settings.threshold_window_s)
        self.view = PoolView(self)
        self.clients: dict[int, str] = {}          # our index -> Locust client id
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
        for kind, fn in ((MSG_READY, self.on_ready), (MSG_STATUS, self.on_status), (MSG_RESULT, self.on_result),
                         (MSG_ERROR, self.on_error)):
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
        return cid is None or cid not in self.runner.clients or self.runner.clients[cid].state == STATE_MISSING

    def name(self, index: int) -> str:
        """'worker 1 (host_abcd)' for messages."""
        return f"worker {index} ({self.clients.get(index, '?')})"

    # ---- messages ----------------------------------------------------------------------------
    def on_ready(self, environment: Any, msg: Any, **_kw: Any) -> None:
        i = int(msg.data["index"])
        theirs, ours = msg.data.get("version"), surgecast_version()
        if theirs != ours:
            # Settings, messages and the merge are only known to match within one version: refuse the run.
            self.failed = (f"VersionMismatch: {self.name(i)} runs surgecast {theirs or 'older than 0.1.0'}, the "
                           f"master {ours}; install the same surgecast version on every machine")
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
        self.exit_code = RunFailed.exit_code     # a run that failed (1), not a usage error
        gevent.spawn(self.runner.quit)

    # ---- the run -------------------------------------------------------------------------------
    def begin(self) -> None:
        """At test start (before Locust sends the first spawn): give each worker its index and settings."""
        from locust.runners import STATE_MISSING

        nodes = [c for c in self.runner.clients.all if c.state != STATE_MISSING]
        nodes.sort(key=lambda c: self.runner.get_worker_index(c.id))
        self.n = len(nodes)
        self.s = dataclasses.replace(self.s, workers=self.n)
        for i, c in enumerate(nodes):
            self.clients[i] = c.id
            self.runner.send_message(MSG_SETUP, settings_to_wire(self.s, index=i, workers=self.n,
                                                                    allow_remote=self.allow_remote), client_id=c.id)
        self._greenlets.append(gevent.spawn(self.run))

    def run(self) -> None:
        """Wait for every worker's set-up (bounded), give the origin, play the admin schedule, watch."""
        if self.admin is not None:
            self.gates_before = (self.admin.metrics() or {}).get("gates")
        deadline = time.time() + READY_WAIT_S
        while len(self.ready) < self.n and time.time() < deadline and not self.finished and self.failed is None:
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
                self._greenlets.append(gevent.spawn(play, self.admin, acts, origin, self.action_log, gevent.sleep))
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
        return (f"{PROGRESS_PREFIX} t={t:5.0f}s/{self.s.duration_s:.0f}s" + draining(t, self.s.duration_s)
                + f"  calendar {cal[:16].replace('T', ' ')}"
                f"  workers {len(self.view._live())}/{self.n}  arrivals {c.get('scheduled', 0)}"
                f"  dropped {c.get('dropped', 0)}  in journey {busy}  {done_text(c)}  issuer queue {q}")

    # ---- the end ----------------------------------------------------------------------------------
    def finish(self, out: Path | None, stop_timeout: float) -> int:
        """Ask the workers for their results (bounded wait), merge them exactly, write the run directory."""
        if self.finished:
            return self.exit_code
        self.finished = True
        for g in self._greenlets:
            g.kill(block=False)
        if self.failed is not None or self.n == 0:
            return self.exit_code or RunFailed.exit_code
        for c in self.clients.values():
            self.runner.send_message(MSG_FINISH, {}, client_id=c)
        wait_s = stop_timeout + RESULTS_GRACE_S
        deadline = time.time() + wait_s
        while time.time() < deadline:
            waiting = [i for i in range(self.n) if i not in self.results]
            if not waiting or all(self.gone(i) for i in waiting):
                break
            gevent.sleep(0.05)
        lost = [{"index": i, "client_id": self.clients[i]} for i in range(self.n) if i not in self.results]
        for w in lost:
            got = self.parts.get(w["index"])
            more = f" ({len(got.parts)} of {got.total} chunks)" if got else ""
            why = "stopped answering (no heartbeat)" if self.gone(w["index"]) else "did not send its results"
            print(render(IntegrityError(f"{self.name(w['index'])} {why}: nothing after waiting up to {wait_s:g} s"
                                        f"{more}; its arrivals, ledger and latencies are missing from the run "
                                        "directory (data lost, exit 3)")), file=sys.stderr, flush=True)
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
        if self.origin is not None:
            self.watch.evaluate(time.time() - self.origin)
        self.exit_code = conclude(
            self.s, self.recorder, out=out, admin=self.admin, gates_before=self.gates_before,
            action_log=self.action_log, watch=self.watch, origin_unix=self.origin or self.started_unix,
            started_unix=self.started_unix, scheduled_expected=build_schedule(self.s).expected(),
            cpu_max=self.cpu_max, lost_workers=lost,
            extra={**setup, "aborted_by": self.aborted_by,
                   "worker_clients": [self.clients[i] for i in range(self.n)]},
            refused=self.refused, interrupted=self.interrupted)
        return self.exit_code


# ---- the command line ------------------------------------------------------------------------------
