"""`surgecast forecast`: run the surge model as the profile says it happens.

    surgecast forecast --profile casn2024 --out runs/f
    surgecast forecast --profile casn2024 --stamps-per-second 20 --extend 2d --out runs/f2
    surgecast forecast --profile casn2024 --capacity runs/probe/capacity.json \\
        --overload unbounded --out runs/f3

Writes forecast.json (with `outcome: {served, lost, waiting}` at the close in force) and
timeline.csv (docs/run-directory.md), then prints a short summary. Times are ISO local
times in the profile's zone; `--extend` takes whole days (2d).
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from floor.errors import FieldError
from surgecast.commands.surge_flags import add_overload, add_surge_inputs, stamps_per_second


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast forecast`."""
    add_surge_inputs(parser)
    parser.add_argument(
        "--extend", metavar="Nd", help="extend the close in force by whole days, e.g. 2d"
    )
    parser.add_argument(
        "--decided-at",
        metavar="TIME",
        help="when the extension is announced (default: the outage end); arrivals before it are "
        "kept",
    )
    add_overload(parser)
    parser.add_argument(
        "--out", required=True, metavar="DIR", help="directory for forecast.json and timeline.csv"
    )


def parse_days(text: str) -> int:
    """'2d' or '2' -> 2 whole days; anything else is a FieldError on --extend.

    >>> parse_days("2d"), parse_days("0")
    (2, 0)
    """
    m = re.fullmatch(r"\s*(\d+)\s*d?\s*", str(text))
    if not m:
        raise FieldError("--extend", text, "give whole days, e.g. 2d (extensions are whole days)")
    return int(m.group(1))


def _capacity(path: str):  # noqa: ANN202 - returns analysis.forecast.CapacityModel
    from analysis.forecast import capacity_from_json
    from surgecast.commands.capacity_file import read_capacity_json

    return capacity_from_json(read_capacity_json(path), path)


def run(args: argparse.Namespace) -> int:
    """Forecast, write forecast.json and timeline.csv atomically, print the summary."""
    from analysis.forecast import forecast
    from analysis.planparse import parse_outage
    from floor.timegrammar import parse_local_time
    from scenarios.profile import load_profile

    profile = load_profile(args.profile)
    cal = profile.calendar
    sps = stamps_per_second(args.stamps_per_second) if args.stamps_per_second is not None else None
    capacity = _capacity(args.capacity) if args.capacity else None
    outage = parse_outage(args.outage, cal.tz) if args.outage else None
    if outage is not None and (outage[0] >= cal.close or outage[1] <= cal.window_start):
        raise FieldError(
            "--outage",
            args.outage,
            f"lies outside the window {cal.window_start:%Y-%m-%d} to "
            f"{cal.close:%Y-%m-%d}; give times inside it",
        )
    days = parse_days(args.extend) if args.extend is not None else 0
    decided = parse_local_time(args.decided_at, cal.tz, "--decided-at") if args.decided_at else None
    if decided is not None and not days:
        raise FieldError("--decided-at", args.decided_at, "only means something with --extend Nd")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise FieldError("--out", args.out, "is a file; give a directory")
    from floor import rundir

    run_id = rundir.claim(
        out, what="forecast"
    )  # another run's files there: exit 2, nothing written
    f = forecast(
        profile,
        stamps_per_second=sps,
        capacity=capacity,
        outage=outage,
        extend_days=days,
        decided_at=decided,
        overload=args.overload,
    )
    from floor.rundir import writers

    writers.write_forecast(out, forecast=f.as_json(), timeline=f.timeline_rows(), run_id=run_id)
    print(f.render())
    print(f"\n  wrote {out / 'forecast.json'}, {out / 'timeline.csv'}")
    return 0
