"""Fault drills: a short rehearsal against a testbed with a fault injected, then reconciliation.

A drill starts a testbed process it controls (so it can SIGKILL it), runs
`surgecast rehearse --host URL --admin-token T --out DIR` against it as a
subprocess, injects its fault from a thread while the surge runs, heals the
testbed, waits (bounded) for the issuer and payment queues to drain, then
judges the run from files and the testbed's admin API::

    from surgecast.drills import DRILLS, run_drill
    result = run_drill("kill-testbed", out=Path("runs/drill-kill"), seed=1)
    result["verdict"]["passed"], result["verdict"]["reason"]

It passes only when every check holds (each is in DIR/drill.json):

* `load_ran`: the rehearsal wrote its summary and some applicants completed;
* `fault_observed`: the fault really happened and the clients felt it (a drill
  whose fault did not bite proves nothing, so it fails);
* `reconciliation`: `scenarios.reconcile` of the run's ledger.csv (what the
  clients were told) against the drained server's durable records
  (`GET /admin/records`, settled) finds every count zero: each acknowledged
  payment settled or refunded, each acknowledged stamp done or failed with its
  quota returned, quantities, amounts and serials as told, balances equal to
  the client's evidence, no job without a client, nothing stuck;
* `no_duplicate_jobs`: no account holds two stamp jobs for the same document or
  two orders (each drill applicant buys once and stamps distinct documents), so
  no e-Meterai was charged twice by a retried request;
* `stamps_finished`: the queues drained within the bound and every accepted
  stamp job is done or failed (none queued, processing or lost);
* `audit_balanced`: `GET /admin/audit` is balanced.

The CLI (`surgecast drill NAME`) exits 0 when the drill passes, 3 otherwise.
"""

from __future__ import annotations

import contextlib
import csv
import json
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floor import atomic
from floor.children import child_env
from floor.children import stop as stop_child
from floor.errors import FieldError, SurgecastError
from floor.jsonhttp import HttpError, JsonClient
from scenarios.profile import flat_profile_toml

DRAIN_TIMEOUT_S = 30.0
LOAD_START_TIMEOUT_S = 60.0
ROOT = Path(__file__).resolve().parents[1]

# Cheap password hashing and a quick testbed: drills test integrity, not speed.
BASE_TESTBED = ("security.password_hash=\"pbkdf2\"", "security.pbkdf2_iterations=1000",
                "issuer.workers=8", "issuer.service.mean=0.05", "payments.workers=8",
                "payments.service.mean=0.05")



# ---- the admin API of the drill's testbed (stdlib only) ------------------------------------
def _admin(url: str, token: str, method: str, path: str, body: Any = None, timeout: float = 5.0) -> Any:
    client = JsonClient(url, token=token, deadline_s=timeout, max_bytes=256 << 20)
    return client.json(method, path, json_body=body, ok=(200, 201, 202))


def _admin_optional(url: str, token: str, method: str, path: str, body: Any = None) -> Any:
    try:
        return _admin(url, token, method, path, body)
    except HttpError:
        return None


def _iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class DrillContext:
    """What a drill's fault function works with: the testbed, the clock and the timeline."""

    tb: Any                      # testbed.process.TestbedServer
    load_start: float = 0.0      # unix time of the first registration the testbed saw
    timeline: list[dict[str, Any]] = field(default_factory=list)
    observed: dict[str, Any] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def event(self, what: str, **detail: Any) -> None:
        """Record a fault event at the current time (seconds since the load started)."""
        now = time.time()
        self.timeline.append({"t_s": round(now - self.load_start, 3), "at": _iso(now), "event": what, **detail})

    def sleep_until(self, load_s: float) -> bool:
        """Sleep until `load_s` seconds after the load started; False if the drill is stopping."""
        return not self.stop.wait(max(0.0, self.load_start + load_s - time.time()))

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the testbed's admin API (raises on failure)."""
        return _admin(self.tb.url, self.tb.admin_token, method, path, body)

    def metrics(self) -> dict[str, Any] | None:
        """`GET /admin/metrics`, or None while the testbed is down."""
        return _admin_optional(self.tb.url, self.tb.admin_token, "GET", "/admin/metrics")


