"""Planner: the acceptance command, its files, and the promises of the plan."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from analysis.backlog import fluid_totals
from analysis.planner import PlanConfig, _Cases, _outages, _stages, make_plan, parse_outage
from scenarios.profile import load_profile
from surgecast.cli import main

ACCEPT = ["plan", "--profile", "casn2024", "--stamps-per-second", "12",
          "--outage", "2024-09-03T08:00/2024-09-05T20:00"]


@pytest.fixture(scope="module")
def accepted(tmp_path_factory):
    out = tmp_path_factory.mktemp("plan") / "p"
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*ACCEPT, "--out", str(out)])
    return code, buf.getvalue(), out


def test_acceptance_command_prints_and_writes(accepted) -> None:
    code, text, out = accepted
    assert code == 0
    for needle in ("drain accepted stamping", "credit paid quota", "stamping for quota holders",
                   "reopen ordering", "reopen new registrations", "required capacity", "minimum extension", "VERDICT"):
        assert needle in text
    plan = json.loads((out / "plan.json").read_text())
    for key in ("profile", "capacity_stamps_per_second", "outage", "stages", "required_capacity",
                "required_extension", "served_share", "what_if", "verdict"):
        assert key in plan
    assert plan["outage"] == {"start": "2024-09-03T08:00:00+07:00", "end": "2024-09-05T20:00:00+07:00"}
    for s in plan["stages"]:
        assert {"name", "start", "end", "gates", "rate_per_s", "burst", "peak_queue", "max_wait_s", "utilisation", "why"} <= set(s)
        assert s["start"].endswith("+07:00")
    assert set(plan["verdict"]) >= {"served_by_deadline", "margin_hours", "lost_applicants"}
    rows = list(csv.DictReader((out / "timeline.csv").open()))
    assert list(rows[0])[:9] == ["calendar_at", "demand_per_s", "retry_per_s", "capacity_per_s", "served_per_s",
                                 "queue", "wait_s", "abandoned_per_s", "stage"]
    assert rows[1]["calendar_at"] == "2024-08-20T00:01:00+07:00"
    gates = json.loads((out / "gate_schedule.json").read_text())
    assert all({"at", "gate", "mode", "rate_per_s", "burst", "label"} <= set(g) for g in gates)
    assert [g["at"] for g in gates] == sorted(g["at"] for g in gates)


def test_plan_never_above_utilisation_or_wait_targets(accepted) -> None:
    _, _, out = accepted
    plan = json.loads((out / "plan.json").read_text())
    rows = list(csv.DictReader((out / "timeline.csv").open()))
    reopen = plan["reopen_at"]
    after = [r for r in rows if r["calendar_at"] >= reopen]
    assert after and max(float(r["utilisation"]) for r in after) <= 0.8 + 1e-9
    starts = [s["start"] for s in plan["stages"]]
    assert starts == sorted(starts) and starts[0] == reopen
    for s in plan["stages"]:
        assert s["utilisation"] <= 0.8 + 1e-9
        if s["rate_per_s"] is not None:          # admitted through a waiting room
            assert s["max_wait_s"] <= 1800 + 1e-6
            assert s["rate_per_s"] <= 0.8 * 12 / 2.2 + 1e-9


def test_required_capacity_is_the_smallest_that_reaches_the_target() -> None:
    p = load_profile("casn2024")
    cfg = PlanConfig(stamps_per_second=12.0, outage=parse_outage("2024-09-03T08:00/2024-09-05T20:00", p.calendar.tz),
                     what_if_factors=(1.0,), what_if_extensions_hours=(0.0,))
    plan = make_plan(p, cfg)
    outs, outage = _outages(p, cfg)
    cal = p.calendar
    stages = _stages(cfg, (cal.seconds(outage[0]), cal.seconds(outage[1])), cal.seconds(outage[1]))
    inp, _ = _Cases(p, cfg, outs, stages).inputs(0.0)

    def share(sps: float) -> float:
        served, _ = fluid_totals(replace(inp, issuer_per_s=inp.issuer_per_s * sps / 12.0), stages)
        return served / inp.total_applicants

    assert plan.required_capacity is not None
    assert share(plan.required_capacity) >= plan.target_share - 1e-9
    assert share(plan.required_capacity * 0.97) < plan.target_share
    assert not plan.served_by_deadline and plan.served_share < plan.target_share


def test_what_if_grows_with_capacity_and_extension(accepted) -> None:
    _, _, out = accepted
    w = json.loads((out / "plan.json").read_text())["what_if"]
    caps = sorted({x["capacity"] for x in w})
    exts = sorted({x["extension_hours"] for x in w})
    grid = np.array([[next(x["served_share"] for x in w if x["capacity"] == c and x["extension_hours"] == e)
                      for e in exts] for c in caps])
    assert (np.diff(grid, axis=0) >= -1e-9).all() and (np.diff(grid, axis=1) >= -1e-9).all()
    assert ((grid >= 0) & (grid <= 1)).all()


def test_small_profile_plan_with_capacity_file_and_reopen(tmp_path, capsys) -> None:
    cap = tmp_path / "capacity.json"
    cap.write_text(json.dumps({"stamps_per_second": 20.0}))
    out = tmp_path / "q"
    code = main(["plan", "--profile", "flash-crowd", "--capacity", str(cap), "--outage", "2024-10-01T10:00/2024-10-01T11:00",
                 "--reopen-at", "2024-10-01T11:30", "--max-utilisation", "0.7", "--max-wait", "15m", "--out", str(out)])
    assert code == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["capacity_stamps_per_second"] == 20.0 and plan["reopen_at"] == "2024-10-01T11:30:00+07:00"
    assert all(s["utilisation"] <= 0.7 + 1e-9 for s in plan["stages"])
    assert all(s["max_wait_s"] <= 900 + 1e-6 for s in plan["stages"] if s["rate_per_s"] is not None)


def test_no_outage_plan(tmp_path, capsys) -> None:
    assert main(["plan", "--profile", "steady", "--out", str(tmp_path / "s")]) == 0
    plan = json.loads((tmp_path / "s" / "plan.json").read_text())
    assert plan["stages"] == [] and plan["verdict"]["served_by_deadline"] is True
    assert "no outage" in capsys.readouterr().out
