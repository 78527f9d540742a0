"""`surgecast drill NAME`: a short rehearsal with a fault injected, then reconciliation.

    surgecast drill --list                               # one line per drill: name, what it proves
    surgecast drill kill-testbed --out runs/drill-kill   # SIGKILL mid-surge, restart, reconcile
    surgecast drill client-retries --fresh-idempotency-keys --out runs/drill-nokeys
                                                         # must fail (exit 3)

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
from typing import Any

from floor.atomic import check_writable
from floor.errors import DrillFailed, FieldError, IntegrityError, RunFailed, SurgecastError

DATA_CHECKS = frozenset(
    {"reconciliation", "no_duplicate_jobs", "stamps_finished", "audit_balanced"}
)
"""Drill checks whose failure means data lost or duplicated (IntegrityError, exit 3); any other
is DrillFailed (1)."""


def verdict_error(name: str, result: dict[str, Any], out: Path) -> SurgecastError | None:
    """The error a failed drill raises (None when it passed): data lost or duplicated is
    IntegrityError (3); a load that never ran is RunFailed (1); a fault that never bit or a service
    that did not recover is DrillFailed (1).

    >>> v = {"passed": False, "reason": "fault_observed failed"}
    >>> v["failed_checks"] = ["fault_observed"]
    >>> e = verdict_error("kill-testbed", {"verdict": v, "reconciliation": {"ok": True}}, Path("d"))
    >>> type(e).__name__, e.exit_code
    ('DrillFailed', 1)
    """
    v = result["verdict"]
    if v["passed"]:
        return None
    recon = result.get("reconciliation") or {}
    failed = set(v.get("failed_checks") or [])
    where = out / "drill.json"
    if "load_ran" in failed and recon.get("ok", True):
        # the load itself did not run (a crash, not data lost): exit 1, not 3
        return RunFailed(f"drill {name} proved nothing: {v['reason']}; see {where}")
    kind = IntegrityError if failed & DATA_CHECKS or not failed else DrillFailed
    return kind(f"drill {name} failed: {v['reason']}; see {where}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast drill`."""
    parser.add_argument("name", nargs="?", metavar="NAME", help="the drill to run (see --list)")
    parser.add_argument("--list", action="store_true", help="list the drills and what each proves")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="run directory to write (default runs/drill-NAME-TIMESTAMP)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="seconds of load (default: the drill's own, 12 s; 8 to 600)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, metavar="N", help="seed of the load and the testbed"
    )
    parser.add_argument(
        "--fresh-idempotency-keys",
        action="store_true",
        help="clients send a new Idempotency-Key on each retry (the control: "
        "client-retries must then fail)",
    )
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
    result = run_drill(
        args.name,
        out=out,
        duration_s=args.duration,
        seed=args.seed,
        fresh_keys=args.fresh_idempotency_keys,
        quiet=args.quiet,
    )
    error = verdict_error(args.name, result, out)
    if error is not None:
        raise error
    by = {c["name"]: c["detail"] for c in result["checks"]}
    print(
        f"drill {args.name} passed in {result['elapsed_s']:.0f} s: {by.get('reconciliation')}; "
        f"{by.get('stamps_finished')}; fault: {by.get('fault_observed')}; files in {out}"
    )
    return 0
