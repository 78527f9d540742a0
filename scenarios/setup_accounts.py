"""The un-timed set-up of a rehearsal: accounts (and paid quota) of returning and stamp-only
applicants, made over the target's API before the arrivals start (`Rehearsal.setup_accounts`)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import gevent

from floor.jsonhttp import HttpError, JsonClient, RedirectRefused
from scenarios.conclude import SETUP_MAX_BYTES
from scenarios.journeys import Account, ApplicantPlan


def _http(host: str, method: str, path: str, body: Any = None, token: str | None = None,
          key: str | None = None, timeout: float = 10.0) -> tuple[int, dict[str, Any]]:
    """(status, JSON object) of one set-up request; (0, {}) when it failed, RedirectRefused
    propagates."""
    headers = {"Idempotency-Key": key} if key else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        json_body = {} if body is None and method != "GET" else body
        reply = JsonClient(host, deadline_s=timeout, max_bytes=SETUP_MAX_BYTES).request(
            method, path, json_body=json_body, headers=headers)
    except RedirectRefused:
        raise
    except HttpError:
        return 0, {}
    value = reply.json_or_none() if reply.status < 400 else None
    return reply.status, value if isinstance(value, dict) else {}


def prepare_account(host: str, plan: ApplicantPlan, *, with_quota: bool,
                    timeout_s: float = 30.0) -> Account | None:
    """Un-timed set-up: register (and for stamp_only buy quota) before the run; None if it
    failed."""
    ident = plan.identity
    code, body = _http(host, "POST", "/v1/accounts", {"nik": ident.nik, "name": ident.name,
                                                      "email": ident.email,
                                                        "phone": ident.phone,
                                                      "password": ident.password})
    if code != 201:
        return None
    account = Account(email=ident.email, password=ident.password,
                      account_id=body.get("account_id", ""))
    if not with_quota:
        return account
    code, body = _http(host, "POST", "/v1/sessions", {"email": ident.email,
                                                      "password": ident.password})
    token = body.get("token")
    if code != 200 or not token:
        return None
    key = uuid.uuid4().hex
    code, order = _http(host, "POST", "/v1/orders", {"quantity": plan.documents}, token, key=key)
    if code != 201:
        return None
    code, paid = _http(host, "POST", f"/v1/orders/{order['order_id']}/pay", {}, token)
    if code not in (200, 202):
        return None
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        code, q = _http(host, "GET", "/v1/quota", None, token)
        if code == 200 and int(q.get("available", 0)) >= plan.documents:
            account.quota = plan.documents
            plan.extra["setup_order"] = {"order_id": order["order_id"], "quantity": plan.documents,
                                         "amount": order.get("amount", ""),
                                         "quantity_told": order.get("quantity"),
                                         "payment_id": paid.get("payment_id", ""),
                                         "pay_status": code,
                                         "idempotency_key": key}
            return account
        gevent.sleep(0.2)
    return None