@dataclass(frozen=True, kw_only=True)
class Drill:
    """One drill: its load, its testbed, its fault, and how to tell that the fault bit."""

    name: str
    proves: str
    injects: str
    fault: Callable[[DrillContext], None]
    observe: Callable[[DrillContext, dict[str, Any]], tuple[bool, str]]
    rate_per_s: float = 5.0
    duration_s: float = 12.0
    testbed_set: tuple[str, ...] = ()
    journeys: dict[str, Any] = field(default_factory=dict)

    def profile_toml(self) -> str:
        """The drill's surge profile (flat arrivals, new applicants, its client timeouts)."""
        # 86,400 applicants over one calendar day: one per calendar second, so the arrival
        # rate is compress x scale.
        j = {"mix": {"new_applicant": 1.0}, "think_time_s": [0.0, 0.1], "patience_s": 20, "poll_interval_s": 0.2,
             "retry_mix": {"backoff": 1.0}, "backoff_base_s": 0.3, "backoff_max_s": 2, "max_attempts": 8,
             "request_timeout_s": 5, **self.journeys}
        return flat_profile_toml(f"drill-{self.name}", total=86400, stamps_per_applicant={1: 0.5, 2: 0.5},
                                 journeys=j)


# ---- the faults ----------------------------------------------------------------------------------
def _steps_errors(summary: dict[str, Any], *steps: str) -> int:
    s = summary.get("steps") or {}
    return sum(int((s.get(k) or {}).get("errors") or 0) for k in (steps or s.keys()))


def _kill_fault(ctx: DrillContext) -> None:
    # Hold the gateway and the issuer for the last second before the kill, so the kill finds
    # payments answered 202 but unconfirmed and stamp jobs answered 202 but queued: the work a
    # restart must not drop. The pause lives in memory only; the restarted testbed runs freely.
    if not ctx.sleep_until(3.0):
        return
    ctx.admin("POST", "/admin/faults", {"payments": "pause", "issuer": "pause"})
    ctx.event("hold_before_kill", payments="pause", issuer="pause")
    if not ctx.sleep_until(4.0):
        return
    res = (ctx.metrics() or {}).get("resources") or {}
    ctx.observed["payments_pending_at_kill"] = int((res.get("payments") or {}).get("queue_depth") or 0)
    ctx.observed["stamps_pending_at_kill"] = int((res.get("issuer") or {}).get("queue_depth") or 0)
    port = ctx.tb.port
    ctx.event("sigkill", pid=ctx.tb.proc.pid if ctx.tb.proc else None, port=port,
              payments_pending=ctx.observed["payments_pending_at_kill"],
              stamps_pending=ctx.observed["stamps_pending_at_kill"])
    ctx.tb.kill()
    ctx.observed["killed"] = True
    ctx.stop.wait(1.0)                 # down for a second: clients see refused connections
    ctx.event("restart", port=port)
    ctx.tb.restart()
    ctx.observed["restarted_at"] = time.time()
    ctx.observed["same_port"] = ctx.tb.port == port
    ctx.event("back", port=ctx.tb.port, same_port=ctx.tb.port == port)


def _kill_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    errors = _steps_errors(run["summary"])
    back = ctx.observed.get("restarted_at")
    after = sum(1 for a in run["arrivals"] if a.get("outcome") == "completed" and back
                and a.get("started_unix", 0) > back)
    pays, stamps = ctx.observed.get("payments_pending_at_kill", 0), ctx.observed.get("stamps_pending_at_kill", 0)
    ok = (bool(ctx.observed.get("killed")) and bool(ctx.observed.get("same_port")) and errors > 0 and after > 0
          and pays > 0 and stamps > 0)
    return ok, (f"killed={bool(ctx.observed.get('killed'))}, restarted on the same port="
                f"{bool(ctx.observed.get('same_port'))}, unconfirmed payments at the kill={pays}, queued stamp "
                f"jobs at the kill={stamps}, client request errors={errors}, "
                f"journeys started after the restart and completed={after}")


