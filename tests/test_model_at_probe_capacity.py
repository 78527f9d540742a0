"""The model-vs-testbed check runs at the probe's measured capacity; a mis-scaled one turns it red.

One real rehearsal (Locust against the embedded testbed on loopback, the steady profile, no
outage) with demand above the issuer's configured 16 stamps/s, so a queue builds and the
capacity decides both the peak backlog and who is served within their patience. The
capacity the model runs at is capacity.json's (what a probe writes): here the configured one.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.issuer_saturation import saturation
from analysis.rehearsal_compare import compare
from analysis.rehearsal_model import TOLERANCE
from floor import atomic

CONFIGURED = 16.0   # the testbed's default: 4 issuer workers / 0.25 s mean service
COMPRESS = 4320.0
MULTIPLIER = 60.0   # about 10 test applicants a second, above 20 stamps/s: the issuer saturates


@pytest.fixture(scope="module")
def saturated_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("saturated") / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "surgecast", "rehearse", "--profile", "steady",
         "--window", "2024-08-02T00:00/2024-08-03T00:00", "--duration", "15",
         "--compress", f"{COMPRESS:g}", "--scale", f"{MULTIPLIER / COMPRESS:.9g}", "--seed", "5",
         "--sample-interval", "0.25", "--quiet", "--out", str(out)],
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    atomic.write_json(out / "capacity.json", {"stamps_per_second": CONFIGURED,
                                              "configured_stamps_per_second": CONFIGURED})
    return out


@pytest.mark.timeout(200)
def test_the_check_runs_at_the_probe_capacity_not_the_replayed_issuer(saturated_run: Path) -> None:
    cmp = compare(saturated_run)
    assert cmp["capacity"]["from"] == "probe" and cmp["capacity"]["stamps_per_second"] == CONFIGURED
    assert cmp["capacity_stamps_per_second"] == pytest.approx(CONFIGURED)
    # the replay stays beside, labelled as a diagnostic, and is not what `ok` reads
    diag = cmp["diagnostic_replayed_issuer"]
    assert "diagnostic" in diag["means"]
    assert {"served", "peak_backlog", "drain_s", "series_error", "ok"} <= set(cmp)
    sat = saturation(saturated_run)
    assert sat["saturated_s"] >= 5.0, sat       # the rehearsal did load the issuer
    print("at probe capacity:", {k: cmp[k] for k in ("served", "peak_backlog", "series_error")},
          "replayed:", diag, "saturation:", sat)


@pytest.mark.timeout(200)
@pytest.mark.parametrize("factor", [0.75, 1.33])
def test_a_mis_scaled_capacity_turns_the_check_red(saturated_run: Path, factor: float) -> None:
    right = compare(saturated_run)
    wrong = compare(saturated_run, stamps_per_second=CONFIGURED * factor)
    assert wrong["ok"] is False, wrong
    worst = max(abs(wrong["served"]["error"]), abs(wrong["peak_backlog"]["error"]))
    assert worst > TOLERANCE
    best = max(abs(right["served"]["error"]), abs(right["peak_backlog"]["error"]))
    assert worst > best, (wrong, right)


def test_saturation_reads_the_workers_and_the_queue(saturated_run: Path, tmp_path: Path) -> None:
    sat = saturation(saturated_run)
    # while saturated the issuer completes near its configured rate, faster than over the whole run
    assert sat["saturated_rate"] > sat["overall_rate"], sat
    assert abs(sat["saturated_rate"] / CONFIGURED - 1.0) < 0.25, sat
    # the same files with no worker ever busy: no window is saturated
    idle = tmp_path / "idle"
    shutil.copytree(saturated_run, idle)
    with (saturated_run / "queue.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["issuer_busy"] = "0"
    with (idle / "queue.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert saturation(idle)["saturated_rate"] is None
