"""Latency per journey step on two clocks, in HDR histograms that merge exactly.

* `service`: each request, from its actual send to its answer.
* `intended`: each step, from when the applicant meant to start it (the arrival's
  intended time for the first step, the previous step's end plus its planned think
  time after that) to the step's final outcome, retries and backoff included.
  A stalled service shows here as latency, not as fewer requests (coordinated
  omission corrected).

Histograms hold microseconds, 1 us .. 1 h, 3 significant digits, and travel as
base64 text (`HdrHistogram.encode()`); adding decoded histograms is exact::

    >>> a, b = StepLatency(), StepLatency()
    >>> a.record_service("stamp", 0.120); b.record_service("stamp", 0.480)
    >>> merged = StepLatency.decode(a.encode()); merged.merge(StepLatency.decode(b.encode()))
    >>> top = merged.percentile("stamp", "service", 100)
    >>> merged.service["stamp"].get_total_count(), round(top * 1000)
    (2, 480)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

CLOCKS = ("service", "intended")
LOWEST_US = 1
HIGHEST_US = 3600 * 1_000_000
DIGITS = 3


def new_histogram() -> HdrHistogram:
    """An empty histogram with the run directory's settings (us, 1 us .. 1 h, 3 digits)."""
    return HdrHistogram(LOWEST_US, HIGHEST_US, DIGITS)


def to_us(seconds: float) -> int:
    """Seconds -> whole microseconds clamped into the histogram's range.

    >>> to_us(0.0), to_us(1.5), to_us(1e9)
    (1, 1500000, 3600000000)
    """
    return int(min(HIGHEST_US, max(LOWEST_US, round(seconds * 1_000_000))))


VECTOR_MIN = 64  # record_many takes the numpy path from this many values on


def _record_vector(h: HdrHistogram, seconds: list[float]) -> bool:
    """Add `seconds` to `h` at once: the counts, total, min and max `record_value` gives one
    by one (its bucket arithmetic, in numpy); False (nothing done) for values it cannot take.

    >>> a, b = new_histogram(), new_histogram()
    >>> xs = [0.0, 1e-6, 0.0123456, 2.5, 7200.0] * 20
    >>> _record_vector(a, xs), [b.record_value(to_us(x)) for x in xs][0]
    (True, True)
    >>> a.encode() == b.encode(), (a.min_value, a.max_value) == (b.min_value, b.max_value)
    (True, True)
    """
    x = np.asarray(seconds, dtype=np.float64)
    if not np.isfinite(x).all():
        return False  # round() raises for these: the plain path reports them
    us = np.clip(np.rint(x * 1_000_000), LOWEST_US,
                 HIGHEST_US).astype(np.int64)  # = to_us, half even
    masked = us | h.sub_bucket_mask
    # bit length (exact < 2**53)
    pow2ceiling = np.frexp(masked.astype(np.float64))[1].astype(np.int64)
    bucket = pow2ceiling - h.unit_magnitude - (h.sub_bucket_half_count_magnitude + 1)
    sub = us >> (bucket + h.unit_magnitude)
    index = ((bucket + 1) << h.sub_bucket_half_count_magnitude) + sub - h.sub_bucket_half_count
    counts = np.ctypeslib.as_array(h.counts)
    n = min(h.counts_len, len(counts))
    if index.min() < 0 or index.max() >= n:
        return False
    counts[:n] += np.bincount(index, minlength=n).astype(counts.dtype)
    h.total_count += len(us)
    h.min_value = min(h.min_value, int(us.min()))
    h.max_value = max(h.max_value, int(us.max()))
    return True


