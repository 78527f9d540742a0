"""Faults injected at run time through ``POST /admin/faults``.

The body may hold any subset of::

    {"issuer": "pause"|"resume", "issuer_slow_factor": 3.0, "issuer_failure_ratio": 0.1,
     "payments": "pause"|"resume", "payment_failure_ratio": 0.2,
     "payment_duplicate_ratio": 0.5, "payment_reorder": true, "answer_delay_s": 2.0,
     "answer_delay_on": ["stamp"]}

``answer_delay_s`` holds the answer to a committed write (order, pay, stamp) that long
before it is sent, like a slow gateway between the service and its clients: a client
whose timeout is shorter loses an answer to work that was done, the way applicants in
2024 paid twice. A retry with the same Idempotency-Key gets a replay; a fresh key
does the work again. ``answer_delay_on`` names the writes it holds (any of
``order``, ``pay``, ``stamp``; all three by default).

Everything is validated before anything changes, so a bad body changes nothing::

    >>> f = Faults(issuer_failure_ratio=0.0, payment_failure_ratio=0.0,
    ...            payment_duplicate_ratio=0.0, payment_reorder=False)
    >>> f.validate({"payment_failure_ratio": 0.25})
    {'payment_failure_ratio': 0.25}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from testbed.capacity import Resource
from testbed.validation import ApiError, invalid

RATIOS = ("issuer_failure_ratio", "payment_failure_ratio", "payment_duplicate_ratio")
ANSWER_DELAY_STEPS = ("order", "pay", "stamp")


@dataclass(kw_only=True)
class Faults:
    """The fault switches that are not a resource's own state (pause, slow factor)."""

    issuer_failure_ratio: float
    payment_failure_ratio: float
    payment_duplicate_ratio: float
    payment_reorder: bool
    answer_delay_s: float = 0.0
    answer_delay_on: tuple[str, ...] = ANSWER_DELAY_STEPS

    def validate(self, body: dict[str, Any]) -> dict[str, Any]:
        """Check a /admin/faults body; return it, or raise ApiError naming the field."""
        if not body:
            raise ApiError(422, "missing_field", "give at least one fault to set", field=None)
        for key, v in body.items():
            if key in ("issuer", "payments"):
                if v not in ("pause", "resume"):
                    raise invalid(key, f'{key} must be "pause" or "resume"')
            elif key == "issuer_slow_factor":
                if isinstance(v, bool) or not isinstance(v, int | float) or not 0.01 <= v <= 1000:
                    raise invalid(key, "issuer_slow_factor must be a number in [0.01, 1000]")
            elif key in RATIOS:
                if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 1:
                    raise invalid(key, f"{key} must be a number in [0, 1]")
            elif key == "payment_reorder":
                if not isinstance(v, bool):
                    raise invalid(key, "payment_reorder must be true or false")
            elif key == "answer_delay_s":
                if isinstance(v, bool) or not isinstance(v, int | float) or not 0 <= v <= 60:
                    raise invalid(key, "answer_delay_s must be a number of seconds in [0, 60]")
            elif key == "answer_delay_on":
                if not isinstance(v, list) or not all(isinstance(x, str) and x in ANSWER_DELAY_STEPS for x in v):
                    raise invalid(key, "answer_delay_on must be a list of: " + ", ".join(ANSWER_DELAY_STEPS))
            else:
                raise ApiError(422, "unknown_field", f"unknown fault {key!r}", field=key)
        return body

    def apply(self, body: dict[str, Any], issuer: Resource, payments: Resource) -> dict[str, Any]:
        """Validate and apply ``body``; return :meth:`state`."""
        self.validate(body)
        for key, v in body.items():
            if key in ("issuer", "payments"):
                res = issuer if key == "issuer" else payments
                res.pause() if v == "pause" else res.resume()
            elif key == "issuer_slow_factor":
                issuer.slow_factor = float(v)
            elif key in RATIOS:
                setattr(self, key, float(v))
            elif key == "payment_reorder":
                self.payment_reorder = v
            elif key == "answer_delay_s":
                self.answer_delay_s = float(v)
            elif key == "answer_delay_on":
                self.answer_delay_on = tuple(dict.fromkeys(v))
        return self.state(issuer, payments)

    def state(self, issuer: Resource, payments: Resource) -> dict[str, Any]:
        """The fault state returned by POST and GET /admin/faults."""
        return {"issuer": "paused" if issuer.paused else "running",
                "issuer_slow_factor": issuer.slow_factor,
                "issuer_failure_ratio": self.issuer_failure_ratio,
                "payments": "paused" if payments.paused else "running",
                "payment_failure_ratio": self.payment_failure_ratio,
                "payment_duplicate_ratio": self.payment_duplicate_ratio,
                "payment_reorder": self.payment_reorder,
                "answer_delay_s": self.answer_delay_s,
                "answer_delay_on": list(self.answer_delay_on)}
