"""Writers shared by the tests that build a rehearsal + plan run directory by hand.

The queue columns are spelled out here (not imported from scenarios.recorder) so the readers
are tested against the run-directory format, not against whatever the recorder writes today.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from floor import atomic

QUEUE_COLUMNS = ["at", "calendar_at", "issuer_queue", "issuer_busy", "issuer_workers",
                 "issuer_completed", "issuer_failed", "issuer_paused", "payments_queue",
                 "payments_busy", "payments_workers", "gate_registration", "gate_ordering",
                 "gate_stamping"]


def write_queue_csv(run_dir: Path, rows: Sequence[Sequence[object]]) -> None:
    """queue.csv of `run_dir`: one row per sample, in QUEUE_COLUMNS order."""
    atomic.write_csv(run_dir / "queue.csv", QUEUE_COLUMNS, rows)


def write_reconciliation(run_dir: Path, *, ok: bool = True, lost_quota: int = 0) -> None:
    """reconciliation.json of `run_dir`: nothing duplicated or orphaned, `lost_quota` lost."""
    atomic.write_json(run_dir / "reconciliation.json", {
        "ok": ok, "lost_quota": lost_quota, "duplicated_quota": 0, "orphaned_payments": 0})
