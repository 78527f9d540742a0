"""Run the testbed under uvicorn (uvloop + httptools), one process, one event loop.

The socket is bound before the server starts, so ``port=0`` gets a free port
whose number is known; once the app's state is loaded the first stdout line is
``listening on http://HOST:PORT`` (flushed), then ``admin token: ...`` if the
token was generated::

    serve(load_config(), host="127.0.0.1", port=0, db_path=None, admin_token=None)
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
from typing import Any

import uvicorn

from floor.errors import FieldError
from floor.netaddr import is_loopback
from testbed.app import create_app
from testbed.config import TestbedConfig
from testbed.header_timeout import protocol_with_header_timeout


def bind(host: str, port: int) -> socket.socket:
    """Bind and listen on (host, port); port 0 picks a free port.

    >>> s = bind("127.0.0.1", 0); s.getsockname()[1] > 0; s.close()
    True
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def url_of(host: str, port: int) -> str:
    """The base URL of a bound address.

    >>> url_of("::1", 8080)
    'http://[::1]:8080'
    """
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(cfg: TestbedConfig, *, host: str, port: int, db_path: str | None,
          admin_token: str | None) -> None:
    """Bind, print the first line(s), and serve until SIGINT/SIGTERM."""
    try:
        sock = bind(host, port)
    except OSError as e:
        raise FieldError(
            "--port", port, f"cannot listen on {host}:{port} ({e.strerror}); try --port 0"
        ) from None
    url = url_of(host, sock.getsockname()[1])
    generated = admin_token is None
    token = admin_token or secrets.token_hex(24)
    if db_path is None:
        db_path = os.path.join(tempfile.mkdtemp(prefix="surgecast-testbed-"), "testbed.sqlite")
    if not is_loopback(host):
        print(
            f"warning: listening on non-loopback address {host}; "
            "anyone who can reach it can load it",
            file=sys.stderr,
            flush=True,
        )

    def ready() -> None:
        print(f"listening on {url}", flush=True)
        if generated:
            print(f"admin token: {token}", flush=True)
        print(f"database: {db_path}", file=sys.stderr, flush=True)

    app: Any = create_app(cfg, db_path=db_path, admin_token=token, on_ready=ready)
    if cfg.latency_law.enabled:
        from testbed.latency_law import LatencyLawMiddleware

        app = LatencyLawMiddleware(app, cfg.latency_law, admin_token=token)
    config = uvicorn.Config(
        app,
        loop="uvloop",
        http=protocol_with_header_timeout(cfg.limits.header_timeout_s),
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
        timeout_keep_alive=30,
        backlog=2048,
        timeout_graceful_shutdown=3,
    )
    uvicorn.Server(config).run(sockets=[sock])
