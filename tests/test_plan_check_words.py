"""The plan-check lines in the report's language: the gates that were not set as planned and the
plan-against-doing-nothing verdict are words of the translation files, not analysis/ English."""

from __future__ import annotations

from pathlib import Path

import pytest

from reports.i18n import Translator
from reports.load import RunData
from reports.tables import plan_check_lines, pvb_verdict

ENGLISH = ("served", "doing nothing", "applicants", "machine", "stamps", "noise", " was ", " plan ",
           "not sampled", "backlog")


def _pvb(gain: int, noise: float, differ: bool) -> dict:
    def side(served: int, lost: int, peak: float) -> dict:
        return {"served": {"measured": served, "model": served + 2.0},
                "lost": {"measured": lost, "model": lost},
                "duplicated": {"measured": 0, "model": 0},
                "p95_wait_s": {"measured": 600.0, "model": 590.0},
                "model_vs_testbed": {"peak_backlog": {"measured": peak, "model": peak}}}
    return {"plan": side(100 + gain, 50, 40.0), "baseline": side(100, 50, 60.0),
            "served_gain": {"measured": gain, "model": gain + 1.5, "noise": noise},
            "conditions": {"differ": differ,
                           "issuer_stamps_per_second": {"plan": 15.0, "baseline": 13.3},
                           "transit_s": {"plan": 4.1, "baseline": 7.2}},
            "gate_effect": {"gain": 3.0, "gain_se": 2.0},
            "verdict": "the plan served 30 more applicants than doing nothing (analysis/ English)"}


def _run(pvb: dict | None = None, gates: list | None = None) -> RunData:
    checks = [{"name": "gates", "ok": False, "measured": gates or [], "detail": "English detail"}]
    return RunData(run_dir=Path("."),
                   plan_check={"checks": checks, "follows": False, "plan_vs_baseline": pvb})


@pytest.mark.parametrize(("gain", "kind"), [(30, "more"), (-30, "FEWER"), (2, "no measurable")])
def test_the_verdict_is_in_the_reports_language(gain: int, kind: str) -> None:
    run = _run(_pvb(gain, 10.0, differ=True))
    en, idn = pvb_verdict(run, Translator("en")), pvb_verdict(run, Translator("id"))
    assert en is not None and idn is not None
    assert kind in en and "machine load" in en and "gates alone give +3 served (±4)" in en, en
    assert "issuer 15.0 vs 13.3 stamps/s" in en and "peak issuer backlog 40 and 60 stamps" in en, en
    assert not [w for w in ENGLISH if w in idn], idn   # the English `verdict` here would be red
    assert "15,0 vs 13,3" in idn   # Indonesian decimals


def test_an_old_plan_check_without_figures_keeps_its_english_verdict() -> None:
    pvb = {"verdict": "older words"}
    assert pvb_verdict(_run(pvb), Translator("id")) == "older words"
    assert pvb_verdict(_run(None), Translator("id")) is None


def test_gates_not_set_as_planned_are_named_in_the_reports_language() -> None:
    gates = [{"stage": "s1", "gate": "stamping", "plan": "closed", "measured": "open", "ok": False},
             {"stage": "s2", "gate": "ordering", "plan": "open", "measured": None, "ok": False},
             {"stage": "s3", "gate": "registration", "plan": "open", "measured": "open",
              "ok": True}]
    lines = {lang: plan_check_lines(_run(gates=gates), Translator(lang)) for lang in ("en", "id")}
    en, idn = lines["en"][2][0], lines["id"][2][0]
    assert "s1: stamping was open, plan closed; s2: ordering was not sampled, plan open" in en, en
    assert "s3" not in en and "English detail" not in en
    assert "s1: stamping ternyata open, rencana closed" in idn and "tidak tercatat" in idn, idn
    assert not [w for w in ENGLISH if w in idn], idn
