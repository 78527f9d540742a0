"""The admin handlers (`/admin/...`, admin token required): metrics, audit, ledger listing,
records, config, gates, faults, gateway confirmations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from floor.vocabulary import GATE_MODES, GATES
from testbed.app_context import config_of, ledger_of, require_admin
from testbed.audit import audit, ledger_listing, records
from testbed.metrics import metrics, prometheus
from testbed.validation import (
    ApiError,
    get_int,
    get_str,
    invalid,
    read_json,
)


async def admin_metrics(request: Request) -> Response:
    require_admin(request)
    m = metrics(ledger_of(request))
    fmt = request.query_params.get("format", "json")
    if fmt == "prometheus":
        return PlainTextResponse(prometheus(m), media_type="text/plain; version=0.0.4")
    if fmt != "json":
        raise invalid("format", 'format must be "json" or "prometheus"')
    return JSONResponse(m)


async def admin_audit(request: Request) -> Response:
    require_admin(request)
    async with ledger_of(request).store.quiesced():  # no write half-mirrored while it reads
        return JSONResponse(audit(ledger_of(request)))


async def admin_ledger(request: Request) -> Response:
    require_admin(request)
    async with ledger_of(request).store.quiesced():
        return JSONResponse(ledger_listing(ledger_of(request)))


async def admin_records(request: Request) -> Response:
    require_admin(request)
    return JSONResponse(records(ledger_of(request)))


async def admin_config(request: Request) -> Response:
    require_admin(request)
    return JSONResponse(config_of(request).to_dict())


async def admin_gates(request: Request) -> Response:
    require_admin(request)
    return JSONResponse({n: g.state() for n, g in ledger_of(request).gates.items()})


async def admin_set_gate(request: Request) -> Response:
    require_admin(request)
    name = request.path_params["name"]
    if name not in GATES:
        raise ApiError(
            404, "not_found", f"no gate {name!r}; gates: {', '.join(GATES)}", field="name"
        )
    body = await read_json(request, config_of(request).limits.max_json_bytes)
    mode = get_str(body, "mode", max_len=10)
    if mode not in GATE_MODES:
        raise invalid("mode", f"mode must be one of {', '.join(GATE_MODES)}")
    rate, burst = body.get("rate_per_s", 0.0), body.get("burst", 0)
    if mode == "rate":
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1e6:
            raise invalid("rate_per_s", "rate_per_s must be a number in (0, 1e6] for a rate gate")
        burst = get_int(body, "burst", lo=1, hi=10**6)
    gate = ledger_of(request).gates[name]
    gate.set(
        mode=mode,
        rate_per_s=float(rate) if mode == "rate" else 0.0,
        burst=burst if mode == "rate" else 0,
    )
    return JSONResponse({"gate": name, **gate.state()})


async def admin_faults(request: Request) -> Response:
    require_admin(request)
    led = ledger_of(request)
    return JSONResponse(led.faults.state(led.issuer, led.payments))


async def admin_set_faults(request: Request) -> Response:
    require_admin(request)
    body = await read_json(request, config_of(request).limits.max_json_bytes)
    led = ledger_of(request)
    return JSONResponse(led.faults.apply(body, led.issuer, led.payments))


async def admin_confirm(request: Request) -> Response:
    require_admin(request)
    body = await read_json(request, config_of(request).limits.max_json_bytes)
    pid = get_str(body, "payment_id", max_len=64)
    outcome = get_str(body, "outcome", max_len=16)
    if outcome not in ("confirmed", "failed"):
        raise invalid("outcome", 'outcome must be "confirmed" or "failed"')
    result = await ledger_of(request).deliver(pid, outcome)
    if result == "unknown":
        raise ApiError(404, "not_found", "no such payment", field="payment_id")
    return JSONResponse({"result": result})
