"""
The interpreter's ceiling: a twisted.web resource that answers every request with a constant JSON.

Usage::

    VENV/bin/python bench/constant_server.py --port 9100

No routing, no access log, no backend: what is left is Twisted's own HTTP server on this
interpreter, which is what a gateway that parses HTTP on both sides can at best approach. It listens
on 127.0.0.1 only and stops by itself after C{--max-seconds}.
"""

from __future__ import annotations

import argparse

from twisted.internet import reactor
from twisted.web import resource, server

BODY = b'{"hello":"world","n":1}'


class ConstantJSON(resource.Resource):
    """A leaf resource answering any GET with L{BODY}."""

    isLeaf = True

    def render_GET(self, request: server.Request) -> bytes:
        """Answer with the constant body."""
        request.setHeader(b"content-type", b"application/json")
        return BODY


class QuietSite(server.Site):
    """A site without an access log, so that only HTTP handling is measured."""

    def log(self, request: server.Request) -> None:
        """Log nothing."""


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description="constant-JSON twisted.web server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long")
    return parser.parse_args()


def main() -> None:
    """Listen on 127.0.0.1 and serve until stopped or C{--max-seconds} have passed."""
    arguments = parse_arguments()
    site = QuietSite(ConstantJSON())
    reactor.listenTCP(arguments.port, site, interface="127.0.0.1", backlog=1024)
    reactor.callLater(arguments.max_seconds, reactor.stop)
    reactor.run()


if __name__ == "__main__":
    main()
