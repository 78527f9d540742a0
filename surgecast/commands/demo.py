"""`surgecast demo [--out DIR]`: the whole method end to end on the embedded testbed.

1. start the reference testbed on loopback;
2. probe its capacity (stepped closed-model Locust load, completed stamps);
3. plan the casn2024 surge with its 2024 outage at the measured capacity de-scaled by the
   demand multiplier m = measured / the profile's capacity (so the plan is the real service's);
4. rehearse the compressed surge around the outage, with the outage and the plan's
   staged reopening played on a fresh testbed's gates and fault switches;
5. rehearse the same arrivals (same seed) on another fresh testbed with every gate open
   from the reopening (doing nothing), in `OUT/baseline/`;
6. check that the rehearsal followed the plan and that the model at the rehearsal's own
   parameters predicted what the testbed measured (analysis.follow,
   analysis.rehearsal_model), set plan against doing nothing, build the report.

Each phase runs the same `surgecast` subcommand a user would, as a subprocess,
so the demo shows exactly the commands to reuse. The rehearsal keeps the plan's
ratio of demand to capacity: its demand multiplier (compress x scale) is the
testbed's measured capacity over the real one, so real capacity x m = testbed capacity,
gate rates scale by m and the plan's capacity is the measured one / m. Each rehearsal
directory records the mapping in `mapping.json` (docs/run-directory.md).
"""

from __future__ import annotations

import argparse
import json
import secrets
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from floor import atomic, rundir
from floor.atomic import check_writable
from floor.children import TOKEN_ENV, child_env, python_module
from floor.children import stop as stop_child
from floor.errors import EXIT_INTEGRITY, EXIT_THRESHOLD, FieldError, RunFailed, UsageError
from floor.rundir import schema as rs
from floor.rundir.files import read_gate_schedule
from floor.rundir.schema import GATE_SCHEDULE
from floor.vocabulary import GATES

PROFILE = "casn2024"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `surgecast demo`."""
    parser.add_argument("--out", type=Path, default=Path("runs/demo"),
                        help="run directory (default runs/demo)")
    parser.add_argument("--duration", type=float, default=45.0, metavar="S",
                        help="seconds of each of the two rehearsals (default 45; the demo takes "
                             "about 2 x S + 104 s in all on 2 cores)")
    parser.add_argument("--lang", choices=("en", "id"), default="en", help="report language")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--quick", action="store_true",
                        help="a shorter probe (for a smoke test); figures are rougher")


PHASES = 6
_CHILD_STDOUT: list[int | None] = [None]  # subprocess.DEVNULL under --quiet/--json
SAMPLE_S = 0.25   # test seconds between queue samples of a rehearsal


def _phase(n: int, title: str) -> None:
    print(f"\n== [{n}/{PHASES}] {title}", flush=True)


def _step(t0: float, what: str) -> None:
    """A progress line inside a phase (the last phase runs for longer than 10 s)."""
    print(f"   [{time.monotonic() - t0:5.1f} s] {what} ...", flush=True)


def estimate_text(duration: float, quick: bool) -> str:
    """The estimate printed first: a range around `estimate_s`, beside what the benchmark
    measured (docs/benchmarks.md, sixth pass: 202.8-206.6 s, median 205.3 s, for the default 45 s
    rehearsals on 2 idle cores).

    >>> estimate_text(45, False)
    'about 2.8-3.4 min on 2 idle cores (measured: 3.4 min; a busy machine takes longer)'
    >>> estimate_text(15, True)
    'about 1.8-2.2 min on 2 idle cores (a busy machine takes longer)'
    """
    est = estimate_s(duration, quick)
    measured = "measured: 3.4 min; " if (duration, quick) == (45, False) else ""
    return (f"about {est * 0.88 / 60:.1f}-{est * 1.05 / 60:.1f} min on 2 idle cores "
            f"({measured}a busy machine takes longer)")


def estimate_s(duration: float, quick: bool) -> float:
    """Expected wall seconds of the demo (probe, plan, two rehearsals, checks and report), from
    the phases measured (docs/benchmarks.md): the probe's budget and start-up, ~5 s of plan,
    each rehearsal its duration plus ~26 s of set-up and last journeys, ~6 s of checks.

    >>> round(estimate_s(45, False))
    194
    """
    return (31.0 if quick else 41.0) + 5.0 + 2 * (duration + 26.0) + 6.0


def _run(cmd: list[str], what: str, token: str | None = None) -> int:
    shown = " ".join(cmd[3:])  # after python -P -m
    pre = f"{TOKEN_ENV}=*** " if token else ""
    print(f"   $ {pre}surgecast {shown.removeprefix('surgecast ')}", flush=True)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=child_env(token),
                            stdout=_CHILD_STDOUT[0])
    try:
        proc.wait()
    except KeyboardInterrupt:  # SIGTERM/SIGINT: the phase publishes what it has, then testbed stops
        stop_child(proc, 8.0)
        raise
    if proc.returncode == 2:
        raise UsageError(f"the {what} phase stopped with a usage error (see the line above)")
    return proc.returncode


def consistent_compress(profile: Any) -> float:
    """Calendar seconds per test second that map the real session patience onto the testbed
    client's (behaviour.patience_minutes / journeys.patience_s), so every clock maps alike.

    >>> from scenarios.profile import load_profile
    >>> consistent_compress(load_profile("casn2024"))
    60.0
    """
    return profile.behaviour.patience_minutes * 60.0 / profile.journeys.patience_s


def window_around(reopen: Any, span_s: float) -> tuple[str, str]:
    """A rehearsal window of `span_s` calendar seconds, a third before the reopening (the outage's
    end), two thirds after, on whole minutes.

    >>> from datetime import datetime
    >>> window_around(datetime(2024, 9, 5, 20, 0), 2700.0)
    ('2024-09-05T19:45', '2024-09-05T20:30')
    """
    start = (reopen - timedelta(seconds=span_s / 3)).replace(second=0, microsecond=0)
    end = start + timedelta(seconds=span_s)
    return start.strftime("%Y-%m-%dT%H:%M"), end.strftime("%Y-%m-%dT%H:%M")


def baseline_schedule(plan: dict[str, Any], schedule: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Doing nothing: the schedule's fixed past (before the decision), then every gate open at the
    reopening.

    >>> plan = {"reopen_at": "2024-09-05T20:00:00+07:00",
    ...         "decision_at": "2024-09-05T20:00:00+07:00"}
    >>> sched = [{"at": "2024-09-03T00:00:00+07:00", "gate": "ordering", "mode": "closed"},
    ...          {"at": "2024-09-05T20:00:00+07:00", "gate": "stamping", "mode": "rate",
    ...           "rate_per_s": 3}]
    >>> [(g["gate"], g["mode"]) for g in baseline_schedule(plan, sched)]
    [('ordering', 'closed'), ('registration', 'open'), ('ordering', 'open'), ('stamping', 'open')]
    """
    from datetime import datetime as _dt
    decided = _dt.fromisoformat(plan.get("decision_at") or plan["reopen_at"])
    past = [g for g in schedule if _dt.fromisoformat(g["at"]) < decided]
    return past + [{"at": plan["reopen_at"], "gate": g, "mode": "open", "rate_per_s": None,
                    "burst": None, "room": None, "label": "baseline"}
                   for g in GATES]


