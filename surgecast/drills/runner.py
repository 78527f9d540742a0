"""Running a drill: start its testbed, rehearse against it, inject the fault, heal, drain, judge,
write drill.json."""

from __future__ import annotations

import contextlib
import functools
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from floor import atomic, rundir
from floor.children import child_env, python_module
from floor.children import stop as stop_child
from floor.errors import FieldError, SurgecastError
from floor.jsonhttp import HttpError
from floor.rundir import schema as rs
from surgecast.drills.catalogue import DRILLS
from surgecast.drills.context import (
    BASE_TESTBED,
    DRAIN_TIMEOUT_S,
    LOAD_START_TIMEOUT_S,
    ROOT,
    Drill,
    DrillContext,
    _admin_optional,
    _iso,
)
from surgecast.drills.judge import _drain, _judge


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


def run_drill(
    name: str,
    *,
    out: Path,
    duration_s: float | None = None,
    seed: int = 1,
    fresh_keys: bool = False,
    quiet: bool = False,
) -> dict[str, Any]:
    """Run drill `name` into run directory `out`; return what is written to `out/drill.json`.

    >>> run_drill("no-such-drill", out=Path("/tmp/never"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: NAME = 'no-such-drill': choose one of: kill-testbed, issuer-outage, ...
    """
    drill = DRILLS.get(name)
    if drill is None:
        raise FieldError(
            "NAME", name, f"choose one of: {', '.join(DRILLS)} (see surgecast drill --list)"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FieldError("--out", str(out), "exists and is not an empty directory; give a new one")
    duration = float(duration_s or drill.duration_s)
    if not 8 <= duration <= 600:
        raise FieldError(
            "--duration", duration_s, "give 8 to 600 seconds (the faults play in the first 9 s)"
        )
    # the rehearsal and the drill's files: one run id
    with rundir.exported(rundir.claim(out, what="drill")):
        return _run_drill(
            drill, out=out, duration=duration, seed=seed, fresh_keys=fresh_keys, quiet=quiet
        )


def _run_drill(
    drill: Drill, *, out: Path, duration: float, seed: int, fresh_keys: bool, quiet: bool
) -> dict[str, Any]:
    """run_drill after its checks, under the run id exported in the environment."""
    say = _say(quiet)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="surgecast-drill-") as tmp:
        profile = Path(tmp) / f"drill-{drill.name}.toml"
        profile.write_text(drill.profile_toml(), encoding="utf-8")
        with _drill_testbed(drill, Path(tmp), seed) as tb:
            say(f"{drill.name}: testbed at {tb.url}; {drill.injects}")
            ctx = DrillContext(tb=tb)
            cmd = _rehearse_cmd(drill, tb.url, profile, out, duration, seed, fresh_keys)
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                env=child_env(tb.admin_token),
            )
            fault_error: list[str] = []
            on_interrupt = functools.partial(
                _interrupted, drill, ctx, proc, out, started=started, seed=seed, duration=duration
            )
            stderr = _load_with_fault(drill, ctx, proc, duration, fault_error, on_interrupt)
            ctx.event("load_finished", rehearse_exit=proc.returncode)
            if proc.returncode == 2:
                last = (stderr.strip().splitlines() or ["(no output)"])[-1]
                raise SurgecastError(f"the drill's rehearsal refused its flags: {last}")
            audit, waited = _heal_and_drain(drill, ctx, fault_error)
            server = _admin_optional(tb.url, tb.admin_token, "GET", "/admin/ledger")
            records = _admin_optional(tb.url, tb.admin_token, "GET", "/admin/records")
            result = _judge(
                drill,
                ctx,
                out,
                audit=audit,
                server=server,
                records=records,
                rehearse_exit=proc.returncode,
                rehearse_stderr=stderr,
                fault_error=fault_error,
                waited_s=waited,
            )
    result.update(
        name=drill.name,
        proves=drill.proves,
        injects=drill.injects,
        seed=seed,
        duration_s=duration,
        rate_per_s=drill.rate_per_s,
        fresh_idempotency_keys=fresh_keys,
        started_at=_iso(started),
        finished_at=_iso(time.time()),
        elapsed_s=round(time.time() - started, 2),
        timeline=ctx.timeline,
    )
    return _write_result(result, out)


def _say(quiet: bool) -> Callable[[str], None]:
    """The drill's progress line on stderr, or nothing when quiet."""
    if quiet:
        return lambda _m: None
    return lambda m: print(f"[drill] {m}", file=sys.stderr, flush=True)


def _drill_testbed(drill: Drill, tmp: Path, seed: int) -> Any:
    """The drill's own testbed (not started): a fresh SQLite file in `tmp`, the drill's settings."""
    from testbed.process import TestbedServer

    extra: list[str] = ["--seed", str(seed)]
    for kv in (*BASE_TESTBED, *drill.testbed_set):
        extra += ["--set", kv]
    return TestbedServer(
        port=0,
        db=str(tmp / "testbed.sqlite"),
        admin_token=secrets.token_hex(24),
        extra_args=extra,
    )


