"""Planner: the acceptance commands, the files, and the promises of the plan (each with the
mutation that turns its check red)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis import plan_search
from analysis.bands import band, parameter_sets, profile_ranges
from analysis.extension import extended_inputs, parse_days, smallest_meeting
from analysis.follow import check_plan_followed, stage
from analysis.planner import PlanConfig, choose, make_plan, problems
from analysis.stages import STAGES, stage_by_id, validate_table
from floor.errors import FieldError
from scenarios.profile import load_profile
from surgecast.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "runs"
PLAN_KEYS = (
    "outcome",
    "baseline",
    "bands",
    "lost_paid",
    "required_extension_days",
    "meets_target",
    "timetable",
    "stages",
    "what_if",
    "trade_offs",
    "cutoff",
    "triggers",
    "recommended",
    "pacing_costs",
)


def _run(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(argv)
    return code, buf.getvalue()


@pytest.fixture(scope="module")
def accepted(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    out = tmp_path_factory.mktemp("plan") / "p"
    code, text = _run(["plan", "--profile", "casn2024", "--out", str(out)])
    return code, text, out


@pytest.fixture(scope="module")
def at10() -> object:
    p = load_profile("casn2024")
    return make_plan(p, PlanConfig(stamps_per_second=10.0, what_if_days=(0, 1)))


def test_acceptance_prints_and_writes_the_contract(accepted) -> None:
    code, text, out = accepted
    assert code == 0
    for needle in (
        "do nothing",
        "recommended",
        "bands",
        "reopening timetable",
        "VERDICT",
        "finish-paid",
        "minimum extension",
        "last-day cut-off",
        "trigger",
    ):
        assert needle in text
    plan = json.loads((out / "plan.json").read_text())
    for key in PLAN_KEYS:
        assert key in plan, key
    for k in ("served", "lost", "waiting"):
        assert plan["outcome"][k] >= 0 and plan["baseline"][k] >= 0
        assert {"p5", "p50", "p95"} == set(plan["bands"][k])
    total = plan["applicants_total"]
    assert abs(sum(plan["outcome"].values()) - total) <= 2
    assert abs(sum(plan["baseline"].values()) - total) <= 2
    for s in plan["stages"]:
        assert {
            "id",
            "start",
            "end",
            "gates",
            "backlog_start",
            "backlog_end",
            "why",
            "serves",
        } <= set(s)
    assert plan["timetable"] and {"hour", "gate", "admit", "eta_s"} <= set(plan["timetable"][0])
    hours = sorted({r["hour"] for r in plan["timetable"]})
    assert len(hours) >= 12 and hours[0] == plan["reopen_at"]
    room = json.loads((out / "waiting_room.json").read_text())
    assert list(room) == ["run_id", "stages"]  # run_id: docs/run-directory.md, "Run ids"
    for s in room["stages"]:
        assert list(s) == [
            "id",
            "start",
            "cloudflare",
            "aws_virtual_waiting_room",
            "queue_it",
            "why",
        ]
        assert set(s["cloudflare"]) == {
            "total_active_users",
            "new_users_per_minute",
            "session_duration_minutes",
        }
        assert list(s["aws_virtual_waiting_room"]) == ["increment_per_minute"]
        assert list(s["queue_it"]) == ["max_outflow_per_minute"]
        assert s["cloudflare"]["total_active_users"] >= 200 and "75%" in s["why"]
    rows = list(csv.DictReader((out / "timeline.csv").open()))
    assert rows[0]["calendar_at"].endswith("+07:00")
    gates = json.loads((out / "gate_schedule.json").read_text())
    assert [g["at"] for g in gates] == sorted(g["at"] for g in gates)


def test_plan_beats_or_equals_doing_nothing_and_loses_no_one_who_paid(accepted) -> None:
    _, _, out = accepted
    plan = json.loads((out / "plan.json").read_text())
    assert plan["outcome"]["served"] >= plan["baseline"]["served"]
    assert plan["lost_paid"] == 0
    assert (
        plan["candidates"]["baseline"]["lost_paid"] > 0
    )  # doing nothing does lose people who paid
    for v, cost in plan["pacing_costs"].items():
        assert cost == plan["outcome"]["served"] - plan["candidates"][v]["served"]


def test_every_documented_key_is_in_run_directory_md(accepted) -> None:
    doc = (Path(__file__).parents[1] / "docs" / "run-directory.md").read_text()
    _, _, out = accepted
    plan = json.loads((out / "plan.json").read_text())
    missing = [k for k in plan if f"`{k}`" not in doc]
    assert not missing, missing
    assert "waiting_room.json" in doc


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["flash-crowd", "steady"]),
    sps=st.floats(2.0, 60.0),
    start_h=st.integers(9, 12),
    length_h=st.integers(1, 4),
)
def test_recommended_is_never_worse_than_the_baseline(
    name: str, sps: float, start_h: int, length_h: int
) -> None:
    p = load_profile(name)
    day = p.calendar.window_start.date()
    from datetime import datetime, timedelta

    a = datetime(day.year, day.month, day.day, start_h, tzinfo=p.calendar.tz)
    if a + timedelta(hours=length_h) >= p.calendar.close:
        return
    plan = make_plan(
        p,
        PlanConfig(
            stamps_per_second=sps,
            outage=(a, a + timedelta(hours=length_h)),
            bands=False,
            what_if_days=(0,),
            max_extension_days=0,
        ),
    )
    assert plan.outcome["served"] >= plan.baseline["served"] - 1e-6
    assert problems(plan) == []


def test_a_plan_worse_than_doing_nothing_is_flagged(at10) -> None:
    assert problems(at10) == []
    rec = at10.candidates[at10.recommended]
    worse = replace(rec, outcome={**rec.outcome, "served": at10.baseline["served"] - 1000.0})
    bad = replace(at10, candidates={**at10.candidates, at10.recommended: worse})
    assert any("worse than doing nothing" in x for x in problems(bad))
    paid = replace(
        at10, recommended="baseline"
    )  # doing nothing loses people who paid; book does not
    assert any("who paid" in x for x in problems(paid))
    wrong = replace(at10, required_extension_days=(at10.required_extension_days or 0) + 1)
    assert any("first day meeting" in x for x in problems(wrong))


def test_choose_never_picks_below_the_baseline() -> None:
    from analysis.plan_model import Candidate

    def c(v: str, s: float, lp: float) -> Candidate:
        return Candidate(
            variant=v,
            specs=(),
            starts={},
            stages=[],
            outcome={"served": s, "lost": 0.0, "waiting": 0.0},
            lost_paid=lp,
        )

    assert choose({"baseline": c("baseline", 10.0, 5.0), "book": c("book", 9.0, 0.0)}) == "baseline"
    assert choose({"baseline": c("baseline", 10.0, 5.0), "book": c("book", 10.0, 0.0)}) == "book"


def test_minimum_extension_equals_brute_force(at10) -> None:
    plan = at10
    assert plan.required_extension_days is not None and plan.required_extension_days > 0
    model = plan.model
    chosen = plan.candidates[plan.recommended]
    shares = []
    for d in range(plan.config.max_extension_days + 1):
        inp = model.inputs(d, 1.0, plan.p5_set, plan_search.SEARCH_STEP_S)
        shares.append(model.outcome(inp, chosen.stages)["served"] / plan.total)
    brute = next(d for d, s in enumerate(shares) if s >= plan.target_share - 1e-12)
    assert plan.required_extension_days == brute
    assert plan.grid[brute]["served_share"] == pytest.approx(shares[brute])


def test_brute_force_finds_the_minimum_a_bisection_misses() -> None:
    shares = [0.80, 0.90, 0.95, 0.94, 0.94, 0.96, 0.97]  # oscillates, as the daily cycle makes it
    assert smallest_meeting(shares, 0.95) == 2
    lo, hi = 0, len(shares) - 1  # a bisection assuming monotonicity
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if shares[mid] >= 0.95 else (mid, hi)
    assert hi != 2


def test_the_past_is_fixed_under_extension_and_capacity(at10) -> None:
    plan = at10
    model, k = plan.model, plan.result._index(plan.decision_s)
    base = model.inputs(0)
    for d in (1, 3):
        ext = model.inputs(d)
        for g in base.arrivals:
            assert np.array_equal(ext.arrivals[g][:k], base.arrivals[g][:k])
        assert np.array_equal(ext.issuer_per_s[:k], base.issuer_per_s[:k])
    more = model.inputs(0, 2.0)
    assert np.array_equal(more.issuer_per_s[:k], base.issuer_per_s[:k])
    assert np.allclose(more.issuer_per_s[k:], 2 * base.issuer_per_s[k:])
    from analysis.backlog import run_fluid

    stages = plan.candidates[plan.recommended].stages
    a, b = run_fluid(base, stages), run_fluid(model.inputs(3), stages)
    assert np.allclose(a.served_cum[:k], b.served_cum[:k]) and np.allclose(
        a.lost_cum[:k], b.lost_cum[:k]
    )


def test_bands_are_ordered_and_not_degenerate(accepted) -> None:
    _, _, out = accepted
    plan = json.loads((out / "plan.json").read_text())
    total = plan["applicants_total"]
    for k, b in plan["bands"].items():
        assert b["p5"] <= b["p50"] <= b["p95"], k
        assert b["p95"] - b["p5"] > 0.005 * total, k
    assert "verdict_served" in plan and plan["verdict_served"] == plan["bands"]["served"]["p5"]


def test_collapsed_ranges_give_degenerate_bands() -> None:
    sets = parameter_sets({"behaviour.patience_minutes": (20.0, 20.0)}, 8)
    b = band([s["behaviour.patience_minutes"] for s in sets])
    assert b["p5"] == b["p95"]  # the check above would go red
    assert "capacity.stamps_per_second" not in profile_ranges(load_profile("casn2024"))


def test_stage_ids_are_stable_and_the_table_validated() -> None:
    assert [s.id for s in STAGES] == ["finish-paid", "reopen-ordering", "reopen-registration"]
    validate_table(STAGES)
    with pytest.raises(FieldError, match="earlier stage"):
        validate_table(tuple(reversed(STAGES)))
    with pytest.raises(FieldError, match="unique id"):
        validate_table((STAGES[0], STAGES[0]))
    for s in STAGES:
        assert stage_by_id(s.id).name["id"] != s.name["en"]  # translated, not copied


def test_reordering_stages_cannot_silently_break_the_plan_check(tmp_path: Path) -> None:
    d = tmp_path / "run"
    shutil.copytree(FIXTURES / "full", d)
    # plan refuses a directory holding another run's files:
    # plan apart, then lay its files over the rehearsal's
    code, _ = _run(["plan", "--profile", "casn2024", "--no-bands", "--out", str(tmp_path / "plan")])
    assert code == 0
    for name in ("plan.json", "timeline.csv", "gate_schedule.json", "waiting_room.json"):
        shutil.copy(tmp_path / "plan" / name, d / name)
    plan = json.loads((d / "plan.json").read_text())
    first = check_plan_followed(d)
    plan["stages"] = list(reversed(plan["stages"]))
    (d / "plan.json").write_text(json.dumps(plan))
    again = check_plan_followed(d)
    assert again == first
    # a check reading stages by position would now read another stage
    assert plan["stages"][0]["id"] != "finish-paid" and stage(plan, "finish-paid") is not None
    plan["stages"] = [s for s in plan["stages"] if s["id"] != "reopen-ordering"] + [
        {**stage(plan, "reopen-ordering"), "id": None}
    ]
    (d / "plan.json").write_text(json.dumps(plan))
    from floor.errors import InputFileError

    with pytest.raises(InputFileError, match="without an id"):
        check_plan_followed(d)


def test_extend_flag_and_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert parse_days("2d") == 2
    for bad in ("1.5d", "-1d", "xd"):
        with pytest.raises(FieldError, match="--extend"):
            parse_days(bad)
    out = tmp_path / "e"
    code = main(
        ["plan", "--profile", "casn2024", "--extend", "2d", "--no-bands", "--out", str(out)]
    )
    assert code == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["extend_days"] == 2 and plan["close"].startswith("2024-09-12T23:59")
    assert (
        main(["plan", "--profile", "casn2024", "--extend", "1.5d", "--out", str(tmp_path / "x")])
        == 2
    )
    assert not (tmp_path / "x").exists()


def test_extended_inputs_keep_the_total_and_the_past() -> None:
    p = load_profile("casn2024")
    d = p.calendar.seconds(p.outages[0].end)
    b = extended_inputs(p, 0, d, stamps_per_second=None, outages=p.outages)
    e = extended_inputs(p, 3, d, stamps_per_second=None, outages=p.outages)
    k = int(d // 60)
    assert all(np.array_equal(e.arrivals[g][:k], b.arrivals[g][:k]) for g in b.arrivals)
    assert e.n == b.n + 3 * 1440


def test_no_outage_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--profile", "steady", "--no-bands", "--out", str(tmp_path / "s")]) == 0
    plan = json.loads((tmp_path / "s" / "plan.json").read_text())
    assert plan["stages"] == [] and plan["recommended"] == "baseline"
    assert plan["outcome"] == plan["baseline"]


def test_timeline_shares_the_forecast_contract(tmp_path: Path) -> None:
    from analysis.forecast import TIMELINE_COLUMNS as FORECAST
    from analysis.forecast import Forecast
    from analysis.plan_config import TIMELINE_COLUMNS
    from analysis.plan_output import forecast_columns

    p = load_profile("flash-crowd")
    plan = make_plan(
        p, PlanConfig(stamps_per_second=5.0, bands=False, what_if_days=(0,), max_extension_days=0)
    )
    assert TIMELINE_COLUMNS[: len(FORECAST)] == FORECAST
    theirs = Forecast(profile=p, result=plan.result, close_s=plan.close_s).timeline_rows()
    mine = [
        list(r) for r in zip(*forecast_columns(plan.result, p.calendar, len(theirs)), strict=True)
    ]
    assert mine == theirs
    rows = plan.timeline_rows()
    assert len(rows[0]) == len(TIMELINE_COLUMNS) and [r[: len(FORECAST)] for r in rows] == theirs


def test_plan_command_as_a_process_prints_no_traceback(tmp_path) -> None:
    """The real command line: the planner's forked workers are ended by the pool with SIGTERM;
    they must not inherit the command's SIGTERM handler (it raised in each worker and printed
    a traceback per worker at the end of every plan)."""
    import subprocess
    import sys

    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "surgecast",
            "plan",
            "--profile",
            "casn2024",
            "--out",
            str(tmp_path / "p"),
        ],
        capture_output=True,
        text=True,
        timeout=170,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stdout + r.stderr, r.stderr[-2000:]
    assert (tmp_path / "p" / "plan.json").is_file()
