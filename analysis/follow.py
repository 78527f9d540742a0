"""Does a rehearsal follow its plan? Compare a rehearsal's measured queue with the plan, from files.

A compressed rehearsal cannot reproduce the plan's minute-by-minute backlog (one
test second is hours of calendar), so this checks what the plan promises and the
rehearsal can measure, at the rehearsal's calendar resolution:

1. **drain**: the stamping accepted during the outage drains by the end of the
   plan's first stage (within two samples of calendar time);
2. **utilisation**: after the drain, the issuer's busy share stays at or below the
   plan's utilisation target (mean over the rest of the run, plus a tolerance for
   sampling a few workers);
3. **integrity**: reconciliation found no quota lost or duplicated.

Reads `plan.json`, `run.json`, `queue.csv` and `reconciliation.json` of one run
directory; writes nothing. `surgecast demo` saves the result as `plan_check.json`::

    check = check_plan_followed(Path("runs/demo"))
    check["follows"], check["checks"][0]["name"]
"""

from __future__ import annotations

import csv
import json
import statistics
from datetime import datetime
from pathlib import Path
from typing import Any

from surgecast.errors import InputFileError

UTILISATION_TOLERANCE = 0.10


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"{path}: missing; it is written by a plan or a rehearsal") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise InputFileError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise InputFileError(f"{path}: expected a JSON object")
    return data


def _queue_rows(path: Path) -> list[tuple[datetime, float, float, float, bool]]:
    """(calendar time, issuer queue, busy, workers, paused) per sample."""
    out = []
    try:
        with path.open(encoding="utf-8", newline="") as f:
            for i, r in enumerate(csv.DictReader(f), start=2):
                try:
                    out.append((datetime.fromisoformat(r["calendar_at"]), float(r["issuer_queue"]),
                                float(r["issuer_busy"]), float(r["issuer_workers"]),
                                r.get("issuer_paused", "0") in ("1", "true", "True")))
                except (KeyError, TypeError, ValueError) as e:
                    raise InputFileError(f"{path}:{i}: bad sample ({e})") from None
    except FileNotFoundError:
        raise InputFileError(f"{path}: missing; a rehearsal against a target with an admin API writes it") from None
    if len(out) < 3:
        raise InputFileError(f"{path}: only {len(out)} samples; rehearse longer")
    return out


def check_plan_followed(run_dir: Path) -> dict[str, Any]:
    """Compare the rehearsal in `run_dir` with the plan in the same directory (see module doc)."""
    plan = _json(run_dir / "plan.json")
    run = _json(run_dir / "run.json")
    recon = _json(run_dir / "reconciliation.json")
    samples = _queue_rows(run_dir / "queue.csv")
    stages = plan.get("stages") or []
    if not stages:
        raise InputFileError(f"{run_dir / 'plan.json'}: no stages; the plan has no reopening to check")
    try:
        reopen = datetime.fromisoformat(plan["reopen_at"])
        drain_by = datetime.fromisoformat(stages[0]["end"])
        target = float(plan["max_utilisation"])
    except (KeyError, TypeError, ValueError) as e:
        raise InputFileError(f"{run_dir / 'plan.json'}: missing or bad key ({e})") from None
    gaps = [(b[0] - a[0]).total_seconds() for a, b in zip(samples, samples[1:], strict=False)]
    resolution_s = statistics.median(gaps) if gaps else 0.0
    stamps_per_applicant = float(plan.get("stamps_per_applicant") or 1.0)
    scale = float(run.get("scale") or 0.0) or None

    during = [s for s in samples if s[0] < reopen]
    peak_stamps = max((s[1] for s in during), default=0.0)
    after = [s for s in samples if s[0] >= reopen]
    drained_at = next((s[0] for s in after if s[1] == 0 and not s[4]), None)
    slack = 2 * resolution_s
    drain_ok = drained_at is not None and (drained_at - drain_by).total_seconds() <= slack
    post = [s for s in after if drained_at is not None and s[0] > drained_at and s[3] > 0]
    util = statistics.fmean(s[2] / s[3] for s in post) if post else None
    util_ok = util is not None and util <= target + UTILISATION_TOLERANCE
    integrity_ok = bool(recon.get("ok"))
    checks = [
        {"name": "drain", "ok": drain_ok,
         "plan": drain_by.isoformat(), "measured": drained_at.isoformat() if drained_at else None,
         "detail": (f"accepted stamping drained at {drained_at:%Y-%m-%d %H:%M}, plan {drain_by:%Y-%m-%d %H:%M} "
                    f"(resolution {resolution_s / 3600:.1f} h of calendar)") if drained_at else
                   "the accepted stamping never drained during the rehearsal"},
        {"name": "utilisation", "ok": util_ok, "plan": target, "measured": None if util is None else round(util, 4),
         "detail": (f"issuer busy {util:.0%} on average after the drain; target {target:.0%} "
                    f"(+{UTILISATION_TOLERANCE:.0%} sampling tolerance)") if util is not None else
                   "no samples after the drain"},
        {"name": "integrity", "ok": integrity_ok, "plan": "no quota lost or duplicated",
         "measured": {k: recon.get(k) for k in ("lost_quota", "duplicated_quota", "orphaned_payments")},
         "detail": "reconciliation " + ("found no quota lost or duplicated" if integrity_ok else "FAILED")},
    ]
    return {
        "follows": all(c["ok"] for c in checks),
        "checks": checks,
        "resolution_s": resolution_s,
        "outage_peak_issuer_queue_stamps": peak_stamps,
        "outage_peak_issuer_queue_national_applicants": (round(peak_stamps / stamps_per_applicant / scale)
                                                          if scale else None),
    }
