"""The FAULTS table is the one place a fault is defined: validation, application, the state
served by GET /admin/faults and the OpenAPI schema of POST /admin/faults all follow it (in
process, real Resources)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import pytest

from testbed.capacity import Resource
from testbed.config import load_config
from testbed.faults import FAULTS, Faults
from testbed.validation import ApiError

ROOT = Path(__file__).resolve().parents[1]
# Each row carries its own evidence: a value it accepts, how it reads back, and one it refuses.
GOOD = {f.key: f.example for f in FAULTS}
SHOWN = {f.key: f.shown for f in FAULTS if f.shown is not None}
BAD = {f.key: f.refused for f in FAULTS}


async def _nothing(_job: object) -> bool:
    return True


def _target() -> tuple[Faults, Resource, Resource]:
    cfg = load_config()
    rng = random.Random(1)
    issuer = Resource("issuer", cfg.issuer, rng, on_start=_nothing, on_finish=_nothing)
    payments = Resource("payments", cfg.payments, rng, on_start=_nothing, on_finish=_nothing)
    return (
        Faults(
            issuer_failure_ratio=0.0,
            payment_failure_ratio=0.0,
            payment_duplicate_ratio=0.0,
            payment_reorder=False,
        ),
        issuer,
        payments,
    )


def test_every_row_accepts_its_example_and_refuses_its_counterexample() -> None:
    keys = [f.key for f in FAULTS]
    assert len(set(keys)) == len(keys)
    assert all(f.valid(f.example) and not f.valid(f.refused) for f in FAULTS)


@pytest.mark.parametrize("key", list(GOOD))
def test_each_fault_applies_and_reads_back(key: str) -> None:
    async def go() -> tuple[dict, dict]:
        faults, issuer, payments = _target()
        before = faults.state(issuer, payments)
        return before, faults.apply({key: GOOD[key]}, issuer, payments)

    before, after = asyncio.run(go())
    assert after[key] == SHOWN.get(key, GOOD[key]) != before[key]
    assert {k: v for k, v in after.items() if k != key} == {
        k: v for k, v in before.items() if k != key
    }


@pytest.mark.parametrize("key", list(BAD))
def test_each_bad_value_is_refused_naming_its_field_and_changes_nothing(key: str) -> None:
    async def go() -> tuple[dict, dict, ApiError]:
        faults, issuer, payments = _target()
        before = faults.state(issuer, payments)
        with pytest.raises(ApiError) as e:
            faults.apply({"issuer": "pause", key: BAD[key]}, issuer, payments)
        return before, faults.state(issuer, payments), e.value

    before, after, err = asyncio.run(go())
    assert err.field == key and key in str(err.detail) and after == before


def test_an_unknown_fault_is_refused() -> None:
    faults, issuer, payments = asyncio.run(asyncio.to_thread(_target))
    with pytest.raises(ApiError) as e:
        faults.validate({"issuer_meltdown": True})
    assert e.value.status == 422 and e.value.field == "issuer_meltdown"


def test_the_openapi_schema_of_post_faults_is_the_table() -> None:
    spec = json.loads((ROOT / "docs" / "openapi.json").read_text())
    body = spec["paths"]["/admin/faults"]["post"]["requestBody"]["content"]["application/json"][
        "schema"
    ]
    assert list(body["properties"]) == [f.key for f in FAULTS]
    assert all(body["properties"][f.key] == f.schema for f in FAULTS)
