"""The OpenAPI 3 description of the testbed, built from one table.

``OPERATIONS`` (in ``testbed.openapi_operations``) describes every (method, path) of
``testbed.app.routes``; the app hands its routes
to ``spec_json`` (this module never imports the app). The spec is served at ``GET /openapi.json``
and written to ``docs/openapi.json`` by::

    python -m testbed --openapi docs/openapi.json      # (--openapi -: print it)

A test checks that the two are equal and that every route is described.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from testbed.openapi_operations import NS, OPERATIONS, S, _obj


def build_spec(paths: list[tuple[str, str]]) -> dict[str, Any]:
    """The OpenAPI document for the given (method, path) pairs.

    >>> build_spec([("GET", "/healthz")])["paths"]["/healthz"]["get"]["summary"]
    'Liveness'
    """
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "surgecast testbed",
            "version": "1",
            "description": "A reference e-Meterai-like service with a configured capacity. "
            "Errors are JSON {error, field, detail}; 429 and 503 carry Retry-After.",
        },
        "paths": {},
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "admin": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the admin token (--admin-token or SURGECAST_ADMIN_TOKEN)",
                },
            },
            "schemas": {"Error": _obj({"error": S, "field": NS, "detail": S})},
        },
    }
    for method, path in paths:
        spec["paths"].setdefault(path, {})[method.lower()] = OPERATIONS[(method, path)]
    return spec


def route_paths(routes: Sequence[Any]) -> list[tuple[str, str]]:
    """(method, path) of every route given (Starlette routes), HEAD left out.

    >>> from starlette.routing import Route
    >>> route_paths([Route("/healthz", lambda r: None, methods=["GET"])])
    [('GET', '/healthz')]
    """
    return [(m, r.path) for r in routes for m in sorted(r.methods or ()) if m != "HEAD"]


def spec_json(routes: Sequence[Any]) -> str:
    """The spec of these routes as the exact text kept in docs/openapi.json (``python -m testbed
    --openapi``)."""
    return json.dumps(build_spec(route_paths(routes)), indent=2, ensure_ascii=False) + "\n"