def _rehearse(me: list[str], out: Path, gates: Path, window: tuple[str, str], compress: float,
              scale: float, args: argparse.Namespace, what: str) -> int:
    """One rehearsal on its own fresh embedded testbed (the same configuration every time)."""
    return _run([*me, "rehearse", "--profile", PROFILE, "--window", f"{window[0]}/{window[1]}",
                 "--duration", f"{args.duration:g}", "--compress", f"{compress:.6g}",
                 "--scale", f"{scale:.6g}", "--gates", str(gates), "--seed", str(args.seed),
                 "--sample-interval", f"{SAMPLE_S:g}",
                 "--out", str(out)], what)


def _write_mapping(out: Path, profile: Any, capacity: dict[str, Any], plan: dict[str, Any],
                   gates: list[dict[str, Any]]) -> None:
    from analysis.rehearsal_model import mapping
    run = json.loads((out / rs.RUN).read_text(encoding="utf-8"))
    atomic.write_json(out / rs.MAPPING, rundir.stamp(mapping(
        profile, run, plan_stamps_per_second=plan.get("capacity_stamps_per_second"),
        testbed_stamps_per_second=capacity.get("stamps_per_second"), gate_schedule=gates),
        rundir.process_run_id()))
    rundir.record(out, [rs.MAPPING], run_id=rundir.process_run_id(), by="demo")


def run(args: argparse.Namespace) -> int:
    """Run the demo; exit 0 when the rehearsal followed the plan and nothing was lost."""
    if not 10 <= args.duration <= 1800:
        raise FieldError("--duration", args.duration, "give rehearsal seconds between 10 and 1800")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise FieldError("--out", str(out), "is a file; give a directory")
    for d in (out, out / "baseline"):
        if (d / rs.SUMMARY).exists():
            raise FieldError("--out", str(out), "already holds a demo; give a new directory")
    check_writable(out)
    # Another run's files in --out or --out/baseline: exit 2 before anything is written (never
    # half old, half new).
    run_id = rundir.claim(out, what="demo")
    rundir.claim(out / "baseline", what="demo", run_id=run_id)
    out.mkdir(parents=True, exist_ok=True)
    with rundir.exported(run_id):  # every phase writes its files under the demo's run id
        return _demo(args, out, run_id)


