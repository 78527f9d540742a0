"""`surgecast probe [--host URL] --out DIR`: a target's capacity by stepped closed-model load.

Counts stamps the client sees done (not accepted uploads), climbs 1, 2, 4, ...
applicants while throughput rises, holds the level where it levels off until the
interval is tight (or --budget is spent), and writes DIR/probe.csv (per level and
step), DIR/probe_batches.csv (every sub-window) and DIR/capacity.json
(`stamps_per_second` with `ci_low`/`ci_high`, `levelled`, and with an admin token
the target's `configured_stamps_per_second` and the server's own count), all in
docs/run-directory.md. Exit 1 when throughput had not levelled by the top level
(nothing is called the peak). With no --host it starts the embedded testbed on
loopback and stops it after.
"""

from __future__ import annotations

import argparse
import math
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from floor import rundir
from floor.atomic import check_writable
from floor.children import TOKEN_ENV
from floor.errors import FieldError
from floor.rundir import writers
from floor.version import __version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast probe`."""
    parser.add_argument("--host", help="target base URL (default: start the embedded testbed)")
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    parser.add_argument("--admin-token", default=os.environ.get(TOKEN_ENV) or None,
                        help="the target's admin token, to record its configured capacity "
                             f"(default ${TOKEN_ENV})")
    parser.add_argument("--budget", type=float, default=40.0, metavar="S",
                        help="wall seconds for the whole probe: ladder and hold (default 40)")
    parser.add_argument("--precision", type=float, default=0.025, metavar="R",
                        help="hold the levelled level until the interval's half-width is this "
                             "share or the budget is spent (default 0.025)")
    parser.add_argument("--step-duration", type=float, default=3.0, metavar="S",
                        help="most measured seconds per ladder level before it is judged "
                             "(default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, metavar="S",
                        help="unmeasured seconds after a level has filled (default 0.5)")
    parser.add_argument("--batch", type=float, default=1.0, metavar="S",
                        help="seconds per batch (sub-window) of the confidence interval "
                             "(default 1)")
    parser.add_argument("--max-concurrency", type=int, default=256, metavar="N",
                        help="stop at this many concurrent applicants (default 256)")
    parser.add_argument("--max-error-ratio", type=float, default=0.05, metavar="R",
                        help="stop when this share of requests fail (default 0.05)")
    parser.add_argument("--min-gain", type=float, default=0.05, metavar="R",
                        help="a doubling that gains less than this share has levelled "
                             "(default 0.05)")
    parser.add_argument("--confidence", type=float, default=0.95, metavar="P",
                        help="confidence of the intervals and of the levelling test (default 0.95)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a host that is not loopback (load only what you own)")
    parser.add_argument("--quiet", action="store_true")


def _check(args: argparse.Namespace) -> None:
    bounds = [("--budget", args.budget, 5, 3600, "give seconds between 5 and 3600"),
              ("--precision", args.precision, 0.001, 0.5, "give a share between 0.001 and 0.5"),
              ("--step-duration", args.step_duration, 0.5, 3600,
               "give seconds between 0.5 and 3600"),
              ("--warmup", args.warmup, 0, 600, "give seconds between 0 and 600"),
              ("--batch", args.batch, 0.2, 60, "give seconds between 0.2 and 60"),
              ("--max-concurrency", args.max_concurrency, 1, 4096,
               "give a whole number from 1 to 4096"),
              ("--min-gain", args.min_gain, 0, 1, "give a share between 0 and 1")]
    for flag, v, lo, hi, fix in bounds:
        if not (isinstance(v, int | float) and math.isfinite(v) and lo <= v <= hi):
            raise FieldError(flag, v, fix)
    if not 0 < args.max_error_ratio <= 1:
        raise FieldError("--max-error-ratio", args.max_error_ratio, "give a ratio in (0, 1]")
    if not 0.5 <= args.confidence < 1:
        raise FieldError("--confidence", args.confidence,
                         "give a probability in [0.5, 1), e.g. 0.95")
    if args.batch > args.step_duration:
        raise FieldError("--batch", args.batch,
                         f"give at most --step-duration ({args.step_duration:g} s)")
    if args.out.exists() and not args.out.is_dir():
        raise FieldError("--out", str(args.out), "is a file; give a directory")
    check_writable(args.out)
    # another run's files there: exit 2 before any load
    args.run_id = rundir.claim(args.out, what="probe")
    for flag, v in (("--step-duration", args.step_duration), ("--warmup", args.warmup),
                    ("--max-error-ratio", args.max_error_ratio)):
        if not math.isfinite(v):
            raise FieldError(flag, v, "give a finite number")


def run(args: argparse.Namespace) -> int:
    """Run the probe and write probe.csv and capacity.json."""
    _check(args)
    # Locust patches the standard library with gevent on import: do it before any thread
    # or subprocess exists (the embedded testbed's), or gevent's hub waits on them forever.
    import scenarios.probe  # noqa: F401
    from scenarios.target import AdminClient, check_host, preflight
    from surgecast.console import ProbeProgress

    # a bar with an ETA on a terminal; lines on stderr elsewhere
    say = ProbeProgress(args.budget, quiet=args.quiet)
    server: Any = None
    host, token = args.host, args.admin_token
    if host is None:
        from testbed.process import TestbedServer

        token = token or secrets.token_hex(16)
        server = TestbedServer(port=0, admin_token=token).start()
        host = server.url
        say(f"[surgecast] embedded testbed at {host}")
    try:
        host = check_host(host, allow_remote=args.allow_remote)
        if server is None:  # a refused, HTML or hanging --host: exit 2 before any load or file
            preflight(host, admin_token=token)
        return _probe(args, host, token, AdminClient, say)
    finally:
        if server is not None:
            server.stop()


def _probe(args: argparse.Namespace, host: str, token: str | None, admin_cls: Any, say: Any) -> int:
    """The probe against `host`: run the ladder, write its files, print the capacity."""
    from analysis.probe import BATCH_COLUMNS, PROBE_COLUMNS, capacity_from_probe
    from scenarios.probe import ProbeInterrupted, ProbeSettings, run_probe
    from scenarios.target import issuer_capacity

    admin = admin_cls(host, token=token) if token else None
    configured = admin.config() if admin else None
    settings = ProbeSettings(host=host, step_duration_s=args.step_duration, warmup_s=args.warmup,
                             batch_s=args.batch, budget_s=args.budget, precision=args.precision,
                             max_concurrency=args.max_concurrency,
                             max_error_ratio=args.max_error_ratio, seed=args.seed)
    judge = _judge(args, settings.queue_factor)
    # the issuer's figures at every batch edge, where the target has them
    server = admin.issuer if admin and admin.issuer() is not None else None
    started = datetime.now(UTC)
    interrupted: Any = None
    try:
        result = run_probe(settings, judge=judge, server_completed=server, progress=say)
    except ProbeInterrupted as e:  # publish what was measured so far, marked incomplete
        interrupted, result = e, e.run
    finally:
        getattr(say, "close", lambda: None)()
    capacity = capacity_from_probe(result.rows, batches=result.batches, min_gain=args.min_gain,
                                   climb_gain=settings.climb_gain,
                                   queue_factor=settings.queue_factor,
                                   confidence=args.confidence, configured=configured,
                                   configured_stamps_per_second=issuer_capacity(configured),
                                   measured_at=started.isoformat().replace("+00:00", "Z"))
    capacity["complete"] = interrupted is None
    capacity["hold_stopped_by"] = result.hold_stopped_by   # "precision", "budget", null: no hold
    capacity["parameters"] = _parameters(args, host, result, started)
    out: Path = args.out
    writers.write_probe(out, rows=([r[c] for c in PROBE_COLUMNS] for r in result.rows),
                        batches=([b[c] if b[c] is not None else "" for c in BATCH_COLUMNS]
                                 for b in result.batches), capacity=capacity, run_id=args.run_id)
    _print(capacity, out)
    if interrupted is not None:
        print(f"Interrupted: the probe was stopped by {interrupted.signame} after "
              f"{len(capacity['parameters']['levels'])} levels; capacity.json is marked incomplete "
              f"(complete=false)", file=sys.stderr)
        return 1
    return 0 if capacity.get("stamps_per_second") is not None else 1


def _judge(args: argparse.Namespace, queue_factor: float) -> Any:
    """How the probe judges a level: its estimate, the levelling test and the queued levels."""
    from analysis.probe import assess, level_estimate, level_spread, queued_levels, steady
    from scenarios.probe import Judge

    return Judge(estimate=lambda b, every: level_estimate(b, confidence=args.confidence,
                                                          spread=level_spread(b, every)),
                 assess=lambda lo, hi, final=False: assess(
                     lo, hi, min_gain=args.min_gain, confidence=args.confidence, final=final),
                 queued=lambda b, waits: queued_levels(b, waits, queue_factor=queue_factor),
                 steady=steady)


def _parameters(
    args: argparse.Namespace, host: str, result: Any, started: datetime
) -> dict[str, Any]:
    """capacity.json's `parameters`: the flags, the levels run, why it stopped, when."""
    return {
        "kind": "probe", "host": host, "levels": sorted({r["concurrency"] for r in result.rows}),
        "budget_s": args.budget, "precision": args.precision, "step_duration_s": args.step_duration,
        "warmup_s": args.warmup, "batch_s": args.batch, "max_concurrency": args.max_concurrency,
        "max_error_ratio": args.max_error_ratio, "min_gain": args.min_gain,
        "confidence": args.confidence, "seed": args.seed, "stopped": result.stopped,
        "wall_s": result.wall_s, "surgecast": __version__,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }


def _print(capacity: dict[str, Any], out: Path) -> None:
    x = capacity.get("stamps_per_second")
    if x is None:
        print(f"WARNING: {capacity.get('note') or 'no sustainable capacity measured'}",
              file=sys.stderr)
        print("sustainable capacity: not measured")
    else:
        conf = capacity["confidence"]
        lo, hi = capacity.get("ci_low"), capacity.get("ci_high")
        ci = f" ({conf:.0%} interval {lo:g} .. {hi:g})" if lo is not None and hi is not None else ""
        print(f"sustainable capacity: {x:g} stamps/s done{ci} at concurrency "
              f"{capacity['capacity_concurrency']}, limited by {capacity['limited_by']}")
        if capacity.get("hold_stopped_by"):
            print(f"hold stopped by: {capacity['hold_stopped_by']} "
                  "(precision: the interval was tight enough; budget: time ran out first)")
    if capacity.get("configured_stamps_per_second"):
        err = capacity.get("error_vs_configured")
        print(f"configured capacity: {capacity['configured_stamps_per_second']:g} stamps/s"
              + (f" (measured {err:+.1%})" if err is not None else ""))
    if capacity.get("server_stamps_per_second") is not None:
        busy = capacity.get("server_busy_share")
        print(f"server's own count: {capacity['server_stamps_per_second']:g} stamps/s "
              f"(client {capacity['client_vs_server']:+.1%})"
              + (f"; issuer busy {busy:.0%} of the held time" if busy is not None else ""))
    usl = (capacity.get("usl") or {}).get("stamps") or {}
    if usl.get("gamma") is not None:
        print(f"USL (stamps): alpha={usl['alpha']:.4g} beta={usl['beta']:.4g} "
              f"gamma={usl['gamma']:.4g} R2={usl.get('r2', float('nan')):.3f}")
    elif usl.get("note"):
        print(f"USL (stamps): {usl['note']}")
    print(f"wrote {out / 'probe.csv'}, {out / 'probe_batches.csv'}, {out / 'capacity.json'}")
