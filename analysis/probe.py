"""Capacity from a probe: probe.csv + probe_batches.csv -> the capacity.json dict.

A probe (`surgecast probe`) runs stepped closed-model load (concurrency 1, 2, 4, ...),
measures each level in short batches (sub-windows, `probe_batches.csv`) and writes one
row per level and journey step to probe.csv, plus `step = journey` (whole journeys) and
`step = stamps` (stamps the client saw **done** at the issuer, not accepted 202s).
This module only reads; the same functions judge the ladder while it runs.

* **per level**: stamps/s = stamps / measured seconds, with a batch-means confidence
  interval (Student t over the per-batch rates; `level_estimate`).
* **levelling** (`assess`): the gain from one level to the next is the ratio of their
  rates, with a delta-method standard error. `rising` when the ratio's lower bound is
  above 1 + `min_gain`; `falling` when its upper bound is below 1; `flat` when its
  upper bound is below 1 + `min_gain`; otherwise undecided (a final judgement then
  takes the point estimate).
* **sustainable stamps/s**: the rate at the level the probe held (the most measured
  seconds), with its interval (the held level's own batch variability), if throughput
  had levelled there (`levelled_at`): a step next to it is flat or falling, or stamps
  queued at the issuer there (`queued_levels`: the server's queue non-empty at 90 % of
  the level's batch edges; without the server's figures the client's median stamp wait
  is `queue_factor` = 3 times the least of any level) and the step into it is not a
  significant rise, its gain at most `climb_gain` (25 %). Otherwise nothing is called the peak: `levelled` is false,
  `stamps_per_second` null, and `note` says so. A level whose error ratio passes `max_error_ratio` stops the
  ladder; the level below it is then the capacity (`limited_by = "errors"`).
* **peak concurrency** per step and a **USL** fit per step (at least 4 levels), as
  before; the USL is description, never the capacity.

    >>> batches = [{"concurrency": n, "stamps": x, "duration_s": 1.0, "server_queue": 5 if n >= 4 else 0}
    ...            for n, xs in [(1, [5, 5, 6]), (2, [10, 9, 11]), (4, [15, 16, 16, 15, 16]),
    ...                          (8, [16, 15, 16, 16, 17, 15, 16, 16])] for x in xs]
    >>> cap = capacity_from_probe([], batches=batches, measured_at="2024-09-01T00:00:00Z")
    >>> cap["stamps_per_second"], cap["levelled"], cap["capacity_concurrency"]
    (15.875, True, 8)
    >>> cap["ci_low"] < 15.875 < cap["ci_high"]
    True
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scipy import stats

from analysis.usl import MIN_POINTS, fit_usl
from floor.errors import InputFileError
from floor.rundir.schema import BATCH_COLUMNS, PROBE_COLUMNS

_OPTIONAL_BATCH = ("server_stamps", "server_busy_share", "server_queue")
_NUMERIC = tuple(c for c in PROBE_COLUMNS if c != "step")
USL_KEYS = ("alpha", "beta", "gamma", "peak_load", "peak_throughput", "limit_throughput", "r2")
CONFIDENCE = 0.95
MIN_GAIN = 0.05
CLIMB_GAIN = 0.25
QUEUE_FACTOR = 3.0
QUEUED_SHARE = 0.9
OWN_DF = 8
__all__ = ["BATCH_COLUMNS", "PROBE_COLUMNS", "LevelEstimate", "assess", "capacity_from_probe", "dispersion", "level_estimate",
           "level_spread", "levelled_at", "plateau", "queued_levels", "robust_levels", "read_batches_csv", "read_probe_csv"]


def read_probe_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read probe.csv; errors name the line and column.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "probe.csv"
    >>> _ = p.write_text(",".join(PROBE_COLUMNS) + "\\n1,stamps,10,0,0,9.5,1,2,3,60\\n")
    >>> read_probe_csv(p)[0]["throughput_per_s"]
    9.5
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; give the probe.csv of a probe run")
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in PROBE_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise InputFileError(f"{p} line 1: missing column(s) {', '.join(missing)}; "
                                     f"probe.csv needs {', '.join(PROBE_COLUMNS)}")
            rows = []
            for raw in reader:
                rows.append(_parse_row(raw, f"{p} line {reader.line_num}"))
    except UnicodeDecodeError:
        raise InputFileError(f"{p}: not UTF-8 text; give the probe.csv of a probe run") from None
    except csv.Error as e:
        raise InputFileError(f"{p}: not valid CSV ({e}); give the probe.csv of a probe run") from None
    return rows


def _parse_row(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    row: dict[str, Any] = {"step": str(raw.get("step", "")).strip()}
    if not row["step"]:
        raise InputFileError(f"{where}, column step: empty; name the journey step, 'journey' or 'stamps'")
    for c in _NUMERIC:
        v = raw.get(c)
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputFileError(f"{where}, column {c}: {v!r} is not a number") from None
        if not math.isfinite(x) or x < 0:
            raise InputFileError(f"{where}, column {c}: {v!r} must be a finite number >= 0")
        row[c] = x
    if row["concurrency"] < 1 or not float(row["concurrency"]).is_integer():
        raise InputFileError(f"{where}, column concurrency: {raw.get('concurrency')!r} must be a whole number >= 1")
    row["concurrency"] = int(row["concurrency"])
    return row


@dataclass(frozen=True, kw_only=True)
class LevelEstimate:
    """Stamps/s at one concurrency level with its batch-means confidence interval.

    >>> level_estimate([{"concurrency": 4, "stamps": s, "duration_s": 1.0} for s in (15, 17, 16, 16)])
    LevelEstimate(concurrency=4, stamps_per_second=16.0, ci_low=14.7003, ci_high=17.2997, se=0.4084, batches=4, seconds=4.0, server_stamps_per_second=None, server_busy_share=None)
    """

    concurrency: int
    stamps_per_second: float
    ci_low: float | None
    ci_high: float | None
    se: float | None
    batches: int
    seconds: float
    server_stamps_per_second: float | None = None
    server_busy_share: float | None = None

    def half_width(self) -> float:
        """Half the interval relative to the rate (inf when unknown)."""
        if self.ci_low is None or self.ci_high is None or self.stamps_per_second <= 0:
            return math.inf
        return (self.ci_high - self.ci_low) / 2 / self.stamps_per_second


def dispersion(batches: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """(variance / mean of a batch's stamp count, degrees of freedom), pooled over levels.

    Each level's batches vary about that level's own mean; 1.0 (Poisson) is the
    saturated exponential issuer, below 1 a regular (constant) one. With no degrees
    of freedom yet, (1.0, 0): assume Poisson.

    >>> dispersion([{"concurrency": 4, "stamps": s, "duration_s": 1.0} for s in (10, 14, 12, 12)])
    (0.2222, 3)
    """
    grouped: dict[int, list[float]] = defaultdict(list)
    for b in batches:
        grouped[int(b["concurrency"])].append(float(b["stamps"]))
    ss = mean_w = 0.0
    df = 0
    for counts in grouped.values():
        k = len(counts)
        if k < 2:
            continue
        m = sum(counts) / k
        ss += sum((c - m) ** 2 for c in counts)
        mean_w += (k - 1) * m
        df += k - 1
    if df == 0 or mean_w <= 0:
        return 1.0, 0
    return round(ss / mean_w, 4), df


def level_estimate(batches: Sequence[Mapping[str, Any]], *, confidence: float = CONFIDENCE,
                   spread: tuple[float, int] | None = None) -> LevelEstimate:
    """The rate of one level's batches: total stamps / total seconds, with its interval.

    The count's variance is `spread` = (dispersion, df) × count (`dispersion()` of all
    the probe's batches, so a short ladder level borrows the variability the long
    hold measured); without it, this level's own batches give it (k ≥ 2, else no
    interval). The interval is ± t(df) standard errors (normal when df is 0), and is
    never narrower than one stamp over the measured seconds (a count's edge effect).
    """
    if not batches:
        raise InputFileError("no batches for this level; a level needs measured batches")
    seconds = float(sum(float(b["duration_s"]) for b in batches))
    count = float(sum(float(b["stamps"]) for b in batches))
    x = count / seconds if seconds > 0 else 0.0
    server = [b.get("server_stamps") for b in batches]
    srv = (sum(float(s) for s in server) / seconds) if seconds > 0 and all(
        s is not None and s != "" for s in server) else None
    k = len(batches)
    d, df = spread if spread is not None else dispersion(batches)
    lo = hi = se = None
    if seconds > 0 and (spread is not None or df > 0):
        q = float(stats.t.ppf(0.5 + confidence / 2, df)) if df > 0 else float(stats.norm.ppf(0.5 + confidence / 2))
        se = max(math.sqrt(d * max(count, 1.0)) / seconds, 1.0 / (seconds * q))
        lo, hi = max(0.0, x - q * se), x + q * se
    busy = [float(b["server_busy_share"]) for b in batches if b.get("server_busy_share") not in (None, "")]
    return LevelEstimate(concurrency=int(batches[0]["concurrency"]), stamps_per_second=round(x, 4),
                         ci_low=_rnd(lo), ci_high=_rnd(hi), se=_rnd(se), batches=k, seconds=round(seconds, 3),
                         server_stamps_per_second=_rnd(srv),
                         server_busy_share=_rnd(sum(busy) / len(busy)) if busy else None)


def _rnd(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def assess(below: LevelEstimate, above: LevelEstimate, *, min_gain: float = MIN_GAIN,
           confidence: float = CONFIDENCE, final: bool = False) -> str:
    """Judge the step from level `below` to level `above`.

    The gain is the ratio of the two rates, its standard error by the delta method.
    *rising*: significantly above 1 and above 1 + min_gain; *falling*: significantly
    below 1 and below 1 − min_gain; *flat*: significantly below 1 + min_gain.
    Otherwise, while more data may come, *undecided*; with `final`, *flat* if the
    ratio is at most 1 + min_gain (the doubling gained less than min_gain), else
    *inconclusive* (a gain that is not significant).

    >>> lo = LevelEstimate(concurrency=8, stamps_per_second=15.0, ci_low=14, ci_high=16, se=0.5, batches=4, seconds=4)
    >>> hi = LevelEstimate(concurrency=16, stamps_per_second=16.2, ci_low=14.2, ci_high=18.2, se=1.0, batches=4, seconds=4)
    >>> assess(lo, hi), assess(lo, hi, final=True)
    ('undecided', 'inconclusive')
    """
    x0, x1 = below.stamps_per_second, above.stamps_per_second
    if x0 <= 0:
        return "rising" if x1 > 0 else "flat"
    ratio = x1 / x0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    if below.se is None or above.se is None:
        spread = math.inf
    else:
        spread = z * ratio * math.hypot(above.se / max(x1, 1e-9), below.se / x0)
    if ratio - spread > 1 and ratio > 1 + min_gain:
        return "rising"
    if ratio + spread < 1 and ratio < 1 - min_gain:
        return "falling"
    if ratio + spread < 1 + min_gain:
        return "flat"
    if not final:
        return "undecided"
    return "flat" if ratio <= 1 + min_gain else "inconclusive"


def read_batches_csv(path: str | Path) -> list[dict[str, Any]]:
    """Read probe_batches.csv (docs/run-directory.md); errors name the line and column.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "probe_batches.csv"
    >>> _ = p.write_text(",".join(BATCH_COLUMNS) + "\\n4,ladder,1700000000.5,1.0,16,,40,0\\n")
    >>> read_batches_csv(p)[0]["stamps"], read_batches_csv(p)[0]["server_stamps"]
    (16.0, None)
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(f"{p}: no such file; give the probe_batches.csv of a probe run")
    try:
        with p.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in BATCH_COLUMNS if c not in (reader.fieldnames or []) and c not in _OPTIONAL_BATCH[1:]]
            if missing:
                raise InputFileError(f"{p} line 1: missing column(s) {', '.join(missing)}; "
                                     f"probe_batches.csv needs {', '.join(BATCH_COLUMNS)}")
            return [_parse_batch(raw, f"{p} line {reader.line_num}") for raw in reader]
    except UnicodeDecodeError:
        raise InputFileError(f"{p}: not UTF-8 text; give the probe_batches.csv of a probe run") from None
    except csv.Error as e:
        raise InputFileError(f"{p}: not valid CSV ({e}); give the probe_batches.csv of a probe run") from None


