"""The profile's parameters by their [ranges] names, and the issuer capacity from a probe.

`PARAMS` maps a dotted name (`demand.pull`, `outages.capacity_factor`,
`capacity.stamps_per_second`, ...) to how it is set on a profile; `apply_params` sets a few.
`capacity_from_json` reads a probe's capacity.json into a `CapacityModel` (the forecast's
`capacity=`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from floor.errors import FieldError
from scenarios.profile_model import Profile

__all__ = ["PARAMS", "apply_params", "CapacityModel", "capacity_from_json"]


def _set(obj: Any, **kw: Any) -> Any:
    return dataclasses.replace(obj, **kw)


def _outages(p: Profile, v: float) -> Profile:
    return _set(
        p,
        outages=tuple(
            _set(o, capacity_factor=v) if o.resource == "issuer" else o for o in p.outages
        ),
    )


def _need(p: Profile, part: str) -> Any:
    obj = getattr(p, part)
    if obj is None:
        raise FieldError(part, None, f"this profile has no [{part}] table to set a parameter in")
    return obj


# dotted parameter name -> how to set it on a profile
PARAMS: dict[str, Any] = {
    "behaviour.patience_minutes": lambda p, v: _set(
        p, behaviour=_set(p.behaviour, patience_minutes=v)
    ),
    "behaviour.retry_after_minutes": lambda p, v: _set(
        p, behaviour=_set(p.behaviour, retry_after_minutes=v)
    ),
    "behaviour.persistence_days": lambda p, v: _set(
        p, behaviour=_set(p.behaviour, persistence_days=v)
    ),
    "behaviour.return_boost": lambda p, v: _set(p, behaviour=_set(p.behaviour, return_boost=v)),
    "capacity.stamps_per_second": lambda p, v: _set(
        p, capacity=_set(p.capacity, stamps_per_second=v)
    ),
    "capacity.payments_per_second": lambda p, v: _set(
        p, capacity=_set(p.capacity, payments_per_second=v)
    ),
    "outages.capacity_factor": _outages,
    "bypass.share": lambda p, v: _set(p, bypass=_set(_need(p, "bypass"), share=v)),
    "demand.conversion": lambda p, v: _set(p, demand=_set(_need(p, "demand"), conversion=v)),
    "demand.pull": lambda p, v: _set(p, demand=_set(_need(p, "demand"), pull=v)),
    "demand.retarget_share": lambda p, v: _set(
        p, demand=_set(_need(p, "demand"), retarget_share=v)
    ),
}


def apply_params(profile: Profile, params: Mapping[str, float]) -> Profile:
    """A copy of `profile` with the named parameters set (names as in [ranges]).

    >>> from scenarios.profile import load_profile
    >>> apply_params(load_profile("casn2024"), {"demand.pull": 0.5}).demand.pull
    0.5
    """
    for name, v in params.items():
        if name not in PARAMS:
            raise FieldError("params", name, f"choose from: {', '.join(PARAMS)}")
        profile = PARAMS[name](profile, float(v))
    return profile


@dataclass(frozen=True, kw_only=True)
class CapacityModel:
    """Issuer capacity from a probe's capacity.json: sustainable stamps/s and the USL of
    `stamps`."""

    stamps_per_second: float
    alpha: float | None = None
    beta: float | None = None
    peak_concurrency: float | None = None


def capacity_from_json(data: Any, source: str = "capacity.json") -> CapacityModel:
    """Read stamps_per_second and the `stamps` USL fit from a probe's capacity.json dict.

    >>> usl = {"stamps": {"alpha": 0.03, "beta": 0.0005, "peak_load": 44.0}}
    >>> capacity_from_json({"stamps_per_second": 12.0, "usl": usl}).peak_concurrency
    44.0
    """
    from floor.errors import InputFileError

    v = data.get("stamps_per_second") if isinstance(data, dict) else None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v <= 0:
        raise InputFileError(
            f"--capacity {source}: stamps_per_second = {v!r}; the probe found no sustainable rate, "
            "give --stamps-per-second instead"
        )
    usl = (data.get("usl") or {}).get("stamps") or {}
    a, b, n = usl.get("alpha"), usl.get("beta"), usl.get("peak_load")
    ok = all(
        isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
        for x in (a, b, n)
    )
    if not ok:
        return CapacityModel(stamps_per_second=float(v))
    return CapacityModel(
        stamps_per_second=float(v),
        alpha=float(a),
        beta=float(b),
        peak_concurrency=max(1.0, float(n)),
    )