def _outage_fault(ctx: DrillContext) -> None:
    if not ctx.sleep_until(3.0):
        return
    state = ctx.admin("POST", "/admin/faults", {"issuer": "pause"})
    ctx.event("issuer_pause", state=state["issuer"])
    deepest = 0
    while ctx.sleep_until(time.time() - ctx.load_start + 0.25) and time.time() < ctx.load_start + 8.0:
        m = ctx.metrics()
        if m:
            deepest = max(deepest, int(m["resources"]["issuer"]["queue_depth"]))
    ctx.observed["paused_queue_max"] = deepest
    state = ctx.admin("POST", "/admin/faults", {"issuer": "resume"})
    ctx.event("issuer_resume", state=state["issuer"], queue_max_while_paused=deepest)


def _outage_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    deepest = int(ctx.observed.get("paused_queue_max", 0))
    return deepest > 0, f"stamp jobs queued behind the paused issuer (most at once)={deepest}"


CHAOS = {"payment_duplicate_ratio": 0.5, "payment_reorder": True, "payment_failure_ratio": 0.2}


def _chaos_fault(ctx: DrillContext) -> None:
    state = ctx.admin("POST", "/admin/faults", CHAOS)
    ctx.event("payment_chaos", **{k: state[k] for k in CHAOS})


def _chaos_after(ctx: DrillContext) -> None:
    """After the load: deliver late confirmations by hand, a failure and a repeat of paid payments."""
    ledger = ctx.admin("GET", "/admin/ledger")
    paid = [o["payment_id"] for o in ledger["orders"] if o["status"] == "paid" and o.get("payment_id")][:5]
    results: Counter[str] = Counter()
    for pid in paid:
        for outcome in ("failed", "confirmed"):
            r = ctx.admin("POST", "/admin/gateway/confirmations", {"payment_id": pid, "outcome": outcome})
            results[r["result"]] += 1
    ctx.observed["late_confirmations"] = dict(results)
    ctx.event("late_confirmations", payments=len(paid), results=dict(results))


def _chaos_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    m = ctx.metrics() or {}
    conf = m.get("confirmations") or {}
    failed = int(((m.get("counts") or {}).get("orders") or {}).get("failed") or 0)
    inversions = _reordered_payments(ctx.tb.db_path)
    late = ctx.observed.get("late_confirmations") or {}
    ok = conf.get("duplicate", 0) > 0 and failed > 0 and inversions > 0 and sum(late.values()) > 0
    return ok, (f"duplicate confirmations={conf.get('duplicate', 0)}, declined payments={failed}, "
                f"confirmations applied out of payment order={inversions}, late hand-delivered "
                f"confirmations={late}")


