"""Thresholds: pass/fail rules checked over a sliding window while the run goes.

Grammar (one rule per `--threshold`)::

    [STEP.][intended.]pNN  OP  VALUE(ms|s)     e.g. stamp.p95<2s, intended.p99<=30s, p50<300ms
    [STEP.]errors          OP  VALUE%          share of requests that failed
    dropped | abandoned | failed  OP VALUE%    share of arrivals with that outcome
    ... add ':abort' to stop the run at the first breach

Each second the rule is evaluated over the last `window_s` seconds; it needs at
least `min_count` samples there to count. It fails if any evaluation breaches;
`observed` is the worst value seen::

    >>> t = parse_threshold("stamp.p95<2s:abort")
    >>> (t.metric, t.step, t.clock, t.pct, t.op, t.limit, t.abort)
    ('percentile', 'stamp', 'service', 95.0, '<', 2.0, True)
    >>> parse_threshold("errors<1%").limit
    0.01
    >>> parse_threshold("stamp.p95 < soon")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --threshold = 'stamp.p95 < soon': write METRIC OP VALUE, e.g.
    'stamp.p95<2s', 'errors<1%', 'dropped<5%', optionally ':abort'
"""

from __future__ import annotations

import operator
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from floor.errors import FieldError
from floor.vocabulary import STEPS

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_FIX = ("write METRIC OP VALUE, e.g. 'stamp.p95<2s', 'errors<1%', 'dropped<5%', "
        "optionally ':abort'")
_RE = re.compile(r"^\s*(?P<metric>[a-z_.0-9]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>[0-9.]+)"
                 r"\s*(?P<unit>ms|s|%)?\s*(?P<abort>:abort)?\s*$")
OUTCOME_METRICS = ("dropped", "abandoned", "failed")


@dataclass(frozen=True, kw_only=True)
class Threshold:
    """One parsed rule. `limit` is in seconds for percentiles and a fraction for shares."""

    expr: str
    metric: str              # "percentile" | "errors" | "dropped" | "abandoned" | "failed"
    op: str
    limit: float
    step: str | None = None  # None = all steps
    clock: str = "service"
    pct: float = 0.0
    abort: bool = False


def parse_threshold(expr: str) -> Threshold:
    """Parse one `--threshold` rule (see the module docstring)."""
    m = _RE.match(expr)
    if not m:
        raise FieldError("--threshold", expr, _FIX)
    parts = m["metric"].split(".")
    value, unit = float(m["value"]), m["unit"]
    step = None
    if parts and parts[0] in STEPS:
        step = parts.pop(0)
    clock = "service"
    if parts and parts[0] == "intended":
        clock = "intended"
        parts.pop(0)
    if len(parts) != 1:
        raise FieldError("--threshold", expr, _FIX + f"; steps are {', '.join(STEPS)}")
    name = parts[0]
    common: dict[str, Any] = dict(expr=expr.strip(), op=m["op"], abort=bool(m["abort"]), step=step,
                                  clock=clock)
    if re.fullmatch(r"p\d+(\.\d+)?", name):
        if unit not in ("ms", "s"):
            raise FieldError("--threshold", expr,
                             "give a percentile limit in ms or s, e.g. 'stamp.p95<2s'")
        pct = float(name[1:])
        if not 0 < pct <= 100:
            raise FieldError("--threshold", expr, "percentiles go from p1 to p100")
        return Threshold(metric="percentile", pct=pct,
                         limit=value / 1000 if unit == "ms" else value, **common)
    if name == "errors" or (name in OUTCOME_METRICS and step is None and clock == "service"):
        if unit == "%":
            value /= 100
        elif unit is not None or value > 1:
            raise FieldError("--threshold", expr, f"give {name} as a percentage, e.g. '{name}<1%'")
        return Threshold(metric=name, limit=value, **common)
    raise FieldError("--threshold", expr, _FIX)


@dataclass
class _Second:
    latencies: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    outcomes: dict[str, int] = field(default_factory=dict)


@dataclass
class ThresholdResult:
    """The state of one rule: `ok` until a breach, `observed` the worst value seen."""

    threshold: Threshold
    ok: bool = True
    observed: float | None = None
    breached_at_s: float | None = None

    def as_dict(self, window_s: float) -> dict[str, Any]:
        """The row in summary.json."""
        return {"expr": self.threshold.expr, "ok": self.ok, "observed": self.observed,
                "window_s": window_s,
                "breached_at_s": self.breached_at_s}


