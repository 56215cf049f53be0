"""
Tests for L{shadowtwist.httpclient}: the wire format, body framing, the pool's reuse, retry,
idle and close rules, and bounded reads. No sockets: connections run over C{StringTransport}.
"""

from __future__ import annotations

import gzip

from twisted.internet import tcp
from twisted.internet.defer import CancelledError, succeed
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import PotentialDataLoss, ResponseDone, ResponseFailed

from shadowtwist.httpclient import ConnectionPool, MalformedResponse, parse_head, request_head, split_url
from shadowtwist.tcpio import READ_MIN
from tests.test_tcpio import FakeSocket

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\nhello"


class FakeEndpoints:
    """
    Endpoints whose connections are C{StringTransport}s the test reads and feeds.
    """

    def __init__(self):
        self.connections = []
        self.keys = []

    def __call__(self, scheme, host, port):
        self.keys.append((scheme, host, port))
        return self

    def connect(self, factory):
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        self.connections.append(protocol)
        return succeed(protocol)

    def sent(self, index=-1):
        return self.connections[index].transport.value()

    def answer(self, data, index=-1):
        self.connections[index].dataReceived(data)

    def drop(self, index=-1):
        self.connections[index].connectionLost(Failure(ConnectionDone()))


class TCPEndpoints(FakeEndpoints):
    """
    Endpoints whose connections are Twisted TCP transports over L{FakeSocket}s.
    """

    def connect(self, factory):
        protocol = factory.buildProtocol(None)
        transport = tcp.Connection(FakeSocket(), protocol, MemoryReactor())
        transport.connected = True
        protocol.makeConnection(transport)
        self.connections.append(protocol)
        return succeed(protocol)


def reading_a_partial_body(case):
    """
    A read under way: 4 of the 10 announced body bytes have arrived.

    @return: the read's Deferred and the endpoints.
    """
    pool, endpoints, _ = make_pool()
    d = pool.request(b"GET", b"http://h/x", [])
    endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nsome")
    return case.successResultOf(d).read(), endpoints


def make_pool(**kwargs):
    clock = Clock()
    endpoints = FakeEndpoints()
    return ConnectionPool(clock, endpoints, **kwargs), endpoints, clock


