"""What every handler reads from its request: the ledger, the config, the applicant (bearer
token), the admin token check, a gate's admission, the client's address, work off the loop."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any

from starlette.requests import Request

from testbed.config import TestbedConfig
from testbed.ledger import Ledger
from testbed.validation import (
    ApiError,
    bearer,
)


def ledger_of(request: Request) -> Ledger:
    return request.app.state.ledger


def config_of(request: Request) -> TestbedConfig:
    return request.app.state.config


def applicant_of(request: Request) -> str:
    """The account of a live bearer token, or 401 (missing, unknown, logged out or expired)."""
    token = bearer(request)
    account = ledger_of(request).account_for(token) if token else None
    if account is None:
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <token> from POST /v1/sessions "
            "(tokens end at logout and session_ttl_s after login)",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return account


def client_gone(request: Request) -> Callable[[], Any]:
    """An awaitable factory that completes when the client disconnects (the body already read)."""

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return gone


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def require_admin(request: Request) -> None:
    """401 unless the admin token is given."""
    token = bearer(request) or ""
    if not hmac.compare_digest(token.encode(), request.app.state.admin_token.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "send Authorization: Bearer <admin token>",
            field="Authorization",
            headers={"WWW-Authenticate": "Bearer"},
        )


def pass_gate(request: Request, name: str, *, consume: bool = True) -> None:
    refusal = ledger_of(request).gates[name].admit(consume=consume)
    if refusal is not None:
        raise ApiError(
            refusal.status,
            refusal.error,
            refusal.detail,
            headers={"Retry-After": str(refusal.retry_after)},
            extra={"gate": name},
        )


async def in_thread(request: Request, fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.get_running_loop().run_in_executor(request.app.state.hasher, fn, *args)