def _reordered_payments(db_path: str) -> int:
    """Payments resolved before one created earlier than them (confirmations out of order)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute("SELECT created_at, resolved_at FROM payments WHERE resolved_at IS NOT NULL "
                              "ORDER BY rowid").fetchall()
    except sqlite3.Error:
        return 0
    latest, inversions = "", 0
    for _created, resolved in rows:
        if resolved < latest:
            inversions += 1
        latest = max(latest, resolved)
    return inversions


def _retries_fault(ctx: DrillContext) -> None:
    """Make the service slower than the clients' 1 s timeout, in overlapping phases.

    Payments pause first (pay requests wait for room in a 2-job queue), then the
    database stalls, then, as the paid applicants rush to stamp, the issuer runs
    10x slower behind a 4-job queue (stamp requests wait for room). From 2.5 s to 9.5 s
    every accepted stamp is answered 1.5 s late (`answer_delay_s`), past
    the clients' 1 s timeout: work done whose answer is lost, as when applicants paid
    twice in 2024. Retries with the same Idempotency-Key are replays; with fresh keys
    (the control run) they do the work again, and the drill must fail.
    """
    peak = 0

    def stall() -> None:
        ctx.event("database_stall", hold_s=1.5)
        with contextlib.closing(sqlite3.connect(ctx.tb.db_path, timeout=5, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            time.sleep(1.5)
            db.execute("ROLLBACK")

    plan: list[tuple[float, str, Callable[[], Any]]] = [
        (1.5, "payments_pause", lambda: ctx.admin("POST", "/admin/faults", {"payments": "pause"})),
        (2.5, "answers_late", lambda: ctx.admin("POST", "/admin/faults", {"answer_delay_s": 1.5,
                                                                                "answer_delay_on": ["stamp"]})),
        (3.0, "", stall),
        (4.0, "issuer_slow", lambda: ctx.admin("POST", "/admin/faults", {"issuer_slow_factor": 10.0})),
        (4.5, "payments_resume", lambda: ctx.admin("POST", "/admin/faults", {"payments": "resume"})),
        (7.0, "", stall),
        (9.5, "answers_on_time", lambda: ctx.admin("POST", "/admin/faults", {"answer_delay_s": 0})),
    ]
    for at, label, act in plan:
        while time.time() < ctx.load_start + at:       # sample while waiting for the next phase
            if not ctx.sleep_until(min(at, time.time() - ctx.load_start + 0.25)):
                return
            if time.time() - ctx.load_start >= 4.0:
                m = ctx.metrics()
                if m:
                    peak = max(peak, int(m["resources"]["issuer"]["waiting_for_room"]))
        act()
        if label:
            ctx.event(label)
    while ctx.sleep_until(time.time() - ctx.load_start + 0.25) and time.time() < ctx.load_start + 10.0:
        m = ctx.metrics()
        if m:
            peak = max(peak, int(m["resources"]["issuer"]["waiting_for_room"]))
    ctx.observed["stamps_waiting_for_room_max"] = peak
    ctx.admin("POST", "/admin/faults", {"issuer_slow_factor": 1.0})
    ctx.event("issuer_normal", issuer_slow_factor=1.0, stamp_requests_waiting_for_room_max=peak)


def _retries_observe(ctx: DrillContext, run: dict[str, Any]) -> tuple[bool, str]:
    stamp_errors = _steps_errors(run["summary"], "stamp")
    pay_errors = _steps_errors(run["summary"], "order", "pay")
    ok = stamp_errors > 0 and pay_errors > 0
    return ok, (f"timed-out requests retried: stamp={stamp_errors}, order+pay={pay_errors}; "
                f"stamp requests waiting for issuer room (most at once)="
                f"{ctx.observed.get('stamps_waiting_for_room_max', 0)}")


DRILLS: dict[str, Drill] = {d.name: d for d in (
    Drill(name="kill-testbed",
          proves="SIGKILL mid-surge and a restart on the same port and database lose and duplicate nothing",
          injects="kill -9 of the testbed 4 s into the load, 1 s down, restart on the same port and SQLite file",
          fault=_kill_fault, observe=_kill_observe, rate_per_s=6.0,
          journeys={"request_timeout_s": 3, "max_attempts": 10, "backoff_max_s": 1.5}),
    Drill(name="issuer-outage",
          proves="stamps accepted while the serial-number issuer is down all finish once it is back",
          injects="POST /admin/faults issuer=pause 3 s into the load, issuer=resume at 8 s",
          fault=_outage_fault, observe=_outage_observe, rate_per_s=5.0, journeys={"patience_s": 25}),
    Drill(name="payment-chaos",
          proves="duplicate, reordered and declined payment confirmations credit each paid order exactly once",
          injects="payment_duplicate_ratio=0.5, payment_reorder=true, payment_failure_ratio=0.2 for the "
                  "whole load; then a late failure and a repeat confirmation of 5 paid payments by hand",
          fault=_chaos_fault, observe=_chaos_observe, rate_per_s=6.0),
    Drill(name="client-retries",
          proves="Idempotency-Keys stop retried orders and stamps from charging twice (with "
                 "--fresh-idempotency-keys the same drill must fail)",
          injects="client timeout 1 s; payments paused 1.5-4.5 s behind a 2-job queue (pay requests wait), "
                  "accepted stamps answered 1.5 s late 2.5-9.5 s (lost answers), "
                  "1.5 s database stalls at 3 s and 7 s, issuer 10x slower 4-10 s behind a 4-job queue "
                  "(stamp requests wait for room)",
          fault=_retries_fault, observe=_retries_observe, rate_per_s=4.0,
          testbed_set=("issuer.workers=2", "issuer.service.distribution=\"constant\"", "issuer.service.mean=0.1",
                       "issuer.queue_bound=4", "payments.workers=2", "payments.queue_bound=2",
                       "payments.service.mean=0.1"),
          journeys={"request_timeout_s": 1, "patience_s": 25, "max_attempts": 15, "backoff_base_s": 0.2,
                    "backoff_max_s": 1}),
)}


def describe() -> list[str]:
    """One line per drill: its name and what it proves.

    >>> describe()[0].split()[0]
    'kill-testbed'
    """
    width = max(len(n) for n in DRILLS)
    return [f"{d.name:<{width}}  {d.proves}" for d in DRILLS.values()]


# ---- judging -------------------------------------------------------------------------------------
def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _unix(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def duplicate_jobs(client_rows: list[dict[str, str]], server: dict[str, Any], db_path: str) -> dict[str, Any]:
    """Orders and stamp jobs the server made twice for one request of a client account.

    Each drill applicant buys once and stamps distinct documents, so two orders
    on one account, or two stamp jobs for the same document (same SHA-256) on
    one account, can only come from a retried request that was not recognised
    as a repeat. A duplicated stamp job that is not failed used one e-Meterai
    of paid quota: a double charge.
    """
    accounts = {r["account_id"] for r in client_rows if r.get("account_id")}
    orders = Counter(o["account_id"] for o in server.get("orders", []) if o.get("account_id") in accounts)
    dup_orders = sum(n - 1 for n in orders.values() if n > 1)
    paid_dup_orders = 0
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for o in server.get("orders", []):
        by_account[o["account_id"]].append(o)
    for aid, n in orders.items():
        if n > 1:
            paid_dup_orders += max(0, sum(1 for o in by_account[aid] if o.get("status") == "paid") - 1)
    dup_stamps = charged = 0
    examples: list[dict[str, Any]] = []
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)) as db:
        groups = db.execute("SELECT account_id, doc_sha256, COUNT(*), SUM(status != 'failed') "
                            "FROM stamps GROUP BY account_id, doc_sha256 HAVING COUNT(*) > 1").fetchall()
    for aid, digest, n, not_failed in groups:
        if aid not in accounts:
            continue
        dup_stamps += n - 1
        charged += max(0, int(not_failed or 0) - 1)
        if len(examples) < 20:
            examples.append({"account_id": aid, "document_sha256": digest[:16], "jobs": n})
    return {"duplicate_orders": dup_orders, "duplicate_paid_orders": paid_dup_orders,
            "duplicate_stamp_jobs": dup_stamps, "quota_charged_twice": charged + paid_dup_orders,
            "examples": examples}


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _drain(url: str, token: str, timeout_s: float) -> tuple[dict[str, Any] | None, float]:
    """Poll the audit until no stamp job and no payment is pending; (last audit, seconds waited)."""
    t0 = time.monotonic()
    audit = None
    while time.monotonic() - t0 < timeout_s:
        audit = _admin_optional(url, token, "GET", "/admin/audit")
        t = (audit or {}).get("totals") or {}
        if audit is not None and t.get("stamps_pending") == 0 and t.get("payments_pending") == 0:
            break
        time.sleep(0.25)
    return audit, time.monotonic() - t0


# ---- running -------------------------------------------------------------------------------------
def _wait_for_load(ctx: DrillContext, proc: subprocess.Popen[str]) -> bool:
    """Block until the testbed has seen the first registration (the load started)."""
    deadline = time.time() + LOAD_START_TIMEOUT_S
    while time.time() < deadline and proc.poll() is None:
        m = ctx.metrics()
        if m and int((m.get("counts") or {}).get("accounts") or 0) > 0:
            ctx.load_start = time.time()
            return True
        time.sleep(0.05)
    return False


def run_drill(name: str, *, out: Path, duration_s: float | None = None, seed: int = 1,
              fresh_keys: bool = False, quiet: bool = False) -> dict[str, Any]:
    """Run drill `name` into run directory `out`; return what is written to `out/drill.json`.

    >>> run_drill("no-such-drill", out=Path("/tmp/never"))
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: NAME = 'no-such-drill': choose one of: kill-testbed, issuer-outage, payment-chaos, client-retries (see surgecast drill --list)
    """
    drill = DRILLS.get(name)
    if drill is None:
        raise FieldError("NAME", name, f"choose one of: {', '.join(DRILLS)} (see surgecast drill --list)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FieldError("--out", str(out), "exists and is not an empty directory; give a new one")
    duration = float(duration_s or drill.duration_s)
    if not 8 <= duration <= 600:
        raise FieldError("--duration", duration_s, "give 8 to 600 seconds (the faults play in the first 9 s)")
    from testbed.process import TestbedServer

    say = (lambda _m: None) if quiet else (lambda m: print(f"[drill] {m}", file=sys.stderr, flush=True))
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="surgecast-drill-") as tmp:
        profile = Path(tmp) / f"drill-{name}.toml"
        profile.write_text(drill.profile_toml(), encoding="utf-8")
        extra: list[str] = ["--seed", str(seed)]
        for kv in (*BASE_TESTBED, *drill.testbed_set):
            extra += ["--set", kv]
        tb = TestbedServer(port=0, db=str(Path(tmp) / "testbed.sqlite"), admin_token=secrets.token_hex(24),
                           extra_args=extra)
        with tb:
            say(f"{name}: testbed at {tb.url}; {drill.injects}")
            ctx = DrillContext(tb=tb)
            scale = drill.rate_per_s * duration / 86400.0
            cmd = [sys.executable, "-m", "surgecast", "rehearse", "--profile", str(profile), "--duration",
                   repr(duration), "--scale", repr(scale), "--seed", str(seed), "--host", tb.url,
                   "--out", str(out), "--quiet"]  # the admin token goes in the environment, not argv
            if fresh_keys:
                cmd.append("--fresh-idempotency-keys")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                    env=child_env(tb.admin_token))
            fault_error: list[str] = []
            thread: threading.Thread | None = None
            try:
                if _wait_for_load(ctx, proc):
                    ctx.event("load_started")

                    def play() -> None:
                        try:
                            drill.fault(ctx)
                        except Exception as e:  # noqa: BLE001 (recorded as a failed check)
                            fault_error.append(f"{type(e).__name__}: {e}")
                            ctx.event("fault_error", error=f"{type(e).__name__}: {e}")
                    thread = threading.Thread(target=play, daemon=True)
                    thread.start()
                limit = duration + 25 + 60
                try:
                    stdout, stderr = proc.communicate(timeout=limit)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    stdout, stderr = proc.communicate()
                    stderr += f"\n(rehearsal killed after {limit:.0f} s)"
            except KeyboardInterrupt as e:  # SIGTERM/SIGINT: stop the load, say so, leave no testbed behind
                ctx.stop.set()
                stop_child(proc, 7.0)
                ctx.event("interrupted", signal=getattr(e, "signame", "SIGINT"), rehearse_exit=proc.returncode)
                _write_interrupted(drill, ctx, out, e, started, seed=seed, duration=duration)
                raise
            finally:
                ctx.stop.set()
                if thread is not None:
                    thread.join(15)
            ctx.event("load_finished", rehearse_exit=proc.returncode)
            if proc.returncode == 2:
                last = (stderr.strip().splitlines() or ["(no output)"])[-1]
                raise SurgecastError(f"the drill's rehearsal refused its flags: {last}")
            if tb.proc is None or tb.proc.poll() is not None:
                tb.restart()
                ctx.event("restart_after_load", port=tb.port)
            # Heal: everything running again, then let the queues drain.
            healed = _admin_optional(tb.url, tb.admin_token, "POST", "/admin/faults",
                                     {"issuer": "resume", "payments": "resume", "issuer_slow_factor": 1.0,
                                      "answer_delay_s": 0})
            ctx.event("healed", ok=healed is not None)
            if name == "payment-chaos" and not fault_error:
                try:
                    _chaos_after(ctx)
                except (HttpError, KeyError, TypeError) as e:
                    fault_error.append(f"late confirmations: {e}")
            audit, waited = _drain(tb.url, tb.admin_token, DRAIN_TIMEOUT_S)
            ctx.event("drained" if audit and audit["totals"].get("stamps_pending") == 0
                      and audit["totals"].get("payments_pending") == 0 else "drain_timeout", waited_s=round(waited, 2))
            server = _admin_optional(tb.url, tb.admin_token, "GET", "/admin/ledger")
            records = _admin_optional(tb.url, tb.admin_token, "GET", "/admin/records")
            result = _judge(drill, ctx, out, audit=audit, server=server, records=records,
                            rehearse_exit=proc.returncode,
                            rehearse_stderr=stderr, fault_error=fault_error, waited_s=waited, db_path=tb.db_path)
    result.update(name=name, proves=drill.proves, injects=drill.injects, seed=seed, duration_s=duration,
                  rate_per_s=drill.rate_per_s, fresh_idempotency_keys=fresh_keys, started_at=_iso(started),
                  finished_at=_iso(time.time()), elapsed_s=round(time.time() - started, 2),
                  timeline=ctx.timeline)
    ordered = {k: result[k] for k in ("name", "proves", "injects", "verdict", "checks", "timeline", "seed",
                                      "duration_s", "rate_per_s", "fresh_idempotency_keys", "started_at",
                                      "finished_at", "elapsed_s", "rehearse_exit_code", "reconciliation",
                                      "duplicates", "audit")}
    if out.is_dir() or not out.exists():
        atomic.write_json(out / "drill.json", ordered)
    return ordered


def _write_interrupted(drill: Drill, ctx: DrillContext, out: Path, e: BaseException, started: float, *,
                       seed: int, duration: float) -> None:
    """drill.json of a drill stopped by a signal: not passed, and saying it was interrupted."""
    how = getattr(e, "signame", "SIGINT")
    result = {"name": drill.name, "proves": drill.proves, "injects": drill.injects,
              "verdict": {"passed": False, "interrupted": True, "failed_checks": [],
                          "reason": f"interrupted by {how} before the drill ended: nothing was judged"},
              "checks": [], "timeline": ctx.timeline, "seed": seed, "duration_s": duration,
              "started_at": _iso(started), "finished_at": _iso(time.time()),
              "elapsed_s": round(time.time() - started, 2)}
    if out.is_dir() or not out.exists():
        with contextlib.suppress(OSError):
            atomic.write_json(out / "drill.json", result)


def _reconciliation_check(client: list[dict[str, str]], records: dict[str, Any] | None,
                          out: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The oracle: the clients' ledger against the drained server's durable records (settled)."""
    from scenarios.reconcile import reconcile

    if records is None:
        return _check("reconciliation", False, "GET /admin/records failed after the load"), None
    atomic.write_json(out / "drill_server_records.json", records)
    recon = reconcile(client, records, settled=True)
    bad = ", ".join(f"{k}={recon[k]}" for k in recon["problems"])
    first = Counter(d["problem"] for d in recon["details"] if d.get("count") in recon["problems"])
    why = "; ".join(f"{k} x{v}" for k, v in first.most_common(4))
    detail = (f"{bad} ({why})" if bad else "0 lost, 0 duplicated, 0 mispriced, 0 stuck") + (
        f"; checked {recon['checked_accounts']} accounts, {recon['checked_orders']} orders, "
        f"{recon['checked_payments']} payments, {recon['checked_stamps']} stamps")
    if not client:
        detail = "the client ledger is empty; " + detail
    return _check("reconciliation", recon["ok"] and bool(client), detail), recon


