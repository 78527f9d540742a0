"""`surgecast plan`: backlog forecast and a staged-reopening plan for a profile.

    surgecast plan --profile casn2024 --stamps-per-second 12 \\
        --outage 2024-09-03T08:00/2024-09-05T20:00 --out runs/p

Times are ISO local times in the profile's zone (Asia/Jakarta for casn2024);
durations take 90s, 30m, 2h. Writes plan.json, timeline.csv, gate_schedule.json and
waiting_room.json (docs/run-directory.md) and prints the plan.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from floor.errors import FieldError, InputFileError
from surgecast.commands.surge_flags import add_overload, add_surge_inputs, stamps_per_second


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast plan`."""
    _add_input_flags(parser)
    _add_policy_flags(parser)


def _add_input_flags(parser: argparse.ArgumentParser) -> None:
    """The profile, the issuer's capacity, the outage and when reopening starts."""
    add_surge_inputs(parser)
    parser.add_argument(
        "--reopen-at", metavar="TIME", help="when reopening starts (default: the outage end)"
    )


def _add_policy_flags(parser: argparse.ArgumentParser) -> None:
    """What the plan may do and must reach, the overload physics, and where it is written."""
    parser.add_argument(
        "--max-utilisation",
        default="1",
        metavar="U",
        help="admission share of capacity for the paced candidate (default 1: no throttle)",
    )
    parser.add_argument(
        "--max-wait",
        default="30m",
        metavar="DURATION",
        help="longest wait in a paced waiting room (default 30m)",
    )
    parser.add_argument(
        "--extend",
        default="0d",
        metavar="DAYS",
        help="evaluate the close moved by whole days, e.g. 2d",
    )
    parser.add_argument(
        "--target",
        metavar="SHARE",
        help="share of those who want to submit to serve by the close (default 0.85); "
        "'unlimited' = within 0.5 points of what an unlimited issuer would serve",
    )
    add_overload(parser)
    parser.add_argument(
        "--no-bands",
        action="store_true",
        help="skip the p5/p50/p95 bands (faster; the verdict uses the nominal run)",
    )
    parser.add_argument(
        "--out",
        required=True,
        metavar="DIR",
        help="directory for plan.json, timeline.csv, gate_schedule.json, waiting_room.json",
    )


def _float(flag: str, text: str) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise FieldError(flag, text, "give a number") from None
    if not math.isfinite(v):
        raise FieldError(flag, text, "give a finite number")
    return v


def _capacity_file(path: str) -> float:
    from surgecast.commands.capacity_file import read_capacity_json

    data = read_capacity_json(path)
    v = data.get("stamps_per_second") if isinstance(data, dict) else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise InputFileError(
            f"--capacity {path}: stamps_per_second = {v!r}; the probe found no sustainable rate, "
            "give --stamps-per-second instead"
        )
    return float(v)


def _with_usl(profile: object, path: str) -> object:
    """The probe's USL of `stamps` (when it has one) as the issuer's overload curve."""
    from dataclasses import replace

    from analysis.forecast import capacity_from_json

    cm = capacity_from_json(json.loads(Path(path).read_text(encoding="utf-8")), path)
    if cm.alpha is None:
        return profile
    overload = profile.overload  # type: ignore[attr-defined]
    ov = replace(overload, alpha=cm.alpha, beta=cm.beta, peak_concurrency=cm.peak_concurrency)
    return replace(profile, overload=ov)  # type: ignore[type-var]


def run(args: argparse.Namespace) -> int:
    """Plan, write the three files atomically, print the plan."""
    from analysis.extension import parse_days
    from analysis.plan_config import PlanConfig
    from analysis.planner import make_plan
    from floor import atomic, rundir
    from floor.timegrammar import parse_duration

    profile, sps = _profile_and_capacity(args)
    outage, reopen = _outage_and_reopening(args, profile)
    u = _float("--max-utilisation", args.max_utilisation)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FieldError("--out", args.out, "is a file; give a directory")
    atomic.check_writable(out)
    run_id = rundir.claim(out, what="plan")  # another run's files there: exit 2, nothing written
    target = _target(args)
    cfg = PlanConfig(
        stamps_per_second=sps,
        outage=outage,
        reopen_at=reopen,
        max_utilisation=u,
        max_wait_s=parse_duration(args.max_wait, "--max-wait"),
        extend_days=parse_days(args.extend),
        target=target,
        bands=not args.no_bands,
    )
    plan = make_plan(profile, cfg)
    _write_and_print(plan, out, run_id)
    return 0


def _profile_and_capacity(args: argparse.Namespace) -> tuple[Any, float | None]:
    """The profile (with the probe's USL and --overload applied) and the capacity flag's value."""
    from scenarios.profile import load_profile

    profile: Any = load_profile(args.profile)
    sps = None
    if args.capacity:
        sps = _capacity_file(args.capacity)
        profile = _with_usl(profile, args.capacity)
    elif args.stamps_per_second is not None:
        sps = stamps_per_second(args.stamps_per_second)
    if args.overload:
        from dataclasses import replace

        profile = replace(profile, overload=replace(profile.overload, mode=args.overload))
    return profile, sps


def _outage_and_reopening(args: argparse.Namespace, profile: Any) -> tuple[Any, Any]:
    """--outage and --reopen-at in the profile's zone; a reopening needs an outage to end."""
    from analysis.planparse import parse_outage
    from floor.timegrammar import parse_local_time

    tz = profile.calendar.tz
    outage = parse_outage(args.outage, tz) if args.outage else None
    reopen = parse_local_time(args.reopen_at, tz, "--reopen-at") if args.reopen_at else None
    if (
        reopen is not None
        and outage is None
        and not any(o.resource == "issuer" for o in profile.outages)
    ):
        raise FieldError(
            "--reopen-at",
            args.reopen_at,
            "there is no outage to reopen from; give --outage START/END too",
        )
    return outage, reopen


def _target(args: argparse.Namespace) -> float | None:
    """--target: the default share, None for 'unlimited', or the share given."""
    from analysis.plan_config import DEFAULT_TARGET

    if args.target is None:
        return DEFAULT_TARGET
    if args.target == "unlimited":
        return None
    return _float("--target", args.target)


def _write_and_print(plan: Any, out: Path, run_id: str) -> None:
    """Write the plan's four files and print the plan and what was written."""
    # Each file is whole or absent; plan.json goes last, so a plan.json always has its timeline
    # and gate schedule beside it even if a write fails part way (a disk filling up, say).
    from analysis.plan_output import waiting_room_json
    from analysis.plan_render import render
    from floor.rundir import writers

    j = plan.as_json()
    writers.write_plan(
        out,
        plan=j,
        timeline=plan.timeline_rows(),
        gate_schedule=plan.gate_schedule(),
        waiting_room=waiting_room_json(plan, j["stages"]),
        run_id=run_id,
    )
    print(render(plan, j))
    print(
        f"\n  wrote {out / 'plan.json'}, {out / 'timeline.csv'}, {out / 'gate_schedule.json'}, "
        f"{out / 'waiting_room.json'}"
    )