class WireFormatTests(SynchronousTestCase):
    """
    Request heads, URLs and response heads.
    """

    def test_request_head(self):
        """
        Host comes first, from the URL; a body adds Content-Length (0 included); a
        non-persistent pool adds Connection: close; line breaks in values cannot add a header
        and a Host among the headers is left out.
        """
        head = request_head(b"POST", b"/a?b=1", b"h:81", [(b"X-A", b"1\r\nEvil: yes"),
                                                          (b"host", b"other")], b"", False)
        self.assertEqual(head, b"POST /a?b=1 HTTP/1.1\r\nHost: h:81\r\nX-A: 1  Evil: yes\r\n"
                               b"Content-Length: 0\r\nConnection: close\r\n\r\n")
        self.assertEqual(request_head(b"GET", b"/", b"h", [], None, True),
                         b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")

    def test_split_url(self):
        """
        Scheme, host and port make the key; the authority as written is the Host value; the
        target keeps the query and drops the fragment.
        """
        self.assertEqual(split_url(b"http://127.0.0.1:8001/u/1?x=2#f"),
                         ((b"http", b"127.0.0.1", 8001), b"127.0.0.1:8001", b"/u/1?x=2"))
        self.assertEqual(split_url(b"https://b.test?q"), ((b"https", b"b.test", 443), b"b.test", b"/?q"))
        self.assertEqual(split_url(b"http://[::1]:9/")[0], (b"http", b"::1", 9))
        for bad in (b"ftp://x/", b"/relative", b"http://:80/", b"http://h:99999/"):
            self.assertRaises(ValueError, split_url, bad)

    def test_origin_cache(self):
        """
        The pool parses each origin once and still splits every URL as L{split_url} does.
        """
        pool, _, _ = make_pool()
        for url in (b"http://h:81/a?x#f", b"http://h:81/b", b"http://h:81?q=1/2", b"http://u@h:81/c",
                    b"http://h:81/a?x#f"):
            self.assertEqual(pool._split(url), split_url(url))
        self.assertEqual(list(pool._origins), [b"http://h:81"])

    def test_parse_head(self):
        """
        CRLF or bare LF lines, folded values joined; anything else is malformed.
        """
        version, code, phrase, headers = parse_head(b"HTTP/1.0 404 Not Found\nA: 1\n  2\nB:3")
        self.assertEqual((version, code, phrase), (b"HTTP/1.0", 404, b"Not Found"))
        self.assertEqual(headers, [(b"A", b"1 2"), (b"B", b"3")])
        for bad in (b"SMTP 220 hi", b"HTTP/1.1 2000 OK", b"HTTP/1.1 200 OK\r\nno colon",
                    b"HTTP/1.1 200 OK\r\nBad Name: x"):
            self.assertRaises(MalformedResponse, parse_head, bad)


class ExchangeTests(SynchronousTestCase):
    """
    One exchange after another over the pool.
    """

    def test_content_length_and_reuse(self):
        """
        A delimited body is read whole; the connection goes back to the pool and the next
        request to the same origin reuses it.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://127.0.0.1:81/a", [(b"X-B", b"c")])
        self.assertEqual(endpoints.sent(), b"GET /a HTTP/1.1\r\nHost: 127.0.0.1:81\r\nX-B: c\r\n\r\n")
        endpoints.answer(OK[:-3])
        response = self.successResultOf(d)
        self.assertEqual((response.code, response.header(b"content-type")), (200, b"application/json"))
        body = response.read()
        endpoints.answer(OK[-3:])
        self.assertEqual(self.successResultOf(body), (b"hello", False))
        self.assertEqual(pool.idle_count(), 1)
        d = pool.request(b"GET", b"http://127.0.0.1:81/b", [])
        self.assertEqual(len(endpoints.connections), 1)
        endpoints.answer(OK)
        self.assertEqual(self.successResultOf(self.successResultOf(d).read()), (b"hello", False))

    def test_body_with_its_head(self):
        """
        A whole body arriving with its head is taken in before the head's callbacks run: the
        connection is already back in the pool and a read there completes at once. Bytes past
        the body still close the connection.
        """
        pool, endpoints, _ = make_pool()
        seen = []

        def answered(response):
            seen.append((pool.idle_count(), self.successResultOf(response.read())))

        pool.request(b"GET", b"http://h/a", []).addCallback(answered)
        endpoints.answer(OK)
        self.assertEqual(seen, [(1, (b"hello", False))])
        pool.request(b"GET", b"http://h/b", []).addCallback(answered)
        self.assertEqual(len(endpoints.connections), 1)
        endpoints.answer(OK + b"HTTP/1.1 200 OK\r\n")
        self.assertEqual(seen[1], (0, (b"hello", False)))
        self.assertTrue(endpoints.connections[0].transport.disconnecting)

    def test_cut_whole_body_keeps_the_connection(self):
        """
        A body that arrived whole and is read past a limit is cut in memory; its connection,
        back in the pool, is not dropped for it.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/a", [])
        endpoints.answer(OK)
        response = self.successResultOf(d)
        self.assertEqual(self.successResultOf(response.read(4)), (b"hell", True))
        self.assertEqual(pool.idle_count(), 1)
        self.assertFalse(endpoints.connections[0].transport.disconnecting)

    def test_same_head_parsed_once(self):
        """
        A head seen before is not parsed again, and gives the same answer.
        """
        import shadowtwist.httpclient as httpclient_module

        parsed = []
        original = httpclient_module.parse_head
        self.patch(httpclient_module, "parse_head", lambda head: parsed.append(head) or original(head))
        pool, endpoints, _ = make_pool()
        unique = b"HTTP/1.1 200 OK\r\nX-Unique: %d\r\nContent-Length: 5\r\n\r\nhello" % id(self)
        for _ in range(3):
            d = pool.request(b"GET", b"http://h/a", [])
            endpoints.answer(unique)
            response = self.successResultOf(d)
            self.assertEqual(response.header(b"x-unique"), b"%d" % id(self))
            self.assertEqual(response.read_complete(), (b"hello", False))
        self.assertEqual(len(parsed), 1)

    def test_read_complete(self):
        """
        A body that has arrived whole is read at once without a Deferred, once; an incomplete
        one, or one over the limit, is left to read().
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/a", [])
        endpoints.answer(OK)
        response = self.successResultOf(d)
        self.assertIsNone(response.read_complete(limit=4))
        self.assertEqual(response.read_complete(), (b"hello", False))
        self.assertIsNone(response.read_complete())
        self.assertRaises(RuntimeError, response.read)
        d = pool.request(b"GET", b"http://h/b", [])
        endpoints.answer(OK[:-2])
        response = self.successResultOf(d)
        self.assertIsNone(response.read_complete())
        body = response.read()
        endpoints.answer(OK[-2:])
        self.assertEqual(self.successResultOf(body), (b"hello", False))

    def test_chunked_byte_by_byte(self):
        """
        A chunked body (extensions and trailers included) arriving one byte at a time is
        decoded, and the connection stays reusable.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        wire = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\nhello\r\n1a\r\n" + b"z" * 26 + b"\r\n0\r\nTrailer: t\r\n\r\n")
        endpoints.answer(wire[:60])
        body = self.successResultOf(d).read()
        for index in range(60, len(wire)):
            endpoints.answer(wire[index:index + 1])
        self.assertEqual(self.successResultOf(body), (b"hello" + b"z" * 26, False))
        self.assertEqual(pool.idle_count(), 1)

    def test_until_close(self):
        """
        A body with neither length nor chunking lasts until the backend closes: complete, and
        the connection is not reused.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(b"HTTP/1.0 200 OK\r\n\r\npart one,")
        body = self.successResultOf(d).read()
        endpoints.answer(b" part two")
        endpoints.drop()
        self.assertEqual(self.successResultOf(body), (b"part one, part two", False))
        self.assertEqual(pool.idle_count(), 0)

    def test_no_body_answers(self):
        """
        HEAD, 204 and 304 answers have no body whatever their headers say; a 100 Continue
        before the answer is skipped.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"HEAD", b"http://h/x", [])
        endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
        self.assertEqual(self.successResultOf(self.successResultOf(d).read()), (b"", False))
        d = pool.request(b"PUT", b"http://h/x", [], b"data")
        self.assertTrue(endpoints.sent().endswith(b"Content-Length: 4\r\n\r\ndata"))
        endpoints.answer(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
        response = self.successResultOf(d)
        self.assertEqual(response.code, 204)
        self.assertEqual(self.successResultOf(response.read()), (b"", False))
        self.assertEqual(len(endpoints.connections), 1)

    def test_connection_close_not_reused(self):
        """
        An answer with Connection: close ends the connection after its body.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        self.successResultOf(self.successResultOf(d).read())
        self.assertTrue(endpoints.connections[0].transport.disconnecting)
        self.assertEqual(pool.idle_count(), 0)

    def test_malformed(self):
        """
        Bytes that are not an HTTP answer fail the request and drop the connection.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(b"garbage\r\n\r\n")
        failure = self.failureResultOf(d, ResponseFailed)
        self.assertIsInstance(failure.value.reasons[0].value, MalformedResponse)
        self.assertTrue(endpoints.connections[0].transport.disconnecting)

    def test_broken_body(self):
        """
        A connection lost before the announced length fails the read.
        """
        body, endpoints = reading_a_partial_body(self)
        endpoints.drop()
        self.failureResultOf(body, ResponseFailed)

    def test_bad_url(self):
        """
        A URL that cannot be sent fails at once, without connecting.
        """
        pool, endpoints, _ = make_pool()
        self.failureResultOf(pool.request(b"GET", b"gopher://h/", []), ValueError)
        self.assertEqual(endpoints.connections, [])


class BoundsTests(SynchronousTestCase):
    """
    Limits, cancellation and the pool's own bounds.
    """

    def test_read_limit(self):
        """
        A body past the reader's limit is cut there, marked truncated, and its connection
        dropped rather than read to the end.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
        self.assertEqual(self.successResultOf(self.successResultOf(d).read(4)), (b"0123", True))
        self.assertTrue(endpoints.connections[0].transport.disconnected)
        self.assertEqual(pool.idle_count(), 0)

    def test_gzip_bomb_stops_at_limit(self):
        """
        A gzip body is decoded in steps: 50 MB of zeros in 50 kB of gzip stop at the limit.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        packed = gzip.compress(b"\0" * 50_000_000)
        endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                         % len(packed))
        response = self.successResultOf(d)
        response.decode_gzip()
        self.assertIsNone(response.header(b"content-encoding"))
        body = response.read(100_000)
        endpoints.answer(packed)
        data, truncated = self.successResultOf(body)
        self.assertEqual((len(data), truncated), (100_000, True))

    def test_gzip_bomb_with_its_head(self):
        """
        A gzip body arriving in the same read as its head is decoded in steps too, as the
        backend client reads it (decoding and a capped read set up in the head's callback):
        decoding stops at the reader's limit.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        packed = gzip.compress(b"\0" * 50_000_000)
        reads = []

        def answered(response):
            response.decode_gzip()
            reads.append(response.read(100_000))
            return response

        d.addCallback(answered)
        endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(packed), packed))
        response = self.successResultOf(d)
        data, truncated = self.successResultOf(reads[0])
        self.assertEqual((len(data), truncated), (100_000, True))
        self.assertFalse(response._gunzip.eof, "decoded past the limit")
        self.assertTrue(endpoints.connections[0].transport.disconnecting)

    def test_gzip_decoded(self):
        """
        A gzip body is decoded whole; a cut gzip stream is an error.
        """
        pool, endpoints, _ = make_pool()
        packed = gzip.compress(b'{"a":1}')
        for wire, expected in ((packed, (b'{"a":1}', False)), (packed[:-4], None)):
            d = pool.request(b"GET", b"http://h/x", [])
            endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
                             % len(wire) + wire)
            response = self.successResultOf(d)
            response.decode_gzip()
            if expected:
                self.assertEqual(self.successResultOf(response.read()), expected)
            else:
                self.failureResultOf(response.read(), ResponseFailed)

    def test_cancel_waiting_for_head(self):
        """
        Cancelling before the answer drops the connection (a deadline frees its socket).
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(endpoints.connections[0].transport.disconnected)
        endpoints.answer(OK)  # late bytes go nowhere
        self.assertEqual(pool.idle_count(), 0)

    def test_cancel_reading_body(self):
        """
        Cancelling a read drops the connection and fails with CancelledError.
        """
        body, endpoints = reading_a_partial_body(self)
        body.cancel()
        self.failureResultOf(body, CancelledError)
        self.assertTrue(endpoints.connections[0].transport.disconnected)

    def test_idle_limits(self):
        """
        At most max_idle_per_host idle connections are kept, each for idle_timeout seconds.
        """
        pool, endpoints, clock = make_pool(max_idle_per_host=1, idle_timeout=30)
        first = pool.request(b"GET", b"http://h/x", [])
        second = pool.request(b"GET", b"http://h/x", [])
        for index, d in ((0, first), (1, second)):
            endpoints.answer(OK, index)
            self.successResultOf(self.successResultOf(d).read())
        self.assertEqual(pool.idle_count(), 1)
        self.assertTrue(endpoints.connections[1].transport.disconnecting)
        clock.advance(29)
        self.assertEqual(pool.idle_count(), 1)
        clock.advance(2)
        self.assertEqual(pool.idle_count(), 0)
        self.assertTrue(endpoints.connections[0].transport.disconnecting)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_not_persistent(self):
        """
        Without keep-alive every connection closes after its exchange.
        """
        pool, endpoints, _ = make_pool(persistent=False)
        d = pool.request(b"GET", b"http://h/x", [])
        self.assertIn(b"Connection: close\r\n", endpoints.sent())
        endpoints.answer(OK)
        self.successResultOf(self.successResultOf(d).read())
        self.assertEqual(pool.idle_count(), 0)
        self.assertTrue(endpoints.connections[0].transport.disconnecting)

    def test_close(self):
        """
        Closing the pool closes its idle connections and fires once they are gone.
        """
        pool, endpoints, clock = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(OK)
        self.successResultOf(self.successResultOf(d).read())
        closed = pool.close()
        self.assertNoResult(closed)
        self.assertTrue(endpoints.connections[0].transport.disconnecting)
        endpoints.drop()
        self.successResultOf(closed)
        self.assertEqual(clock.getDelayedCalls(), [])


