"""``surgecast testbed``: run the reference e-Meterai-like service.

    surgecast testbed --port 0 --set issuer.workers=64 --set issuer.overload=shed

The first stdout line is ``listening on http://HOST:PORT``; a generated admin
token follows as ``admin token: ...``. See docs/testbed.md.
"""

from __future__ import annotations

import argparse
import os

from floor.errors import FieldError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``surgecast testbed``."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="bind address (default 127.0.0.1; a non-loopback address prints a warning)",
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port; 0 picks a free one (default 8080)"
    )
    parser.add_argument(
        "--db", default=None, help="SQLite file (default: a fresh file in a temporary directory)"
    )
    parser.add_argument("--config", default=None, help="TOML file overriding testbed/default.toml")
    parser.add_argument(
        "--admin-token",
        default=None,
        help="admin bearer token (default: $SURGECAST_ADMIN_TOKEN, else a random one printed)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, e.g. issuer.workers=64 (repeatable)",
    )
    parser.add_argument(
        "--issuer-workers", type=int, default=None, help="shorthand for --set issuer.workers=N"
    )
    parser.add_argument(
        "--issuer-service",
        default=None,
        metavar="DIST:MEAN[:SIGMA]",
        help="issuer service time, e.g. exponential:0.25 or lognormal:0.25:0.8",
    )
    parser.add_argument(
        "--overload",
        choices=["unbounded", "shed"],
        default=None,
        help="overload mode of both the issuer and the payments",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the service-time and fault draws"
    )


def _service_overrides(text: str) -> list[str]:
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise FieldError("--issuer-service", text, "write DIST:MEAN[:SIGMA], e.g. exponential:0.25")
    out = [f'issuer.service.distribution="{parts[0]}"']
    for key, raw in zip(("mean", "sigma"), parts[1:], strict=False):
        try:
            out.append(f"issuer.service.{key}={float(raw)!r}")
        except ValueError:
            raise FieldError("--issuer-service", text, f"{key} must be a number") from None
    return out


def overrides_from(args: argparse.Namespace) -> list[str]:
    """The ``--set`` list including the shorthand flags.

    >>> ns = argparse.Namespace(overrides=[], issuer_workers=8, issuer_service=None,
    ...                         overload="shed", seed=None)
    >>> overrides_from(ns)
    ['issuer.workers=8', 'issuer.overload="shed"', 'payments.overload="shed"']
    """
    out = list(args.overrides)
    if args.issuer_workers is not None:
        out.append(f"issuer.workers={args.issuer_workers}")
    if args.issuer_service:
        out += _service_overrides(args.issuer_service)
    if args.overload:
        out += [f'issuer.overload="{args.overload}"', f'payments.overload="{args.overload}"']
    if args.seed is not None:
        out.append(f"seed={args.seed}")
    return out


SQLITE_MAGIC = b"SQLite format 3\x00"


def check_db_file(path: str) -> None:
    """Refuse (exit 2) a --db that exists but is not an SQLite database, or cannot be written.

    >>> import tempfile; p = tempfile.mktemp(); _ = open(p, "w").write("hello")
    >>> check_db_file(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    floor.errors.FieldError: --db = '...': not an SQLite database (it does not start with ...
    """
    if os.path.isdir(path):
        raise FieldError(
            "--db", path, "is a directory; give a file path such as runs/testbed.sqlite"
        )
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
            raise FieldError("--db", path, "its folder is not writable; give another path")
        return
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise FieldError(
            "--db", path, f"cannot read it ({e.strerror}); give another path"
        ) from None
    if head != SQLITE_MAGIC:
        raise FieldError(
            "--db",
            path,
            "not an SQLite database (it does not start with 'SQLite format 3'); "
            "give a new path or a testbed database",
        )
    if not os.access(path, os.W_OK):
        raise FieldError("--db", path, "is read-only; give a writable database file")


def run(args: argparse.Namespace) -> int:
    """Start the testbed and serve until interrupted."""
    from testbed.config import load_config
    from testbed.server import serve

    if not 0 <= args.port <= 65535:
        raise FieldError("--port", args.port, "give a port in 0..65535 (0 picks a free one)")
    cfg = load_config(args.config, overrides_from(args))
    token = args.admin_token or os.environ.get("SURGECAST_ADMIN_TOKEN") or None
    if args.db is not None and not os.path.isdir(os.path.dirname(os.path.abspath(args.db))):
        raise FieldError(
            "--db", args.db, "its folder does not exist; create it or give another path"
        )
    if args.db is not None:
        check_db_file(args.db)
    from floor.children import watch_parent

    watch_parent()  # started by a harness that then died (even kill -9): stop, never linger
    serve(cfg, host=args.host, port=args.port, db_path=args.db, admin_token=token)
    return 0
