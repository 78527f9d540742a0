"""benchmarks/bench_generator.py's instruction meter: callgrind's totals read from every
process's file, and a run that wrote none refused rather than read as zero."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from benchmarks.bench_generator import instruction_cost, instructions

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
