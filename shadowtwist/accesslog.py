# -*- test-case-name: tests.test_accesslog -*-
"""
The access log: one line per request in Twisted's combined log format, written in batches, or
none at all (C{router.disable_access_log}).

Twisted's own L{Site} sends every access line through the logging system as an event of its
own, which the benchmark's profile put at 10 % of the gateway's CPU on CPython and 18 % on PyPy;
L{BatchedLogSite} hands them to a L{LogBatch} instead.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.server import Site

from shadowtwist.logbatch import LogBatch

_log = Logger(namespace="shadowtwist.access")


class BatchedLogSite(Site):
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
        self._batch.add(self._logFormatter(self._logDateTime, request))

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


class QuietSite(Site):
    """
    A Site without access log lines (C{router.disable_access_log}).
    """

    def log(self, request: Any) -> None:
        pass
