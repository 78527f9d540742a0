"""The `gates` check of plan_check.json against a rehearsal that applied its gate changes late.

A rehearsal applies the gate changes of one instant one after another over HTTP; on a loaded
machine the last lands a few tenths of a test second later (17 calendar seconds at compress 60,
beside samples 15 s apart). The check waits one resolution from when they were applied, for a
lag of at most two resolutions (the drain check's slack), and no longer: a gate set later than
that, or never, is red.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from analysis.follow import check_by_name, check_plan_followed
from floor import atomic
from tests.plan_rundirs import write_queue_csv, write_reconciliation

REOPEN = datetime.fromisoformat("2024-09-05T20:00:00+07:00")
COMPRESS = 60.0
SAMPLE_S = 15.0   # calendar seconds between queue samples (0.25 test s)


def _run_dir(tmp: Path, *, lag_s: float) -> Path:
    """Registration closed before the reopening, planned
    open at it, set open `lag_s` calendar s late."""
    atomic.write_json(
        tmp / "plan.json",
        {
            "reopen_at": REOPEN.isoformat(),
            "stamps_per_applicant": 2.2,
            "close": (REOPEN + timedelta(hours=1)).isoformat(),
            "stages": [
                {
                    "id": "reopen-registration",
                    "start": REOPEN.isoformat(),
                    "end": (REOPEN + timedelta(hours=1)).isoformat(),
                    "gates": {"registration": "open"},
                }
            ],
        },
    )
    at_s = 600.0 / COMPRESS
    atomic.write_json(
        tmp / "run.json",
        {
            "kind": "rehearsal",
            "scale": 0.03,
            "compress": COMPRESS,
            "admin_actions": [
                {
                    "kind": "gate",
                    "target": "registration",
                    "calendar_at": REOPEN.isoformat(),
                    "at_s": at_s,
                    "applied_at_s": at_s + lag_s / COMPRESS,
                    "body": {"mode": "open"},
                    "ok": True,
                }
            ],
        },
    )
    write_reconciliation(tmp)
    rows = []
    t = REOPEN - timedelta(minutes=10)
    while t < REOPEN + timedelta(minutes=20):
        late = (t - REOPEN).total_seconds() < lag_s
        rows.append(
            [
                "2026-01-01T00:00:00Z",
                t.isoformat(),
                0,
                0,
                4,
                0,
                0,
                0,
                0,
                0,
                8,
                "closed" if late else "open",
                "open",
                "open",
            ]
        )
        t += timedelta(seconds=SAMPLE_S)
    write_queue_csv(tmp, rows)
    return tmp


def test_a_gate_applied_within_the_slack_is_set_as_planned(tmp_path: Path) -> None:
    gates = check_by_name(check_plan_followed(_run_dir(tmp_path, lag_s=18.0), model=False), "gates")
    assert gates["ok"] is True, gates
    assert gates["measured"][0]["applied_lag_s"] == 18.0


def test_a_gate_applied_later_than_the_slack_is_red(tmp_path: Path) -> None:
    gates = check_by_name(
        check_plan_followed(_run_dir(tmp_path, lag_s=3 * SAMPLE_S + 1), model=False), "gates"
    )
    assert gates["ok"] is False, gates
    assert gates["measured"][0]["measured"] == "closed"


def test_a_gate_never_applied_is_red_whatever_the_lag_says(tmp_path: Path) -> None:
    d = _run_dir(tmp_path, lag_s=10.0)
    rows = (
        (d / "queue.csv")
        .read_text(encoding="utf-8")
        .replace(",open,open,open\n", ",closed,open,open\n")
    )
    atomic.write_text(d / "queue.csv", rows)
    assert check_by_name(check_plan_followed(d, model=False), "gates")["ok"] is False
