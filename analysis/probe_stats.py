"""The probe's statistics: a level's rate with its interval, the step between two levels, where
stamps queue, and the plateau (the level held as the sustainable capacity).

Batch means: each level is measured in short batches, and a level's interval comes from the
spread of its batch counts (pooled over levels when a level has few batches: `dispersion`,
`level_spread`). `assess` calls a step rising, flat, falling, undecided or inconclusive;
`plateau` picks the level held once throughput has levelled, and never the top of a rise.
A batch whose closing edge came late (`stalled`: the client itself did not run, as on an
overloaded machine) says nothing about the target and is left out of all of them (`steady`).
analysis.probe builds capacity.json from them; the running probe judges its ladder by them.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats

from floor.errors import InputFileError

CONFIDENCE = 0.95
MIN_GAIN = 0.05
CLIMB_GAIN = 0.25
QUEUE_FACTOR = 3.0
QUEUED_SHARE = 0.9
OWN_DF = 8
STALL_SHARE = 0.25


@dataclass(frozen=True, kw_only=True)
class LevelEstimate:
    """Stamps/s at one concurrency level with its batch-means confidence interval.

    >>> level_estimate([{"concurrency": 4, "stamps": s, "duration_s": 1.0}
    ...                 for s in (15, 17, 16, 16)])  # doctest: +NORMALIZE_WHITESPACE
    LevelEstimate(concurrency=4, stamps_per_second=16.0, ci_low=14.7003, ci_high=17.2997,
                  se=0.4084, batches=4, seconds=4.0, server_stamps_per_second=None,
                  server_busy_share=None)
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


def stalled(late_s: float | None, planned_s: float) -> bool:
    """A batch the client stalled in: its closing edge came more than `STALL_SHARE` of the
    planned batch late.

    A probe's batch is a timed sleep of its client; it ends late when the client's event
    loop did not run (another process had the CPU, the machine swapped). While it did not
    run it sent nothing, so the target's queue drained and its rate fell for a reason that is
    not the target's: the batch's rate and its closing queue are the client's, not the
    target's. (With the target's own figures, an edge is also late when the target was slow
    to answer the reading taken there; the edge's moment is then too uncertain to split
    stamps between batches, and the batch is left out all the same.) `late_s` None (a file
    written before the probe measured it): not stalled.

    >>> stalled(0.08, 1.0), stalled(1.5, 1.0), stalled(None, 1.0)
    (False, True, False)
    """
    return late_s is not None and late_s > STALL_SHARE * planned_s


def steady(batches: Iterable[Mapping[str, Any]], planned_s: float | None = None
           ) -> list[Mapping[str, Any]]:
    """The batches that speak for the target: neither one the client stalled in (`stalled`)
    nor the one after it at the same level (the recovery: the target's queue drained while
    the client slept, and its workers idle until the resumed applicants reach it again).

    `planned_s` is the batch length the probe planned; None (a file): each batch's duration
    less its lateness.

    >>> b = [{"concurrency": 8, "duration_s": d, "late_s": d - 1.0} for d in (1.004, 2.5, 1.003,
    ...      1.002)]
    >>> [x["duration_s"] for x in steady(b)]
    [1.004, 1.002]
    """
    out: list[Mapping[str, Any]] = []
    after: int | None = None    # the level of the batch that just stalled
    for b in batches:
        late = _late(b)
        planned = planned_s if planned_s is not None else float(b["duration_s"]) - (late or 0.0)
        n = int(b["concurrency"])
        if stalled(late, planned):
            after = n
            continue
        if after != n:
            out.append(b)
        after = None
    return out


def _late(b: Mapping[str, Any]) -> float | None:
    v = b.get("late_s")
    return None if v is None or v == "" else float(v)


