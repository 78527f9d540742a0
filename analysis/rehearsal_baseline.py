"""Plan against doing nothing on the testbed (`plan_vs_baseline` of plan_check.json): the plan's
rehearsal and the all-gates-open one (same arrivals) measured beside the model, the gates alone
by the model on one rehearsal's inputs, and whether the two ran under the same machine load::

    pvb = plan_vs_baseline(Path("runs/demo"), Path("runs/demo/baseline"))
    pvb["served_gain"], pvb["verdict"]
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from analysis.rehearsal_compare import compare, outcomes
from analysis.rehearsal_inputs import _json
from analysis.rehearsal_model import SIM_TRIALS, sim_inputs
from floor.rundir import schema as rs

__all__ = ["gate_effect", "national_gain", "plan_vs_baseline"]


def gate_effect(run_dir: Path) -> dict[str, Any]:
    """The plan's stamping gates on their own, by the model: the simulation of one rehearsal's
    measured inputs (front end, issuer rate) with the gates it applied and with every gate open,
    so the machine's load is the same on both sides. Its first uploads stay as measured (the
    gate already admitted them, a little later than an open one would); those the gate never
    let in try theirs on the open side::

        gate_effect(Path("runs/demo"))["gain"]
    """
    from dataclasses import replace

    from analysis.rehearsal_sim import trials

    si = sim_inputs(run_dir)
    seed = int(_json(run_dir / "run.json").get("seed") or 0)
    # open: those whose first upload the gate never let in try theirs
    # (intended + their journey's transit)
    gated = trials(si, n=SIM_TRIALS, seed=seed)
    opened = trials(replace(si, gates=[], unmeasured_enter=True), n=SIM_TRIALS, seed=seed)
    diff = gated["served_mean"] - opened["served_mean"]
    sd = math.hypot(gated["served_sd"], opened["served_sd"]) / math.sqrt(SIM_TRIALS)
    return {
        "served_with_gates": round(gated["served_mean"], 1),
        "served_all_open": round(opened["served_mean"], 1),
        "gain": round(diff, 1),
        "gain_se": round(sd, 1),
        "peak_backlog_with_gates": round(gated["peak_mean"], 1),
        "peak_backlog_all_open": round(opened["peak_mean"], 1),
        "means": "model only: the plan rehearsal's own measured inputs with its stamping gates "
        "and with all open "
        "(the same machine load on both sides); gain_se is the standard error of the mean gain",
    }


def _conditions(plan: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """Did the two rehearsals run on the same machine conditions? Their issuers' rates (server's
    count)
    and their front ends (intended start -> first upload) side by side."""

    def pick(m: dict[str, Any]) -> tuple[float | None, float]:
        return (m.get("capacity") or {}).get("rehearsal_stamps_per_second"), m["assumptions"][
            "transit_s"
        ]

    (rp, tp), (rb, tb) = pick(plan), pick(base)
    rate_diff = None if not (rp and rb) else round(rp / rb - 1.0, 3)
    transit_diff = None if not tb else round(tp / tb - 1.0, 3)
    differ = (rate_diff is not None and abs(rate_diff) > 0.05) or (
        transit_diff is not None and abs(transit_diff) > 0.2
    )
    return {
        "issuer_stamps_per_second": {"plan": rp, "baseline": rb, "difference": rate_diff},
        "transit_s": {"plan": tp, "baseline": tb, "difference": transit_diff},
        "differ": bool(differ),
        "means": "a shared machine: the testbed's issuer and front end slow with the CPU load of "
        "the moment; "
        "when they differ (issuer > 5%, front end > 20%) the measured difference mixes the plan "
        "with "
        "the machine, and gate_effect (model, same inputs) isolates the plan's gates",
    }


def plan_vs_baseline(plan_dir: Path, baseline_dir: Path) -> dict[str, Any]:
    """`plan_vs_baseline` of plan_check.json: per key {measured, model} for the plan's rehearsal
    and the all-gates-open one (same arrivals), and a verdict in words."""
    sides = {"plan": outcomes(plan_dir), "baseline": outcomes(baseline_dir)}
    out: dict[str, Any] = {}
    for side, o in sides.items():
        out[side] = {
            k: {"measured": o["measured"][k], "model": o["model"][k]} for k in o["measured"]
        }
        out[side]["model_vs_testbed"] = compare(plan_dir if side == "plan" else baseline_dir)
    gain = out["plan"]["served"]["measured"] - out["baseline"]["served"]["measured"]
    gain_m = out["plan"]["served"]["model"] - out["baseline"]["served"]["model"]
    # two standard deviations of the difference of two single rehearsals (the model's trial spread)
    noise = 2 * math.hypot(sides["plan"]["repeat_served_sd"], sides["baseline"]["repeat_served_sd"])
    out["served_gain"] = {
        "measured": gain,
        "model": round(gain_m, 1),
        "noise": round(noise, 1),
        "noise_means": "2 sd of the difference of two single rehearsals (model trials with "
        "fresh service times)",
    }
    out["conditions"] = _conditions(
        out["plan"]["model_vs_testbed"], out["baseline"]["model_vs_testbed"]
    )
    out["gate_effect"] = gate_effect(plan_dir)
    out["national"] = national_gain(plan_dir)
    out["verdict"] = _verdict(out, gain, gain_m, noise)
    return out


def national_gain(run_dir: Path) -> dict[str, Any] | None:
    """Where the plan's gain at national scale comes from (plan.json): served more than doing
    nothing, and the same if a booked stamping slot did not stop the persistence clock. A
    rehearsal plays no persistence (no one returns within it) and the testbed's rate gate holds
    no slot, so the part of the gain that rests on the slots cannot show on the testbed.

    >>> import tempfile, json; d = Path(tempfile.mkdtemp())
    >>> _ = (d / "plan.json").write_text(json.dumps({"beats_baseline_by": 100, "baseline": {
    ...     "served": 900}, "if_slots_do_not_hold": {"served": 910}}))
    >>> national_gain(d)["gain_without_slots"], national_gain(d)["slot_share"]
    (10, 0.9)
    """
    path = run_dir / rs.PLAN
    plan = _json(path) if path.is_file() else {}
    gain, base = plan.get("beats_baseline_by"), (plan.get("baseline") or {}).get("served")
    loose = (plan.get("if_slots_do_not_hold") or {}).get("served")
    if gain is None or base is None:
        return None
    without = None if loose is None else int(loose) - int(base)
    return {
        "gain": int(gain),
        "gain_without_slots": without,
        "slot_share": None if without is None or not gain else round(1 - without / gain, 3),
        "means": "the plan's served applicants over doing nothing at national scale (plan.json "
        "beats_baseline_by), and the same if a booked slot did not stop the persistence clock "
        "(if_slots_do_not_hold): the slots' part needs returns over days, which a rehearsal "
        "does not play",
    }


def _verdict(out: dict[str, Any], gain: int, gain_m: float, noise: float) -> str:
    """Plan against doing nothing in words: the measured gain against the noise, the shares
    served and the peak backlogs, the machine conditions and the gates alone by the model."""
    share = {
        s: out[s]["served"]["measured"]
        / max(1, out[s]["served"]["measured"] + out[s]["lost"]["measured"])
        for s in ("plan", "baseline")
    }
    peak = {s: out[s]["model_vs_testbed"]["peak_backlog"]["measured"] for s in ("plan", "baseline")}
    why = (
        f"served {share['plan']:.0%} with the plan and {share['baseline']:.0%} doing nothing; "
        f"peak issuer backlog {peak['plan']:.0f} and {peak['baseline']:.0f} stamps"
    )
    if gain > noise:
        verdict = (
            f"the plan served {gain} more applicants than doing nothing on the testbed "
            f"(model {gain_m:+.0f}); {why}"
        )
    elif gain < -noise:
        verdict = (
            f"the plan served {-gain} FEWER applicants than doing nothing on the testbed (model "
            f"{gain_m:+.0f}); {why}"
        )
    else:
        verdict = (
            f"no measurable benefit from the plan on the testbed: {gain:+d} served against doing "
            f"nothing, within the noise of +/-{noise:.0f} (model {gain_m:+.0f}); {why}"
        )
    if out["conditions"]["differ"]:
        verdict += (
            "; the two rehearsals ran under different machine load ("
            + _cond_words(out["conditions"])
            + "), so part of the measured difference is the machine"
        )
    ge = out["gate_effect"]
    verdict += (
        f"; by the model on the plan rehearsal's own inputs the gates alone give "
        f"{ge['gain']:+.0f} served (+/-{2 * ge['gain_se']:.0f})"
    )
    nat = out.get("national")
    if nat and nat.get("slot_share") is not None and nat["slot_share"] > 0.5:
        verdict += (
            f"; at national scale the plan serves {nat['gain']:+,} more, but "
            f"{nat['slot_share']:.0%} of that rests on booked slots stopping the persistence "
            f"clock ({nat['gain_without_slots']:+,} without), returns over days that a "
            "rehearsal does not play, so the testbed cannot show it"
        )
    return verdict


def _cond_words(c: dict[str, Any]) -> str:
    """The conditions block in words.

    >>> _cond_words({"issuer_stamps_per_second": {"plan": 15.0, "baseline": 13.3},
    ...              "transit_s": {"plan": 4.1, "baseline": 7.2}})
    'issuer 15.0 vs 13.3 stamps/s, first upload 4.1 vs 7.2 s after the intended start'
    """
    r, t = c["issuer_stamps_per_second"], c["transit_s"]
    rate = (
        "issuer n/a"
        if not (r["plan"] and r["baseline"])
        else f"issuer {r['plan']:.1f} vs {r['baseline']:.1f} stamps/s"
    )
    return f"{rate}, first upload {t['plan']:.1f} vs {t['baseline']:.1f} s after the intended start"