def _demo(args: argparse.Namespace, out: Path, run_id: str) -> int:
    """The six phases (see the module docstring) in `out`, every child under `run_id`."""
    from scenarios.profile import load_profile

    profile = load_profile(PROFILE)
    me = python_module("surgecast")
    t0 = time.monotonic()
    silent = getattr(args, "quiet", False) or getattr(args, "json", False)
    _CHILD_STDOUT[0] = subprocess.DEVNULL if silent else None
    print(f"surgecast demo: {estimate_text(args.duration, args.quick)}: probe, plan, "
          f"two {args.duration:g} s rehearsals, report", flush=True)
    capacity = _probe_phase(me, out, args)
    plan, schedule, mult = _plan_phase(me, out, profile, capacity)
    compress = consistent_compress(profile)
    from datetime import datetime
    window = window_around(datetime.fromisoformat(plan["reopen_at"]).replace(tzinfo=None),
                           args.duration * compress)
    scale = mult / compress
    _phase(4, f"rehearse {window[0]} .. {window[1]} in {args.duration:g} s "
              f"(compress {compress:,.0f}x: 20 min of patience = the client's "
              f"{profile.journeys.patience_s:g} s; scale {scale:.3g}, m {mult:.3g}) "
              "on a fresh testbed: the outage's end and the plan's reopening")
    code = _rehearse(me, out, out / GATE_SCHEDULE, window, compress, scale, args, "rehearse")
    _write_mapping(out, profile, capacity, plan, schedule)
    base, base_sched = _baseline_dir(out, plan, schedule, run_id)
    _phase(5, "rehearse the same arrivals (same seed) on another fresh testbed, every gate open "
              "from the reopening (doing nothing)")
    base_code = _rehearse(me, base, base / GATE_SCHEDULE, window, compress, scale, args,
                          "baseline")
    _write_mapping(base, profile, capacity, plan, base_sched)
    check = _check_phase(out, base, run_id, args)
    from analysis.follow import check_by_name
    print(f"\ndemo finished in {time.monotonic() - t0:.0f} s; the report: {out / rs.REPORT_HTML}")
    if EXIT_INTEGRITY in (code, base_code) or not check_by_name(check, "integrity")["ok"]:
        return EXIT_INTEGRITY
    for c, what in ((code, "rehearsal"), (base_code, "baseline rehearsal")):
        if c not in (0, EXIT_THRESHOLD):
            raise RunFailed(f"the {what} ended with exit code {c}; see its output above")
    return 0 if check["follows"] else EXIT_THRESHOLD