def _rehearse_cmd(
    drill: Drill,
    url: str,
    profile: Path,
    out: Path,
    duration: float,
    seed: int,
    fresh_keys: bool,
) -> list[str]:
    """The `surgecast rehearse` command line of the drill's load (the admin token goes in the
    environment, not argv)."""
    scale = drill.rate_per_s * duration / 86400.0
    cmd = [
        *python_module("surgecast"),
        "rehearse",
        *("--profile", str(profile), "--duration", repr(duration), "--scale", repr(scale)),
        *("--seed", str(seed), "--host", url, "--out", str(out), "--quiet"),
    ]
    if fresh_keys:
        cmd.append("--fresh-idempotency-keys")
    return cmd


def _load_with_fault(
    drill: Drill,
    ctx: DrillContext,
    proc: subprocess.Popen[str],
    duration: float,
    fault_error: list[str],
    on_interrupt: Callable[[BaseException], None],
) -> str:
    """Play the fault from a thread once the load reached the testbed, wait (bounded) for the
    rehearsal to end; its stderr. A fault that raises is recorded in `fault_error`; a signal
    calls `on_interrupt` before the fault thread is stopped, then propagates."""
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
            _stdout, stderr = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            _stdout, stderr = proc.communicate()
            stderr += f"\n(rehearsal killed after {limit:.0f} s)"
        return stderr
    except KeyboardInterrupt as e:  # SIGTERM/SIGINT: stop the load, say so, leave no testbed behind
        on_interrupt(e)
        raise
    finally:
        ctx.stop.set()
        if thread is not None:
            thread.join(15)


def _interrupted(
    drill: Drill,
    ctx: DrillContext,
    proc: subprocess.Popen[str],
    out: Path,
    e: BaseException,
    *,
    started: float,
    seed: int,
    duration: float,
) -> None:
    """A signal stopped the drill: stop the load, record it, write the interrupted drill.json."""
    ctx.stop.set()
    stop_child(proc, 7.0)
    ctx.event(
        "interrupted",
        signal=getattr(e, "signame", "SIGINT"),
        rehearse_exit=proc.returncode,
    )
    _write_interrupted(drill, ctx, out, e, started, seed=seed, duration=duration)


def _heal_and_drain(
    drill: Drill, ctx: DrillContext, fault_error: list[str]
) -> tuple[dict[str, Any] | None, float]:
    """After the load: the testbed up, every fault healed, the drill's late acts, then the
    queues drained (bounded); (last audit, seconds waited)."""
    tb = ctx.tb
    if tb.proc is None or tb.proc.poll() is not None:
        tb.restart()
        ctx.event("restart_after_load", port=tb.port)
    # Heal: everything running again, then let the queues drain.
    heal = {"issuer": "resume", "payments": "resume"}
    heal |= {"issuer_slow_factor": 1.0, "answer_delay_s": 0}
    healed = _admin_optional(tb.url, tb.admin_token, "POST", "/admin/faults", heal)
    ctx.event("healed", ok=healed is not None)
    if drill.after is not None and not fault_error:
        try:
            drill.after(ctx)
        except (HttpError, KeyError, TypeError) as e:
            fault_error.append(f"after the load: {e}")
    audit, waited = _drain(tb.url, tb.admin_token, DRAIN_TIMEOUT_S)
    totals = audit["totals"] if audit else {}
    drained = totals.get("stamps_pending") == 0 and totals.get("payments_pending") == 0
    ctx.event("drained" if drained else "drain_timeout", waited_s=round(waited, 2))
    return audit, waited


RESULT_KEYS = (
    "name",
    "proves",
    "injects",
    "verdict",
    "checks",
    "timeline",
    "seed",
    "duration_s",
    "rate_per_s",
    "fresh_idempotency_keys",
    "started_at",
    "finished_at",
    "elapsed_s",
    "rehearse_exit_code",
    "reconciliation",
    "duplicates",
    "audit",
)
"""The keys of drill.json, in their order."""


def _write_result(result: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write drill.json (its keys in order) and record the drill's files; what was written."""
    ordered = {k: result[k] for k in RESULT_KEYS}
    if out.is_dir() or not out.exists():
        atomic.write_json(out / rs.DRILL, rundir.stamp(ordered, rundir.process_run_id()))
        rundir.record(
            out,
            [rs.DRILL, rs.DRILL_SERVER_RECORDS, rs.DRILL_SERVER_LEDGER],
            run_id=rundir.process_run_id(),
            by="drill",
        )
    return ordered


def _write_interrupted(
    drill: Drill,
    ctx: DrillContext,
    out: Path,
    e: BaseException,
    started: float,
    *,
    seed: int,
    duration: float,
) -> None:
    """drill.json of a drill stopped by a signal: not passed, and saying it was interrupted."""
    how = getattr(e, "signame", "SIGINT")
    result = {
        "name": drill.name,
        "proves": drill.proves,
        "injects": drill.injects,
        "verdict": {
            "passed": False,
            "interrupted": True,
            "failed_checks": [],
            "reason": f"interrupted by {how} before the drill ended: nothing was judged",
        },
        "checks": [],
        "timeline": ctx.timeline,
        "seed": seed,
        "duration_s": duration,
        "started_at": _iso(started),
        "finished_at": _iso(time.time()),
        "elapsed_s": round(time.time() - started, 2),
    }
    if out.is_dir() or not out.exists():
        with contextlib.suppress(OSError):
            atomic.write_json(out / rs.DRILL, rundir.stamp(result, rundir.process_run_id()))
            rundir.record(out, [rs.DRILL], run_id=rundir.process_run_id(), by="drill")
