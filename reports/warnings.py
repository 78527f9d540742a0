"""Warnings with remedies: what makes a figure in the report less trustworthy, and what to do.

    >>> from pathlib import Path
    >>> from reports.load import load_run
    >>> from reports.i18n import Translator
    >>> run = load_run(Path("tests/fixtures/runs/rehearsal"))
    >>> [w.key for w in find_warnings(run, Translator("en"))]
    ['dropped', 'thin_percentiles']
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from reports.i18n import Translator
from reports.load import RunData
from reports.screen import INTEGRITY_FAILURES

EXTRAPOLATION_FACTOR = 2.0   # a USL peak beyond this multiple of the largest measured load
CPU_SATURATED_PERCENT = 90.0
DROPPED_SHARE = 0.0          # any dropped arrival is worth a warning
THIN_QUANTILES = (0.99, 0.999)


@dataclass(frozen=True, kw_only=True)
class Warning_:
    """One warning: a key (stable, for tests), its level, what is wrong, and the remedy."""

    key: str
    level: str  # "bad" or "warn"
    text: str
    remedy: str


def find_warnings(run: RunData, tr: Translator) -> list[Warning_]:
    """Every warning that applies to `run`, most severe first."""
    out: list[Warning_] = []
    r = run.reconciliation
    if r is not None and (not r["ok"] or any(r.get(k) for k in INTEGRITY_FAILURES)):
        out.append(Warning_(key="reconciliation", level="bad", text=tr.t("warn_reconciliation"),
                            remedy=tr.t("fix_reconciliation")))
    out.extend(_generator_warnings(run, tr))
    out.extend(_usl_warnings(run, tr))
    out.extend(_plan_warnings(run, tr))
    out.extend(_thin_warnings(run, tr))
    return sorted(out, key=lambda w: w.level != "bad")


def _generator_warnings(run: RunData, tr: Translator) -> list[Warning_]:
    """The load generator's: a saturated CPU, and arrivals it dropped."""
    out: list[Warning_] = []
    s = run.summary
    if s is None:
        return out
    cpu = s.get("generator_cpu_percent_max")
    if cpu is not None and cpu >= CPU_SATURATED_PERCENT:
        out.append(Warning_(key="generator_cpu", level="bad",
                            text=tr.t("warn_generator_cpu", cpu=tr.num(cpu)),
                            remedy=tr.t("fix_generator_cpu")))
    if s["dropped"] > DROPPED_SHARE * s["scheduled"] and s["dropped"] > 0:
        share = tr.pct(s["dropped"] / max(1, s["scheduled"]), 1)
        out.append(Warning_(key="dropped", level="warn",
                            text=tr.t("warn_dropped", n=tr.num(s["dropped"]), share=share),
                            remedy=tr.t("fix_dropped")))
    return out


def _usl_warnings(run: RunData, tr: Translator) -> list[Warning_]:
    """A USL peak far beyond the largest measured load (an extrapolation)."""
    out: list[Warning_] = []
    for step, fit in ((run.capacity or {}).get("usl") or {}).items():
        peak = fit.get("peak_load")
        nmax = _max_measured(run, step)
        if peak is not None and nmax and math.isfinite(peak) and peak > EXTRAPOLATION_FACTOR * nmax:
            text = tr.t("warn_usl_extrapolated", step=tr.label("step", step), peak=tr.num(peak),
                        n=tr.num(nmax), f=tr.smart(peak / nmax))
            remedy = tr.t("fix_usl_extrapolated", n=tr.num(math.ceil(peak * 1.5)))
            out.append(Warning_(key="usl_extrapolated", level="warn", text=text, remedy=remedy))
    return out


def _thin_warnings(run: RunData, tr: Translator) -> list[Warning_]:
    """Steps with too few samples for their high percentiles (fewer than 10 / (1 - q))."""
    thin = []
    for step, clocks in run.hdr.items():
        h = clocks.get("service")
        if h is None:
            continue
        n = h.get_total_count()
        for q in THIN_QUANTILES:
            need = 10 / (1 - q)
            if n < need:
                thin.append((step, q, n, need))
                break
    if not thin:
        return []
    worst = ", ".join(
        f"{tr.label('step', step)} (n={tr.num(n)})" for step, _q, n, _need in thin[:8]
    )
    return [Warning_(key="thin_percentiles", level="warn",
                     text=tr.t("warn_thin", steps=worst), remedy=tr.t("fix_thin"))]


def _plan_warnings(run: RunData, tr: Translator) -> list[Warning_]:
    """The planner's: the assumption behind booked slots, and bands too wide to plan on."""
    p = run.plan or {}
    out = []
    u = p.get("if_slots_do_not_hold")
    if isinstance(u, dict) and p.get("outcome") and u.get("served") is not None:
        text = tr.t("warn_slots_assumption", served=tr.num(u["served"]),
                    paid=tr.num(u.get("lost_paid")), plan=tr.num(p["outcome"]["served"]),
                    base=tr.num(p["baseline"]["served"]))
        out.append(Warning_(key="slots_assumption", level="warn", text=text,
                            remedy=tr.t("fix_slots_assumption")))
    b, total = p.get("bands"), p.get("applicants_total")
    if isinstance(b, dict) and total and b["served"]["p95"] - b["served"]["p5"] > 0.1 * total:
        text = tr.t("warn_bands_wide", p5=tr.num(b["served"]["p5"]),
                    p95=tr.num(b["served"]["p95"]))
        out.append(Warning_(key="bands_wide", level="warn", text=text,
                            remedy=tr.t("fix_bands_wide")))
    return out


def _max_measured(run: RunData, step: str) -> float | None:
    if run.probe is not None:
        sel = np.array(run.probe["step"]) == step
        if sel.any():
            return float(run.probe["concurrency"][sel].max())
    return None