def _judge(drill: Drill, ctx: DrillContext, out: Path, *, audit: dict[str, Any] | None,
           server: dict[str, Any] | None, records: dict[str, Any] | None, rehearse_exit: int | None,
           rehearse_stderr: str,
           fault_error: list[str], waited_s: float, db_path: str) -> dict[str, Any]:
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    client = _rows(out / "ledger.csv")
    arrivals = _rows(out / "arrivals.csv")
    for a in arrivals:
        a["started_unix"] = _unix(a.get("started_at") or "")  # type: ignore[assignment]
    checks: list[dict[str, Any]] = []
    completed = int(summary.get("completed") or 0)
    tail = (rehearse_stderr.strip().splitlines() or [""])[-1][:300]
    checks.append(_check("load_ran", bool(summary) and completed > 0,
                         f"rehearsal exit {rehearse_exit}; scheduled {summary.get('scheduled')}, completed "
                         f"{completed}, abandoned {summary.get('abandoned')}, failed {summary.get('failed')}"
                         + ("" if summary else f"; no summary.json ({tail or 'no output'})")))
    if fault_error:
        checks.append(_check("fault_observed", False, "the fault could not be injected: " + "; ".join(fault_error)))
    elif not ctx.timeline or ctx.load_start == 0:
        checks.append(_check("fault_observed", False, "the load never reached the testbed; no fault injected"))
    else:
        ok, detail = drill.observe(ctx, {"summary": summary, "arrivals": arrivals})
        checks.append(_check("fault_observed", ok, detail))
    recon: dict[str, Any] | None = None
    dups: dict[str, Any] | None = None
    check, recon = _reconciliation_check(client, records, out)
    checks.append(check)
    if server is None:
        checks.append(_check("no_duplicate_jobs", False, "GET /admin/ledger failed after the load"))
    else:
        atomic.write_json(out / "drill_server_ledger.json", server)
        dups = duplicate_jobs(client, server, db_path)
        n = dups["duplicate_orders"] + dups["duplicate_stamp_jobs"]
        checks.append(_check("no_duplicate_jobs", n == 0,
                             f"{dups['duplicate_stamp_jobs']} stamp jobs made twice for one document "
                             f"({dups['quota_charged_twice']} e-Meterai charged twice), "
                             f"{dups['duplicate_orders']} duplicate orders"))
        accounts = {r["account_id"] for r in client if r.get("account_id")}
        states = Counter(s["status"] for s in server.get("stamps", []) if s.get("account_id") in accounts)
        pending = (audit or {}).get("totals", {}).get("stamps_pending")
        unfinished = states.get("queued", 0) + states.get("processing", 0)
        lost_stamps = (recon or {}).get("lost_stamps", 0)
        checks.append(_check("stamps_finished", unfinished == 0 and pending == 0 and lost_stamps == 0,
                             f"{states.get('done', 0)} done, {states.get('failed', 0)} failed, {unfinished} "
                             f"unfinished of {sum(states.values())} accepted; drained in {waited_s:.1f} s "
                             f"(bound {DRAIN_TIMEOUT_S:g} s)"))
    if audit is None:
        checks.append(_check("audit_balanced", False, "GET /admin/audit failed after the load"))
    else:
        failing = [c["name"] for c in audit.get("checks", []) if not c.get("ok")]
        checks.append(_check("audit_balanced", bool(audit.get("balanced")),
                             "balanced" if audit.get("balanced") else "failing: " + ", ".join(failing)))
    failed = [c for c in checks if not c["ok"]]
    reason = ("all checks passed" if not failed else
              "; ".join(f"{c['name']} failed ({c['detail']})" for c in failed))
    return {"verdict": {"passed": not failed, "reason": reason, "failed_checks": [c["name"] for c in failed]},
            "checks": checks, "rehearse_exit_code": rehearse_exit, "reconciliation": recon, "duplicates": dups,
            "audit": audit}
