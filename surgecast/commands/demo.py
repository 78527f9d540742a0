"""`surgecast demo [--out DIR]`: the whole method end to end on the embedded testbed.

1. start the reference testbed on loopback;
2. probe its capacity (stepped closed-model Locust load, USL fit);
3. plan the casn2024 surge with its 2024 outage at the measured capacity;
4. rehearse the compressed surge around the outage, with the outage and the plan's
   staged reopening played on the testbed's gates and fault switches;
5. check that the rehearsal followed the plan (analysis.follow), build the report.

Each phase runs the same `surgecast` subcommand a user would, as a subprocess,
so the demo shows exactly the commands to reuse. The rehearsal keeps the plan's
ratio of demand to capacity: the plan uses the capacity the probe measured on
this testbed, so the rehearsal's demand multiplier (compress x scale) is 1.
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from surgecast import atomic
from surgecast.errors import EXIT_INTEGRITY, EXIT_THRESHOLD, FieldError, SurgecastError, UsageError

PROFILE = "casn2024"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast demo`."""
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run directory (default runs/demo)")
    parser.add_argument("--duration", type=float, default=90.0, metavar="S",
                        help="seconds of the rehearsal (default 90; the whole demo takes about 2.5 min more)")
    parser.add_argument("--lang", choices=("en", "id"), default="en", help="report language")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--quick", action="store_true",
                        help="a shorter probe (for a smoke test); figures are rougher")


def _phase(n: int, title: str) -> None:
    print(f"\n== [{n}/5] {title}", flush=True)


def _run(cmd: list[str], what: str) -> int:
    shown = " ".join(c if not c.startswith("--admin-token=") else "--admin-token=***" for c in cmd[2:])
    print(f"   $ surgecast {shown.removeprefix('surgecast ')}", flush=True)
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL)
    if proc.returncode == 2:
        raise UsageError(f"the {what} phase stopped with a usage error (see the line above)")
    return proc.returncode


def _window(profile: object) -> tuple[str, str]:
    """From a day before the first outage (or 7 days before the close) to the close."""
    cal = profile.calendar  # type: ignore[attr-defined]
    outages = profile.outages  # type: ignore[attr-defined]
    start = (outages[0].start - timedelta(days=1)) if outages else cal.close - timedelta(days=7)
    start = max(start.replace(hour=0, minute=0, second=0), cal.window_start)
    end = cal.close.replace(second=0) + timedelta(minutes=1)
    return start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M")


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when the rehearsal followed the plan and nothing was lost."""
    if not 10 <= args.duration <= 1800:
        raise FieldError("--duration", args.duration, "give rehearsal seconds between 10 and 1800")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise FieldError("--out", str(out), "is a file; give a directory")
    out.mkdir(parents=True, exist_ok=True)
    from scenarios.profile import load_profile
    from testbed.process import TestbedServer

    profile = load_profile(PROFILE)
    me = [sys.executable, "-m", "surgecast"]
    t0 = time.monotonic()
    token = secrets.token_hex(16)
    _phase(1, "start the reference testbed (the stand-in for the national e-Meterai service)")
    with TestbedServer(port=0, admin_token=token) as tb:
        print(f"   testbed at {tb.url}", flush=True)

        _phase(2, "probe its capacity: closed-model load at concurrency 1, 2, 4, ... while completed stamps/s "
                  "still rise, then hold where they level (about 50 s)")
        probe = [*me, "probe", "--host", tb.url, f"--admin-token={token}", "--out", str(out), "--seed", str(args.seed)]
        probe += ["--budget", "30", "--warmup", "0.5"] if args.quick else []  # else the defaults (--budget 40)
        probe_code = _run(probe, "probe")
        capacity = json.loads((out / "capacity.json").read_text()) if (out / "capacity.json").is_file() else {}
        if probe_code != 0 or not capacity.get("stamps_per_second"):
            raise SurgecastError("the probe measured no sustainable capacity: "
                                 f"{capacity.get('note') or 'see its output above'}")

        _phase(3, f"plan {PROFILE} with its 2024 outage at the measured {capacity['stamps_per_second']:.1f} stamps/s")
        if _run([*me, "plan", "--profile", PROFILE, "--capacity", str(out / "capacity.json"), "--out", str(out)],
                "plan") != 0:
            raise SurgecastError("the planner failed; see its output above")

        start, end = _window(profile)
        cal = profile.calendar
        from datetime import datetime
        span = (datetime.fromisoformat(end).replace(tzinfo=cal.tz)
                - datetime.fromisoformat(start).replace(tzinfo=cal.tz)).total_seconds()
        compress = span / args.duration
        scale = 1.0 / compress  # demand multiplier 1: the plan's capacity is this testbed's
        _phase(4, f"rehearse {start} .. {end} in {args.duration:g} s (compress {compress:,.0f}x, "
                  f"scale {scale:.3g}): the outage and the plan's reopening played on the testbed")
        code = _run([*me, "rehearse", "--profile", PROFILE, "--host", tb.url, f"--admin-token={token}",
                     "--embedded-testbed", "--window", f"{start}/{end}", "--duration", f"{args.duration:g}",
                     "--compress", f"{compress:.6g}", "--scale", f"{scale:.6g}",
                     "--gates", str(out / "gate_schedule.json"), "--seed", str(args.seed), "--out", str(out)],
                    "rehearse")

    _phase(5, "check the rehearsal against the plan, and build the report")
    from analysis.follow import check_plan_followed
    from reports.build import build_report

    check = check_plan_followed(out)
    atomic.write_json(out / "plan_check.json", check)
    for c in check["checks"]:
        print(f"   {'ok  ' if c['ok'] else 'FAIL'} {c['name']:<12} {c['detail']}")
    result = build_report(out, lang=args.lang)
    print()
    print(result.summary_markdown)
    print(f"\ndemo finished in {time.monotonic() - t0:.0f} s; the report: {out / 'report.html'}")
    from analysis.follow import check_by_name
    if code == EXIT_INTEGRITY or not check_by_name(check, "integrity")["ok"]:
        return EXIT_INTEGRITY
    if code not in (0, EXIT_THRESHOLD) and code != 0:
        raise SurgecastError(f"the rehearsal ended with exit code {code}; see its output above")
    return 0 if check["follows"] else EXIT_THRESHOLD
