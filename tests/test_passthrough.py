"""
Tests for L{shadowtwist.passthrough}: no-op endpoints relay the backend's answer unchanged and
streamed, and may have shadows compared on raw bytes.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from tests.support import FakeBackends, Harness, body_of, document, shadow_backend


def noop_harness(shadow=None, **endpoint):
    """
    A gateway with one no-op endpoint C{/raw} on backend path C{/b} (plus an optional shadow).
    """
    backends = [{"url_pattern": "/b"}] + ([shadow] if shadow else [])
    entry = {"endpoint": "/raw", "method": "POST", "output_encoding": "no-op", "timeout": "1s",
             "backend": backends}
    entry.update(endpoint)
    shadows = FakeBackends()
    return Harness(document(entry), shadow_backends=shadows, rng=random.Random(1)), shadows


class RelayTests(SynchronousTestCase):
    """
    Status, headers and body reach the client unchanged.
    """

    def test_unchanged(self):
        """
        A POST to a no-op endpoint gets the backend's status, body byte for byte, Content-Type,
        every Set-Cookie, X-Krakend-Completed false and no Cache-Control.
        """
        harness, _ = noop_harness(cache_ttl="1h")
        harness.backends.route("/b", lambda seen: (
            201, {"Content-Type": "application/json", "Set-Cookie": ["a=1", "b=2"]}, seen.body + b"\n"))
        response = self.successResultOf(harness.request("POST", "/raw", data=b'{"echo": 1.50}'))
        self.assertEqual(response.code, 201)
        self.assertEqual(body_of(self, harness, response), b'{"echo": 1.50}\n')
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/json"])
        self.assertEqual(response.headers.getRawHeaders("set-cookie"), ["a=1", "b=2"])
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["false"])
        self.assertIsNone(response.headers.getRawHeaders("cache-control"))

    def test_error_status_relayed(self):
        """
        A backend 404 comes back as that 404 with its body.
        """
        harness, _ = noop_harness()
        harness.backends.route("/b", (404, {"Content-Type": "text/plain"}, b"nothing here"))
        response = self.successResultOf(harness.request("POST", "/raw"))
        self.assertEqual(response.code, 404)
        self.assertEqual(body_of(self, harness, response), b"nothing here")

    def started_stream(self, header, value):
        """
        A no-op request whose backend has sent one header and the first bytes, and holds the
        rest: (harness, the backend's request, the client's response).
        """
        harness, _ = noop_harness()
        harness.backends.route("/b", None)
        d = harness.request("POST", "/raw")
        [backend_request] = harness.backends.pending
        backend_request.setHeader(header, value)
        backend_request.write(b"first ")
        harness.pump()
        return harness, backend_request, self.successResultOf(d)

    def test_streamed(self):
        """
        The client gets the status and first bytes while the backend is still sending.
        """
        harness, backend_request, response = self.started_stream(b"content-type", b"text/plain")
        self.assertEqual(response.code, 200)
        collected = []
        response.deliverBody(_Collect(collected))
        harness.pump()
        self.assertEqual(collected, [b"first "])
        backend_request.write(b"second")
        backend_request.finish()
        harness.pump()
        self.assertEqual(b"".join(collected), b"first second")

    def test_cut_body_drops_the_connection(self):
        """
        A body still streaming at the endpoint deadline is cut and the client connection
        dropped, so the short body can never pass for a complete one.
        """
        from twisted.web.client import ResponseFailed

        harness, _, response = self.started_stream(b"content-length", b"100")
        body = response.content()
        harness.clock.advance(1.1)
        harness.pump()
        self.failureResultOf(body, ResponseFailed)

    def test_unreachable(self):
        """
        A backend that does not answer in time gives 500 at the endpoint deadline.
        """
        harness, _ = noop_harness()
        harness.backends.route("/b", None)
        d = harness.request("POST", "/raw")
        self.assertNoResult(d)
        harness.clock.advance(1.1)
        harness.pump()
        self.assertEqual(self.successResultOf(d).code, 500)


class NoopShadowTests(SynchronousTestCase):
    """
    A no-op endpoint may have a shadow (KrakenD refuses this); it is compared on raw bytes.
    """

    def test_raw_comparison(self):
        """
        The shadow gets a copy; equal bytes match, different bytes mismatch; the client gets the
        primary's bytes either way.
        """
        harness, shadows = noop_harness(shadow_backend("/s", allow_unsafe=True))
        harness.backends.route("/b", (200, {"Content-Type": "text/plain"}, b"v1 answer"))
        shadows.route("/s", (200, {"Content-Type": "text/plain"}, b"v1 answer"))
        response = self.successResultOf(harness.request("POST", "/raw", data=b"payload"))
        self.assertEqual(body_of(self, harness, response), b"v1 answer")
        shadows.route("/s", (200, {"Content-Type": "text/plain"}, b"v2 answer"))
        response = self.successResultOf(harness.request("POST", "/raw", data=b"payload"))
        self.assertEqual(body_of(self, harness, response), b"v1 answer")
        self.assertEqual([s.body for s in shadows.seen], [b"payload", b"payload"])
        snapshot = harness.gateway.shadows.registry.snapshot(0.0)
        [stats] = snapshot["endpoints"]["POST /raw"].values()
        self.assertEqual(stats["compare"]["match"], 1)
        self.assertEqual(stats["compare"]["mismatch"], 1)


class _Collect:
    """
    A protocol collecting body chunks as they arrive.
    """

    def __init__(self, chunks):
        self.chunks = chunks

    def makeConnection(self, transport):
        pass

    def dataReceived(self, data):
        self.chunks.append(data)

    def connectionLost(self, reason):
        pass
