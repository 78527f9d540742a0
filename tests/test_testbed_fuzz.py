"""Hypothesis fuzz of every testbed route in process (Starlette TestClient): never a 500.

Malformed bodies (random bytes, random JSON with lone surrogates and deep nesting,
broken multipart), random headers (Content-Type in any case, Idempotency-Key,
Authorization with no, a wrong, an applicant's or the admin token) and random path
parameters, for every (method, path) in the route table. Every answer must be a
JSON refusal below 500 (or a success), with one ``detail`` line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient
from testbed_fixtures import PDF, identity, multipart

from testbed.app import create_app, routes
from testbed.config import load_config

ROUTES = [(m, r.path) for r in routes for m in sorted(r.methods or ()) if m != "HEAD"]
FIELDS = [
    "nik",
    "name",
    "email",
    "phone",
    "password",
    "quantity",
    "mode",
    "rate_per_s",
    "burst",
    "payment_id",
    "outcome",
    "issuer",
    "issuer_slow_factor",
    "payment_reorder",
    "payment_failure_ratio",
]


@pytest.fixture(scope="module")
def app_client(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    cfg = load_config(
        None,
        [
            "security.password_hash=pbkdf2",
            "security.pbkdf2_iterations=1000",
            "security.login_failures_per_client=0",
            "security.login_failures_per_account=0",
        ],
    )
    db = str(Path(tmp_path_factory.mktemp("fuzz")) / "tb.sqlite")
    app = create_app(cfg, db_path=db, admin_token="fuzz-admin")
    with TestClient(app, raise_server_exceptions=False) as client:
        ident = identity()
        assert client.post("/v1/accounts", json=ident).status_code == 201
        token = client.post(
            "/v1/sessions", json={"email": ident["email"], "password": ident["password"]}
        ).json()["token"]
        yield client, {"applicant": token, "admin": "fuzz-admin"}


any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())
json_scalar = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True)
    | st.text(any_char, max_size=30)
)
json_value = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner, max_size=5)
    ),
    max_leaves=12,
)
nasty_text = st.text(any_char, max_size=20).map(lambda t: "siti" + t) | st.sampled_from(
    [
        "\ud800",
        "a\udfff",
        "x@y.id\n",
        "081234567890\n",
        "a\x00b",
        "Siti\x07",
        "\u202eevil",
        "NaN",
        "9" * 400,
    ]
)
BASES: dict[str, Any] = {
    "/v1/accounts": lambda: identity(),
    "/v1/sessions": lambda: {"email": "a@b.id", "password": "rahasia-123"},
    "/v1/orders": lambda: {"quantity": 1},
    "/admin/gates/{name}": lambda: {"mode": "rate", "rate_per_s": 1, "burst": 1},
    "/admin/faults": lambda: {"issuer": "resume"},
    "/admin/gateway/confirmations": lambda: {"payment_id": "pay_x", "outcome": "confirmed"},
}
header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=40
)


@st.composite
def bodies(draw: st.DrawFn, path: str) -> tuple[bytes, str | None]:
    kind = draw(
        st.sampled_from(
            ["mutated", "mutated", "json_obj", "json_any", "bytes", "deep", "multipart", "none"]
        )
    )
    if kind == "mutated":  # a valid body with one field made bad: reaches the deeper checks
        obj = BASES.get(path, lambda: {"quantity": 1})()
        obj[draw(st.sampled_from(sorted(obj)))] = draw(nasty_text | json_value)
        return json.dumps(obj).encode(), "application/json"
    if kind == "json_obj":
        obj = draw(st.dictionaries(st.sampled_from(FIELDS), json_value, max_size=6))
        return json.dumps(obj).encode(), "application/json"
    if kind == "json_any":
        return json.dumps(draw(json_value)).encode(), draw(
            st.sampled_from(["application/json", "APPLICATION/JSON", None])
        )
    if kind == "bytes":
        return draw(st.binary(max_size=300)), draw(st.none() | header_text)
    if kind == "deep":
        n = draw(st.sampled_from([1, 50, 999, 1001, 5000, 8000]))
        return b'{"a": ' + b"[" * n + b"]" * draw(
            st.sampled_from([n, 0, n - 1])
        ) + b"}", "application/json"
    if kind == "multipart":
        doc = draw(st.sampled_from([PDF, PDF[:-30], b"%PDF-1.4\n", b""]) | st.binary(max_size=100))
        body, ctype = multipart(
            [
                (
                    draw(st.sampled_from(["document", "other"])),
                    draw(st.sampled_from(["a.pdf", None])),
                    doc,
                )
            ]
        )
        cut = draw(st.sampled_from([len(body), len(body) // 2]))
        ctype = draw(
            st.sampled_from(
                [
                    ctype,
                    ctype.upper().replace("BOUNDARY", "boundary"),
                    "multipart/form-data",
                    re.sub("boundary=.*", "boundary=", ctype),
                ]
            )
        )
        return body[:cut], ctype
    return b"", None


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    route=st.sampled_from(ROUTES),
    data=st.data(),
    auth=st.sampled_from(["none", "applicant", "admin", "junk"]),
    key=st.none() | header_text,
    param=st.text(any_char.filter(lambda c: c not in "/?#"), min_size=1, max_size=20),
    query=st.none() | header_text,
)
def test_no_route_answers_500_to_malformed_input(
    app_client: tuple[TestClient, dict[str, str]],
    route: tuple[str, str],
    data: st.DataObject,
    auth: str,
    key: str | None,
    param: str,
    query: str | None,
) -> None:
    client, tokens = app_client
    method, path = route
    body = data.draw(bodies(path))
    path = re.sub(r"\{[^}]+\}", lambda _m: _quote(param), path)
    headers: dict[str, str | bytes] = {}
    if auth in tokens:
        headers["Authorization"] = f"Bearer {tokens[auth]}"
    elif auth == "junk":
        headers["Authorization"] = "Bearer \u00e9\u00e8 x".encode("latin-1")
    if key is not None:
        headers["Idempotency-Key"] = key.encode("latin-1")  # raw bytes, as a client may send
    content, ctype = body
    if ctype is not None:
        headers["Content-Type"] = ctype.encode("latin-1")
    params: Any = {"format": query} if query is not None else None
    r = client.request(method, path, content=content, headers=headers, params=params)
    assert r.status_code < 500, (method, path, r.status_code, r.text[:300])
    if r.status_code >= 400:
        err = r.json()
        assert err["error"] and isinstance(err["detail"], str) and "\n" not in err["detail"]


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s.encode("utf-8", "surrogatepass"), safe="")
