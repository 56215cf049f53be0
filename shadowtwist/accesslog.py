# -*- test-case-name: tests.test_accesslog -*-
"""
The access log: one line per request in Twisted's combined log format, written in batches, or
none at all (C{router.disable_access_log}).

Twisted's own L{Site} sends every access line through the logging system as an event of its
own; the benchmark's profile put that at 10 % of the gateway's CPU on CPython and 18 % on PyPy
(mostly formatting each event's timestamp). L{BatchedLogSite} collects the lines and emits them
together, at most every L{BatchedLogSite.FLUSH_INTERVAL} seconds, as one event.
"""

from __future__ import annotations

from typing import Any, List, Optional

from twisted.logger import Logger
from twisted.web.server import Site

_log = Logger(namespace="shadowtwist.access")


class BatchedLogSite(Site):
    """
    A Site whose access lines are logged together, one event per interval.
    """

    FLUSH_INTERVAL = 0.25
    MAX_PENDING = 1000

    def __init__(self, resource: Any, reactor: Any = None) -> None:
        super().__init__(resource, reactor=reactor)
        self._pending: List[str] = []
        self._flush_call: Optional[Any] = None

    def log(self, request: Any) -> None:
        """
        Keep one request's access line for the next flush.
        """
        if self._logFile is None:  # not started (no listener yet)
            return
        self._pending.append(self._logFormatter(self._logDateTime, request))
        if len(self._pending) >= self.MAX_PENDING:
            self.flush()
        elif self._flush_call is None:
            self._flush_call = self.reactor.callLater(self.FLUSH_INTERVAL, self.flush)

    def flush(self) -> None:
        """
        Log every pending access line now, as one event (field C{access_lines}).
        """
        if self._flush_call is not None and self._flush_call.active():
            self._flush_call.cancel()
        self._flush_call = None
        if self._pending:
            lines, self._pending = self._pending, []
            _log.info("{access_lines}", access_lines="\n".join(lines), requests=len(lines))

    def stopFactory(self) -> None:
        """
        Write what is pending before the Site stops.
        """
        self.flush()
        super().stopFactory()


class QuietSite(Site):
    """
    A Site without access log lines (C{router.disable_access_log}).
    """

    def log(self, request: Any) -> None:
        pass
