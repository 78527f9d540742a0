"""The clients' time between uploads the rehearsal simulation draws from
(analysis.rehearsal_inputs).

The simulation plays the stamping gate's refusals and the clients' retries itself, so the pool
of measured gaps (stamp done -> next upload accepted) must hold only the clients' own time: a
gap whose next upload was accepted while the target refused uploads, or within the clients'
retry span after, may hold a wait at the gate and is left out. Kept in, a gate's waits count
twice (the demo's plan rehearsal: 13.4 simulated applicants against 7 measured ran out of
patience before their next upload).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analysis.rehearsal_inputs import MIN_GAPS, _refusing, front_end

ORIGIN = 1_800_000_000.0
RETRY_S = 6.8


def _iso(test_s: float) -> str:
    return datetime.fromtimestamp(ORIGIN + test_s, tz=UTC).isoformat().replace("+00:00", "Z")


def _run_dir(tmp: Path, *, history: bool) -> tuple[Path, list[tuple[str, str, float, str, None]]]:
    """40 applicants whose second upload came 2.0 s after their first was done, outside any
    refusal, and 10 whose second came 5.0 s after, at 20-24.5 s, while the gate refused
    uploads from 18 to 22 s (so within the retry span after)."""
    stamps, ledger, arrivals = [], [], []
    plan = [(2.0 + 0.25 * i, 2.0) for i in range(40)] + [(15.0 + 0.5 * i, 5.0) for i in range(10)]
    for i, (done, gap) in enumerate(plan):
        if i >= 20 and i < 40:
            done += 40.0  # half the clean ones after the refusals
        app, acc = f"0-{i:06d}", f"acc_{i}"
        stamps += [
            {"account_id": acc, "created_at": _iso(done - 3.0), "finished_at": _iso(done)},
            {
                "account_id": acc,
                "created_at": _iso(done + gap),
                "finished_at": _iso(done + gap + 3.0),
            },
        ]
        ledger.append({"applicant_id": app, "account_id": acc})
        arrivals.append((app, "stamp_only", ORIGIN + done - 4.0, "abandoned", None))
    (tmp / "server_records.json").write_text(json.dumps({"stamps": stamps}))
    with (tmp / "ledger.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["applicant_id", "account_id"])
        w.writeheader()
        w.writerows(ledger)
    if history:
        with (tmp / "locust_stats_history.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Timestamp", "Name", "Total Request Count", "Total Failure Count"])
            fails = 0
            for s in range(0, 70):
                fails += 4 if 18 < s <= 22 else 0
                w.writerow([int(ORIGIN) + s, "stamp", 10 * s, fails])
                w.writerow([int(ORIGIN) + s, "Aggregated", 30 * s, fails])
    return tmp, arrivals


def test_gaps_lengthened_by_the_gate_are_left_out_of_the_pool(tmp_path: Path) -> None:
    run_dir, arrivals = _run_dir(tmp_path, history=True)
    fe = front_end(run_dir, ORIGIN, arrivals, 0.85, 2.0, RETRY_S)
    assert len(fe.gaps) == 40 >= MIN_GAPS
    assert max(fe.gaps) == pytest.approx(2.0, abs=0.01)  # none of the 5 s waits at the gate
    assert fe.gap_s == pytest.approx(2.0, abs=0.01)


def test_the_refusing_stretches_come_from_the_stamp_failures(tmp_path: Path) -> None:
    run_dir, _ = _run_dir(tmp_path, history=True)
    stretches = _refusing(run_dir, ORIGIN, RETRY_S)
    assert stretches[0][0] == pytest.approx(18.0) and stretches[-1][1] == pytest.approx(
        22.0 + RETRY_S
    )


def test_without_the_target_s_failure_history_every_gap_is_kept(tmp_path: Path) -> None:
    run_dir, arrivals = _run_dir(tmp_path, history=False)
    fe = front_end(run_dir, ORIGIN, arrivals, 0.85, 2.0, RETRY_S)
    assert len(fe.gaps) == 50 and max(fe.gaps) == pytest.approx(5.0, abs=0.01)


def test_client_lateness_counts_give_ups_noticed_after_the_deadline() -> None:
    # A held-up client process notices its deadline late; one on time ends at intended + patience.
    from analysis.rehearsal_compare import LATE_S, client_lateness

    rows = [
        ("stamp_only", 10.0, "abandoned", 30.0 + LATE_S / 2),
        ("stamp_only", 10.0, "abandoned", 30.4),
        ("stamp_only", 11.0, "abandoned", 33.9),
        ("stamp_only", 12.0, "completed", 40.0),
        ("stamp_only", 12.0, "abandoned", None),
    ]
    lat = client_lateness(rows, 20.0)
    assert (lat["give_ups"], lat["late_give_ups"], lat["max_late_s"]) == (3, 2, 2.9)
