"""The report's tables: latency percentiles and errors per step, the plan check, plan against
baseline.

    >>> from pathlib import Path
    >>> from reports.load import load_run
    >>> from reports.i18n import Translator
    >>> rows = latency_rows(load_run(Path("tests/fixtures/runs/rehearsal")), Translator("en"))
    >>> bool(rows) and "step" in rows[0]
    True
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from analysis.follow import CHECKS
from floor.vocabulary import STEPS
from reports.i18n import Translator
from reports.load import RunData

PERCENTILES = (50.0, 90.0, 95.0, 99.0, 99.9)


def latency_rows(run: RunData, tr: Translator) -> list[dict[str, Any]]:
    """Per-step latency from the HDR files: count and p50..p99.9 (ms) on both clocks.

    A percentile with fewer than 10 / (1 - q) samples is flagged `thin` (shown with a mark).
    """
    rows = []
    order = [s for s in STEPS if s in run.hdr] + sorted(set(run.hdr) - set(STEPS))
    for step in order:
        for clock in ("service", "intended"):
            h = run.hdr[step].get(clock)
            if h is None:
                continue
            n = h.get_total_count()
            cells = []
            for q in PERCENTILES:
                v = h.get_value_at_percentile(q) / 1000 if n else None
                thin = n < 10 / (1 - q / 100)
                cells.append({"value": tr.smart(v), "thin": thin})
            rows.append(
                {
                    "step": tr.label("step", step),
                    "clock": tr.t(f"clock_{clock}"),
                    "count": tr.num(n),
                    "cells": cells,
                }
            )
    return rows


def error_rows(run: RunData, tr: Translator) -> list[dict[str, str]]:
    """Requests and errors per step (summary.json) with the error ratio."""
    out = []
    for step, v in ((run.summary or {}).get("steps") or {}).items():
        n, e = v.get("count", 0), v.get("errors", 0) or 0
        out.append(
            {
                "step": tr.label("step", step),
                "count": tr.num(n),
                "errors": tr.num(e),
                "ratio": tr.pct(e / n if n else None, 2),
                "bad": e / n > 0.01 if n else False,
            }
        )
    return out


def plan_check_lines(run: RunData, tr: Translator) -> tuple[str, str, list[str]] | None:
    """The rehearsal-vs-plan check (plan_check.json) in words: (level, headline, one line per
    check).

    >>> from pathlib import Path
    >>> from reports.load import RunData
    >>> plan_check_lines(RunData(run_dir=Path(".")), Translator("en")) is None
    True
    """
    pc = run.plan_check
    if not pc:
        return None
    lines = []
    for c in pc.get("checks") or []:
        if not isinstance(c, dict):
            continue
        mark = "✔" if c.get("ok") else "✘"
        words = _CHECK_WORDS.get(str(c.get("name")))
        text = words(c, pc, tr, run.tz) if words else None
        if text is None:
            text = str(c.get("detail", c.get("name")))
        lines.append(f"{mark} {text}")
    follows = bool(pc.get("follows"))
    return (
        "ok" if follows else "bad",
        tr.t("plan_check_follows" if follows else "plan_check_not"),
        lines,
    )


def _drain_words(c: dict[str, Any], pc: dict[str, Any], tr: Translator, tz: Any) -> str:
    """When the stamping accepted during the outage drained, against the plan."""
    measured, planned = c.get("measured"), c.get("plan")
    if not measured:
        return tr.t("check_drain_never")
    return tr.t(
        "check_drain",
        measured=tr.when(datetime.fromisoformat(measured).astimezone(tz)),
        plan=tr.when(datetime.fromisoformat(planned).astimezone(tz)),
        res=tr.seconds(float(pc.get("resolution_s") or 0)),
    )


def _gates_words(c: dict[str, Any], pc: dict[str, Any], tr: Translator, tz: Any) -> str:
    """The gates set as planned, or those that were not."""
    if c.get("ok"):
        return tr.t("check_gates_ok")
    return tr.t("check_gates_failed", detail=_gate_detail(c, tr))


def _integrity_words(c: dict[str, Any], pc: dict[str, Any], tr: Translator, tz: Any) -> str:
    """Reconciliation passed or not."""
    return tr.t("integrity_ok") if c.get("ok") else tr.t("check_integrity_failed")


def _model_words(c: dict[str, Any], pc: dict[str, Any], tr: Translator, tz: Any) -> str | None:
    """The model against the testbed: served and peak backlog (None: no figures to show)."""
    measured = c.get("measured")
    if not isinstance(measured, dict):
        return None
    sv, pk = measured.get("served") or {}, measured.get("peak_backlog") or {}
    return tr.t(
        "check_model",
        served_m=tr.num(sv.get("model")),
        served=tr.num(sv.get("measured")),
        served_e=_signed_pct(sv.get("error"), tr),
        peak_m=tr.num(pk.get("model")),
        peak=tr.num(pk.get("measured")),
        peak_e=_signed_pct(pk.get("error"), tr),
        tol=tr.pct((pc.get("model_vs_testbed") or {}).get("tolerance", 0.1)),
    )


# The words of each check, keyed by the names analysis/follow.py gives them (its CHECKS); a
# check renamed there fails here at import rather than falling back to English silently.
_CHECK_WORDS: dict[str, Callable[[dict[str, Any], dict[str, Any], Translator, Any], str | None]] = {
    "drain": _drain_words,
    "gates": _gates_words,
    "integrity": _integrity_words,
    "model": _model_words,
}
if set(_CHECK_WORDS) != set(CHECKS):
    raise ImportError(f"reports.tables words checks {sorted(_CHECK_WORDS)}; follow has {CHECKS}")


def _gate_detail(c: dict[str, Any], tr: Translator) -> str:
    """The gates that were not set as planned, in the report's language (follow's gate lines)."""
    lines = c.get("measured")
    if not isinstance(lines, list):
        return str(c.get("detail", ""))
    return "; ".join(tr.t("check_gate_line", stage=x.get("stage"), gate=x.get("gate"),
                          plan=x.get("plan"),
                          measured=x.get("measured") or tr.t("check_gate_unsampled"))
                     for x in lines if isinstance(x, dict) and not x.get("ok"))


def pvb_verdict(run: RunData, tr: Translator) -> str | None:
    """The plan-against-doing-nothing verdict in the report's language, from plan_check.json's
    figures (`served_gain`, the two sides, `conditions`, `gate_effect`); its English `verdict`
    when those figures are absent."""
    pvb = (run.plan_check or {}).get("plan_vs_baseline")
    if not isinstance(pvb, dict):
        return None
    sg = pvb.get("served_gain")
    if not isinstance(sg, dict) or sg.get("measured") is None:
        return pvb.get("verdict")
    gain, noise = float(sg["measured"]), float(sg.get("noise") or 0.0)
    kind = "more" if gain > noise else "fewer" if gain < -noise else "none"
    text = tr.t(f"pvb_verdict_{kind}", n=tr.num(abs(gain)), gain=_signed_num(gain, tr),
                noise=tr.num(noise), model=_signed_num(sg.get("model"), tr))

    def side(name: str, key: str) -> Any:
        return (((pvb.get(name) or {}).get(key)) or {}).get("measured")

    def share(name: str) -> float | None:
        served, lost = side(name, "served"), side(name, "lost")
        return None if served is None or lost is None else served / max(1, served + lost)

    def peak(name: str) -> Any:
        mvt = (pvb.get(name) or {}).get("model_vs_testbed") or {}
        return (mvt.get("peak_backlog") or {}).get("measured")

    text += "; " + tr.t("pvb_verdict_why", plan=tr.pct(share("plan")),
                        base=tr.pct(share("baseline")),
                        peak_plan=tr.num(peak("plan")), peak_base=tr.num(peak("baseline")))
    cond = pvb.get("conditions") or {}
    if cond.get("differ"):
        r, t = cond.get("issuer_stamps_per_second") or {}, cond.get("transit_s") or {}
        text += "; " + tr.t("pvb_verdict_machine", rate_plan=tr.num(r.get("plan"), 1),
                            rate_base=tr.num(r.get("baseline"), 1),
                            transit_plan=tr.num(t.get("plan"), 1),
                            transit_base=tr.num(t.get("baseline"), 1))
    ge = pvb.get("gate_effect") or {}
    if ge.get("gain") is not None:
        text += "; " + tr.t("pvb_verdict_gates", gain=_signed_num(ge["gain"], tr),
                            se=tr.num(2 * float(ge.get("gain_se") or 0.0)))
    nat = pvb.get("national") or {}
    if nat.get("slot_share") is not None and float(nat["slot_share"]) > 0.5:
        text += "; " + tr.t("pvb_verdict_national", gain=_signed_num(nat.get("gain"), tr),
                            share=tr.pct(float(nat["slot_share"])),
                            without=_signed_num(nat.get("gain_without_slots"), tr))
    return text


def _signed_num(x: Any, tr: Translator) -> str:
    sign = "+" if x is not None and x > 0 else "−" if x is not None and x < 0 else ""
    return "–" if x is None else sign + tr.num(abs(float(x)))


def _signed_pct(e: Any, tr: Translator) -> str:
    return "–" if e is None else ("+" if e > 0 else "") + tr.pct(e, 1)


PVB_KEYS = ("served", "lost", "duplicated", "p95_wait_s")


def plan_vs_baseline_rows(run: RunData, tr: Translator) -> list[dict[str, str]] | None:
    """Plan against doing nothing on the testbed (plan_check.json `plan_vs_baseline`): one row per
    measure, measured beside the model for the plan and for doing nothing; None without it.

    >>> from pathlib import Path
    >>> from reports.load import RunData
    >>> plan_vs_baseline_rows(RunData(run_dir=Path(".")), Translator("en")) is None
    True
    """
    pvb = (run.plan_check or {}).get("plan_vs_baseline")
    if not isinstance(pvb, dict):
        return None

    def cell(side: str, key: str, which: str) -> str:
        v = ((pvb.get(side) or {}).get(key) or {}).get(which)
        if v is None:
            return "–"
        return tr.seconds(float(v)) if key == "p95_wait_s" else tr.num(v)

    rows = []
    for key in PVB_KEYS:
        rows.append(
            {
                "key": key,
                "label": tr.t(f"pvb_{key}"),
                "plan_measured": cell("plan", key, "measured"),
                "plan_model": cell("plan", key, "model"),
                "baseline_measured": cell("baseline", key, "measured"),
                "baseline_model": cell("baseline", key, "model"),
            }
        )
    return rows
