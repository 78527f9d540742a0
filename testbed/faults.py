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

Each fault is one row of ``FAULTS`` (its key, JSON schema, check, how it is applied and read back);
validation, application, the state served by GET /admin/faults and the OpenAPI schema of
POST /admin/faults all iterate the table, so a new fault is one row here (and its effect where it
acts).

Everything is validated before anything changes, so a bad body changes nothing::

    >>> f = Faults(issuer_failure_ratio=0.0, payment_failure_ratio=0.0,
    ...            payment_duplicate_ratio=0.0, payment_reorder=False)
    >>> f.validate({"payment_failure_ratio": 0.25})
    {'payment_failure_ratio': 0.25}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from testbed.capacity import Resource
from testbed.validation import ApiError, invalid

ANSWER_DELAY_STEPS = ("order", "pay", "stamp")


class Target(NamedTuple):
    """What a fault acts on: the switches below and the two resources."""

    faults: Faults
    issuer: Resource
    payments: Resource


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One fault of ``POST /admin/faults``: its body key, JSON schema, check and effect.

    ``valid(value)`` says whether a body value is acceptable (``fix`` is the message if not);
    ``apply(target, value)`` sets it; ``state(target)`` reads it back for GET /admin/faults.
    ``example`` is a value it accepts (read back as ``shown``, or as itself when that is None)
    and ``refused`` one it refuses: the row's own evidence, which tests/test_faults_table.py
    plays for every row, so a new fault is tested without touching the test.
    """

    key: str
    schema: dict[str, Any]
    valid: Callable[[Any], bool]
    fix: str
    apply: Callable[[Target, Any], None]
    state: Callable[[Target], Any]
    example: Any
    refused: Any
    shown: Any = None


def _number(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: not isinstance(v, bool) and isinstance(v, int | float) and lo <= v <= hi


def _pause(resource: str, refused: Any) -> Fault:
    def apply(t: Target, v: str) -> None:
        res: Resource = getattr(t, resource)
        res.pause() if v == "pause" else res.resume()

    return Fault(
        key=resource,
        schema={"type": "string", "enum": ["pause", "resume"]},
        valid=lambda v: v in ("pause", "resume"),
        fix=f'{resource} must be "pause" or "resume"',
        apply=apply,
        state=lambda t: "paused" if getattr(t, resource).paused else "running",
        example="pause",
        shown="paused",
        refused=refused,
    )


def _ratio(key: str, example: float, refused: Any) -> Fault:
    return Fault(
        key=key,
        schema={"type": "number"},
        valid=_number(0, 1),
        fix=f"{key} must be a number in [0, 1]",
        apply=lambda t, v: setattr(t.faults, key, float(v)),
        state=lambda t: getattr(t.faults, key),
        example=example,
        refused=refused,
    )


def _set_slow(t: Target, v: float) -> None:
    t.issuer.slow_factor = float(v)


FAULTS: tuple[Fault, ...] = (
    _pause("issuer", refused="stop"),
    Fault(
        key="issuer_slow_factor",
        schema={"type": "number"},
        valid=_number(0.01, 1000),
        fix="issuer_slow_factor must be a number in [0.01, 1000]",
        apply=_set_slow,
        state=lambda t: t.issuer.slow_factor,
        example=3.0,
        refused=0.0,
    ),
    _ratio("issuer_failure_ratio", 0.25, refused=1.5),
    _pause("payments", refused=True),
    _ratio("payment_failure_ratio", 0.5, refused="x"),
    _ratio("payment_duplicate_ratio", 0.125, refused=-0.1),
    Fault(
        key="payment_reorder",
        schema={"type": "boolean"},
        valid=lambda v: isinstance(v, bool),
        fix="payment_reorder must be true or false",
        apply=lambda t, v: setattr(t.faults, "payment_reorder", v),
        state=lambda t: t.faults.payment_reorder,
        example=True,
        refused=1,
    ),
    Fault(
        key="answer_delay_s",
        schema={"type": "number"},
        valid=_number(0, 60),
        fix="answer_delay_s must be a number of seconds in [0, 60]",
        apply=lambda t, v: setattr(t.faults, "answer_delay_s", float(v)),
        state=lambda t: t.faults.answer_delay_s,
        example=2.5,
        refused=61,
    ),
    Fault(
        key="answer_delay_on",
        schema={"type": "array", "items": {"type": "string", "enum": list(ANSWER_DELAY_STEPS)}},
        valid=lambda v: (
            isinstance(v, list) and all(isinstance(x, str) and x in ANSWER_DELAY_STEPS for x in v)
        ),
        fix="answer_delay_on must be a list of: " + ", ".join(ANSWER_DELAY_STEPS),
        apply=lambda t, v: setattr(t.faults, "answer_delay_on", tuple(dict.fromkeys(v))),
        state=lambda t: list(t.faults.answer_delay_on),
        example=["stamp", "stamp"],
        shown=["stamp"],
        refused=["login"],
    ),
)
"""Every fault, in the order GET /admin/faults and the OpenAPI schema list them."""

BY_KEY: dict[str, Fault] = {f.key: f for f in FAULTS}


def request_schema() -> dict[str, Any]:
    """The JSON schema of a POST /admin/faults body (the OpenAPI description uses it).

    >>> list(request_schema()["properties"])[:2]
    ['issuer', 'issuer_slow_factor']
    """
    return {"type": "object", "properties": {f.key: f.schema for f in FAULTS}}


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
            fault = BY_KEY.get(key)
            if fault is None:
                raise ApiError(422, "unknown_field", f"unknown fault {key!r}", field=key)
            if not fault.valid(v):
                raise invalid(key, fault.fix)
        return body

    def apply(self, body: dict[str, Any], issuer: Resource, payments: Resource) -> dict[str, Any]:
        """Validate and apply ``body``; return :meth:`state`."""
        self.validate(body)
        target = Target(self, issuer, payments)
        for key, v in body.items():
            BY_KEY[key].apply(target, v)
        return self.state(issuer, payments)

    def state(self, issuer: Resource, payments: Resource) -> dict[str, Any]:
        """The fault state returned by POST and GET /admin/faults."""
        target = Target(self, issuer, payments)
        return {f.key: f.state(target) for f in FAULTS}
