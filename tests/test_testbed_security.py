"""Authorization across applicants, admin tokens, bad input on every field, oversized uploads."""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from testbed_fixtures import (
    FAST,
    PDF,
    Client,
    admin,
    buy,
    identity,
    multipart,
    register_and_login,
    send_chunks_until_answer,
    stamp,
    wait_for,
)

from testbed.process import TestbedServer

UPLOAD_LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def tb() -> Iterator[TestbedServer]:
    args = [
        *FAST,
        "--issuer-service",
        "constant:0.01",
        "--set",
        f"limits.max_upload_bytes={UPLOAD_LIMIT}",
    ]
    with TestbedServer(extra_args=args) as server:
        yield server


@pytest.fixture(scope="module")
def alice(tb: TestbedServer) -> dict[str, Any]:
    c = Client(tb.url)
    token, account, email = register_and_login(c)
    oid = buy(c, token, 2)
    wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == 2)
    sid = stamp(c, token, "a-1").json["stamp_id"]
    wait_for(lambda: c.get(f"/v1/stamps/{sid}", token=token).json["status"] == "done")
    return {"token": token, "order": oid, "stamp": sid, "email": email}


def test_applicants_cannot_see_each_other(tb: TestbedServer, alice: dict[str, Any]) -> None:
    c = Client(tb.url)
    bob, *_ = register_and_login(c)
    for method, path in [
        ("GET", f"/v1/orders/{alice['order']}"),
        ("POST", f"/v1/orders/{alice['order']}/pay"),
        ("GET", f"/v1/stamps/{alice['stamp']}"),
        ("GET", f"/v1/stamps/{alice['stamp']}/document"),
    ]:
        theirs = c.request(method, path, token=bob)
        missing = c.request(
            method,
            path.replace(alice["order"], "ord_0").replace(alice["stamp"], "stp_0"),
            token=bob,
        )
        assert theirs.status == 404 and theirs.json == missing.json, (
            path
        )  # same answer: nothing leaks
        assert c.request(method, path, token=alice["token"]).status in (200, 202)
    assert c.get("/v1/quota", token=bob).json["available"] == 0


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/quota"),
        ("POST", "/v1/orders"),
        ("GET", "/v1/orders/ord_1"),
        ("POST", "/v1/orders/ord_1/pay"),
        ("POST", "/v1/stamps"),
        ("GET", "/v1/stamps/stp_1"),
        ("GET", "/v1/stamps/stp_1/document"),
    ],
)
@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic abc", "Bearer "])
def test_applicant_endpoints_need_a_token(
    tb: TestbedServer, method: str, path: str, auth: str | None
) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = Client(tb.url).request(method, path, headers=headers)
    assert (
        r.status == 401 and r.json["error"] == "unauthorized" and r.json["field"] == "Authorization"
    )


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/admin/metrics"),
        ("GET", "/admin/audit"),
        ("GET", "/admin/ledger"),
        ("GET", "/admin/config"),
        ("GET", "/admin/gates"),
        ("PUT", "/admin/gates/stamping"),
        ("GET", "/admin/faults"),
        ("POST", "/admin/faults"),
        ("POST", "/admin/gateway/confirmations"),
    ],
)
def test_admin_endpoints_refuse_missing_or_wrong_token(
    tb: TestbedServer, alice: dict[str, Any], method: str, path: str
) -> None:
    c = Client(tb.url)
    for token in (None, "wrong", alice["token"]):  # an applicant's token is not an admin token
        r = c.request(method, path, token=token, json_body={"mode": "closed"})
        assert r.status == 401 and r.json["error"] == "unauthorized"
    assert admin(c, tb, "GET", "/admin/gates").json["stamping"]["mode"] == "open"


def _account(**change: Any) -> dict[str, Any]:
    body: dict[str, Any] = identity()
    for k, v in change.items():
        if v is ...:
            del body[k]
        else:
            body[k] = v
    return body


ACCOUNT_CASES = [
    ("nik", ...),
    ("nik", 3171010508990001),
    ("nik", "317101050899000"),
    ("nik", "3171O10508990001"),
    ("nik", "3171013102990001"),
    ("nik", "3171017208990001"),
    ("nik", None),
    ("nik", "x" * 10000),
    ("name", ...),
    ("name", ""),
    ("name", "   "),
    ("name", "x" * 101),
    ("name", ["a"]),
    ("name", "a\x00b"),
    ("email", ...),
    ("email", "not-an-email"),
    ("email", "a@b"),
    ("email", 12),
    ("email", "x" * 250 + "@a.id"),
    ("phone", ...),
    ("phone", "12345"),
    ("phone", "+1 555 0100"),
    ("phone", 81234567890),
    ("password", ...),
    ("password", "short"),
    ("password", "x" * 129),
    ("password", {"a": 1}),
]


