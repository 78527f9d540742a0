"""A failed drill's exit code says what failed: data lost or duplicated is 3
(IntegrityError); a fault that never bit or a check of recovery is 1 (DrillFailed); a load
that never ran is 1 (RunFailed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from surgecast.commands.drill import DATA_CHECKS, verdict_error


def _result(*failed: str, recon_ok: bool = True) -> dict:
    return {
        "verdict": {
            "passed": not failed,
            "reason": ", ".join(failed) + " failed",
            "failed_checks": list(failed),
        },
        "reconciliation": {"ok": recon_ok},
    }


@pytest.mark.parametrize(
    ("failed", "recon_ok", "name", "code"),
    [
        (("fault_observed",), True, "DrillFailed", 1),  # the fault never bit: nothing was lost
        (("reconciliation",), False, "IntegrityError", 3),
        (("no_duplicate_jobs",), True, "IntegrityError", 3),
        (("fault_observed", "stamps_finished"), True, "IntegrityError", 3),
        (("audit_balanced",), True, "IntegrityError", 3),
        (("load_ran",), True, "RunFailed", 1),
        (("load_ran", "reconciliation"), False, "IntegrityError", 3),
    ],
)
def test_a_failed_drill_exits_with_what_failed(
    failed: tuple[str, ...], recon_ok: bool, name: str, code: int
) -> None:
    e = verdict_error("d", _result(*failed, recon_ok=recon_ok), Path("out"))
    assert e is not None and type(e).__name__ == name and e.exit_code == code, e
    assert str(e).startswith("drill d ") and "out/drill.json" in str(e)


def test_a_passed_drill_raises_nothing_and_every_data_check_is_a_real_check() -> None:
    assert verdict_error("d", _result(), Path("out")) is None
    src = "".join(
        p.read_text()
        for p in (Path(__file__).resolve().parents[1] / "surgecast" / "drills").glob("*.py")
    )
    # a renamed check would silently drop (a call may be wrapped over lines: _check(\n "name")
    assert all(re.search(rf'_check\(\s*"{c}"', src) for c in DATA_CHECKS), DATA_CHECKS
