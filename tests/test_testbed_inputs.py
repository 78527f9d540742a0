"""HTTP inputs that used to pass or answer 500, and the session basics (expiry, logout, throttling).

Issue 11 (medium and low): JSON nested ~8,000 deep and lone surrogates gave 500s; a
trailing newline in an email or phone passed (``$`` matches before it), making a
second account for the same email; control characters in names passed; NIK was
not unique; media types were case-sensitive; tokens never expired, there was no
logout and logins were not throttled. Each now answers one 4xx naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from testbed_fixtures import (
    FAST,
    PDF,
    Client,
    buy,
    identity,
    multipart,
    register_and_login,
    wait_for,
)

from testbed.process import TestbedServer


@pytest.fixture(scope="module")
def tb() -> Iterator[TestbedServer]:
    with TestbedServer(extra_args=[*FAST, "--set", "payments.service.mean=0.01",
                                   "--issuer-service", "constant:0.01"]) as server:
        yield server


def _register(tb: TestbedServer, **change: Any) -> Any:
    return Client(tb.url).post("/v1/accounts", json_body={**identity(), **change})


def test_json_nested_8000_deep_is_400(tb: TestbedServer) -> None:
    body = b'{"nik": ' + b"[" * 8000 + b"]" * 8000 + b"}"
    r = Client(tb.url).post("/v1/accounts", body=body, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["error"] == "invalid_json" and "nested" in r.json["detail"]


@pytest.mark.parametrize("field", ["name", "password", "email"])
def test_a_lone_surrogate_is_422_naming_the_field(tb: TestbedServer, field: str) -> None:
    value = {
        "name": "Siti \ud800",
        "password": "rahasia-\udfff-123",
        "email": "s\ud800@example.id",
    }[field]
    r = _register(tb, **{field: value})
    assert r.status == 422 and r.json["field"] == field and "surrogate" in r.json["detail"]
    s = Client(tb.url).post(
        "/v1/sessions",
        json_body={"email": "a@b.id", "password": "x", field: value}
        if field != "name"
        else {"email": "a\ud800@b.id", "password": "x"},
    )
    assert s.status == 422


@pytest.mark.parametrize(
    "field, value",
    [
        ("email", "siti@example.id\n"),
        ("phone", "081234567890\n"),
        ("email", "siti@example.id\r\n"),
        ("phone", "081234567890\n\n"),
    ],
)
def test_a_trailing_newline_does_not_pass(tb: TestbedServer, field: str, value: str) -> None:
    r = _register(tb, **{field: value})
    assert r.status == 422 and r.json["field"] == field


def test_no_second_account_for_the_same_email_with_a_newline(tb: TestbedServer) -> None:
    ident = identity()
    assert _register(tb, **ident).status == 201
    again = _register(tb, **{**identity(), "email": ident["email"] + "\n"})
    assert again.status == 422 and again.json["field"] == "email"


@pytest.mark.parametrize(
    "name", ["Siti\x07Aminah", "Siti\nAminah", "Siti\x1b[31m", "Siti\x7f", "Siti\x85"]
)
def test_control_characters_in_a_name_are_422(tb: TestbedServer, name: str) -> None:
    r = _register(tb, name=name)
    assert r.status == 422 and r.json["field"] == "name" and "control" in r.json["detail"]


def test_nik_is_unique(tb: TestbedServer) -> None:
    first = identity()
    assert _register(tb, **first).status == 201
    r = _register(tb, nik=first["nik"])
    assert r.status == 409 and r.json["error"] == "nik_taken" and r.json["field"] == "nik"


def test_media_types_are_case_insensitive(tb: TestbedServer) -> None:
    c = Client(tb.url)
    token, *_ = register_and_login(c)
    buy(c, token, 1)
    wait_for(lambda: c.get("/v1/quota", token=token).json["available"] == 1)
    body, ctype = multipart([("document", "a.pdf", PDF)])
    r = c.post(
        "/v1/stamps",
        body=body,
        token=token,
        headers={
            "Content-Type": ctype.replace("multipart/form-data", "Multipart/Form-Data"),
            "Idempotency-Key": "case",
        },
    )
    assert r.status == 202, r.json


def test_logout_ends_the_token_at_once(tb: TestbedServer) -> None:
    c = Client(tb.url)
    token, *_ = register_and_login(c)
    other, *_ = register_and_login(c)
    assert c.get("/v1/quota", token=token).status == 200
    assert c.post("/v1/logout", token=token).status == 204
    r = c.get("/v1/quota", token=token)
    assert r.status == 401 and r.json["error"] == "unauthorized"
    assert c.post("/v1/logout", token=token).status == 401
    assert c.get("/v1/quota", token=other).status == 200  # only that session ended


def test_sessions_expire_and_logout_survives_a_restart() -> None:
    with TestbedServer(extra_args=[*FAST, "--set", "security.session_ttl_s=1.5"]) as tb:
        c = Client(tb.url)
        ident = identity()
        assert c.post("/v1/accounts", json_body=ident).status == 201
        s = c.post(
            "/v1/sessions", json_body={"email": ident["email"], "password": ident["password"]}
        )
        assert s.status == 200 and s.json["expires_in"] in (1, 2)
        token = s.json["token"]
        s2 = c.post(
            "/v1/sessions", json_body={"email": ident["email"], "password": ident["password"]}
        ).json
        assert c.post("/v1/logout", token=s2["token"]).status == 204
        assert c.get("/v1/quota", token=token).status == 200
        tb.restart()
        c = Client(tb.url)
        assert c.get("/v1/quota", token=s2["token"]).status == 401  # logged out for good
        wait_for(lambda: c.get("/v1/quota", token=token).status == 401, timeout=5)


def _login(c: Client, email: str, password: str) -> Any:
    return c.post("/v1/sessions", json_body={"email": email, "password": password})


def test_failed_logins_are_throttled_per_account() -> None:
    args = [
        *FAST,
        "--set",
        "security.login_failures_per_account=3",
        "--set",
        "security.login_failures_per_client=100",
    ]
    with TestbedServer(extra_args=args) as tb:
        c = Client(tb.url)
        victim, bystander = identity(), identity()
        for ident in (victim, bystander):
            assert c.post("/v1/accounts", json_body=ident).status == 201
        assert [_login(c, victim["email"], "wrong-password").status for _ in range(3)] == [
            401,
            401,
            401,
        ]
        r = _login(c, victim["email"].upper(), victim["password"])  # even the right password waits
        assert r.status == 429 and r.json["field"] == "email" and int(r.headers["retry-after"]) >= 1
        assert _login(c, bystander["email"], bystander["password"]).status == 200
        honest = [_login(c, bystander["email"], bystander["password"]).status for _ in range(10)]
        assert honest == [200] * 10  # successes never count


def test_failed_logins_are_throttled_per_client() -> None:
    args = [
        *FAST,
        "--set",
        "security.login_failures_per_account=100",
        "--set",
        "security.login_failures_per_client=4",
    ]
    with TestbedServer(extra_args=args) as tb:
        c = Client(tb.url)
        ident = identity()
        assert c.post("/v1/accounts", json_body=ident).status == 201
        assert [_login(c, f"nobody{i}@example.id", "guess-1234").status for i in range(4)] == [
            401
        ] * 4
        r = _login(c, ident["email"], ident["password"])
        assert r.status == 429 and r.json["error"] == "rate_limited" and r.json["field"] is None
        m = c.get("/admin/metrics", token=tb.admin_token).json
        assert m["logins_throttled"] >= 1