@pytest.mark.parametrize("field, value", ACCOUNT_CASES)
def test_bad_registration_fields(tb: TestbedServer, field: str, value: Any) -> None:
    r = Client(tb.url).post("/v1/accounts", json_body=_account(**{field: value}))
    assert (
        400 <= r.status < 500 and r.json["field"] == field and r.json["error"] and r.json["detail"]
    )


@pytest.mark.parametrize(
    "body, ctype",
    [
        (b"{not json", "application/json"),
        (b"[1, 2]", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b"", "application/json"),
        (b"nik=1", "application/x-www-form-urlencoded"),
    ],
)
def test_malformed_json_bodies(tb: TestbedServer, body: bytes, ctype: str) -> None:
    r = Client(tb.url).post("/v1/accounts", body=body, headers={"Content-Type": ctype})
    assert r.status == 400 and r.json["error"] == "invalid_json" and r.json["field"] is None


def test_duplicate_email_is_409(tb: TestbedServer, alice: dict[str, Any]) -> None:
    r = Client(tb.url).post("/v1/accounts", json_body=_account(email=alice["email"].upper()))
    assert r.status == 409 and r.json == {**r.json, "error": "email_taken", "field": "email"}


@pytest.mark.parametrize(
    "body, field",
    [
        ({"password": "rahasia-123"}, "email"),
        ({"email": "a@b.id"}, "password"),
        ({"email": 1, "password": "x"}, "email"),
        ({"email": "a@b.id", "password": None}, "password"),
    ],
)
def test_bad_session_fields(tb: TestbedServer, body: dict[str, Any], field: str) -> None:
    r = Client(tb.url).post("/v1/sessions", json_body=body)
    assert r.status == 422 and r.json["field"] == field


@pytest.mark.parametrize(
    "body, headers, field",
    [
        ({}, {"Idempotency-Key": "q1"}, "quantity"),
        ({"quantity": 0}, {"Idempotency-Key": "q2"}, "quantity"),
        ({"quantity": 101}, {"Idempotency-Key": "q3"}, "quantity"),
        ({"quantity": "2"}, {"Idempotency-Key": "q4"}, "quantity"),
        ({"quantity": 2.5}, {"Idempotency-Key": "q5"}, "quantity"),
        ({"quantity": True}, {"Idempotency-Key": "q6"}, "quantity"),
        ({"quantity": 1}, {}, "Idempotency-Key"),
        ({"quantity": 1}, {"Idempotency-Key": "x" * 129}, "Idempotency-Key"),
        ({"quantity": 1}, {"Idempotency-Key": "has space"}, "Idempotency-Key"),
    ],
)
def test_bad_order_fields(
    tb: TestbedServer,
    alice: dict[str, Any],
    body: dict[str, Any],
    headers: dict[str, str],
    field: str,
) -> None:
    r = Client(tb.url).post("/v1/orders", json_body=body, token=alice["token"], headers=headers)
    assert 400 <= r.status < 500 and r.json["field"] == field


@pytest.mark.parametrize(
    "parts, ctype, field, status",
    [
        ([("other", "a.pdf", PDF)], None, "document", 422),
        ([("document", None, PDF)], None, "document", 422),  # a plain field, not a file
        ([("document", "a.pdf", b"hello, not a pdf")], None, "document", 415),
        ([("document", "a.pdf", b"")], None, "document", 422),
        ([("document", "a.pdf", PDF)], "application/pdf", "document", 415),
        ([("document", "a.pdf", PDF)], "multipart/form-data", "document", 400),  # no boundary
    ],
)
def test_bad_stamp_uploads(
    tb: TestbedServer,
    alice: dict[str, Any],
    parts: list[Any],
    ctype: str | None,
    field: str,
    status: int,
) -> None:
    body, default_ctype = multipart(parts)
    headers = {"Content-Type": ctype or default_ctype, "Idempotency-Key": secrets.token_hex(4)}
    r = Client(tb.url).post("/v1/stamps", body=body, token=alice["token"], headers=headers)
    assert r.status == status and r.json["field"] == field, r.json


