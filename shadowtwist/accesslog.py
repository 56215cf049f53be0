# -*- test-case-name: tests.test_accesslog -*-
"""
The access log: one line per request in Twisted's combined log format, written in batches, or
none at all (C{router.disable_access_log}).

Twisted's own L{Site} sends every access line through the logging system as an event of its
own, which the benchmark's profile put at 10 % of the gateway's CPU on CPython and 18 % on PyPy;
L{BatchedLogSite} hands them to a L{LogBatch} instead.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.logger import Logger
from twisted.web import http

from shadowtwist.channel import GatewaySite
from shadowtwist.logbatch import LogBatch

_log = Logger(namespace="shadowtwist.access")


# Bytes Twisted's escaping (a repr() per field) would change; lines without any skip it.
_NEEDS_ESCAPE = re.compile(rb'[^\x20\x21\x23-\x5b\x5d-\x7e]')


def _escape(value: bytes) -> str:
    if _NEEDS_ESCAPE.search(value) is None:
        return value.decode("ascii")
    return http._escape(value)  # type: ignore[no-any-return]


def combined_log_line(timestamp: str, request: Any) -> str:
    """
    The access line of C{request} in Twisted's combined log format, the same text as
    C{twisted.web.http.combinedLogFormatter} writes, with its five C{repr()} escapes skipped
    for the fields that need none.
    """
    address = request.getClientAddress()
    ip = _escape(address.host.encode("ascii")) if isinstance(address, (IPv4Address, IPv6Address)) else "-"
    referrer = _escape(request.getHeader(b"referer") or b"-")
    agent = _escape(request.getHeader(b"user-agent") or b"-")
    return (f'"{ip}" - - {timestamp} "{_escape(request.method)} {_escape(request.uri)} '
            f'{_escape(request.clientproto)}" {request.code:d} {request.sentLength or "-"} '
            f'"{referrer}" "{agent}"')


class BatchedLogSite(GatewaySite):
    """
    A Site whose access lines are logged together (a L{LogBatch}), one event per interval
    with the lines in field C{access_lines}.
    """

    FLUSH_INTERVAL = 0.25
    MAX_PENDING = 1000

    def __init__(self, resource: Any, reactor: Any = None) -> None:
        super().__init__(resource, reactor=reactor)
        self._batch = LogBatch(_log, self.reactor, "access_lines", self.FLUSH_INTERVAL, self.MAX_PENDING)

    def log(self, request: Any) -> None:
        """
        Keep one request's access line for the next event.
        """
        if self._logFile is None:  # not started (no listener yet)
            return
        self._batch.add(combined_log_line(self._logDateTime, request))

    def flush(self) -> None:
        """
        Log every pending access line now.
        """
        self._batch.flush()

    def stopFactory(self) -> None:
        """
        Write what is pending before the Site stops.
        """
        self.flush()
        super().stopFactory()


class QuietSite(GatewaySite):
    """
    A Site without access log lines (C{router.disable_access_log}).
    """

    def log(self, request: Any) -> None:
        pass
