"""The first rule every request to ``impasto serve`` passes (:class:`Guard`, ASGI middleware), before
any route sees it:

- the Host header must name this server (127.0.0.1, localhost, [::1] or --host, with its port), so a
  page elsewhere cannot reach it through a DNS name of its own pointed at 127.0.0.1 (DNS rebinding);
- a request with an Origin header must come from a page of this server (no other site may post);
- a POST is JSON or a multipart upload (a plain cross-site form cannot send either without an Origin);

and every answer carries headers that keep other sites from framing the page or embedding its images.
"""

from __future__ import annotations

import contextlib
import socket

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse

from .limits import Refused


def own_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values that name this server: the loopback names and ``host``, with the port
    (also without it on port 80). Listening on every interface (0.0.0.0, ::) adds this machine's
    host name and its addresses."""
    names = {"127.0.0.1", "localhost", "[::1]", _bracket(host)}
    if host in ("0.0.0.0", "::", ""):
        hostname = socket.gethostname()
        names |= {hostname, socket.getfqdn()}
        with contextlib.suppress(OSError):
            names |= {_bracket(info[4][0]) for info in socket.getaddrinfo(hostname, None)}
    names = {n.lower() for n in names if n}
    hosts = {f"{n}:{port}" for n in names}
    return frozenset(hosts | names if port == 80 else hosts)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def address(host: str, port: int) -> str:
    """The page's address for a server listening on ``host:port`` (an IPv6 host in brackets)."""
    return f"http://{_bracket(host)}:{port}/"


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: the Host, Origin and POST Content-Type rules, and headers that keep other
    sites from framing the page or embedding its images."""

    HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer",
               "cross-origin-resource-policy": "same-origin"}

    def __init__(self, app, hosts: frozenset[str], address: str):
        self.app, self.hosts, self.address = app, hosts, address
        self.origins = frozenset(f"http://{h}" for h in hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope["method"], Headers(scope=scope))
        if refusal is not None:
            return await JSONResponse({"error": refusal.message}, refusal.status)(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in self.HEADERS.items():
                    headers.setdefault(k, v)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, method: str, headers: Headers) -> Refused | None:
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return Refused(403, f"this server answers only at its own address ({self.address}), not as '{host}'")
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            return Refused(403, f"requests from {origin} are refused: only this server's own page may use it")
        if method == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in ("application/json", "multipart/form-data"):
                return Refused(415, "a POST must be application/json or multipart/form-data")
        return None

