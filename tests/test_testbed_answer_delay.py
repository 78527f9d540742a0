"""The answer_delay_s fault: work is committed, its answer arrives after the client's timeout.

This is how applicants paid twice in 2024. The test shows both sides on a real server: a
retry with the same Idempotency-Key is a replay (one order), a retry with a fresh key makes
a second order, so the drills' control run (fresh keys) has something to catch.
"""

from __future__ import annotations

import secrets

import pytest
from testbed_fixtures import FAST, Client, admin, register_and_login

from testbed.process import TestbedServer


def _order(url: str, token: str, key: str, timeout: float) -> int | None:
    """POST one order; the status, or None when the answer did not come within ``timeout``."""
    c = Client(url, timeout=timeout)
    try:
        return c.post("/v1/orders", json_body={"quantity": 1}, token=token,
                      headers={"Idempotency-Key": key}).status
    except TimeoutError:
        return None


def _orders(c: Client, tb: TestbedServer, account: str) -> int:
    records = admin(c, tb, "GET", "/admin/records").json
    return sum(1 for o in records["orders"] if o["account_id"] == account)


def test_lost_answers_replay_with_a_key_and_duplicate_without() -> None:
    with TestbedServer(extra_args=FAST) as tb:
        c = Client(tb.url)
        token, account, _ = register_and_login(c)
        r = admin(c, tb, "POST", "/admin/faults", {"answer_delay_s": 1.0})
        assert r.status == 200 and r.json["answer_delay_s"] == 1.0
        key = secrets.token_hex(8)
        assert _order(tb.url, token, key, timeout=0.3) is None       # the answer was lost ...
        assert _orders(c, tb, account) == 1                          # ... but the order exists
        assert _order(tb.url, token, key, timeout=0.3) is None       # same key again, lost again
        assert _orders(c, tb, account) == 1                          # a replay: still one order
        assert _order(tb.url, token, secrets.token_hex(8), timeout=0.3) is None
        assert _orders(c, tb, account) == 2                          # a fresh key did it again
        admin(c, tb, "POST", "/admin/faults", {"answer_delay_on": ["stamp"]})
        assert _order(tb.url, token, key, timeout=5) == 201          # orders answered at once again
        admin(
            c,
            tb,
            "POST",
            "/admin/faults",
            {"answer_delay_s": 0, "answer_delay_on": ["order", "pay", "stamp"]},
        )
        assert _order(tb.url, token, key, timeout=5) == 201  # replayed, answered at once


@pytest.mark.parametrize(
    "body",
    [
        {"answer_delay_s": -1},
        {"answer_delay_s": 61},
        {"answer_delay_s": True},
        {"answer_delay_s": "2"},
        {"answer_delay_s": None},
        {"answer_delay_on": "stamp"},
        {"answer_delay_on": ["download"]},
    ],
)
def test_answer_delay_is_validated(body: dict) -> None:
    from testbed.faults import Faults

    f = Faults(
        issuer_failure_ratio=0,
        payment_failure_ratio=0,
        payment_duplicate_ratio=0,
        payment_reorder=False,
    )
    from testbed.validation import ApiError

    with pytest.raises(ApiError) as e:
        f.validate(body)
    assert e.value.field == next(iter(body))
