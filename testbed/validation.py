"""Request parsing that never trusts its input: every refusal is an :class:`ApiError`.

An ApiError becomes a 4xx JSON body ``{"error": code, "field": name-or-null,
"detail": text}``. Bodies are read with a byte limit, refusing an over-long
Content-Length at once and cutting a chunked body off at the limit::

    >>> e = ApiError(422, "invalid_field", "give 16 digits", field="nik")
    >>> e.body()
    {'error': 'invalid_field', 'field': 'nik', 'detail': 'give 16 digits'}
"""

from __future__ import annotations

import asyncio
import json
import re
import unicodedata
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

# Patterns are applied with fullmatch (a trailing newline does not pass, unlike ``$`` with match).
EMAIL_RE = re.compile(
    r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+"
)
PHONE_RE = re.compile(r"(?:\+62|62|0)8[0-9]{7,12}")
IDEM_RE = re.compile(r"[\x21-\x7e]{1,128}")


class ApiError(Exception):
    """A refusal with an HTTP status, an error code, the field at fault, and extra headers."""

    def __init__(
        self,
        status: int,
        error: str,
        detail: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.field = field
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the refusal."""
        return {"error": self.error, "field": self.field, "detail": self.detail, **self.extra}


def too_large(limit: int, field: str | None = None) -> ApiError:
    """The 413 refusal for a body over ``limit`` bytes.

    >>> too_large(10).status
    413
    """
    return ApiError(
        413,
        "payload_too_large",
        f"the body is larger than {limit} bytes",
        field=field,
        headers={"Connection": "close"},
    )


async def limited_stream(
    request: Request, limit: int, field: str | None = None
) -> AsyncIterator[bytes]:
    """Yield the request body, refusing (413) as soon as it passes ``limit`` bytes.

    A declared Content-Length over the limit is refused before reading anything::

        async for chunk in limited_stream(request, 2 * 1024 * 1024, "document"): ...
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise ApiError(
                400, "invalid_header", "Content-Length must be a number", field="Content-Length"
            )
        if int(declared) > limit:
            raise too_large(limit, field)
    seen = 0
    loop = asyncio.get_running_loop()
    timeout_s = _body_timeout(request)
    deadline = loop.time() + timeout_s
    chunks = request.stream().__aiter__()
    while True:
        # The whole body must arrive by the deadline: a client trickling bytes (slow-body attack)
        # is answered 408 and disconnected instead of holding the connection for ever.
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(0.0, deadline - loop.time()))
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise ApiError(
                408,
                "request_timeout",
                f"the request body did not arrive within {timeout_s:g} s",
                field=field,
                headers={"Connection": "close"},
            ) from None
        seen += len(chunk)
        if seen > limit:
            raise too_large(limit, field)
        if chunk:
            yield chunk


def _body_timeout(request: Request) -> float:
    """``limits.body_timeout_s`` of the app's configuration (30 s when there is none)."""
    cfg = getattr(request.app.state, "config", None)
    return float(getattr(getattr(cfg, "limits", None), "body_timeout_s", 30.0))


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    """Read a JSON object body of at most ``limit`` bytes.

    Usage: ``body = await read_json(request, 16384)``.
    """
    chunks = [c async for c in limited_stream(request, limit)]
    raw = b"".join(chunks)
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    except RecursionError:
        raise ApiError(
            400, "invalid_json", "the body is nested too deeply; send a flat JSON object"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_json", "the body must be a JSON object")
    return body


def missing(field: str) -> ApiError:
    """The 422 refusal for a missing field."""
    return ApiError(422, "missing_field", f"{field} is required", field=field)


def invalid(field: str, detail: str) -> ApiError:
    """The 422 refusal for a field with a bad value.

    >>> invalid("quantity", "give an integer").field
    'quantity'
    """
    return ApiError(422, "invalid_field", detail, field=field)


def get_str(
    body: dict[str, Any],
    field: str,
    *,
    min_len: int = 1,
    max_len: int = 200,
    pattern: re.Pattern[str] | None = None,
    hint: str = "",
) -> str:
    """A required string field of bounded length, optionally matching ``pattern``.

    >>> get_str({"name": "Siti"}, "name")
    'Siti'
    """
    if field not in body or body[field] is None:
        raise missing(field)
    v = body[field]
    if not isinstance(v, str):
        raise invalid(field, f"{field} must be a string")
    if not min_len <= len(v) <= max_len:
        raise invalid(field, f"{field} must be {min_len} to {max_len} characters")
    if (problem := text_problem(v)) is not None:
        raise invalid(field, f"{field} {problem}")
    if pattern is not None and not pattern.fullmatch(v):
        raise invalid(field, hint or f"{field} has the wrong format")
    return v


def text_problem(v: str) -> str | None:
    """Why ``v`` is not clean text (a lone surrogate, a control character), or None.

    >>> text_problem("Siti Aminah"), text_problem("Siti\\n")
    (None, 'must not contain control characters (found U+000A)')
    >>> text_problem("\\ud800")
    'must be valid Unicode text (found a lone surrogate U+D800)'
    """
    for ch in v:
        cat = unicodedata.category(ch)
        if cat == "Cs":
            return f"must be valid Unicode text (found a lone surrogate U+{ord(ch):04X})"
        if cat == "Cc":
            return f"must not contain control characters (found U+{ord(ch):04X})"
    return None


def get_int(body: dict[str, Any], field: str, *, lo: int, hi: int) -> int:
    """A required integer field in [lo, hi] (booleans and floats refused).

    >>> get_int({"quantity": 2}, "quantity", lo=1, hi=100)
    2
    """
    if field not in body or body[field] is None:
        raise missing(field)
    v = body[field]
    if isinstance(v, bool) or not isinstance(v, int):
        raise invalid(field, f"{field} must be an integer")
    if not lo <= v <= hi:
        raise invalid(field, f"{field} must be between {lo} and {hi}")
    return v


def idempotency_key(request: Request) -> str:
    """The required Idempotency-Key header (1 to 128 printable ASCII characters)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        raise ApiError(
            400, "missing_header", "send an Idempotency-Key header", field="Idempotency-Key"
        )
    if not IDEM_RE.fullmatch(key):
        raise ApiError(
            400,
            "invalid_header",
            "Idempotency-Key must be 1 to 128 printable ASCII characters",
            field="Idempotency-Key",
        )
    return key


def media_type(request: Request) -> str:
    """The request's media type, lower-cased, without parameters (``Multipart/Form-Data; b=x`` ->
    ``multipart/form-data``).

    Media types are case-insensitive (RFC 9110 8.3.1).
    """
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def bearer(request: Request) -> str | None:
    """The bearer token of the Authorization header, or None."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