class ThresholdWatch:
    """Feed samples with `request`, `step_done`, `outcome`; call `evaluate(now_s)` each second.

    >>> w = ThresholdWatch([parse_threshold("stamp.p95<1s")], window_s=10, min_count=2)
    >>> for s in (0.5, 3.0, 3.0): w.request("stamp", 0.0, s, ok=True)
    >>> w.evaluate(1.0)
    []
    >>> w.results[0].ok, w.results[0].observed
    (False, 3.0)
    """

    def __init__(self, thresholds: list[Threshold], *, window_s: float = 30.0,
                 min_count: int = 10) -> None:
        self.thresholds = thresholds
        self.window_s = window_s
        self.min_count = min_count
        self.results = [ThresholdResult(threshold=t) for t in thresholds]
        self._seconds: deque[tuple[int, _Second]] = deque()

    @property
    def active(self) -> bool:
        """True when there is a rule to check (a watch without rules takes no samples)."""
        return bool(self.thresholds)

    def _bucket(self, t: float) -> _Second:
        sec = int(t)
        if self._seconds and self._seconds[-1][0] == sec:
            return self._seconds[-1][1]
        for s, b in reversed(self._seconds):
            if s == sec:
                return b
            if s < sec:
                break
        b = _Second()
        self._seconds.append((sec, b))
        if len(self._seconds) > 1 and self._seconds[-2][0] > sec:  # keep order (rare: late sample)
            self._seconds = deque(sorted(self._seconds, key=lambda x: x[0]))
        return b

    def request(self, step: str, t: float, seconds: float, *, ok: bool) -> None:
        """One request of `step` answered at test second `t` after `seconds` (service clock)."""
        if not self.thresholds:
            return
        b = self._bucket(t)
        b.latencies.setdefault((step, "service"), []).append(seconds)
        b.requests[step] = b.requests.get(step, 0) + 1
        if not ok:
            b.errors[step] = b.errors.get(step, 0) + 1

    def step_done(self, step: str, t: float, seconds: float) -> None:
        """One step finished at test second `t`, `seconds` after its intended start."""
        if self.thresholds:
            self._bucket(t).latencies.setdefault((step, "intended"), []).append(seconds)

    def outcome(self, outcome: str, t: float) -> None:
        """One arrival ended (or was dropped) at test second `t`."""
        if self.thresholds:
            b = self._bucket(t)
            b.outcomes[outcome] = b.outcomes.get(outcome, 0) + 1

    def _value(self, th: Threshold, window: list[_Second]) -> float | None:
        if th.metric == "percentile":
            vals: list[float] = []
            for b in window:
                for (step, clock), xs in b.latencies.items():
                    if clock == th.clock and (th.step is None or step == th.step):
                        vals.extend(xs)
            return float(np.percentile(vals, th.pct)) if len(vals) >= self.min_count else None
        if th.metric == "errors":
            req = sum(n for b in window for s, n in b.requests.items() if th.step in (None, s))
            err = sum(n for b in window for s, n in b.errors.items() if th.step in (None, s))
            return err / req if req >= self.min_count else None
        total = sum(n for b in window for n in b.outcomes.values())
        hit = sum(b.outcomes.get(th.metric, 0) for b in window)
        return hit / total if total >= self.min_count else None

    def evaluate(self, now_s: float) -> list[ThresholdResult]:
        """Evaluate every rule over (now - window, now]; return the rules that ask to abort now."""
        while self._seconds and self._seconds[0][0] <= now_s - self.window_s - 1:
            self._seconds.popleft()
        window = [b for s, b in self._seconds if now_s - self.window_s <= s <= now_s]
        abort = []
        for r in self.results:
            v = self._value(r.threshold, window)
            if v is None:
                continue
            worse = r.observed is None or (v > r.observed if r.threshold.op in ("<", "<=")
                                           else v < r.observed)
            if worse:
                r.observed = round(v, 6)
            if not _OPS[r.threshold.op](v, r.threshold.limit):
                if r.ok:
                    r.breached_at_s = round(now_s, 3)
                r.ok = False
                if r.threshold.abort:
                    abort.append(r)
        return abort