def _parse_batch(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    row: dict[str, Any] = {"phase": str(raw.get("phase", "")).strip()}
    if row["phase"] not in ("ladder", "hold"):
        raise InputFileError(f"{where}, column phase: {raw.get('phase')!r}; expected ladder or hold")
    for c in BATCH_COLUMNS[:1] + BATCH_COLUMNS[2:]:
        v = raw.get(c)
        if c in _OPTIONAL_BATCH and (v is None or str(v).strip() == ""):
            row[c] = None
            continue
        try:
            x = float(v)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise InputFileError(f"{where}, column {c}: {v!r} is not a number") from None
        if not math.isfinite(x) or x < 0 or (c == "duration_s" and x <= 0) or (c == "server_busy_share" and x > 1):
            raise InputFileError(f"{where}, column {c}: {v!r} must be a finite number "
                                 f"{'> 0' if c == 'duration_s' else 'in [0, 1]' if c == 'server_busy_share' else '>= 0'}")
        row[c] = x
    if row["concurrency"] < 1 or not row["concurrency"].is_integer():
        raise InputFileError(f"{where}, column concurrency: {raw.get('concurrency')!r} must be a whole number >= 1")
    row["concurrency"] = int(row["concurrency"])
    return row


def queued_levels(batches: Sequence[Mapping[str, Any]], waits_ms: Mapping[int, float], *,
                  queue_factor: float = QUEUE_FACTOR, share: float = QUEUED_SHARE) -> set[int]:
    """The levels where stamps queued at the issuer: saturation evidence, the ladder's and the analysis's.

    Where the target reported its issuer queue at the batch edges (`server_queue`), a level
    is queued when at least `share` of its edges found stamps waiting (a work-conserving
    issuer with a queue has every worker busy). Without the server's figures, the client's
    median stamp wait (accepted to seen done, `waits_ms`) must be `queue_factor` times the
    least of any level.

    >>> b = [{"concurrency": n, "server_queue": q} for n, q in [(8, 0), (8, 2), (16, 5), (16, 9)]]
    >>> sorted(queued_levels(b, {}))
    [16]
    >>> sorted(queued_levels([], {1: 500.0, 8: 520.0, 32: 1700.0}))
    [32]
    """
    edges: dict[int, list[float]] = defaultdict(list)
    for b in batches:
        q = b.get("server_queue")
        if q is not None and q != "":
            edges[int(b["concurrency"])].append(float(q))
    if edges:
        return {n for n, qs in edges.items() if sum(q > 0 for q in qs) >= share * len(qs)}
    least = min((w for w in waits_ms.values() if w > 0), default=0.0)
    return {n for n, w in waits_ms.items() if least > 0 and w / least >= queue_factor}


def robust_levels(batches: Sequence[Mapping[str, Any]]) -> set[int]:
    """Levels the server showed saturated at every batch edge: 2 or more stamps waiting, no worker idle.

    A significant rise *out of* such a level is a rise past saturation (still rising); a
    rise out of a level that merely queued at a few edges may be the knee being crossed.

    >>> sorted(robust_levels([{"concurrency": 4, "server_queue": 1}, {"concurrency": 16, "server_queue": 6}]))
    [16]
    """
    out: dict[int, bool] = {}
    for b in batches:
        q = b.get("server_queue")
        if q is None or q == "":
            continue
        busy = b.get("server_busy_share")
        ok = float(q) >= 2 and (busy is None or busy == "" or float(busy) >= 1.0)
        n = int(b["concurrency"])
        out[n] = out.get(n, True) and ok
    return {n for n, ok in out.items() if ok}


def level_spread(level: Sequence[Mapping[str, Any]], every: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """The dispersion a level's interval uses: its own when it has `OWN_DF` degrees of freedom
    (a held level: its own variability, not the ladder's), else pooled over all the batches.

    >>> own = [{"concurrency": 4, "stamps": s, "duration_s": 1.0} for s in (10, 14) * 5]
    >>> level_spread(own, own)
    (0.3704, 9)
    """
    own = dispersion(level)
    return own if own[1] >= OWN_DF else dispersion(every)


def plateau(estimates: Sequence[LevelEstimate], *, bad: Iterable[int] = (), queued: Iterable[int] = (),
            robust: Iterable[int] = (), by_server: bool = False, min_gain: float = MIN_GAIN, confidence: float = CONFIDENCE, climb_gain: float = CLIMB_GAIN) -> tuple[LevelEstimate | None, str | None, list[dict[str, Any]]]:
    """(capacity level, limited_by, steps), judged on all the data.

    `estimates` in ascending concurrency. The capacity is the level the probe held
    (the most measured seconds), below the first level whose error ratio is too
    high (`bad`, limited_by "errors"). It stands only if throughput had levelled
    there (`levelled_at`: a flat or falling step next to it, or stamps queued there,
    `queued`, and no significant rise into it; limited_by "throughput"); otherwise
    the capacity is None and limited_by None: still rising, no level is the peak.
    """
    bad = set(bad)
    good = []
    for e in estimates:
        if e.concurrency in bad:
            break
        good.append(e)
    errors = len(good) < len(estimates)
    steps: list[dict[str, Any]] = []
    for lo, hi in zip(good, good[1:], strict=False):
        steps.append({"from": lo.concurrency, "to": hi.concurrency,
                      "verdict": assess(lo, hi, min_gain=min_gain, confidence=confidence, final=True),
                      "significant": assess(lo, hi, min_gain=min_gain, confidence=confidence),
                      "gain": round(hi.stamps_per_second / lo.stamps_per_second - 1, 4)
                      if lo.stamps_per_second > 0 else None})
    if not good:
        return None, None, steps
    held = max(good, key=lambda e: (e.seconds, e.concurrency))  # ties: the deeper level
    i = good.index(held)
    if errors and i == len(good) - 1:
        return held, "errors", steps
    into = steps[i - 1] if i > 0 else {"verdict": "rising", "gain": None}
    out = steps[i] if i < len(steps) else {"verdict": None, "gain": None}
    queued = set(queued)
    if not levelled_at(held, into, out, held.concurrency in queued, climb_gain, by_server=by_server,
                       below_queued=i > 0 and good[i - 1].concurrency in set(robust)):
        return None, None, steps
    return held, "throughput", steps


def levelled_at(held: LevelEstimate, into: Mapping[str, Any], out: Mapping[str, Any], queued: bool,
                climb_gain: float = CLIMB_GAIN, *, below_queued: bool = False, by_server: bool = False) -> bool:
    """Had throughput levelled at the held level? The evidence, with confidence:

    * the step into it is *flat* with confidence (`significant`: the gain's upper bound below
      min_gain; a final point estimate under min_gain is not enough), or the step out of it
      flat or *falling* with confidence, or
    * stamps queued at the issuer there (saturation: a work-conserving issuer with a queue
      has every worker busy) as the server reported it (`by_server`), and the step into it
      is no significant rise from a level the server showed robustly saturated
      (`below_queued`, `robust_levels`: two saturated levels cannot differ; a rise from
      below the knee is the knee crossed), or
    * stamps queued there by the client's waits only (weaker: a slow client waits too), and
      the step into it is not a significant rise, its gain at most `climb_gain`.

    A significant rise into the held level (still rising), or no evidence either way (e.g.
    a hold that fell below a short lucky level while its queue ran dry: a disturbed hold,
    or a client that could not drive the target) is not levelled: nothing is then called
    the peak.

    >>> e = LevelEstimate(concurrency=64, stamps_per_second=16.0, ci_low=15, ci_high=17, se=0.5, batches=30, seconds=30)
    >>> step = {"verdict": "inconclusive", "significant": "undecided", "gain": 0.08}
    >>> levelled_at(e, step, {"verdict": None}, queued=True), levelled_at(e, step, {"verdict": None}, queued=False)
    (True, False)
    """
    sig_in, sig_out = into.get("significant", into["verdict"]), out.get("significant", out["verdict"])
    if sig_in == "rising":
        # still rising, unless it rose from below the knee into a level the server showed saturated:
        # that is the knee crossed, not a rise past it (a saturated issuer cannot do more)
        return by_server and queued and not below_queued
    if sig_in == "flat" or sig_out in ("flat", "falling"):
        return True
    if by_server and queued:
        return True
    return queued and into["gain"] is not None and into["gain"] <= climb_gain


def _usl_entry(levels: list[int], xs: list[float]) -> dict[str, Any]:
    pairs = [(n, x) for n, x in zip(levels, xs, strict=True) if x > 0]
    distinct = len({n for n, _ in pairs})
    if distinct < MIN_POINTS:
        return {**dict.fromkeys(USL_KEYS), "points": distinct,
                "note": f"{distinct} usable concurrency level(s); the USL fit needs at least {MIN_POINTS}: not fitted"}
    try:
        fit = fit_usl([n for n, _ in pairs], [x for _, x in pairs])
    except InputFileError as e:  # levels the fit cannot use (e.g. out of range): say why, keep the rest
        return {**dict.fromkeys(USL_KEYS), "points": distinct, "note": f"not fitted: {e}"}
    out: dict[str, Any] = {k: getattr(fit, k) for k in USL_KEYS}
    out.update({"alpha_se": fit.alpha_se, "beta_se": fit.beta_se, "gamma_se": fit.gamma_se, "points": distinct})
    if fit.peak_load is not None and fit.peak_load > max(levels):
        out["note"] = f"peak load {fit.peak_load:.0f} is beyond the highest measured level {max(levels)}: extrapolated"
    return out


def capacity_from_probe(rows: Iterable[Mapping[str, Any]], *, batches: Iterable[Mapping[str, Any]] | None = None,
                        max_error_ratio: float = 0.01, min_gain: float = MIN_GAIN,
                        climb_gain: float = CLIMB_GAIN, queue_factor: float = QUEUE_FACTOR,
                        confidence: float = CONFIDENCE, configured: Mapping[str, Any] | None = None,
                        configured_stamps_per_second: float | None = None,
                        measured_at: str | None = None) -> dict[str, Any]:
    """The capacity.json dict from probe rows (PROBE_COLUMNS) and, better, their batches (BATCH_COLUMNS).

    Without batches the levels carry no interval and levelling is judged on point
    estimates only (`note` says so).

    >>> capacity_from_probe([])["stamps_per_second"] is None
    True
    """
    parsed = [r if isinstance(r.get("concurrency"), int) and isinstance(r.get("throughput_per_s"), float)
              else _parse_row(r, f"row {i + 1}") for i, r in enumerate(rows)]
    by_step: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for r in parsed:
        by_step[r["step"]][r["concurrency"]] = r  # a repeated level: the last row wins
    peak, usl, excluded = _per_step(by_step, max_error_ratio)
    batch_rows = [b if isinstance(b.get("concurrency"), int) else _parse_batch(b, f"batch {i + 1}")
                  for i, b in enumerate(batches or [])]
    estimates = _estimates(batch_rows, by_step.get("stamps", {}), confidence)
    waits = {n: r["p50_ms"] for n, r in by_step.get("stamps", {}).items() if r.get("p50_ms")}
    queued = sorted(queued_levels(batch_rows, waits, queue_factor=queue_factor))
    by_server = any(b.get("server_queue") not in (None, "") for b in batch_rows)
    cap, limited_by, steps = plateau(estimates, bad=excluded.get("stamps", []), queued=queued, by_server=by_server,
                                     robust=robust_levels(batch_rows),
                                     min_gain=min_gain,
                                     confidence=confidence, climb_gain=climb_gain)
    if cap is not None:
        peak["stamps"] = cap.concurrency
    top = estimates[-1] if estimates else None
    out: dict[str, Any] = {
        "stamps_per_second": cap.stamps_per_second if cap else None,
        "ci_low": cap.ci_low if cap else None,
        "ci_high": cap.ci_high if cap else None,
        "confidence": confidence,
        "levelled": limited_by == "throughput",
        "limited_by": limited_by,
        "capacity_concurrency": cap.concurrency if cap else None,
        "configured_stamps_per_second": configured_stamps_per_second,
        "error_vs_configured": _rel(cap.stamps_per_second, configured_stamps_per_second) if cap else None,
        "server_stamps_per_second": cap.server_stamps_per_second if cap else None,
        "client_vs_server": _rel(cap.stamps_per_second, cap.server_stamps_per_second) if cap else None,
        "server_busy_share": cap.server_busy_share if cap else None,
        "highest_measured": _level_dict(top) if top else None,
        "levels": [_level_dict(e) for e in estimates],
        "steps": steps,
        "min_gain": min_gain,
        "climb_gain": climb_gain,
        "queued_levels": sorted(queued),
        "peak_concurrency": peak,
        "usl": usl,
        "configured": dict(configured) if configured is not None else None,
        "measured_at": measured_at or datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "max_error_ratio": max_error_ratio,
        "excluded_levels": excluded,
        "note": _note(by_step, estimates, cap, limited_by, top, bool(batch_rows), max_error_ratio),
    }
    return out


def _per_step(by_step: Mapping[str, Mapping[int, Mapping[str, Any]]], max_error_ratio: float
              ) -> tuple[dict[str, int | None], dict[str, dict[str, Any]], dict[str, list[int]]]:
    peak: dict[str, int | None] = {}
    usl: dict[str, dict[str, Any]] = {}
    excluded: dict[str, list[int]] = {}
    for step, levels in sorted(by_step.items()):
        ok = sorted(n for n, r in levels.items() if r["error_ratio"] <= max_error_ratio)
        bad = sorted(n for n in levels if n not in ok)
        if bad:
            excluded[step] = bad
        if not ok:
            peak[step] = None
            usl[step] = {**dict.fromkeys(USL_KEYS), "points": 0,
                         "note": f"every level has error ratio above {max_error_ratio:g}: not fitted"}
            continue
        xs = [levels[n]["throughput_per_s"] for n in ok]
        peak[step] = ok[xs.index(max(xs))]
        usl[step] = _usl_entry(ok, xs)
    return peak, usl, excluded


def _estimates(batches: list[dict[str, Any]], stamps: Mapping[int, Mapping[str, Any]],
               confidence: float) -> list[LevelEstimate]:
    if batches:
        grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for b in batches:
            grouped[b["concurrency"]].append(b)
        return [level_estimate(grouped[n], confidence=confidence, spread=level_spread(grouped[n], batches))
                for n in sorted(grouped)]
    return [LevelEstimate(concurrency=n, stamps_per_second=float(r["throughput_per_s"]), ci_low=None, ci_high=None,
                          se=None, batches=0, seconds=float(r["duration_s"])) for n, r in sorted(stamps.items())]


def _level_dict(e: LevelEstimate) -> dict[str, Any]:
    return {"concurrency": e.concurrency, "stamps_per_second": e.stamps_per_second, "ci_low": e.ci_low,
            "ci_high": e.ci_high, "batches": e.batches, "seconds": e.seconds,
            "server_stamps_per_second": e.server_stamps_per_second, "server_busy_share": e.server_busy_share}


def _rel(x: float | None, ref: float | None) -> float | None:
    return round(x / ref - 1, 4) if x is not None and ref else None


def _note(by_step: Mapping[str, Any], estimates: list[LevelEstimate], cap: LevelEstimate | None,
          limited_by: str | None, top: LevelEstimate | None, has_batches: bool, max_error_ratio: float) -> str | None:
    held = max(estimates, key=lambda e: (e.seconds, e.concurrency)) if estimates else None
    if not by_step.get("stamps") and not estimates:
        return "probe.csv has no 'stamps' rows: no sustainable stamp rate"
    stamp_rows = (by_step.get("stamps") or {}).values()
    if cap is None and stamp_rows and all(r["error_ratio"] > max_error_ratio for r in stamp_rows):
        return f"every stamps level has error ratio above {max_error_ratio:g}: no sustainable rate"
    rising_top = len(estimates) < 2 or assess(estimates[-2], estimates[-1]) == "rising"
    if cap is None and held is not None and held is not top and not rising_top:
        return (f"throughput had not levelled with confidence at the held level (concurrency {held.concurrency}, "
                f"{held.stamps_per_second:g} stamps/s): no flat step next to it and stamps did not queue at the "
                f"issuer at {QUEUED_SHARE:.0%} of its batch edges, so no level is called the peak; "
                f"raise --budget or look for another bottleneck (the client, the machine)")
    if cap is None and top is not None:
        return (f"not levelled by the top level (concurrency {top.concurrency}): throughput was still rising "
                f"({top.stamps_per_second:g} stamps/s there), so no level is called the peak; the capacity is "
                f"above that; raise --max-concurrency or --budget")
    parts = []
    if limited_by == "errors" and cap is not None:
        parts.append(f"the level above concurrency {cap.concurrency} failed more than {max_error_ratio:g} of its "
                     f"requests: the capacity is the rate below the errors")
    if not has_batches:
        parts.append("no probe_batches.csv: levels carry no confidence interval; levelling judged on point estimates")
    return "; ".join(parts) or None
