"""Fast checks of the scenario parts that need no server: arrivals, histograms, thresholds,
identities, reconciliation on doctored data, the admin schedule."""

from __future__ import annotations

import copy
import random

import numpy as np
import pytest

from floor.errors import FieldError
from scenarios.arrivals import bucket_counts, constant_schedule, profile_schedule
from scenarios.curve import ArrivalCurve
from scenarios.identities import make_identity
from scenarios.latency import StepLatency
from scenarios.profile import load_profile
from scenarios.reconcile import reconcile
from scenarios.summary import exit_code_for
from scenarios.target import AdminClient, check_host, is_loopback
from scenarios.thresholds import ThresholdWatch, parse_threshold
from testbed.nik import nik_problem

pytestmark = pytest.mark.timeout(60)


def test_constant_arrivals_match_rate_within_poisson_noise():
    s = constant_schedule(rate=40.0, duration_s=120.0)
    for seed in range(5):
        t = s.draw(np.random.default_rng(seed))
        expected = s.expected()
        assert abs(len(t) - expected) < 4 * expected ** 0.5
        _, counts = bucket_counts(t, 120.0, 10.0)
        assert np.all(np.abs(counts - 400) < 4 * 400 ** 0.5 + 1)


def test_profile_arrivals_follow_the_curve_and_max_rate_clips():
    curve = ArrivalCurve(load_profile("flash-crowd"))
    s = profile_schedule(curve, calendar_origin_s=0, compress=86400 / 60, scale=0.01, duration_s=60)
    assert s.expected() == pytest.approx(2000, rel=1e-3)          # 1% of 200,000
    t = s.draw(np.random.default_rng(1))
    assert abs(len(t) - 2000) < 4 * 2000 ** 0.5
    # The announcement hour (10:00..11:00, 4..5 h after 06:00) is busier than the hour before.
    hour = 60 / 24
    spike = ((t >= 4 * hour) & (t < 5 * hour)).sum()
    before = ((t >= 3 * hour) & (t < 4 * hour)).sum()
    assert spike > 4 * before
    clipped = profile_schedule(
        curve, calendar_origin_s=0, compress=86400 / 60, scale=0.01, duration_s=60, max_rate=10.0
    )
    assert clipped.expected() <= 600 + 1e-6
    assert max(clipped.rate_at(x) for x in np.arange(0, 59, 1.0)) <= 10.0 + 1e-6


def test_histograms_merge_exactly_across_processes():
    a, b, both = StepLatency(), StepLatency(), StepLatency()
    rng = np.random.default_rng(2)
    for i, x in enumerate(rng.lognormal(-3, 1, 5000)):
        (a if i % 2 else b).record_service("stamp", float(x))
        both.record_service("stamp", float(x))
    merged = StepLatency.decode(a.encode())
    merged.merge(StepLatency.decode(b.encode()))
    for pct in (50, 95, 99, 99.9, 100):
        assert merged.percentile("stamp", "service", pct) == both.percentile(
            "stamp", "service", pct
        )
    assert merged.count("stamp") == 5000


def test_thresholds_parse_and_breach():
    assert parse_threshold("intended.p99<=30s").clock == "intended"
    assert parse_threshold("dropped<5%:abort").abort
    for bad in ("stamp.p95<2", "errors<150", "nonsense", "stamp.p0<1s"):
        with pytest.raises(FieldError):
            parse_threshold(bad)
    w = ThresholdWatch(
        [parse_threshold("errors<10%"), parse_threshold("stamp.p95<1s")], window_s=5, min_count=5
    )
    for i in range(20):
        w.request("stamp", 1.0, 0.1, ok=i % 4 != 0)  # 25% errors, fast
    w.evaluate(1.5)
    assert [r.ok for r in w.results] == [False, True]
    assert w.results[0].observed == pytest.approx(0.25)


def test_identities_are_valid_and_reproducible():
    ids = [make_identity(random.Random(i), applicant_id=str(i), run_tag="t") for i in range(300)]
    assert all(nik_problem(x.nik) is None for x in ids)
    assert len({x.email for x in ids}) == 300
    women = [x for x in ids if int(x.nik[6:8]) > 40]
    assert 0.3 < len(women) / len(ids) < 0.7
    assert make_identity(random.Random(9), applicant_id="9", run_tag="t") == ids[9]


