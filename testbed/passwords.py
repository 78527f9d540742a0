"""Salted password hashing (scrypt or PBKDF2-HMAC-SHA256) with constant-time checks.

Hashes are self-describing strings, so a changed cost still verifies old hashes::

    >>> from testbed.config import SecurityConfig
    >>> cfg = SecurityConfig(password_hash="pbkdf2", pbkdf2_iterations=1000)
    >>> h = hash_password("rahasia123", cfg)
    >>> h.startswith("pbkdf2_sha256$1000$"), verify_password("rahasia123", h)
    (True, True)
    >>> verify_password("x", h)
    False

Both functions are CPU-bound (tens of ms at the default cost): call them in a
thread (``loop.run_in_executor``) so the event loop keeps serving.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from testbed.config import SecurityConfig


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def hash_password(password: str, cfg: SecurityConfig) -> str:
    """Hash ``password`` with a fresh 16-byte salt; see the module docstring."""
    salt = secrets.token_bytes(16)
    pw = password.encode("utf-8")
    if cfg.password_hash == "scrypt":
        n, r, p = cfg.scrypt_n, cfg.scrypt_r, cfg.scrypt_p
        dk = hashlib.scrypt(pw, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)
        return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(dk)}"
    it = cfg.pbkdf2_iterations
    dk = hashlib.pbkdf2_hmac("sha256", pw, salt, it, dklen=32)
    return f"pbkdf2_sha256${it}${_b64(salt)}${_b64(dk)}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches the ``stored`` hash (constant-time compare)."""
    parts = stored.split("$")
    pw = password.encode("utf-8")
    if parts[0] == "scrypt" and len(parts) == 6:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, want = base64.b64decode(parts[4]), base64.b64decode(parts[5])
        got = hashlib.scrypt(
            pw, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=len(want)
        )
    elif parts[0] == "pbkdf2_sha256" and len(parts) == 4:
        salt, want = base64.b64decode(parts[2]), base64.b64decode(parts[3])
        got = hashlib.pbkdf2_hmac("sha256", pw, salt, int(parts[1]), dklen=len(want))
    else:
        return False
    return hmac.compare_digest(got, want)
