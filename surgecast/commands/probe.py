"""`surgecast probe [--host URL] --out DIR`: measure a target's capacity with stepped closed-model load.

Writes DIR/probe.csv (per level and step), DIR/capacity.json (sustainable stamps/s,
the concurrency where each step peaks, a USL fit per step, the probe's parameters),
both described in docs/run-directory.md. With no --host it starts the embedded
testbed on loopback and stops it after.
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

from surgecast import __version__, atomic
from surgecast.atomic import check_writable
from surgecast.children import TOKEN_ENV
from surgecast.errors import FieldError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast probe`."""
    parser.add_argument("--host", help="target base URL (default: start the embedded testbed)")
    parser.add_argument("--out", required=True, type=Path, help="run directory to write")
    parser.add_argument("--admin-token", default=os.environ.get(TOKEN_ENV) or None,
                        help=f"the target's admin token, to record its configured capacity (default ${TOKEN_ENV})")
    parser.add_argument("--step-duration", type=float, default=8.0, metavar="S",
                        help="measured seconds per concurrency level (default 8)")
    parser.add_argument("--warmup", type=float, default=2.0, metavar="S",
                        help="unmeasured seconds at the start of each level (default 2)")
    parser.add_argument("--max-concurrency", type=int, default=128, metavar="N",
                        help="stop at this many concurrent applicants (default 128)")
    parser.add_argument("--max-error-ratio", type=float, default=0.05, metavar="R",
                        help="stop when this share of requests fail (default 0.05)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a host that is not loopback (load only what you own)")
    parser.add_argument("--quiet", action="store_true")


def _check(args: argparse.Namespace) -> None:
    if not 0.5 <= args.step_duration <= 3600:
        raise FieldError("--step-duration", args.step_duration, "give seconds between 0.5 and 3600")
    if not 0 <= args.warmup <= 600:
        raise FieldError("--warmup", args.warmup, "give seconds between 0 and 600")
    if not 1 <= args.max_concurrency <= 4096:
        raise FieldError("--max-concurrency", args.max_concurrency, "give a whole number from 1 to 4096")
    if not 0 < args.max_error_ratio <= 1:
        raise FieldError("--max-error-ratio", args.max_error_ratio, "give a ratio in (0, 1]")
    if args.out.exists() and not args.out.is_dir():
        raise FieldError("--out", str(args.out), "is a file; give a directory")
    check_writable(args.out)
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

    say = (lambda _m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
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
    from analysis.probe import PROBE_COLUMNS, capacity_from_probe
    from scenarios.probe import ProbeInterrupted, ProbeSettings, run_probe

    configured = admin_cls(host, token=token).config() if token else None
    settings = ProbeSettings(host=host, step_duration_s=args.step_duration, warmup_s=args.warmup,
                             max_concurrency=args.max_concurrency, max_error_ratio=args.max_error_ratio,
                             seed=args.seed)
    started = datetime.now(UTC)
    interrupted: Any = None
    try:
        rows = run_probe(settings, progress=say)
    except ProbeInterrupted as e:  # publish the levels measured so far, marked incomplete
        interrupted, rows = e, e.rows
    capacity = capacity_from_probe(rows, configured=configured,
                                   measured_at=started.isoformat().replace("+00:00", "Z"))
    capacity["complete"] = interrupted is None
    capacity["parameters"] = {
        "kind": "probe", "host": host, "levels": sorted({r["concurrency"] for r in rows}),
        "step_duration_s": args.step_duration, "warmup_s": args.warmup,
        "max_error_ratio": args.max_error_ratio, "seed": args.seed, "surgecast": __version__,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
    }
    out: Path = args.out
    atomic.write_csv(out / "probe.csv", PROBE_COLUMNS, ([r[c] for c in PROBE_COLUMNS] for r in rows))
    atomic.write_json(out / "capacity.json", capacity)
    x = capacity.get("stamps_per_second")
    peak = (capacity.get("peak_concurrency") or {}).get("stamps")
    print(f"sustainable capacity: {x if x is not None else 'not measured'} stamps/s"
          + (f" (peak at concurrency {peak})" if peak else ""))
    usl = (capacity.get("usl") or {}).get("stamps") or {}
    if usl.get("gamma") is not None:
        print(f"USL (stamps): alpha={usl['alpha']:.4g} beta={usl['beta']:.4g} gamma={usl['gamma']:.4g} "
              f"R2={usl.get('r2', float('nan')):.3f}")
    elif usl.get("note"):
        print(f"USL (stamps): {usl['note']}")
    print(f"wrote {out / 'probe.csv'}, {out / 'capacity.json'}")
    if interrupted is not None:
        print(f"Interrupted: the probe was stopped by {interrupted.signame} after {len(capacity['parameters']['levels'])} "
              f"levels; capacity.json is marked incomplete (complete=false)", file=sys.stderr)
        return 1
    if x is None:
        print("RunFailed: the probe measured no sustainable capacity (no stamp completed); see probe.csv",
              file=sys.stderr)
        return 1
    return 0