def test_loopback_check():
    assert (
        is_loopback("http://127.9.9.9:1")
        and is_loopback("http://localhost")
        and is_loopback("http://[::1]:8")
    )
    assert not is_loopback("http://10.0.0.1") and not is_loopback("http://example.com")
    with pytest.raises(FieldError, match="--allow-remote"):
        check_host("http://192.168.1.1:8080", allow_remote=False)
    assert check_host("http://192.168.1.1:8080", allow_remote=True) == "http://192.168.1.1:8080"


CLIENT = [
    {
        "applicant_id": "1",
        "account_id": "A",
        "kind": "account",
        "ref": "A",
        "quantity": "",
        "status": "created",
    },
    {
        "applicant_id": "1",
        "account_id": "A",
        "kind": "order",
        "ref": "O1",
        "quantity": "2",
        "status": "pending_payment",
    },
    {
        "applicant_id": "1",
        "account_id": "A",
        "kind": "payment",
        "ref": "O1",
        "quantity": "2",
        "status": "credited",
    },
    {
        "applicant_id": "1",
        "account_id": "A",
        "kind": "stamp",
        "ref": "S1",
        "quantity": "1",
        "status": "downloaded",
    },
]
SERVER = {
    "orders": [
        {"order_id": "O1", "account_id": "A", "quantity": 2, "status": "paid", "credited_at": "t"}
    ],
    "stamps": [{"stamp_id": "S1", "account_id": "A", "status": "done", "serial_number": "X"}],
    "accounts": [{"account_id": "A", "available": 1, "used": 1, "reserved": 0, "credited": 2}],
}


def test_reconciliation_is_clean_on_consistent_ledgers():
    r = reconcile(CLIENT, SERVER)
    assert r["ok"] and r["checked_orders"] == 1 and r["checked_stamps"] == 1


@pytest.mark.parametrize(
    "doctor, field",
    [
        (lambda s: s["orders"].clear(), "unknown_orders"),  # order row deleted
        (
            lambda s: s["orders"][0].update(status="paying", credited_at=None),
            "lost_quota",
        ),  # payment lost
        (lambda s: s["accounts"][0].update(available=5), "duplicated_quota"),  # credited twice
        (
            lambda s: s["orders"].append(
                {
                    "order_id": "O2",
                    "account_id": "A",
                    "quantity": 2,
                    "status": "paid",
                    "credited_at": "t",
                }
            ),
            "orphaned_payments",
        ),  # paid behind our back
        (lambda s: s["stamps"].clear(), "lost_stamps"),  # accepted job lost
    ],
)
def test_reconciliation_catches_doctored_server_ledgers(doctor, field):
    server = copy.deepcopy(SERVER)
    doctor(server)
    r = reconcile(CLIENT, server)
    assert not r["ok"] and r[field] > 0, r
    assert exit_code_for(reconciliation=r, audit=None, thresholds=[]) == 3


class _Metrics(AdminClient):
    """An AdminClient whose `/admin/metrics` answer is given (a staging service's own shape)."""

    def __init__(self, answer: object) -> None:
        super().__init__("http://127.0.0.1:9", token=None)
        self.answer = answer

    def metrics(self) -> object:  # type: ignore[override]
        return self.answer


@pytest.mark.parametrize("answer", [None, {}, {"resources": []}, {"resources": {"issuer": "x"}},
                                    {"resources": {"issuer": {"completed": "many"}}},
                                    {"resources": {"issuer": {"completed": 1, "queue_depth": 0}}}])
def test_the_issuer_figures_of_an_unknown_shape_are_none_not_a_crash(answer: object) -> None:
    assert _Metrics(answer).issuer() is None


def test_the_issuer_figures_the_probe_reads() -> None:
    r = {"completed": 40, "failed": 2, "queue_depth": 5, "busy": 3, "workers": 4}
    assert _Metrics({"resources": {"issuer": r}}).issuer() == {
        "completed": 40, "failed": 2, "queue": 5, "busy": 3, "busy_share": 0.75}
    # a target that counts no failures: none failed
    no_failed = {k: v for k, v in r.items() if k != "failed"}
    assert _Metrics({"resources": {"issuer": no_failed}}).issuer()["failed"] == 0