class HoldDownTests(SynchronousTestCase):
    """
    After a failed connection, a pool with hold_down fails new ones to that origin at once.
    """

    def test_hold_down(self):
        """
        Within hold_down seconds of a refused connection no new attempt is made and the
        request fails with the first error's reason; after it, connections are tried again.
        Without hold_down every request tries.
        """
        from twisted.internet.defer import fail
        from twisted.internet.error import ConnectionRefusedError

        from shadowtwist.httpclient import HeldDown

        attempts = []

        class Refusing:
            def connect(self, factory):
                attempts.append(factory)
                return fail(ConnectionRefusedError("111: Connection refused"))

        clock = Clock()
        pool = ConnectionPool(clock, lambda *key: Refusing(), hold_down=1.0)
        self.failureResultOf(pool.request(b"GET", b"http://h:1/x", []), ConnectionRefusedError)
        held = self.failureResultOf(pool.request(b"GET", b"http://h:1/y", []), HeldDown)
        self.assertIn("Connection refused", str(held.value))
        self.assertIn("not retried for 1s", str(held.value))
        self.assertEqual(str(pool.held_down(b"http://h:1/z")), str(held.value))
        self.assertIsNone(pool.held_down(b"http://h:2/x"))
        self.failureResultOf(pool.request(b"GET", b"http://h:2/x", []), ConnectionRefusedError)
        self.assertEqual(len(attempts), 2)  # the other origin was tried
        clock.advance(1.01)
        self.assertIsNone(pool.held_down(b"http://h:1/z"))
        self.failureResultOf(pool.request(b"GET", b"http://h:1/x", []), ConnectionRefusedError)
        self.assertEqual(len(attempts), 3)
        eager = ConnectionPool(clock, lambda *key: Refusing())
        for _ in range(2):
            self.failureResultOf(eager.request(b"GET", b"http://h:1/x", []), ConnectionRefusedError)
        self.assertEqual(len(attempts), 5)

    def test_connect_cut_by_deadline(self):
        """
        A connection attempt cancelled (by the call's deadline) holds the origin down with a
        reason that says so, not with the address Twisted's error carries as its only text.
        """
        from twisted.internet.address import IPv4Address
        from twisted.internet.defer import Deferred
        from twisted.internet.error import ConnectingCancelledError

        from shadowtwist.httpclient import HeldDown

        address = IPv4Address("TCP", "10.0.0.9", 81)

        class BlackHole:
            def connect(self, factory):
                return Deferred(lambda d: d.errback(ConnectingCancelledError(address)))

        pool = ConnectionPool(Clock(), lambda *key: BlackHole(), hold_down=1.0)
        attempt = pool.request(b"GET", b"http://10.0.0.9:81/x", [])
        attempt.cancel()
        self.failureResultOf(attempt, ConnectingCancelledError)
        held = self.failureResultOf(pool.request(b"GET", b"http://10.0.0.9:81/y", []), HeldDown)
        self.assertIn("connection not established before the deadline", str(held.value))
        self.assertNotIn("IPv4Address", str(held.value))


