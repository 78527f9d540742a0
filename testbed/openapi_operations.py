"""Every operation of the testbed's API as OpenAPI 3 data (summary, security, request body,
responses), keyed by (method, path), with the schemas they share;  builds
the document from the routes the app serves."""

from __future__ import annotations

from typing import Any

from floor.vocabulary import GATE_MODES
from testbed.faults import request_schema as fault_request_schema

ERR = {"$ref": "#/components/schemas/Error"}

S, INT, B, N = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


NS = {"type": ["string", "null"]}


def _json(schema: dict[str, Any], desc: str) -> dict[str, Any]:
    return {"description": desc, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "malformed body or header",
        401: "missing or wrong token",
        402: "no quota available",
        404: "no such resource (or another applicant's)",
        409: "conflict",
        413: "body too large",
        415: "not a PDF / not multipart",
        422: "a field is missing or invalid",
        429: "rate gate: bucket empty, or too many failed logins (Retry-After)",
        503: "gate closed or queue full when shedding (Retry-After)",
    }
    return {str(c): _json(ERR, text[c]) for c in codes}


RESOURCE = _obj(
    {k: INT for k in ("queue_depth", "busy", "workers", "completed", "failed", "shed")}
    | {"paused": B, "slow_factor": N}
)


GATE = _obj(
    {"mode": {"type": "string", "enum": list(GATE_MODES)}, "rate_per_s": N, "burst": INT}
)


ORDER = _obj(
    {
        "order_id": S,
        "quantity": INT,
        "amount": INT,
        "status": {"type": "string", "enum": ["pending_payment", "paying", "paid", "failed"]},
        "payment_id": NS,
    },
    ["order_id", "amount", "status"],
)


STAMP = _obj(
    {
        "stamp_id": S,
        "status": {"type": "string", "enum": ["queued", "processing", "done", "failed"]},
        "serial_number": NS,
    },
    ["stamp_id", "status"],
)


APPLICANT = [{"bearer": []}]


IDEM = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "schema": S,
    "description": "the same key returns the same result, never a second order or stamp",
}


OPERATIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/healthz"): {
        "summary": "Liveness",
        "responses": {"200": _json(_obj({"status": S}), "ok")},
    },
    ("GET", "/openapi.json"): {
        "summary": "This description",
        "responses": {"200": {"description": "OpenAPI 3"}},
    },
    ("POST", "/v1/accounts"): {
        "summary": "Register an applicant (gate: registration)",
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _obj(
                        {
                            "nik": {
                                "type": "string",
                                "pattern": "^[0-9]{16}$",
                                "description": "date part DDMMYY real; day + 40 for women",
                            },
                            "name": S,
                            "email": S,
                            "phone": {
                                "type": "string",
                                "description": "Indonesian mobile, e.g. 081234567890",
                            },
                            "password": {"type": "string", "minLength": 8, "maxLength": 128},
                        }
                    )
                }
            },
        },
        "responses": {"201": _json(_obj({"account_id": S}), "created")}
        | _errors(400, 409, 413, 422, 429, 503),
    },
    ("POST", "/v1/sessions"): {
        "summary": "Log in; returns a bearer token",
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _obj({"email": S, "password": S})}},
        },
        "responses": {
            "200": _json(
                _obj({"token": S, "account_id": S, "expires_in": INT}, ["token"]),
                "logged in; the token works for expires_in seconds (security.session_ttl_s)",
            )
        }
        | _errors(400, 401, 413, 422, 429),
    },
    ("POST", "/v1/logout"): {
        "summary": "Log out: the bearer token stops working at once",
        "security": APPLICANT,
        "responses": {"204": {"description": "logged out"}} | _errors(401),
    },
    ("GET", "/v1/quota"): {
        "summary": "The applicant's e-Meterai quota",
        "security": APPLICANT,
        "responses": {
            "200": _json(
                _obj(
                    {"available": INT, "used": INT, "pending": INT, "reserved": INT},
                    ["available", "used", "pending"],
                ),
                "pending = quota in orders whose payment awaits confirmation; "
                "reserved = quota held by stamp jobs queued or processing",
            )
        }
        | _errors(401),
    },
    ("POST", "/v1/orders"): {
        "summary": "Order quota (gate: ordering)",
        "security": APPLICANT,
        "parameters": [IDEM],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _obj({"quantity": INT})}},
        },
        "responses": {"201": _json(ORDER, "created, or the order made with this key")}
        | _errors(400, 401, 409, 413, 422, 429, 503),
    },
    ("GET", "/v1/orders/{order_id}"): {
        "summary": "One order",
        "security": APPLICANT,
        "responses": {"200": _json(ORDER, "the order")} | _errors(401, 404),
    },
    ("POST", "/v1/orders/{order_id}/pay"): {
        "summary": "Pay an order (gate: ordering); the gateway confirms asynchronously",
        "security": APPLICANT,
        "responses": {
            "202": _json(_obj({"order_id": S, "payment_id": S, "status": S}), "payment in flight"),
            "200": _json(_obj({"order_id": S, "payment_id": S, "status": S}), "already paid"),
        }
        | _errors(401, 404, 429, 503),
    },
    ("POST", "/v1/stamps"): {
        "summary": "Stamp a PDF (gate: stamping); reserves one quota",
        "security": APPLICANT,
        "parameters": [IDEM],
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": _obj(
                        {
                            "document": {
                                "type": "string",
                                "format": "binary",
                                "description": "a PDF, at most limits.max_upload_bytes",
                            }
                        }
                    )
                }
            },
        },
        "responses": {"202": _json(STAMP, "accepted, or the job made with this key")}
        | _errors(400, 401, 402, 409, 413, 415, 422, 429, 503),
    },
    ("GET", "/v1/stamps/{stamp_id}"): {
        "summary": "One stamp job",
        "security": APPLICANT,
        "responses": {"200": _json(STAMP, "the job")} | _errors(401, 404),
    },
    ("GET", "/v1/stamps/{stamp_id}/document"): {
        "summary": "The stamped PDF carrying its serial number",
        "security": APPLICANT,
        "responses": {"200": {"description": "PDF", "content": {"application/pdf": {}}}}
        | _errors(401, 404, 409),
    },
    ("GET", "/admin/metrics"): {
        "summary": "Resources, counts and gates (?format=prometheus for text)",
        "security": [{"admin": []}],
        "parameters": [
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": ["json", "prometheus"]},
            }
        ],
        "responses": {
            "200": _json(
                _obj(
                    {
                        "time": S,
                        "resources": _obj({"issuer": RESOURCE, "payments": RESOURCE}),
                        "counts": {"type": "object"},
                        "gates": {"type": "object", "additionalProperties": GATE},
                    }
                ),
                "metrics",
            )
        }
        | _errors(401),
    },
    ("GET", "/admin/audit"): {
        "summary": "Ledger invariants",
        "security": [{"admin": []}],
        "responses": {
            "200": _json(
                _obj(
                    {
                        "balanced": B,
                        "checks": {
                            "type": "array",
                            "items": _obj({"name": S, "ok": B, "detail": S}),
                        },
                        "totals": {"type": "object"},
                    }
                ),
                "audit",
            )
        }
        | _errors(401),
    },
    ("GET", "/admin/ledger"): {
        "summary": "Every order, stamp and account (reconciliation)",
        "security": [{"admin": []}],
        "responses": {
            "200": _json(
                _obj(
                    {
                        "orders": {"type": "array"},
                        "stamps": {"type": "array"},
                        "accounts": {"type": "array"},
                    }
                ),
                "ledger",
            )
        }
        | _errors(401),
    },
    ("GET", "/admin/records"): {
        "summary": "The durable state from SQLite: every order, payment, credit and stamp job "
        "with states, amounts, "
        "quantities, serial numbers and Idempotency-Keys, and each account's stored quota "
        "(reconciliation)",
        "security": [{"admin": []}],
        "responses": {
            "200": _json(
                _obj(
                    {
                        "time": S,
                        "orders": {"type": "array"},
                        "payments": {"type": "array"},
                        "credits": {"type": "array"},
                        "stamps": {"type": "array"},
                        "accounts": {"type": "array"},
                    }
                ),
                "records",
            )
        }
        | _errors(401),
    },
    ("GET", "/admin/config"): {
        "summary": "The effective configuration",
        "security": [{"admin": []}],
        "responses": {"200": _json({"type": "object"}, "config")} | _errors(401),
    },
    ("GET", "/admin/gates"): {
        "summary": "All gates",
        "security": [{"admin": []}],
        "responses": {"200": _json({"type": "object", "additionalProperties": GATE}, "gates")}
        | _errors(401),
    },
    ("PUT", "/admin/gates/{name}"): {
        "summary": "Set a gate (registration | ordering | stamping)",
        "security": [{"admin": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _obj(
                        {"mode": GATE["properties"]["mode"], "rate_per_s": N, "burst": INT},
                        ["mode"],
                    )
                }
            },
        },
        "responses": {"200": _json(GATE, "the gate's new state")} | _errors(400, 401, 404, 422),
    },
    ("GET", "/admin/faults"): {
        "summary": "Fault switches",
        "security": [{"admin": []}],
        "responses": {"200": _json({"type": "object"}, "faults")} | _errors(401),
    },
    ("POST", "/admin/faults"): {
        "summary": "Inject or clear faults",
        "security": [{"admin": []}],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": fault_request_schema()}},
        },
        "responses": {"200": _json({"type": "object"}, "the new fault state")}
        | _errors(400, 401, 422),
    },
    ("POST", "/admin/gateway/confirmations"): {
        "summary": "Deliver one payment-gateway confirmation by hand (tests, drills)",
        "security": [{"admin": []}],
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": _obj(
                        {
                            "payment_id": S,
                            "outcome": {"type": "string", "enum": ["confirmed", "failed"]},
                        }
                    )
                }
            },
        },
        "responses": {
            "200": _json(_obj({"result": S}), "applied | duplicate | late_failure | extra_charge")
        }
        | _errors(400, 401, 404, 422),
    },
}
