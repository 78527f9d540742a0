"""The generator's fast paths against plain references: ledger rows, ISO times, window
percentiles, JSON answers and the reused request deadline give what the plain code gives."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scenarios.documents import pdf_document
from scenarios.journey_http import _json
from scenarios.latency import StepLatency
from scenarios.recorder import LEDGER_EVIDENCE, Recorder, iso_utc, ledger_key, linear_percentiles


def _plain_ledger_row(
    ledger: dict,
    applicant_id: str,
    kind: str,
    ref: str,
    *,
    account_id: Any = "",
    email: str = "",
    quantity: Any = "",
    amount: Any = "",
    status: str,
    unix: float,
    **evidence: Any,
) -> None:
    """The recorder's ledger update as first written (one dict per call, every field looked at)."""
    key = ledger_key({"applicant_id": applicant_id, "kind": kind, "ref": ref, **evidence})
    row = ledger.get(key)
    if row is None:
        row = ledger[key] = {
            "applicant_id": applicant_id,
            "account_id": account_id,
            "email": email,
            "kind": kind,
            "ref": ref,
            "quantity": quantity,
            "amount": amount,
            **dict.fromkeys(LEDGER_EVIDENCE, ""),
        }
    row["status"] = status
    row["at"] = unix
    for name, value in (
        ("account_id", account_id),
        ("ref", ref),
        ("quantity", quantity),
        ("amount", amount),
        *((k, evidence.get(k, "")) for k in LEDGER_EVIDENCE),
    ):
        if value not in ("", None):
            row[name] = value


def _random_calls(rng: random.Random, n: int) -> list[tuple[tuple, dict]]:
    calls = []
    blank = ("", None)
    for i in range(n):
        evidence: dict[str, Any] = {}
        for k in LEDGER_EVIDENCE:
            if rng.random() < 0.3:
                evidence[k] = rng.choice([*blank, 0, 201, f"v{rng.randrange(5)}"])
        if rng.random() < 0.5:
            evidence["idempotency_keys"] = rng.choice(
                ["", None, "k1", "k1 k2", " k2  k3 ", f"k{rng.randrange(4)}"]
            )
        if rng.random() < 0.1:
            evidence["not_a_column"] = "ignored"
        args = (
            f"0-{rng.randrange(4)}",
            rng.choice(["account", "order", "payment", "stamp"]),
            rng.choice(["", "", "ref1", f"ref{rng.randrange(3)}"]),
        )
        kw = dict(
            account_id=rng.choice([*blank, "acc1", f"acc{rng.randrange(3)}"]),
            email=rng.choice(["", "a@b.test"]),
            quantity=rng.choice([*blank, 0, 1, 2]),
            amount=rng.choice([*blank, 0, 25000]),
            status=rng.choice(["sent", "queued", "done"]),
            unix=float(i),
            **evidence,
        )
        calls.append((args, kw))
    return calls


@pytest.mark.parametrize("seed", range(5))
def test_ledger_rows_equal_the_plain_update(seed):
    calls = _random_calls(random.Random(seed), 400)
    rec, plain = Recorder(origin_unix=0.0, calendar_of=None), {}
    for args, kw in calls:
        rec.ledger_row(*args, **kw)
        _plain_ledger_row(plain, *args, **kw)
    assert list(rec.ledger) == list(plain)
    assert [list(r.items()) for r in rec.ledger.values()] == [
        list(r.items()) for r in plain.values()
    ]


def test_a_broken_ledger_update_is_caught_by_the_reference(monkeypatch):
    # the mutant: None counts as told, so a later None blanks what the server said
    monkeypatch.setattr("scenarios.recorder._UNTOLD", ("",))
    calls = _random_calls(random.Random(0), 400)
    rec, plain = Recorder(origin_unix=0.0, calendar_of=None), {}
    for args, kw in calls:
        rec.ledger_row(*args, **kw)
        _plain_ledger_row(plain, *args, **kw)
    assert [list(r.items()) for r in rec.ledger.values()] != [
        list(r.items()) for r in plain.values()
    ]


def _plain_iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def test_iso_utc_equals_datetime_formatting():
    rng = random.Random(3)
    values = [rng.uniform(0, 4e9) for _ in range(20_000)]
    values += [
        s + f
        for s in (0, 59, 1_700_000_000, 1_700_000_059)
        for f in (
            0.0,
            0.0005,
            0.0004999,
            0.9994999,
            0.9995,
            0.9999994,
            0.9999995,
            0.9999996,
            0.123456,
        )
    ]
    values += [-1.5, -0.0004, 1e-7, 1_700_000_000 + 0.5e-6, 1_700_000_000 + 1.5e-6]
    assert [iso_utc(v) for v in values] == [_plain_iso(v) for v in values]
    assert iso_utc(None) == ""


