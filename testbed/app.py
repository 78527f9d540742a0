"""The testbed's HTTP API: one small handler per public and applicant route, the route table,
and `create_app` (the admin handlers are in `testbed.app_admin`).

Build the ASGI app with :func:`create_app` (``testbed.server`` runs it under uvicorn)::

    app = create_app(load_config(), db_path="/tmp/tb.sqlite", admin_token="secret")

Every refusal is JSON ``{"error", "field", "detail"}``: 4xx for the client's
mistakes, 429 for a rate gate's empty bucket, 503 for a closed gate or a full
queue when shedding (both with Retry-After). Another applicant's order, stamp
or document is a 404, exactly like a missing one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from testbed.app_admin import (
    admin_audit,
    admin_config,
    admin_confirm,
    admin_faults,
    admin_gates,
    admin_ledger,
    admin_metrics,
    admin_records,
    admin_set_faults,
    admin_set_gate,
)
from testbed.app_context import (
    applicant_of,
    client_address,
    client_gone,
    config_of,
    in_thread,
    ledger_of,
    pass_gate,
)
from testbed.config import TestbedConfig
from testbed.ledger import Ledger
from testbed.nik import nik_problem
from testbed.openapi import spec_json
from testbed.passwords import hash_password, verify_password
from testbed.pdf import pdf_problem
from testbed.storage import Storage
from testbed.validation import (
    EMAIL_RE,
    PHONE_RE,
    ApiError,
    bearer,
    get_int,
    get_str,
    idempotency_key,
    invalid,
    limited_stream,
    media_type,
    missing,
    read_json,
)

MULTIPART_OVERHEAD = 64 * 1024  # bytes of a multipart body allowed beyond the document itself


# ---- public ----------------------------------------------------------------------------
async def _answer(request: Request, step: str, body: Any, status: int, **kw: Any) -> Response:
    """The answer to a committed write, held by the ``answer_delay_s`` fault if it is set for
    ``step``."""
    faults = ledger_of(request).faults
    delay = faults.answer_delay_s if step in faults.answer_delay_on else 0.0
    if delay > 0:
        await asyncio.sleep(delay)
    return JSONResponse(body, status_code=status, **kw)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


async def create_account(request: Request) -> Response:
    pass_gate(request, "registration")
    body = await read_json(request, config_of(request).limits.max_json_bytes)
    nik = get_str(body, "nik", max_len=16, hint="give exactly 16 digits")
    if (problem := nik_problem(nik)) is not None:
        raise invalid("nik", problem)
    name = get_str(body, "name", max_len=100)
    if not name.strip():
        raise invalid("name", "name must not be blank")
    email = get_str(
        body,
        "email",
        max_len=254,
        pattern=EMAIL_RE,
        hint="give an email address like siti@example.id",
    )
    phone = get_str(
        body,
        "phone",
        max_len=16,
        pattern=PHONE_RE,
        hint="give an Indonesian mobile number like 081234567890 or +6281234567890",
    )
    password = get_str(body, "password", min_len=8, max_len=128)
    ledger = ledger_of(request)
    if ledger.email_taken(email):
        raise ApiError(409, "email_taken", "an account with this email exists", field="email")
    pw_hash = await in_thread(request, hash_password, password, config_of(request).security)
    account_id = await ledger.create_account(
        nik=nik, name=name, email=email, phone=phone, password_hash=pw_hash
    )
    return JSONResponse({"account_id": account_id}, status_code=201)


async def create_session(request: Request) -> Response:
    body = await read_json(request, config_of(request).limits.max_json_bytes)
    email = get_str(body, "email", max_len=254)
    password = get_str(body, "password", max_len=128)
    ledger = ledger_of(request)
    client = client_address(request)
    if (refused := ledger.throttle.refused(email, client)) is not None:
        raise ApiError(
            429,
            "rate_limited",
            f"too many failed logins for this {refused[0]}; retry later",
            field="email" if refused[0] == "email" else None,
            headers={"Retry-After": str(refused[1])},
        )
    found = ledger.credentials(email)
    stored = found[1] if found else request.app.state.dummy_hash  # same cost either way
    ok = await in_thread(request, verify_password, password, stored)
    if not found or not ok:
        ledger.throttle.failed(email, client)
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    token, expires = await ledger.create_session(found[0])
    return JSONResponse(
        {"token": token, "account_id": found[0], "expires_in": round(expires - time.time())}
    )


async def logout(request: Request) -> Response:
    applicant_of(request)
    await ledger_of(request).end_session(bearer(request) or "")
    return Response(status_code=204)


# ---- applicant ---------------------------------------------------------------------------
async def get_quota(request: Request) -> Response:
    return JSONResponse(ledger_of(request).quota_view(applicant_of(request)))


async def create_order(request: Request) -> Response:
    account = applicant_of(request)
    pass_gate(request, "ordering")
    key = idempotency_key(request)
    body = await read_json(request, config_of(request).limits.max_json_bytes)
    quantity = get_int(body, "quantity", lo=1, hi=config_of(request).pricing.max_quantity)
    order, replayed = await ledger_of(request).create_order(account, key, quantity)
    return await _answer(
        request, "order", order, 201, headers={"Idempotent-Replayed": str(replayed).lower()}
    )


async def get_order(request: Request) -> Response:
    return JSONResponse(
        ledger_of(request).get_order(applicant_of(request), request.path_params["order_id"])
    )


async def pay_order(request: Request) -> Response:
    account = applicant_of(request)
    pass_gate(request, "ordering", consume=False)  # the order already took this purchase's token
    status, body = await ledger_of(request).pay(
        account, request.path_params["order_id"], client_gone(request)
    )
    return await _answer(request, "pay", body, status)


async def _read_document(request: Request) -> tuple[bytes, str]:
    limit = config_of(request).limits.max_upload_bytes
    if media_type(request) != "multipart/form-data":
        raise ApiError(
            415,
            "unsupported_media_type",
            "send multipart/form-data with a field 'document'",
            field="document",
        )
    stream = limited_stream(request, limit + MULTIPART_OVERHEAD, field="document")
    try:
        form = await MultiPartParser(
            request.headers, stream, max_files=1, max_fields=4, max_part_size=4096
        ).parse()
    except MultiPartException as e:
        raise ApiError(
            400, "invalid_multipart", f"malformed multipart body: {e.message}", field="document"
        ) from None
    try:
        upload = form.get("document")
        if upload is None:
            raise missing("document")
        if not isinstance(upload, UploadFile):
            raise invalid("document", "document must be a file part (with a filename)")
        data = await upload.read(limit + 1)
        name = (upload.filename or "document.pdf")[:200]
    finally:
        await form.close()
    if len(data) > limit:
        raise ApiError(
            413, "payload_too_large", f"the document is larger than {limit} bytes", field="document"
        )
    if not data:
        raise invalid("document", "the document is empty")
    if (problem := await in_thread(request, pdf_problem, data)) is not None:
        raise ApiError(415, "unsupported_media_type", problem, field="document")
    return data, name


async def create_stamp(request: Request) -> Response:
    account = applicant_of(request)
    pass_gate(request, "stamping")
    key = idempotency_key(request)
    data, name = await _read_document(request)
    body, replayed = await ledger_of(request).create_stamp(
        account, key, data, name, client_gone(request)
    )
    return await _answer(
        request, "stamp", body, 202, headers={"Idempotent-Replayed": str(replayed).lower()}
    )


async def get_stamp(request: Request) -> Response:
    return JSONResponse(
        ledger_of(request).get_stamp(applicant_of(request), request.path_params["stamp_id"])
    )


async def get_document(request: Request) -> Response:
    sid = request.path_params["stamp_id"]
    pdf = ledger_of(request).stamped_document(applicant_of(request), sid)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{sid}.pdf"'},
    )


# ---- the table of contents ------------------------------------------------------------------
routes = [
    Route("/healthz", healthz, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/v1/accounts", create_account, methods=["POST"]),
    Route("/v1/sessions", create_session, methods=["POST"]),
    Route("/v1/logout", logout, methods=["POST"]),
    Route("/v1/quota", get_quota, methods=["GET"]),
    Route("/v1/orders", create_order, methods=["POST"]),
    Route("/v1/orders/{order_id}", get_order, methods=["GET"]),
    Route("/v1/orders/{order_id}/pay", pay_order, methods=["POST"]),
    Route("/v1/stamps", create_stamp, methods=["POST"]),
    Route("/v1/stamps/{stamp_id}", get_stamp, methods=["GET"]),
    Route("/v1/stamps/{stamp_id}/document", get_document, methods=["GET"]),
    Route("/admin/metrics", admin_metrics, methods=["GET"]),
    Route("/admin/audit", admin_audit, methods=["GET"]),
    Route("/admin/ledger", admin_ledger, methods=["GET"]),
    Route("/admin/records", admin_records, methods=["GET"]),
    Route("/admin/config", admin_config, methods=["GET"]),
    Route("/admin/gates", admin_gates, methods=["GET"]),
    Route("/admin/gates/{name}", admin_set_gate, methods=["PUT"]),
    Route("/admin/faults", admin_faults, methods=["GET"]),
    Route("/admin/faults", admin_set_faults, methods=["POST"]),
    Route("/admin/gateway/confirmations", admin_confirm, methods=["POST"]),
]


# ---- errors and assembly ------------------------------------------------------------------
async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse(
        {"error": code, "field": None, "detail": str(exc.detail)},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def _storage_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": "storage_busy", "field": None, "detail": "the database is busy; retry later"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse(
        {"error": "internal", "field": None, "detail": "internal error; see the server log"},
        status_code=500,
    )


def create_app(
    cfg: TestbedConfig,
    *,
    db_path: str,
    admin_token: str,
    on_ready: Callable[[], None] | None = None,
) -> Starlette:
    """The ASGI app; state is opened in its lifespan (so it lives on the server's loop).

    >>> from testbed.config import load_config
    >>> create_app(load_config(), db_path=":memory:", admin_token="t").state.admin_token
    't'
    """

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = Storage(db_path, synchronous=cfg.storage.synchronous)
        ledger = Ledger(store, cfg)
        ledger.load()
        ledger.start()
        app.state.ledger = ledger
        app.state.dummy_hash = hash_password(os.urandom(8).hex(), cfg.security)
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await ledger.stop()
            app.state.hasher.shutdown(wait=False)
            store.close()

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            sqlite3.OperationalError: _storage_error,
            Exception: _server_error,
        },
    )
    app.state.config = cfg
    app.state.admin_token = admin_token
    app.state.hasher = ThreadPoolExecutor(
        max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="hash"
    )
    app.state.openapi = spec_json(routes).encode()
    return app
