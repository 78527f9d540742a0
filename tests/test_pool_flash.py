"""A pool that keeps up with a flash crowd (issue 14, item 1), and drops named by their reason.

Two layers, both real Locust:
* the pool alone (`tests/pool_run.py`: Locust's runner and spawner, the production
  dispatcher and shape, journeys that sleep 5 s) at 400 arrivals/s, where the old fixed
  spawn rate of 100 users/s must drop (the mutant) and a small --user-cap must drop
  with reason pool_cap;
* one whole rehearsal (`surgecast rehearse --arrival-shape flash-crowd`) against the
  embedded testbed, and the same with a --user-cap far below the crowd.
The three pool runs and the two rehearsals each run side by side to keep wall time down.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_rehearse_runs import ROOT, fast_testbed_flags

POOL = ["--rate", "400", "--journey-s", "5", "--duration", "10", "--quiet-s", "3"]


def _pool_runs(*variants: list[str]) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.pool_run", *POOL, *v],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for v in variants
    ]
    out = []
    for p in procs:
        so, se = p.communicate(timeout=60)
        assert p.returncode == 0, se[-2000:]
        out.append(json.loads(so.strip().splitlines()[-1]))
    return out


@pytest.mark.timeout(90)
def test_pool_follows_growth_and_names_its_drops():
    ok, old_rule, capped = _pool_runs([], ["--fixed-spawn", "100"], ["--cap", "600"])
    # 0 -> 400/s in a second, journeys of 5 s: the pool
    # must grow ~400 users/s for 5 s (to ~2,000 busy).
    assert ok["scheduled"] > 2000
    assert ok["dropped"] <= 0.005 * ok["scheduled"], ok
    assert max(ok["spawn_rates"]) > 400, ok  # it asked Locust for more than the old 100 users/s
    assert ok["peak_users"] >= 2000, ok
    # the mutant (the old rule, a fixed 100 users/s) cannot keep up, and its drops say why
    assert old_rule["dropped"] > 0.005 * old_rule["scheduled"], old_rule
    assert old_rule["dropped_by_reason"]["spawn_lag"] >= 0.9 * old_rule["dropped"], old_rule
    assert old_rule["peak_users"] < ok["peak_users"]
    # a cap of 600 users under a crowd that needs ~3,200:
    # drops named pool_cap, the pool never above the cap
    assert capped["dropped"] > 0.2 * capped["scheduled"], capped
    assert capped["dropped_by_reason"]["pool_cap"] >= 0.95 * capped["dropped"], capped
    assert capped["peak_users"] <= 600


def _rehearse(out: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "surgecast",
            "rehearse",
            "--arrival-rate",
            "30",
            "--arrival-shape",
            "flash-crowd",
            "--duration",
            "8",
            "--seed",
            "3",
            "--out",
            str(out),
            *args,
            *fast_testbed_flags(),
        ],
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.timeout(120)
def test_flash_crowd_rehearsal_keeps_up_and_a_cap_is_named(tmp_path):
    runs = {
        "free": _rehearse(tmp_path / "free", "--quiet"),
        "capped": _rehearse(tmp_path / "capped", "--user-cap", "25"),
    }
    res = {k: (p, *p.communicate(timeout=110)) for k, p in runs.items()}
    p, so, se = res["free"]
    assert p.returncode == 0, se[-2000:] + so[-2000:]
    s = json.loads((tmp_path / "free" / "summary.json").read_text())
    assert s["parameters"]["arrival_shape"] == "flash-crowd"
    # nobody for 2 s, 0 -> 30/s in 1 s, 30/s to 8 s: 30 x 5.5 = 165 expected
    assert s["scheduled_expected"] == pytest.approx(165, abs=1)
    assert s["dropped"] <= 0.005 * s["scheduled"], s
    assert s["dropped_by_reason"] == {"pool_cap": 0, "spawn_lag": 0, "cpu": 0}
    p, so, se = res["capped"]
    assert p.returncode in (0, 1), se[-2000:]
    c = json.loads((tmp_path / "capped" / "summary.json").read_text())
    assert c["dropped"] > 0.3 * c["scheduled"], c
    assert c["dropped_by_reason"]["pool_cap"] >= 0.95 * c["dropped"], c
    with (tmp_path / "capped" / "arrivals.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    dropped = [r for r in rows if r["outcome"] == "dropped"]
    assert dropped and all(r["drop_reason"] in ("pool_cap", "spawn_lag", "cpu") for r in dropped)
    assert all(r["drop_reason"] == "" for r in rows if r["outcome"] != "dropped")
    assert f"dropped {c['dropped']} (pool_cap {c['dropped_by_reason']['pool_cap']}" in so, so[-500:]


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--arrival-rate", "5", "--arrival-shape", "spike"], "--arrival-shape"),
        (
            ["--profile", "steady", "--arrival-shape", "flash-crowd", "--scale", "0.01"],
            "--arrival-shape",
        ),
    ],
)
def test_arrival_shape_errors_name_the_flag(tmp_path, args, flag):
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "surgecast",
            "rehearse",
            "--quiet",
            "--out",
            str(tmp_path / "x"),
            *args,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert (
        flag in r.stderr and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    )
    assert not (tmp_path / "x").exists()
