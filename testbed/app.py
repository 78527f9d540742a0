"""The testbed's HTTP API: the route table first, then one small handler per route.

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
import hmac
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
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from floor.vocabulary import GATE_MODES, GATES
from testbed.audit import audit, ledger_listing, metrics, prometheus, records
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


# ---- helpers ---------------------------------------------------------------------------
def _ledger(request: Request) -> Ledger:
    return request.app.state.ledger


def _cfg(request: Request) -> TestbedConfig:
    return request.app.state.config


def _applicant(request: Request) -> str:
    """The account of a live bearer token, or 401 (missing, unknown, logged out or expired)."""
    token = bearer(request)
    account = _ledger(request).account_for(token) if token else None
    if account is None:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <token> from POST /v1/sessions "
                       "(tokens end at logout and session_ttl_s after login)",
                       field="Authorization", headers={"WWW-Authenticate": "Bearer"})
    return account


def _client_gone(request: Request) -> Callable[[], Any]:
    """An awaitable factory that completes when the client disconnects (the body already read)."""

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return gone


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _admin(request: Request) -> None:
    """401 unless the admin token is given."""
    token = bearer(request) or ""
    if not hmac.compare_digest(token.encode(), request.app.state.admin_token.encode()):
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <admin token>",
                       field="Authorization", headers={"WWW-Authenticate": "Bearer"})


def _gate(request: Request, name: str, *, consume: bool = True) -> None:
    refusal = _ledger(request).gates[name].admit(consume=consume)
    if refusal is not None:
        raise ApiError(refusal.status, refusal.error, refusal.detail,
                       headers={"Retry-After": str(refusal.retry_after)}, extra={"gate": name})


async def _in_thread(request: Request, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(request.app.state.hasher, fn, *args)


# ---- public ----------------------------------------------------------------------------
async def _answer(request: Request, step: str, body: Any, status: int, **kw: Any) -> Response:
    """The answer to a committed write, held by the ``answer_delay_s`` fault if it is set for ``step``."""
    faults = _ledger(request).faults
    delay = faults.answer_delay_s if step in faults.answer_delay_on else 0.0
    if delay > 0:
        await asyncio.sleep(delay)
    return JSONResponse(body, status_code=status, **kw)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def openapi(request: Request) -> Response:
    return Response(request.app.state.openapi, media_type="application/json")


async def create_account(request: Request) -> Response:
    _gate(request, "registration")
    body = await read_json(request, _cfg(request).limits.max_json_bytes)
    nik = get_str(body, "nik", max_len=16, hint="give exactly 16 digits")
    if (problem := nik_problem(nik)) is not None:
        raise invalid("nik", problem)
    name = get_str(body, "name", max_len=100)
    if not name.strip():
        raise invalid("name", "name must not be blank")
    email = get_str(body, "email", max_len=254, pattern=EMAIL_RE, hint="give an email address like siti@example.id")
    phone = get_str(body, "phone", max_len=16, pattern=PHONE_RE,
                    hint="give an Indonesian mobile number like 081234567890 or +6281234567890")
    password = get_str(body, "password", min_len=8, max_len=128)
    ledger = _ledger(request)
    if ledger.email_taken(email):
        raise ApiError(409, "email_taken", "an account with this email exists", field="email")
    pw_hash = await _in_thread(request, hash_password, password, _cfg(request).security)
    account_id = await ledger.create_account(nik=nik, name=name, email=email, phone=phone, password_hash=pw_hash)
    return JSONResponse({"account_id": account_id}, status_code=201)


async def create_session(request: Request) -> Response:
    body = await read_json(request, _cfg(request).limits.max_json_bytes)
    email = get_str(body, "email", max_len=254)
    password = get_str(body, "password", max_len=128)
    ledger = _ledger(request)
    client = _client_address(request)
    if (refused := ledger.throttle.refused(email, client)) is not None:
        raise ApiError(429, "rate_limited", f"too many failed logins for this {refused[0]}; retry later",
                       field="email" if refused[0] == "email" else None,
                       headers={"Retry-After": str(refused[1])})
    found = ledger.credentials(email)
    stored = found[1] if found else request.app.state.dummy_hash  # same cost either way
    ok = await _in_thread(request, verify_password, password, stored)
    if not found or not ok:
        ledger.throttle.failed(email, client)
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    token, expires = await ledger.create_session(found[0])
    return JSONResponse({"token": token, "account_id": found[0],
                         "expires_in": round(expires - time.time())})


async def logout(request: Request) -> Response:
    _applicant(request)
    await _ledger(request).end_session(bearer(request) or "")
    return Response(status_code=204)


# ---- applicant ---------------------------------------------------------------------------
async def get_quota(request: Request) -> Response:
    return JSONResponse(_ledger(request).quota_view(_applicant(request)))


async def create_order(request: Request) -> Response:
    account = _applicant(request)
    _gate(request, "ordering")
    key = idempotency_key(request)
    body = await read_json(request, _cfg(request).limits.max_json_bytes)
    quantity = get_int(body, "quantity", lo=1, hi=_cfg(request).pricing.max_quantity)
    order, replayed = await _ledger(request).create_order(account, key, quantity)
    return await _answer(request, "order", order, 201, headers={"Idempotent-Replayed": str(replayed).lower()})


async def get_order(request: Request) -> Response:
    return JSONResponse(_ledger(request).get_order(_applicant(request), request.path_params["order_id"]))


async def pay_order(request: Request) -> Response:
    account = _applicant(request)
    _gate(request, "ordering", consume=False)  # the order already took this purchase's token
    status, body = await _ledger(request).pay(account, request.path_params["order_id"], _client_gone(request))
    return await _answer(request, "pay", body, status)


async def _read_document(request: Request) -> tuple[bytes, str]:
    limit = _cfg(request).limits.max_upload_bytes
    if media_type(request) != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send multipart/form-data with a field 'document'",
                       field="document")
    stream = limited_stream(request, limit + MULTIPART_OVERHEAD, field="document")
    try:
        form = await MultiPartParser(request.headers, stream, max_files=1, max_fields=4,
                                     max_part_size=4096).parse()
    except MultiPartException as e:
        raise ApiError(400, "invalid_multipart", f"malformed multipart body: {e.message}", field="document") from None
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
        raise ApiError(413, "payload_too_large", f"the document is larger than {limit} bytes", field="document")
    if not data:
        raise invalid("document", "the document is empty")
    if (problem := await _in_thread(request, pdf_problem, data)) is not None:
        raise ApiError(415, "unsupported_media_type", problem, field="document")
    return data, name


async def create_stamp(request: Request) -> Response:
    account = _applicant(request)
    _gate(request, "stamping")
    key = idempotency_key(request)
    data, name = await _read_document(request)
    body, replayed = await _ledger(request).create_stamp(account, key, data, name, _client_gone(request))
    return await _answer(request, "stamp", body, 202, headers={"Idempotent-Replayed": str(replayed).lower()})


async def get_stamp(request: Request) -> Response:
    return JSONResponse(_ledger(request).get_stamp(_applicant(request), request.path_params["stamp_id"]))


async def get_document(request: Request) -> Response:
    sid = request.path_params["stamp_id"]
    pdf = _ledger(request).stamped_document(_applicant(request), sid)
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{sid}.pdf"'})


# ---- admin -----------------------------------------------------------------------------------
async def admin_metrics(request: Request) -> Response:
    _admin(request)
    m = metrics(_ledger(request))
    fmt = request.query_params.get("format", "json")
    if fmt == "prometheus":
        return PlainTextResponse(prometheus(m), media_type="text/plain; version=0.0.4")
    if fmt != "json":
        raise invalid("format", 'format must be "json" or "prometheus"')
    return JSONResponse(m)


async def admin_audit(request: Request) -> Response:
    _admin(request)
    async with _ledger(request).store.quiesced():   # no write half-mirrored while it reads
        return JSONResponse(audit(_ledger(request)))


async def admin_ledger(request: Request) -> Response:
    _admin(request)
    async with _ledger(request).store.quiesced():
        return JSONResponse(ledger_listing(_ledger(request)))


async def admin_records(request: Request) -> Response:
    _admin(request)
    return JSONResponse(records(_ledger(request)))


async def admin_config(request: Request) -> Response:
    _admin(request)
    return JSONResponse(_cfg(request).to_dict())


async def admin_gates(request: Request) -> Response:
    _admin(request)
    return JSONResponse({n: g.state() for n, g in _ledger(request).gates.items()})


async def admin_set_gate(request: Request) -> Response:
    _admin(request)
    name = request.path_params["name"]
    if name not in GATES:
        raise ApiError(404, "not_found", f"no gate {name!r}; gates: {', '.join(GATES)}", field="name")
    body = await read_json(request, _cfg(request).limits.max_json_bytes)
    mode = get_str(body, "mode", max_len=10)
    if mode not in GATE_MODES:
        raise invalid("mode", f"mode must be one of {', '.join(GATE_MODES)}")
    rate, burst = body.get("rate_per_s", 0.0), body.get("burst", 0)
    if mode == "rate":
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1e6:
            raise invalid("rate_per_s", "rate_per_s must be a number in (0, 1e6] for a rate gate")
        burst = get_int(body, "burst", lo=1, hi=10**6)
    gate = _ledger(request).gates[name]
    gate.set(mode=mode, rate_per_s=float(rate) if mode == "rate" else 0.0, burst=burst if mode == "rate" else 0)
    return JSONResponse({"gate": name, **gate.state()})


async def admin_faults(request: Request) -> Response:
    _admin(request)
    led = _ledger(request)
    return JSONResponse(led.faults.state(led.issuer, led.payments))


async def admin_set_faults(request: Request) -> Response:
    _admin(request)
    body = await read_json(request, _cfg(request).limits.max_json_bytes)
    led = _ledger(request)
    return JSONResponse(led.faults.apply(body, led.issuer, led.payments))


async def admin_confirm(request: Request) -> Response:
    _admin(request)
    body = await read_json(request, _cfg(request).limits.max_json_bytes)
    pid = get_str(body, "payment_id", max_len=64)
    outcome = get_str(body, "outcome", max_len=16)
    if outcome not in ("confirmed", "failed"):
        raise invalid("outcome", 'outcome must be "confirmed" or "failed"')
    result = await _ledger(request).deliver(pid, outcome)
    if result == "unknown":
        raise ApiError(404, "not_found", "no such payment", field="payment_id")
    return JSONResponse({"result": result})


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
    return JSONResponse({"error": code, "field": None, "detail": str(exc.detail)},
                        status_code=exc.status_code, headers=exc.headers)


async def _storage_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "storage_busy", "field": None, "detail": "the database is busy; retry later"},
                        status_code=503, headers={"Retry-After": "1"})


async def _server_error(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": "internal", "field": None, "detail": "internal error; see the server log"},
                        status_code=500)


def create_app(cfg: TestbedConfig, *, db_path: str, admin_token: str,
               on_ready: Callable[[], None] | None = None) -> Starlette:
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

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={
        ApiError: _api_error, HTTPException: _http_error, sqlite3.OperationalError: _storage_error,
        Exception: _server_error})
    app.state.config = cfg
    app.state.admin_token = admin_token
    app.state.hasher = ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="hash")
    app.state.openapi = spec_json(routes).encode()
    return app
