"""``impasto serve``: a web page on this machine for ``transfer``, ``fast`` and ``video`` jobs, with a
queue and a history (the server is :mod:`impasto.serve`; Starlette and uvicorn, the ``serve`` extra)."""

from __future__ import annotations

import errno
import logging
import os
import socket
import sys
from pathlib import Path

from .main import add_config_options, config_from_args
from ..config import ServeConfig, check_options
from ..errors import ImpastoError


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="a web page on this machine: paint photos, watch them paint, keep the history",
                       description="Start a small web server for this machine's browser (127.0.0.1 only, "
                                   "unless --host says otherwise): upload a photo and paintings or pick the "
                                   "examples (or a short clip), paint by optimisation or with a fast model (bundled, or "
                                   "your own NAME.pt/.onnx in DATA/models), watch the live preview; jobs wait in a "
                                   "queue, and every job's inputs, settings, result and "
                                   "losses stay in the history under --data. Needs pip install 'impasto[serve]'.")
    add_config_options(p, ServeConfig)
    p.set_defaults(run=cmd_serve)


def data_folder(given: str | None) -> Path:
    """--data, or the user's data folder as the XDG base directory specification names it."""
    if given:
        return Path(given).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "impasto"


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (before any work, so a port in use is one line, not a traceback)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise ImpastoError(f"--host {host}: not an address of this machine ({exc.strerror})") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ImpastoError(f"--port {port}: already in use on {host}; choose another port") from None
        raise ImpastoError(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from None
    return sock


def cmd_serve(args) -> int:
    config = config_from_args(args, ServeConfig)
    check_options(config)
    try:
        import python_multipart  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise ImpastoError("impasto serve needs Starlette, uvicorn and python-multipart: "
                           "pip install 'impasto[serve]'") from None
    from ..serve.guard import address, is_loopback
    from ..serve.routes import create_app

    data = data_folder(config.data)
    sock = listen(config.host, config.port)
    try:
        app = create_app(data, host=config.host, port=config.port)
    except OSError as exc:
        sock.close()
        raise ImpastoError(f"--data {data}: cannot keep the history there ({exc.strerror or exc})") from None
    # asyncio warns "socket.send() raised exception." when a page closes while events are on their way
    # to it; the stream ends by itself at the next event (uvicorn reports the disconnect), so it is noise
    logging.getLogger("asyncio").setLevel(logging.ERROR)
    server = _server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                    timeout_graceful_shutdown=3), app)
    if not is_loopback(config.host):
        print(f"impasto: warning: listening on {config.host}: anyone who can reach this machine on port "
              f"{config.port} can use the server and see its history (it has no login)", file=sys.stderr)
    print(f"impasto: serving on {address(config.host, config.port)} (Ctrl-C to stop)", flush=True)
    print(f"impasto: history in {data}", flush=True)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn raises the Ctrl-C it handled again once it has stopped
        pass
    if not server.started:
        raise ImpastoError("the server did not start (the reason is above)")
    return 0


def _server(config, app):
    """uvicorn's server, which also ends the pages' event streams when asked to stop (Ctrl-C,
    SIGTERM), so that it stops at once instead of waiting for them to close."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            app.state.jobs.close_streams_threadsafe()
            super().handle_exit(sig, frame)

    return Server(config)
