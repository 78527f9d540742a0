"""The shared vocabulary: the names every room uses for gates, resources, journeys, steps, outcomes.

One definition, so a gate or a step is spelled once (the testbed serves them, scenarios send them,
analysis and reports read them back from the run directory)::

    >>> GateMode("rate") is GateMode.RATE, GATE_MODES
    (True, ('open', 'closed', 'rate'))
    >>> "ordering" in GATES, STEPS[0], OUTCOMES[-1]
    (True, 'register', 'dropped')
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["GATES", "GATE_MODES", "GateMode", "JOURNEYS", "OUTCOMES", "RESOURCES", "STEPS"]

GATES: tuple[str, ...] = ("registration", "ordering", "stamping")
"""The admission gates, in the order an applicant meets them."""


class GateMode(StrEnum):
    """How a gate admits: everyone, no one, or a token bucket of rate_per_s and burst.

    >>> [m.value for m in GateMode], GateMode.CLOSED == "closed"
    (['open', 'closed', 'rate'], True)
    """

    OPEN = "open"
    CLOSED = "closed"
    RATE = "rate"


GATE_MODES: tuple[str, ...] = tuple(m.value for m in GateMode)
"""The gate modes as the files and the API spell them."""

RESOURCES: tuple[str, ...] = ("issuer", "payments")
"""The capacity-limited resources of the service (serial-number issuer, payment gateway)."""

JOURNEYS: tuple[str, ...] = ("new_applicant", "returning_applicant", "stamp_only")
"""The applicant journeys a profile may mix."""

STEPS: tuple[str, ...] = ("register", "login", "order", "pay", "wait_quota", "stamp",
                          "poll_stamp", "download")
"""The steps of a journey, in order (the names of the request groups in every run file)."""

OUTCOMES: tuple[str, ...] = ("completed", "abandoned", "failed", "dropped")
"""How an applicant's journey ended."""
