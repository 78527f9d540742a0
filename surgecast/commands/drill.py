"""`surgecast drill NAME`: a short rehearsal with a fault injected, then reconciliation.

    surgecast drill --list                               # one line per drill: name, what it proves
    surgecast drill kill-testbed --out runs/drill-kill   # SIGKILL mid-surge, restart, reconcile
    surgecast drill client-retries --fresh-idempotency-keys --out runs/drill-nokeys   # must fail (exit 3)

Each drill starts its own testbed on loopback, runs `surgecast rehearse` against
it, injects its fault, drains the queues and checks that nothing was lost or
duplicated. It writes the rehearsal's run directory plus DIR/drill.json (fault
timeline, checks, verdict; see docs/drills.md). Exit 0 when the drill passes,
3 when any check fails (one line naming what failed), 1 when its load did not run
(a crash proves nothing, but is not data lost) or it was interrupted, 2 for bad flags.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path

from floor.atomic import check_writable
from floor.errors import FieldError, IntegrityError, RunFailed


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast drill`."""
    parser.add_argument("name", nargs="?", metavar="NAME", help="the drill to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the drills and what each proves")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="run directory to write (default runs/drill-NAME-TIMESTAMP)")
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="seconds of load (default: the drill's own, 12 s; 8 to 600)")
    parser.add_argument("--seed", type=int, default=1, metavar="N", help="seed of the load and the testbed")
    parser.add_argument("--fresh-idempotency-keys", action="store_true",
                        help="clients send a new Idempotency-Key on each retry (the control: "
                             "client-retries must then fail)")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    """Run `surgecast drill`."""
    from surgecast.drills import describe, run_drill

    if args.list:
        print("\n".join(describe()))
        return 0
    if not args.name:
        raise FieldError("NAME", None, "give a drill name; see surgecast drill --list")
    out = args.out or Path("runs") / f"drill-{args.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}"
    check_writable(out)
    result = run_drill(args.name, out=out, duration_s=args.duration, seed=args.seed,
                       fresh_keys=args.fresh_idempotency_keys, quiet=args.quiet)
    v = result["verdict"]
    recon = result.get("reconciliation") or {}
    if not v["passed"] and "load_ran" in (v.get("failed_checks") or []) and recon.get("ok", True):
        # the load itself did not run (a crash, not data lost): exit 1, not 3
        raise RunFailed(f"drill {args.name} proved nothing: {v['reason']}; see {out / 'drill.json'}")
    if not v["passed"]:
        raise IntegrityError(f"drill {args.name} failed: {v['reason']}; see {out / 'drill.json'}")
    by = {c["name"]: c["detail"] for c in result["checks"]}
    print(f"drill {args.name} passed in {result['elapsed_s']:.0f} s: {by.get('reconciliation')}; "
          f"{by.get('stamps_finished')}; fault: {by.get('fault_observed')}; files in {out}")
    return 0