def test_history_percentiles_equal_one_call_per_percentile():
    rng = np.random.default_rng(0)
    rec = Recorder(origin_unix=100.0, calendar_of=None)
    for k in range(3000):
        t = 100.0 + float(rng.uniform(0, 35))
        step = ("login", "stamp", "poll_stamp")[k % 3]
        rec.request_done(step, t, float(rng.lognormal(-3, 1)), ok=k % 17 != 0)
        if k % 2:
            rec.step_done(step, t, float(rng.lognormal(-2, 1)))
    rows = rec.history_rows()

    def pct(xs, q):
        return round(float(np.percentile(xs, q)) * 1000, 3) if xs else ""

    want = []
    for w in sorted(rec._windows):
        for step in ("login", "stamp", "poll_stamp"):
            slot = rec._windows[w].get(step)
            if slot:
                s, i = slot["service"], slot["intended"]
                want.append(
                    [
                        step,
                        len(s),
                        slot["errors"],
                        *(pct(s, q) for q in (50, 95, 99)),
                        *(pct(i, q) for q in (50, 95, 99)),
                    ]
                )
    got = [r[2:] for r in rows]
    assert sorted(got, key=str) == sorted(want, key=str)
    assert len(got) == len(want) > 3


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "t": "\xc3\xa9"}',
        '{"a": 2}'.encode("utf-16"),
        '{"a": 3}'.encode("utf-8-sig"),
        b"[1, 2]",
        b"not json",
        b"",
        None,
        b"\xff\xfe\x00",
        b'{"a": "\\ud800"}',
    ],
)
def test_json_answers_read_as_the_bytes_decoder_reads_them(body):
    try:
        v = json.loads(body or b"{}")
        want = v if isinstance(v, dict) else {}
    except (ValueError, TypeError):
        want = {}
    assert _json(SimpleNamespace(content=body)) == want


def _plain_pdf(title: str) -> bytes:
    """The document as first written: every object and offset made per call."""
    text = title.replace("\\", "").replace("(", "").replace(")", "")[:80]
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1", "replace")
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n".encode() + o + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_documents_equal_the_plain_assembly():
    rng = random.Random(9)
    titles = ["", "Surat Lamaran - Budi Santoso", "(a) \\ b", "x" * 200, "Sürat – Çağrı ☃"]
    titles += [
        "".join(rng.choice("abc ()\\é日") for _ in range(rng.randrange(120))) for _ in range(300)
    ]
    assert [pdf_document(t) for t in titles] == [_plain_pdf(t) for t in titles]
    assert pdf_document("ab") != _plain_pdf("abc")  # the comparison sees a changed title


def _latency_values(rng: np.random.Generator) -> list[float]:
    xs = (
        list(rng.lognormal(-4, 2, 5000))
        + list(rng.uniform(0, 1e-5, 300))
        + list(rng.uniform(3000, 9000, 50))
    )
    # bucket edges of 3-digit HDR in microseconds, and half-microsecond ties (rounded half even)
    edges = [2**k + d for k in range(10, 32) for d in (-1, 0, 1)]
    xs += (
        [e / 1e6 for e in edges]
        + [(k + 0.5) / 1e6 for k in range(0, 4000, 7)]
        + [0.0, 3600.0, 3600.0000005]
    )
    return [float(x) for x in xs]


def test_latencies_recorded_at_once_equal_one_by_one():
    xs = _latency_values(np.random.default_rng(4))
    fast, plain = StepLatency(), StepLatency()
    fast.record_many("service", "stamp", xs)
    for x in xs:
        plain.record_service("stamp", x)
    a, b = fast.service["stamp"], plain.service["stamp"]
    assert (a.total_count, a.min_value, a.max_value) == (b.total_count, b.min_value, b.max_value)
    assert fast.encode() == plain.encode()
    assert fast.percentiles("stamp", "service", (50, 99, 99.9)) == plain.percentiles(
        "stamp", "service", (50, 99, 99.9)
    )
    few = StepLatency()  # below the vector threshold: the plain path, same result
    few.record_many("intended", "pay", xs[:10])
    one = StepLatency()
    for x in xs[:10]:
        one.record_intended("pay", x)
    assert few.encode() == one.encode()


def test_a_wrong_rounding_in_the_batch_is_caught(monkeypatch):
    xs = [(k + 0.5) / 1e6 for k in range(2000, 2200)]  # ties: half even, not half up
    plain = StepLatency()
    for x in xs:
        plain.record_service("login", x)
    monkeypatch.setattr("scenarios.latency.np.rint", lambda v: np.floor(v + 0.5))
    fast = StepLatency()
    fast.record_many("service", "login", xs)
    assert fast.encode() != plain.encode()


def test_values_the_batch_cannot_take_go_the_plain_way():
    s = StepLatency()
    with pytest.raises((ValueError, OverflowError)):
        s.record_many("service", "login", [0.1] * 100 + [float("nan")])


_latencies = st.lists(
    st.floats(min_value=0, max_value=1e4, allow_nan=False) | st.sampled_from([0.05, 0.1, 1e-7]),
    min_size=1,
    max_size=60,
)
_pcts = st.lists(st.floats(min_value=0, max_value=100) | st.sampled_from([50, 95, 99, 99.9]),
                 min_size=1, max_size=4)


@settings(max_examples=400, deadline=None)
@given(_latencies, _pcts)
def test_window_percentiles_are_numpys_bit_for_bit(xs, pcts):
    assert linear_percentiles(xs, tuple(pcts)) == np.percentile(xs, pcts).tolist()


def test_a_percentile_without_numpys_upper_half_rule_is_caught():
    """The property can fail: a + (b - a)t everywhere differs from numpy in the last bit."""

    def one_rule(xs, pcts):
        s, last = sorted(xs), len(xs) - 1
        out = []
        for q in pcts:
            v = last * (q / 100)
            lo = min(int(v), last - 1) if last else 0
            t = v - lo
            out.append(s[lo] + (s[min(lo + 1, last)] - s[lo]) * t)
        return out

    rng = np.random.default_rng(1)
    differs = 0
    for _ in range(300):
        xs = rng.lognormal(-3, 1, size=int(rng.integers(2, 50))).tolist()
        want = np.percentile(xs, (50, 95, 99)).tolist()
        assert linear_percentiles(xs, (50, 95, 99)) == want
        differs += one_rule(xs, (50, 95, 99)) != want
    assert differs > 0