def test_stamp_needs_idempotency_key(tb: TestbedServer, alice: dict[str, Any]) -> None:
    body, ctype = multipart([("document", "a.pdf", PDF)])
    r = Client(tb.url).post(
        "/v1/stamps", body=body, token=alice["token"], headers={"Content-Type": ctype}
    )
    assert r.status == 400 and r.json["field"] == "Idempotency-Key"


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/admin/gates/stamping", {"mode": "half-open"}, "mode"),
        ("/admin/gates/stamping", {}, "mode"),
        ("/admin/gates/stamping", {"mode": "rate", "rate_per_s": -1, "burst": 3}, "rate_per_s"),
        ("/admin/gates/stamping", {"mode": "rate", "rate_per_s": 5, "burst": 0}, "burst"),
        ("/admin/gates/stamping", {"mode": "rate", "rate_per_s": 5}, "burst"),
        ("/admin/gates/queueing", {"mode": "open"}, "name"),
        ("/admin/faults", {"issuer": "stop"}, "issuer"),
        ("/admin/faults", {"issuer_slow_factor": 0}, "issuer_slow_factor"),
        ("/admin/faults", {"payment_failure_ratio": 1.5}, "payment_failure_ratio"),
        ("/admin/faults", {"payment_duplicate_ratio": "half"}, "payment_duplicate_ratio"),
        ("/admin/faults", {"payment_reorder": 1}, "payment_reorder"),
        ("/admin/faults", {"meteor": True}, "meteor"),
        ("/admin/gateway/confirmations", {"payment_id": "pay_1", "outcome": "maybe"}, "outcome"),
        ("/admin/gateway/confirmations", {"outcome": "confirmed"}, "payment_id"),
    ],
)
def test_bad_admin_bodies(tb: TestbedServer, path: str, body: dict[str, Any], field: str) -> None:
    method = "PUT" if path.startswith("/admin/gates") else "POST"
    r = admin(Client(tb.url), tb, method, path, body)
    assert 400 <= r.status < 500 and r.json["field"] == field, r.json
    assert admin(Client(tb.url), tb, "GET", "/admin/faults").json["issuer"] == "running"


def test_bad_metrics_format(tb: TestbedServer) -> None:
    r = Client(tb.url).get("/admin/metrics?format=xml", token=tb.admin_token)
    assert r.status == 422 and r.json["field"] == "format"


def _raw_headers(tb: TestbedServer, token: str, extra: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", tb.port), timeout=5)
    s.sendall(
        (
            f"POST /v1/stamps HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
            f"Idempotency-Key: big-{secrets.token_hex(4)}\r\n"
            f"Content-Type: multipart/form-data; boundary=b\r\n{extra}\r\n"
        ).encode()
    )
    return s


def test_oversized_content_length_is_refused_before_reading(
    tb: TestbedServer, alice: dict[str, Any]
) -> None:
    s = _raw_headers(
        tb, alice["token"], "Content-Length: 104857600\r\n"
    )  # 100 MiB declared, none sent
    reply = b""
    while chunk := s.recv(4096):  # the server answers and closes without waiting for the body
        reply += chunk
    s.close()
    assert reply.startswith(b"HTTP/1.1 413") and b'"field":"document"' in reply


def test_chunked_upload_is_cut_off_at_the_limit(tb: TestbedServer, alice: dict[str, Any]) -> None:
    s = _raw_headers(tb, alice["token"], "Transfer-Encoding: chunked\r\n")
    pre = (
        b'--b\r\nContent-Disposition: form-data; name="document"; filename="a.pdf"\r\n\r\n'
        b"%PDF-1.4\n"
    )
    s.sendall(b"%x\r\n%s\r\n" % (len(pre), pre))
    s.settimeout(0.02)
    # we would send 3 MiB; the server stops us early
    sent, reply = send_chunks_until_answer(s, b"x" * 16384, 50 * UPLOAD_LIMIT)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
    assert sent <= 4 * UPLOAD_LIMIT  # refused soon after the limit, not at the end
    c = Client(tb.url)
    assert c.get("/v1/quota", token=alice["token"]).json["reserved"] == 0
    time.sleep(0.05)
    assert c.get("/healthz").status == 200


def test_unknown_routes_and_methods_are_json(tb: TestbedServer) -> None:
    c = Client(tb.url)
    assert c.get("/v2/nothing").json["error"] == "not_found"
    r = c.request("DELETE", "/v1/quota")
    assert r.status == 405 and r.json["error"] == "method_not_allowed"
