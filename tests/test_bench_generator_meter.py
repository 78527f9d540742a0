"""benchmarks/bench_generator.py's instruction meter: callgrind's totals read from every
process's file, and a run that wrote none refused rather than read as zero."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_generator import census_groups, instruction_cost, instructions
from benchmarks.call_census import LIBRARY

HEAD = "version: 1\ncreator: callgrind-3.19.0\ncmd: python -m locust\nevents: Ir\n"


def test_totals_of_every_process_are_added(tmp_path):
    (tmp_path / "cg.101").write_text(HEAD + "fl=a.c\nfn=f\n3 10\nsummary: 4462841941\n")
    (tmp_path / "cg.102").write_text(HEAD + "totals: 1000\n")
    assert instructions(tmp_path) == 4_462_841_941 + 1_000


def test_a_run_with_no_totals_is_refused(tmp_path):
    # the mutant input: callgrind died before writing its summary (or never ran)
    (tmp_path / "cg.101").write_text(HEAD + "fl=a.c\nfn=f\n3 10\n")
    with pytest.raises(SystemExit, match="no totals"):
        instructions(tmp_path)
    with pytest.raises(SystemExit, match="no totals"):
        instructions(tmp_path / "nothing-here")


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="needs valgrind")
def test_counts_a_real_process_and_more_work_counts_more(tmp_path):
    def count(n: int) -> int:
        d = tmp_path / f"n{n}"
        d.mkdir()
        subprocess.run(["valgrind", "--tool=callgrind", "--log-file=/dev/null",
                        f"--callgrind-out-file={d}/cg.%p", sys.executable, "-S", "-c",
                        f"sum(range({n}))"], check=True)
        return instructions(d)
    small, big = count(10), count(2_000_000)
    assert big - small > 2_000_000 * 5  # a loop iteration is tens of instructions


def test_the_marginal_cost_is_what_the_extra_requests_cost():
    fixed, per = 2.9e9, 1.055e6
    short = [{"ir": fixed + per * n, "requests": n} for n in (1590, 1600, 1580)]
    long = [{"ir": fixed + per * n, "requests": n} for n in (3365, 3370)]
    got = instruction_cost(short, long)
    assert got["marginal"] == pytest.approx(per) and got["fixed"] == pytest.approx(fixed)
    # the mutant: both sides of the difference taken from one duration (a late-bound loop did
    # this once, and printed 0.0 k) reads no marginal cost at all
    with pytest.raises(SystemExit, match="not more than"):
        instruction_cost(long, long)


def test_per_arrival_reads_the_arrivals_not_the_requests():
    """Same arrivals, a different number of polls: per arrival, the extra polls' cost is seen
    as cost per arrival; per request it is diluted (the bare side's polls vary with timing)."""
    runs = [{"ir": 2e9 + 8e6 * a + 2e5 * polls, "requests": 10 * a + polls, "arrivals": a}
            for a, polls in ((144, 0), (305, 300))]
    by_arrival = instruction_cost(runs[:1], runs[1:], per="arrivals")
    assert by_arrival["marginal"] == pytest.approx((8e6 * 161 + 2e5 * 300) / 161)
    by_request = instruction_cost(runs[:1], runs[1:])
    assert by_request["marginal"] != pytest.approx(by_arrival["marginal"] / 10, rel=0.01)
    with pytest.raises(SystemExit, match="arrivals of the long runs"):
        instruction_cost(runs[1:], runs[1:], per="arrivals")


# ---- the call census (--meter calls) ---------------------------------------------------------
CENSUS = Path(__file__).resolve().parents[1] / "benchmarks" / "call_census.py"


def _census_run(tmp_path: Path, roots: str) -> dict[str, int]:
    proj, lib = tmp_path / "proj", tmp_path / "lib"
    proj.mkdir(exist_ok=True)
    lib.mkdir(exist_ok=True)
    (lib / "helperlib.py").write_text("def helper(x):\n    return abs(x)\n")
    (proj / "mod.py").write_text(
        "import helperlib\n\n\ndef work(i):\n    helperlib.helper(-i)\n"
        "    return sorted([3, 1, 2]) + [len('ab')]\n\n\n"
        "if __name__ == '__main__':\n    for i in range(1000):\n        work(i)\n")
    out = tmp_path / "calls.json"
    subprocess.run([sys.executable, str(CENSUS), str(out), roots, "-m", "mod"], check=True,
                   cwd=proj, env={"PYTHONPATH": f"{proj}:{lib}", "PATH": "/usr/bin:/bin"})
    return dict(json.loads(out.read_text()))


def test_the_census_counts_each_call_under_the_project_function_that_made_it(tmp_path):
    calls = _census_run(tmp_path, f"{tmp_path}/proj/")
    # each of 1,000 runs of work: its own call, helper (a library's Python function), abs
    # (called inside helper, still under work), sorted and len; a hook that missed C calls
    # (2,000 of them) or attributed a library's frame to itself would read otherwise
    assert calls["mod.py:work"] == 5 * 1000
    assert "helperlib.py:helper" not in calls
    # with the project outside the roots nothing is the project's
    other = _census_run(tmp_path, f"{tmp_path}/elsewhere/")
    assert not any(k.startswith("mod.py:") for k in other)
    assert other[LIBRARY] >= 5 * 1000


def test_census_groups_keep_every_call():
    calls = {"recorder.py:ledger_row": 3, "journeys.py:send": 5, "bare.py:play": 7,
             "identities.py:faker_part": 2, "<library>": 11, "somewhere.py:else": 1}
    g = census_groups(calls)
    assert sum(g.values()) == sum(calls.values())  # nothing dropped, nothing counted twice
    assert g["requests and journey steps"] == 12 and g["recorder and its files"] == 3
    assert g["other"] == 1


def test_the_census_refuses_a_bad_command_line_in_one_line():
    p = subprocess.run([sys.executable, str(CENSUS), "out.json", "/x/"], capture_output=True,
                       text=True)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "-m MODULE" in p.stderr