class RetryTests(SynchronousTestCase):
    """
    A pooled connection the backend closed in the meantime.
    """

    def _stale(self, method, **kwargs):
        pool, endpoints, _ = make_pool(**kwargs)
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(OK)
        self.successResultOf(self.successResultOf(d).read())
        d = pool.request(method, b"http://h/x", [], None if method == b"GET" else b"x")
        endpoints.drop(0)  # closed before a byte of answer
        return d, endpoints

    def test_idempotent_retried_once(self):
        """
        A GET meeting a stale connection is sent again on a new one.
        """
        d, endpoints = self._stale(b"GET")
        self.assertEqual(len(endpoints.connections), 2)
        endpoints.answer(OK)
        self.assertEqual(self.successResultOf(d).code, 200)

    def test_post_not_retried(self):
        """
        A POST is not sent twice.
        """
        d, endpoints = self._stale(b"POST")
        self.assertEqual(len(endpoints.connections), 1)
        self.failureResultOf(d)

    def test_retry_off(self):
        """
        Without retry (the shadow pool) nothing is sent twice.
        """
        d, endpoints = self._stale(b"GET", retry=False)
        self.assertEqual(len(endpoints.connections), 1)
        self.failureResultOf(d)


class StreamTests(SynchronousTestCase):
    """
    deliverBody: the streaming reader of no-op endpoints.
    """

    def test_stream_with_flow_control(self):
        """
        The body reaches the protocol as it arrives; pausing and resuming its transport
        pauses and resumes the backend connection; the end is ResponseDone.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc")
        received = _Recorder()
        self.successResultOf(d).deliverBody(received)
        self.assertEqual(received.data, [b"abc"])
        received.transport.pauseProducing()
        self.assertEqual(endpoints.connections[0].transport.producerState, "paused")
        received.transport.resumeProducing()
        endpoints.answer(b"def")
        self.assertEqual(received.data, [b"abc", b"def"])
        received.reason.trap(ResponseDone)

    def test_stream_until_close(self):
        """
        An undelimited body ends with PotentialDataLoss; stopping the transport drops it.
        """
        pool, endpoints, _ = make_pool()
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc")
        received = _Recorder()
        self.successResultOf(d).deliverBody(received)
        endpoints.drop()
        received.reason.trap(PotentialDataLoss)
        d = pool.request(b"GET", b"http://h/x", [])
        endpoints.answer(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
        received = _Recorder()
        self.successResultOf(d).deliverBody(received)
        received.transport.stopProducing()
        self.assertTrue(endpoints.connections[-1].transport.disconnected)
        received.reason.trap(ResponseFailed)


class _Recorder(Protocol):
    def __init__(self):
        self.data = []
        self.reason = None

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        self.reason = reason


class SizedReadsTests(SynchronousTestCase):
    """
    A backend connection reads as L{shadowtwist.tcpio} sizes its reads.
    """

    def test_reads_grow_with_a_large_body(self):
        """
        The first read asks for L{READ_MIN} bytes; a response larger than that arrives in
        growing reads and whole.
        """
        endpoints = TCPEndpoints()
        pool = ConnectionPool(Clock(), endpoints)
        d = pool.request(b"GET", b"http://h/x", [])
        body = b"x" * 100000
        socket = endpoints.connections[0].transport.socket
        socket.arriving.append(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + body)
        while socket.arriving:
            endpoints.connections[0].transport.doRead()
        self.assertEqual(socket.read_sizes[:3], [READ_MIN, 4 * READ_MIN, 16 * READ_MIN])
        self.assertEqual(self.successResultOf(self.successResultOf(d).read()), (body, False))
