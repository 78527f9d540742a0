"""Locust's failures in words: `LocustBadStatusCode(code=503)` becomes
"HTTP 503: service unavailable ...".

    >>> from reports.i18n import Translator
    >>> explain("LocustBadStatusCode(code=503)", Translator("en"))
    'HTTP 503: service unavailable: the server shed the load (queue full or paused)'
    >>> explain("HTTPError('429 Client Error')", Translator("id"))
    'HTTP 429: terlalu banyak permintaan: gerbang atau batas laju menolak pendaftar'
    >>> explain("ConnectionRefusedError(111, 'Connection refused')", Translator("en"))
    'the connection failed (refused or reset)'
"""

from __future__ import annotations

import re

from reports.i18n import Translator

_CODE = re.compile(r"(?:code=|status(?:_code)?=|\b)([1-5][0-9]{2}|0)\b")
_TIMEOUT = re.compile(r"timeout|timed out", re.I)
_CONNECTION = re.compile(r"connection|refused|reset|RemoteDisconnected|BrokenPipe", re.I)


def explain(error: str, tr: Translator) -> str:
    """One failure of locust_failures.csv (its Error column) in words of `tr`'s language."""
    if "BadStatusCode" in error or "HTTPError" in error or re.search(r"code=|status", error):
        m = _CODE.search(error)
        if m:
            code = m.group(1)
            key = f"http_{code}"
            meaning = tr.t(key) if tr.knows("http", code) else tr.t("http_other")
            return tr.t("err_http", code=code, meaning=meaning)
    if _TIMEOUT.search(error):
        return tr.t("err_timeout")
    if _CONNECTION.search(error):
        return tr.t("err_connection")
    return tr.t("err_raw", text=error)


def failure_rows(
    failures: list[dict[str, str]], tr: Translator, limit: int = 15
) -> list[dict[str, str]]:
    """The failures table: method, the journey step in words, the error in words (the raw text
    kept for a tooltip), count.

    >>> f = {"method": "POST", "name": "wait_quota", "error": "x", "occurrences": "2"}
    >>> failure_rows([f], Translator("id"))[0]["step"]
    'tunggu kuota'
    """
    return [
        {**f, "step": tr.label("step", f["name"]), "words": explain(f["error"], tr)}
        for f in failures[:limit]
    ]