def _probe_phase(me: list[str], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Phases 1-2: a fresh testbed on loopback and the probe of its capacity (capacity.json)."""
    from testbed.process import TestbedServer

    token = secrets.token_hex(16)
    _phase(1, "start the reference testbed (the stand-in for the national e-Meterai service)")
    with TestbedServer(port=0, admin_token=token) as tb:
        print(f"   testbed at {tb.url}", flush=True)

        budget = 30 if args.quick else 40   # the probe's --budget (40 is its default)
        _phase(2, "probe its capacity: closed-model load at concurrency 1, 2, 4, ... while "
                  "completed stamps/s still rise, then hold where they level "
                  f"(at most about {budget + 3} s)")
        probe = [*me, "probe", "--host", tb.url, "--out", str(out), "--seed", str(args.seed)]
        probe += ["--budget", str(budget)]
        probe_code = _run(probe, "probe", token)
    cap_file = out / rs.CAPACITY
    capacity = json.loads(cap_file.read_text()) if cap_file.is_file() else {}
    if probe_code != 0 or not capacity.get("stamps_per_second"):
        raise RunFailed("the probe measured no sustainable capacity: "
                        f"{capacity.get('note') or 'see its output above'}")
    return capacity


def _plan_phase(me: list[str], out: Path, profile: Any, capacity: dict[str, Any]
                ) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
    """Phase 3: the plan at the testbed's measured capacity de-scaled; (plan, its gate schedule,
    the demand multiplier m)."""
    # The mapping: the testbed stands for the real service at the profile's capacity, so the
    # demand multiplier m = compress x scale = testbed capacity / real capacity, and the plan
    # is made at the testbed's measured capacity de-scaled (/ m), which is the real service's.
    real = float(profile.capacity.stamps_per_second)
    mult = float(capacity["stamps_per_second"]) / real
    plan_cap = float(capacity["stamps_per_second"]) / mult
    _phase(3, f"plan {PROFILE} with its 2024 outage at the testbed's "
              f"{capacity['stamps_per_second']:.1f} stamps/s de-scaled by m = {mult:.3g}: "
              f"{plan_cap:.3g} stamps/s, the real service's")
    if _run([*me, "plan", "--profile", PROFILE, "--stamps-per-second", f"{plan_cap:.6g}",
             "--out", str(out), "--quiet"], "plan") != 0:
        raise RunFailed("the planner failed; see its output above")
    plan = json.loads((out / rs.PLAN).read_text(encoding="utf-8"))
    from surgecast.console import plan_digest, print_renderable
    print_renderable(plan_digest(plan))  # the whole plan: plan.json, or the command without --quiet
    schedule = [{**g, "at": g["at"].isoformat()} for g in read_gate_schedule(out / GATE_SCHEDULE)]
    return plan, schedule, mult


def _baseline_dir(out: Path, plan: dict[str, Any], schedule: list[dict[str, Any]],
                  run_id: str) -> tuple[Path, list[dict[str, Any]]]:
    """OUT/baseline with the plan's capacity.json and plan.json and the doing-nothing gates
    (returned beside the directory)."""
    base = out / "baseline"
    base.mkdir(exist_ok=True)
    for name in (rs.CAPACITY, rs.PLAN):
        atomic.write_text(base / name, (out / name).read_text(encoding="utf-8"))
    base_sched = baseline_schedule(plan, schedule)
    atomic.write_json(base / GATE_SCHEDULE, base_sched)
    rundir.record(base, [rs.CAPACITY, rs.PLAN, GATE_SCHEDULE], run_id=run_id,
                  by="demo")
    return base, base_sched


def _check_phase(out: Path, base: Path, run_id: str, args: argparse.Namespace) -> dict[str, Any]:
    """Phase 6: the plan rehearsal against the plan and the model, plan against doing nothing
    (plan_check.json), and the report."""
    from analysis.follow import check_plan_followed
    from analysis.rehearsal_baseline import plan_vs_baseline
    from reports.build import build_report

    _phase(6, "check the rehearsal against the plan and the model, plan against doing nothing; "
              "build the report")
    t6 = time.monotonic()
    _step(t6, "checking the plan rehearsal against the plan and the model (simulated trials)")
    check = check_plan_followed(out)
    _step(t6, "comparing the plan with doing nothing (both rehearsals, measured and modelled)")
    check["plan_vs_baseline"] = plan_vs_baseline(out, base)
    atomic.write_json(out / rs.PLAN_CHECK, rundir.stamp(check, run_id))
    rundir.record(out, [rs.PLAN_CHECK], run_id=run_id, by="demo")
    for c in check["checks"]:
        print(f"   {'ok  ' if c['ok'] else 'FAIL'} {c['name']:<12} {c['detail']}")
    print(_resolution_line(check.get("model_vs_testbed")))
    print(_pvb_lines(check["plan_vs_baseline"]))
    _step(t6, "building the report")
    result = build_report(out, lang=args.lang)
    print()
    from surgecast.console import summary
    summary(result.summary_markdown)
    return check


def _pvb_lines(pvb: dict[str, Any]) -> str:
    """Plan against doing nothing, measured beside predicted, as terminal lines."""
    rows = ["   plan against doing nothing on the testbed (measured / model):"]
    for key in ("served", "lost", "duplicated", "p95_wait_s"):
        p, b = pvb["plan"][key], pvb["baseline"][key]
        rows.append(f"     {key:<11} plan {p['measured']!s:>9} / {p['model']!s:<9}  "
                    f"baseline {b['measured']!s:>9} / {b['model']!s:<9}")
    rows.append(f"   {pvb['verdict']}")
    return "\n".join(rows)


def _resolution_line(mvt: dict[str, Any] | None) -> str:
    """How finely the model check resolves, as a terminal line.

    >>> _resolution_line({"resolution": {"sd_share": {"served": 0.05, "peak_backlog": 0.01},
    ...                   "sd_share_repeat": {"served": 0.3, "peak_backlog": 0.07},
    ...                   "sd_share_capacity": {"served": 0.02, "peak_backlog": None}},
    ...                   "tolerance": 0.1}).split("; ")  # doctest: +NORMALIZE_WHITESPACE
    ['   resolution: model sd served 5% / peak 1% given the issuer as measured',
     'a repeat rehearsal spreads served 30% / peak 7%',
     "the probe's interval adds served 2% / peak n/a (tolerance 10%)"]
    """
    res = (mvt or {}).get("resolution")
    if not res:
        return "   resolution: n/a"
    a, b = res["sd_share"], res["sd_share_repeat"]
    c = res.get("sd_share_capacity") or {}

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0%}"
    probe = (f"; the probe's interval adds served {pct(c.get('served'))} / peak "
             f"{pct(c.get('peak_backlog'))}" if c else "")
    return (f"   resolution: model sd served {pct(a['served'])} / peak {pct(a['peak_backlog'])} "
            f"given the issuer as measured; a repeat rehearsal spreads served {pct(b['served'])} / "
            f"peak {pct(b['peak_backlog'])}{probe} (tolerance {mvt['tolerance']:.0%})")