def dispersion(batches: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """(variance / mean of a batch's stamp count, degrees of freedom), pooled over levels.

    Each level's batches vary about that level's own rate; 1.0 (Poisson) is the
    saturated exponential issuer, below 1 a regular (constant) one. With no degrees
    of freedom yet, (1.0, 0): assume Poisson.

    A batch is weighed by its exposure: its count is compared with the level's rate times its
    own seconds, and its squared deviation scaled to the level's mean batch (a count over d
    seconds varies as d does). Batches of equal length give the plain variance over mean; a
    batch cut short (the probe counts its last batch only as far as the client has seen it)
    reads as the level, not as a dip::

        >>> row = lambda s, d=1.0: {"concurrency": 4, "stamps": s, "duration_s": d}
        >>> dispersion([row(s) for s in (10, 14, 12, 12)])
        (0.2222, 3)
        >>> dispersion([row(12) for _ in range(4)] + [row(6, 0.5)])
        (0.0, 4)
    """
    grouped: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for b in batches:
        d = float(b.get("duration_s") or 0.0)
        if d > 0:
            grouped[int(b["concurrency"])].append((float(b["stamps"]), d))
    ss = mean_w = 0.0
    df = 0
    for level in grouped.values():
        k = len(level)
        if k < 2:
            continue
        seconds = sum(d for _, d in level)
        rate, mean_d = sum(c for c, _ in level) / seconds, seconds / k
        ss += sum((c - rate * d) ** 2 * mean_d / d for c, d in level)
        mean_w += (k - 1) * rate * mean_d
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
        tail = 0.5 + confidence / 2
        q = float(stats.t.ppf(tail, df)) if df > 0 else float(stats.norm.ppf(tail))
        se = max(math.sqrt(d * max(count, 1.0)) / seconds, 1.0 / (seconds * q))
        lo, hi = max(0.0, x - q * se), x + q * se
    busy = [float(b["server_busy_share"]) for b in batches
            if b.get("server_busy_share") not in (None, "")]
    return LevelEstimate(concurrency=int(batches[0]["concurrency"]), stamps_per_second=round(x, 4),
                         ci_low=_rnd(lo), ci_high=_rnd(hi), se=_rnd(se), batches=k,
                         seconds=round(seconds, 3),
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

    >>> lo = LevelEstimate(concurrency=8, stamps_per_second=15.0, ci_low=14, ci_high=16, se=0.5,
    ...                    batches=4, seconds=4)
    >>> hi = LevelEstimate(concurrency=16, stamps_per_second=16.2, ci_low=14.2, ci_high=18.2,
    ...                    se=1.0, batches=4, seconds=4)
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


def queued_levels(batches: Sequence[Mapping[str, Any]], waits_ms: Mapping[int, float], *,
                  queue_factor: float = QUEUE_FACTOR, share: float = QUEUED_SHARE) -> set[int]:
    """The levels where stamps queued at the issuer: saturation evidence, for ladder and analysis.

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
    """Levels the server showed saturated at every batch edge: 2+ stamps waiting, no worker idle.

    A significant rise *out of* such a level is a rise past saturation (still rising); a
    rise out of a level that merely queued at a few edges may be the knee being crossed.

    >>> sorted(robust_levels([{"concurrency": 4, "server_queue": 1},
    ...                       {"concurrency": 16, "server_queue": 6}]))
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


def level_spread(level: Sequence[Mapping[str, Any]],
                 every: Sequence[Mapping[str, Any]]) -> tuple[float, int]:
    """The dispersion a level's interval uses: its own when it has `OWN_DF` degrees of freedom
    (a held level: its own variability, not the ladder's), else pooled over all the batches.

    >>> own = [{"concurrency": 4, "stamps": s, "duration_s": 1.0} for s in (10, 14) * 5]
    >>> level_spread(own, own)
    (0.3704, 9)
    """
    own = dispersion(level)
    return own if own[1] >= OWN_DF else dispersion(every)


def plateau(estimates: Sequence[LevelEstimate], *, bad: Iterable[int] = (),
            queued: Iterable[int] = (), robust: Iterable[int] = (), by_server: bool = False,
            min_gain: float = MIN_GAIN, confidence: float = CONFIDENCE,
            climb_gain: float = CLIMB_GAIN
            ) -> tuple[LevelEstimate | None, str | None, list[dict[str, Any]]]:
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
                      "verdict": assess(lo, hi, min_gain=min_gain, confidence=confidence,
                                        final=True),
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
                climb_gain: float = CLIMB_GAIN, *, below_queued: bool = False,
                by_server: bool = False) -> bool:
    """Had throughput levelled at the held level? The evidence, with confidence:

    * the step into it is *flat* with confidence (`significant`: the gain's upper bound below
      min_gain; a final point estimate under min_gain is not enough), or the step out of it
      flat or *falling* with confidence, or
    * stamps queued at the issuer there (saturation: a work-conserving issuer with a queue
      has every worker busy) as the server reported it (`by_server`), and the step into it
      is no significant rise of more than `climb_gain` from a level the server showed
      robustly saturated (`below_queued`, `robust_levels`: two saturated levels cannot
      differ but by the machine's drift; a rise from below the knee is the knee crossed), or
    * stamps queued there by the client's waits only (weaker: a slow client waits too), and
      the step into it is not a significant rise, its gain at most `climb_gain`.

    A significant rise into the held level (still rising), or no evidence either way (e.g.
    a hold that fell below a short lucky level while its queue ran dry: a disturbed hold,
    or a client that could not drive the target) is not levelled: nothing is then called
    the peak.

    >>> e = LevelEstimate(concurrency=64, stamps_per_second=16.0, ci_low=15, ci_high=17, se=0.5,
    ...                   batches=30, seconds=30)
    >>> step = {"verdict": "inconclusive", "significant": "undecided", "gain": 0.08}
    >>> none = {"verdict": None}
    >>> levelled_at(e, step, none, queued=True), levelled_at(e, step, none, queued=False)
    (True, False)
    """
    sig_in = into.get("significant", into["verdict"])
    sig_out = out.get("significant", out["verdict"])
    if sig_in == "rising":
        # still rising, unless it rose into a level the server showed saturated from below the
        # knee (the knee crossed, not a rise past it: a saturated issuer cannot do more), or from
        # a level the server showed saturated too by at most climb_gain: two saturated levels of
        # a work-conserving issuer differ only by the machine's drift over a short ladder level
        # (CI: 14.4 at 16 for 3 s, 16.3 at 32 held, on a 16/s testbed beside four test workers)
        gain = into["gain"]
        return by_server and queued and (
            not below_queued or (gain is not None and gain <= climb_gain))
    if sig_in == "flat" or sig_out in ("flat", "falling"):
        return True
    if by_server and queued:
        return True
    return queued and into["gain"] is not None and into["gain"] <= climb_gain