class StepLatency:
    """One service and one intended histogram per step (created on first use)."""

    def __init__(self) -> None:
        self.service: dict[str, HdrHistogram] = {}
        self.intended: dict[str, HdrHistogram] = {}

    def _h(self, clock: str, step: str) -> HdrHistogram:
        table = self.service if clock == "service" else self.intended
        h = table.get(step)
        if h is None:
            h = table[step] = new_histogram()
        return h

    def record_service(self, step: str, seconds: float) -> None:
        """Record one request's latency from its actual send."""
        self._h("service", step).record_value(to_us(seconds))

    def record_intended(self, step: str, seconds: float) -> None:
        """Record one step's latency from its intended start."""
        self._h("intended", step).record_value(to_us(seconds))

    def record_many(self, clock: str, step: str, seconds: list[float]) -> None:
        """Record several latencies of `step` on `clock` (the same as one `record_*` call each).

        >>> a, b = StepLatency(), StepLatency()
        >>> a.record_many("service", "pay", [0.01, 0.2])
        >>> b.record_service("pay", 0.01); b.record_service("pay", 0.2)
        >>> a.encode() == b.encode()
        True
        """
        h = self._h(clock, step)
        if len(seconds) >= VECTOR_MIN and _record_vector(h, seconds):
            return
        record = h.record_value
        for x in seconds:
            record(to_us(x))

    def percentile(self, step: str, clock: str, pct: float) -> float | None:
        """The `pct` percentile of `step` on `clock`, in seconds (None if no data)."""
        h = (self.service if clock == "service" else self.intended).get(step)
        if h is None or h.get_total_count() == 0:
            return None
        return h.get_value_at_percentile(pct) / 1_000_000

    def percentiles(
        self, step: str, clock: str, pcts: tuple[float, ...]
    ) -> dict[float, float | None]:
        """{pct: seconds} of `step` on `clock` for several percentiles in one pass over the counts.

        The same values as `percentile` (HdrHistogram.get_value_at_percentile), with a
        cumulative sum in numpy instead of a Python loop per bucket::

            >>> s = StepLatency()
            >>> for x in (0.001, 0.002, 0.250, 1.5): s.record_service("stamp", x)
            >>> got = s.percentiles("stamp", "service", (50, 99, 99.9))
            >>> got == {p: s.percentile("stamp", "service", p) for p in (50, 99, 99.9)}
            True
        """
        h = (self.service if clock == "service" else self.intended).get(step)
        if h is None or h.get_total_count() == 0:
            return {p: None for p in pcts}
        n = min(h.counts_len, h.encoder.payload.counts_len)
        cum = np.cumsum(np.ctypeslib.as_array(h.counts)[:n], dtype=np.int64)
        out: dict[float, float | None] = {}
        for p in pcts:
            i = int(np.searchsorted(cum, h.get_target_count_at_percentile(p), side="left"))
            if i >= n:
                out[p] = 0.0
                continue
            v = h.get_value_from_index(i)
            out[p] = (
                h.get_highest_equivalent_value(v) if p else h.get_lowest_equivalent_value(v)
            ) / 1_000_000
        return out

    def count(self, step: str, clock: str = "service") -> int:
        """How many values `step` holds on `clock`."""
        h = (self.service if clock == "service" else self.intended).get(step)
        return 0 if h is None else int(h.get_total_count())

    def counts(self) -> dict[str, dict[str, int]]:
        """{clock: {step: values held}} of every histogram.

        >>> s = StepLatency(); s.record_service("login", 0.1); s.counts()
        {'service': {'login': 1}, 'intended': {}}
        """
        return {
            clock: {s: int(h.get_total_count()) for s, h in getattr(self, clock).items()}
            for clock in CLOCKS
        }

    def merge(self, other: StepLatency) -> None:
        """Add `other`'s histograms into this one (exact)."""
        for clock in CLOCKS:
            for step, h in getattr(other, clock).items():
                self._h(clock, step).add(h)

    def encode(self) -> dict[str, dict[str, str]]:
        """{clock: {step: base64 text}} for sending between processes or writing `.hdr` files."""
        return {
            clock: {s: h.encode().decode("ascii") for s, h in getattr(self, clock).items()}
            for clock in CLOCKS
        }

    @classmethod
    def decode(cls, data: dict[str, dict[str, Any]]) -> StepLatency:
        """The inverse of `encode`."""
        out = cls()
        for clock in CLOCKS:
            for step, text in data.get(clock, {}).items():
                raw = text.encode("ascii") if isinstance(text, str) else text
                out._h(clock, step).add(HdrHistogram.decode(raw))
        return out


def read_hdr(path: str) -> HdrHistogram:
    """Read a `latency/STEP.CLOCK.hdr` file of a run directory.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "x.hdr"); h = new_histogram(); _ = h.record_value(5)
    >>> _ = open(p, "wb").write(h.encode()); read_hdr(p).get_total_count()
    1
    """
    with open(path, "rb") as f:
        return HdrHistogram.decode(f.read().strip())
