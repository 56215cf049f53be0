"""
Tests for L{shadowtwist.accesslog}: access lines written in batches.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from shadowtwist.accesslog import BatchedLogSite
from tests.support import capture_events


class BatchedLogSiteTests(SynchronousTestCase):
    """
    One log event per interval, every line in it, nothing lost at stop.
    """

    def setUp(self):
        self.events = capture_events(self, "shadowtwist.access")
        self.clock = Clock()
        self.site = BatchedLogSite(Resource(), reactor=self.clock)
        self.site.startFactory()

    def request(self, path):
        request = DummyRequest([path])
        request.uri = b"/" + path
        request.method = b"GET"
        request.clientproto = b"HTTP/1.1"
        request.code = 200
        request.sentLength = 2
        return request

    def test_batched(self):
        """
        Lines are held until the interval ends, then logged as one event with every line in
        Twisted's combined format.
        """
        for path in (b"a", b"b", b"c"):
            self.site.log(self.request(path))
        self.assertEqual(self.events, [])
        self.clock.advance(BatchedLogSite.FLUSH_INTERVAL)
        [event] = self.events
        lines = event["access_lines"].split("\n")
        self.assertEqual(len(lines), 3)
        self.assertEqual(event["count"], 3)
        self.assertIn('"GET /a HTTP/1.1" 200 2', lines[0])
        self.assertIn('"GET /c HTTP/1.1" 200 2', lines[2])

    def test_flushed_at_stop(self):
        """
        Stopping the Site writes what is pending and leaves no timer behind.
        """
        self.site.log(self.request(b"x"))
        self.site.stopFactory()
        self.assertEqual(len(self.events), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bounded(self):
        """
        At MAX_PENDING lines the batch is written at once, so memory stays bounded.
        """
        for _ in range(BatchedLogSite.MAX_PENDING):
            self.site.log(self.request(b"y"))
        self.assertEqual(len(self.events), 1)
        self.assertEqual(self.events[0]["count"], BatchedLogSite.MAX_PENDING)


class CombinedLineTests(SynchronousTestCase):
    """
    L{combined_log_line} writes exactly what Twisted's combined formatter writes.
    """

    def test_same_as_twisted(self):
        """
        Plain fields, quotes, backslashes, non-ASCII and control bytes, an empty length.
        """
        from twisted.internet.address import IPv4Address, UNIXAddress
        from twisted.web.http import combinedLogFormatter

        from shadowtwist.accesslog import combined_log_line

        cases = [(b"/a?b=1", b"curl/8.0", None, 200, 12),
                 (b'/q"uote\\s', b'agent "x" \xc3\xa9\t', b"http://r/'it's'", 404, 0),
                 (b"/\x00\x7f", b"", b"-", 500, None)]
        for uri, agent, referrer, code, length in cases:
            request = DummyRequest([b""])
            request.uri = uri
            request.method = b"GET"
            request.clientproto = b"HTTP/1.1"
            request.code = code
            request.sentLength = length
            request.client = IPv4Address("TCP", "10.0.0.1", 1234)
            if agent:
                request.requestHeaders.setRawHeaders(b"user-agent", [agent])
            if referrer:
                request.requestHeaders.setRawHeaders(b"referer", [referrer])
            stamp = "[27/Nov/2026:01:00:00 +0000]"
            self.assertEqual(combined_log_line(stamp, request), combinedLogFormatter(stamp, request))
        request.client = UNIXAddress(b"/sock")
        self.assertEqual(combined_log_line(stamp, request), combinedLogFormatter(stamp, request))

