"""
The floor under a Twisted gateway: a twisted.web resource that forwards each GET to one backend
over shadowtwist's HTTP client and writes back the body, with nothing else (no routing, no
header rules, no JSON, no access log, no metrics, no deadline). With C{--shadow URL} it also
sends each GET to a shadow and reads its answer, throwing it away (no comparison, no record, no
bound): the floor under a shadow.

Usage::

    VENV/bin/python bench/minimal_proxy.py --port 9100 --backend http://127.0.0.1:9200
    VENV/bin/python bench/minimal_proxy.py --port 9100 --backend URL --shadow URL

Against the constant resource (C{constant_server.py}) it shows what parsing HTTP on both sides
costs; against the gateway, what the gateway's own work costs (C{bench/paired.py --a minimal}).
It listens on 127.0.0.1 only and stops by itself after C{--max-seconds}.
"""

from __future__ import annotations

import argparse
from typing import Any

from twisted.internet import reactor
from twisted.web import resource, server

from twisted.web.client import BrowserLikePolicyForHTTPS

from constant_server import QuietSite  # this directory is on the path when run as a script
from shadowtwist.httpclient import ConnectionPool, TCPEndpoints


class Forward(resource.Resource):
    """A leaf resource passing any GET on to the backend's same path."""

    isLeaf = True

    def __init__(self, pool: ConnectionPool, backend: bytes, shadow_pool: Any = None,
                 shadow: bytes = b"") -> None:
        super().__init__()
        self._pool = pool
        self._backend = backend
        self._shadow_pool = shadow_pool
        self._shadow = shadow

    def render_GET(self, request: server.Request) -> Any:
        """Forward (and copy to the shadow), then write the backend's body."""
        if self._shadow_pool is not None:
            copy = self._shadow_pool.request(b"GET", self._shadow + request.path, [(b"User-Agent", b"minimal")])
            copy.addCallback(lambda response: response.read()).addErrback(lambda failure: None)
        d = self._pool.request(b"GET", self._backend + request.path, [(b"User-Agent", b"minimal")])
        d.addCallback(lambda response: response.read())

        def write(result: tuple) -> None:
            if not request._disconnected:
                request.setHeader(b"content-type", b"application/json")
                request.write(result[0])
                request.finish()

        d.addCallback(write)
        d.addErrback(lambda failure: None if request._disconnected else (
            request.setResponseCode(502), request.finish()))
        return server.NOT_DONE_YET


def main() -> None:
    """Listen on 127.0.0.1 and forward until stopped or C{--max-seconds} have passed."""
    parser = argparse.ArgumentParser(description="minimal Twisted proxy (the floor under a gateway)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", required=True, help="e.g. http://127.0.0.1:9200")
    parser.add_argument("--shadow", default=None, help="also copy each GET to this backend")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    arguments = parser.parse_args()
    def new_pool(retry: bool) -> ConnectionPool:
        return ConnectionPool(reactor, TCPEndpoints(reactor, BrowserLikePolicyForHTTPS(), 30),
                              persistent=True, max_idle_per_host=256, idle_timeout=90, retry=retry)

    pool = new_pool(retry=True)
    shadow_pool = new_pool(retry=False) if arguments.shadow else None  # as the gateway's shadows
    site = QuietSite(Forward(pool, arguments.backend.encode("ascii"), shadow_pool,
                             (arguments.shadow or "").encode("ascii")))
    reactor.listenTCP(arguments.port, site, interface="127.0.0.1", backlog=1024)
    reactor.callLater(arguments.max_seconds, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main()
