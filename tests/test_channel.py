"""
Tests for L{shadowtwist.channel}: a response's head and first body bytes in one write.
"""

from __future__ import annotations

from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import http, server
from twisted.web.resource import Resource

from shadowtwist import channel as channel_module
from shadowtwist.channel import GatewayChannel, GatewayRequest, GatewaySite, _DateHeader, respond
from shadowtwist.tcpio import READ_MIN
from tests.test_tcpio import FakeSocket


class FakeTCPServer(tcp.Connection):
    """
    A Twisted TCP connection over a L{FakeSocket}, with addresses.

    @ivar host_asked: how many times the local address was asked for.
    """

    host_asked = 0

    def getHost(self):
        self.host_asked += 1
        return IPv4Address("TCP", "127.0.0.1", 8080)

    def getPeer(self):
        return IPv4Address("TCP", "127.0.0.1", 5555)


class Answers(Resource):
    """
    C{/whole}: a body with a length; C{/stream}: a chunked body written in two steps, the
    second left to the test (L{pending}).
    """

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.pending = []
        self.seen = []

    def render(self, request):
        self.seen.append((request.method, request.uri, request.clientproto,
                          sorted(request.requestHeaders.getAllRawHeaders()), request.content.read()))
        if request.path == b"/stream":
            request.write(b"first")
            self.pending.append(request)
            return server.NOT_DONE_YET
        request.setHeader(b"content-length", b"5")
        return b"hello"


class GatewayChannelTests(SynchronousTestCase):
    """
    Each response's head leaves with its first body bytes, straight to the socket.
    """

    def setUp(self):
        self.answers = Answers()
        self.site = GatewaySite(self.answers, reactor=Clock())
        self.reactor = MemoryReactor()
        self.channel = self.site.buildProtocol(None)
        self.transport = FakeTCPServer(FakeSocket(), self.channel, self.reactor)
        self.transport.connected = True
        self.channel.makeConnection(self.transport)

    def sent(self):
        return self.transport.socket.sent

    def test_reads_sized(self):
        """
        The connection reads L{READ_MIN} bytes at first (L{shadowtwist.tcpio.sized_reads}), and a
        request read that way is answered.
        """
        self.transport.socket.arriving.append(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.transport.doRead()
        self.assertEqual(self.transport.socket.read_sizes, [READ_MIN])
        self.assertIn(b"hello", b"".join(self.sent()))

    def test_buffered_bytes_are_no_read(self):
        """
        Requests that arrived while another was answered, handed back to the parser when it is
        done, do not count as a read that filled the buffer: the next read stays small.
        """
        socket = self.transport.socket
        socket.arriving.append(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        self.transport.doRead()
        pipelined = b"GET /whole HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 1500 + b"\r\n\r\n"
        for _ in range(3):
            socket.arriving.append(pipelined)
            self.transport.doRead()
        self.answers.pending[0].finish()  # the 4.6 kB kept meanwhile go to the parser now
        socket.arriving.append(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.transport.doRead()
        self.assertEqual(socket.read_sizes, [READ_MIN] * 5)
        self.assertEqual(b"".join(self.sent()).count(b"hello"), 4)

    def test_site_parts(self):
        """
        The Site builds L{GatewayChannel}s that make L{GatewayRequest}s.
        """
        self.assertIsInstance(self.channel, GatewayChannel)
        self.assertIs(self.channel.requestFactory, GatewayRequest)

    def test_one_write_per_response(self):
        """
        Status line, headers and body go out in one send, and the socket is never registered
        for writing.
        """
        self.channel.dataReceived(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        [response] = self.sent()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"), response)
        self.assertIn(b"\r\nContent-Length: 5\r\n", response)
        self.assertTrue(response.endswith(b"\r\n\r\nhello"), response)
        self.assertEqual(self.reactor.writers, set())

    def test_head(self):
        """
        A HEAD response is its head alone, in one send.
        """
        self.channel.dataReceived(b"HEAD /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        [response] = self.sent()
        self.assertTrue(response.endswith(b"\r\n\r\n"), response)
        self.assertNotIn(b"hello", response)

    def test_keep_alive(self):
        """
        Two requests on one connection: two responses, one send each.
        """
        self.channel.dataReceived(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.channel.dataReceived(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(len(self.sent()), 2)
        self.assertTrue(all(r.endswith(b"hello") for r in self.sent()))

    def test_local_address_asked_once(self):
        """
        The connection's local address is asked of the transport once, not per request.
        """
        for _ in range(3):
            self.channel.dataReceived(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(len(self.sent()), 3)
        self.assertEqual(self.transport.host_asked, 1)
        self.assertEqual(self.channel.getHost().port, 8080)

    def test_streamed(self):
        """
        A chunked body: the head with the first chunk, then each later write on its own.
        """
        self.channel.dataReceived(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        [first] = self.sent()
        self.assertIn(b"Transfer-Encoding: chunked", first)
        self.assertTrue(first.endswith(b"\r\n\r\n5\r\nfirst\r\n"), first)
        [request] = self.answers.pending
        request.write(b"second")
        request.finish()
        self.assertEqual(self.sent()[1:], [b"6\r\nsecond\r\n", b"0\r\n\r\n"])

    def test_other_transport(self):
        """
        Over any other transport the response is written as usual.
        """
        channel = self.site.buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        channel.dataReceived(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(transport.value().endswith(b"hello"))


class IdleTimerTests(SynchronousTestCase):
    """
    The idle timeout of a client connection: one timer for the connection's life, paused while
    a request is answered.
    """

    def setUp(self):
        self.clock = Clock()
        self.answers = Answers()
        site = GatewaySite(self.answers, reactor=self.clock)
        site.timeOut = 10
        self.channel = site.buildProtocol(None)
        self.transport = StringTransport()
        self.channel.makeConnection(self.transport)

    def test_one_timer_for_many_requests(self):
        """
        Requests answered on a connection reuse its timer: none is cancelled and none made.
        """
        [timer] = self.clock.getDelayedCalls()
        for _ in range(3):
            self.channel.dataReceived(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.transport.value().count(b"hello"), 3)
        self.assertEqual(self.clock.getDelayedCalls(), [timer])
        self.assertTrue(timer.active())

    def test_idle_after_the_response(self):
        """
        The timeout counts from the end of the last response.
        """
        self.clock.advance(8)
        self.channel.dataReceived(b"GET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(8)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(2)
        self.assertTrue(self.transport.disconnecting)

    def test_paused_while_answering(self):
        """
        A request answered for longer than the idle timeout keeps its connection; the timeout
        starts again when the response is done.
        """
        self.channel.dataReceived(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        self.clock.advance(25)
        self.assertFalse(self.transport.disconnecting)
        [request] = self.answers.pending
        request.finish()
        self.clock.advance(9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(1)
        self.assertTrue(self.transport.disconnecting)

    def test_timer_stopped_when_the_connection_ends(self):
        """
        A connection that ends, even in the middle of a request, leaves no timer behind.
        """
        self.channel.dataReceived(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        self.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])


def serve(site, data):
    """
    Feed C{data} to a new channel of C{site} in one piece; return what was answered.
    """
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    channel.dataReceived(data)
    return transport.value()


class WholeHeadTests(SynchronousTestCase):
    """
    A request head that arrives whole is read in one pass, into the same request Twisted's
    line parser makes; anything unusual is left to Twisted's parser, answers included.
    """

    HEADS = [
        b"GET /whole?a=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\nX-Two: 1\r\nx-two:  2 \r\n\r\n",
        b"DELETE /whole HTTP/1.0\r\n\r\n",
        # a lone CR in a value: refused by Twisted 26, let through by Twisted 25, as here
        b"GET /whole HTTP/1.1\r\nX-Cr: a\rb\r\n\r\n",
        b"GET /whole HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n",
        b"POST /whole HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        b"POST /whole HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        b"GET /whole HTTP/1.1\r\n\r\nGET /whole?second HTTP/1.1\r\n\r\n",
        b"GET /whole HTTP/1.1\r\nBad Name: x\r\n\r\n",
        b"GET /whole HTTP/1.1\r\nNo-Colon\r\n\r\n",
        b"GET /whole HTTP/1.1\r\nX-Nul: a\x00b\r\n\r\n",
        b"GET  /whole HTTP/1.1\r\n\r\n",
        b"\r\nGET /whole HTTP/1.1\r\n\r\n",
        b"GET /whole HTTP/1.1\r\nContent-Length: x\r\n\r\n",
    ]

    def test_same_request_as_twisted(self):
        """
        Each head gives the resource the same requests, and the client the same answers, as
        Twisted's own channel (the C{Date} header aside).
        """
        for head in self.HEADS:
            ours, theirs = Answers(), Answers()
            answered = serve(GatewaySite(ours, reactor=Clock()), head)
            expected = serve(server.Site(theirs, reactor=Clock()), head)
            self.assertEqual(ours.seen, theirs.seen, head)

            def comparable(raw):
                lines = raw.split(b"\r\n")
                return [line for line in lines if not line.startswith((b"Date:", b"Server:"))]

            self.assertEqual(comparable(answered), comparable(expected), head)

    def test_bad_requests_answered_400(self):
        """
        A malformed head still gets Twisted's 400 and nothing reaches the resource.
        """
        for head in self.HEADS[7:]:
            answers = Answers()
            answered = serve(GatewaySite(answers, reactor=Clock()), head)
            if head.startswith(b"\r\n"):  # Twisted skips one empty line before a request
                self.assertEqual(len(answers.seen), 1, head)
                continue
            self.assertTrue(answered.startswith(b"HTTP/1.1 400 Bad Request"), (head, answered))
            self.assertEqual(answers.seen, [], head)

    def test_whole_head_path_taken(self):
        """
        A plain head goes through the one-pass reader, not through Twisted's per-line parser.
        """
        lines = []
        original = http.HTTPChannel.lineReceived
        self.patch(http.HTTPChannel, "lineReceived", lambda channel, line: (lines.append(line),
                                                                           original(channel, line)))
        answers = Answers()
        answered = serve(GatewaySite(answers, reactor=Clock()), self.HEADS[0])
        self.assertEqual(lines, [])
        self.assertEqual(len(answers.seen), 1)
        self.assertTrue(answered.endswith(b"hello"))
        serve(GatewaySite(answers, reactor=Clock()), self.HEADS[2])
        self.assertNotEqual(lines, [])

    def test_head_in_pieces(self):
        """
        A head split across reads is put together by Twisted's parser as before.
        """
        answers = Answers()
        channel = GatewaySite(answers, reactor=Clock()).buildProtocol(None)
        transport = StringTransport()
        channel.makeConnection(transport)
        for piece in (b"GET /whole HT", b"TP/1.1\r\nHost: x\r\n", b"\r\n"):
            channel.dataReceived(piece)
        self.assertEqual(len(answers.seen), 1)
        self.assertTrue(transport.value().endswith(b"hello"))
        channel.dataReceived(self.HEADS[0])
        self.assertEqual(len(answers.seen), 2)

    def test_date_and_no_server(self):
        """
        Responses carry a C{Date} and, as Go's server, no C{Server} header.
        """
        answered = serve(GatewaySite(Answers(), reactor=Clock()), self.HEADS[0])
        self.assertIn(b"\r\nDate: ", answered)
        self.assertNotIn(b"\r\nServer:", answered)

    def test_date_formatted_once_per_second(self):
        """
        The C{Date} value is formatted again only when the second changes.
        """
        now = [1000.2]
        formatted = []
        original = http.datetimeToString
        self.patch(channel_module.http, "datetimeToString",
                   lambda second: formatted.append(second) or original(second))
        date = _DateHeader(lambda: now[0])
        first = date()
        now[0] = 1000.9
        self.assertEqual(date(), first)
        now[0] = 1001.0
        self.assertEqual(date(), original(1001))
        self.assertEqual(formatted, [1000, 1001])


class Responder(Resource):
    """
    Answers every request with L{respond} and the status, headers and body it is given.
    """

    isLeaf = True

    def __init__(self, code, headers, body):
        super().__init__()
        self.answer = (code, headers, body)

    def render(self, request):
        if not request.getHeader(b"x-default-type"):
            request.defaultContentType = None  # as the gateway's handlers do
        if request.getHeader(b"x-early"):
            request.responseHeaders.addRawHeader(b"X-Early", b"1")
        respond(request, *self.answer)
        return server.NOT_DONE_YET


class TwistedWrites(GatewayRequest):
    """
    A gateway request that always answers through Twisted's own write path.
    """

    def respond_at_once(self, code, headers, body):
        return False


class RespondTests(SynchronousTestCase):
    """
    L{respond} sends a whole response in one write, byte for byte what Twisted's own write
    path sends, and leaves anything unusual to that path.
    """

    ANSWERS = [
        (200, (("Content-Type", "application/json"), ("X-Krakend", "Version 1")), b'{"a":1}'),
        (200, (("set-cookie", "a=1"), ("X-Other", "x"), ("Set-Cookie", "b=2")), b"body"),
        (502, (("X-Broken", "line\r\nbreak"),), b""),
        (404, [("Content-Type", "text/plain")], b"not found"),
        (200, (("Date", "Thu, 01 Jan 1970 00:00:00 GMT"),), b"own date"),
        (200, (("Content-Length", "3"),), b"abc"),
        (204, (("X-A", "1"),), b""),
    ]
    REQUESTS = [
        b"GET /r HTTP/1.1\r\nHost: x\r\n\r\n",
        b"HEAD /r HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /r HTTP/1.0\r\n\r\n",
        b"GET /r HTTP/1.1\r\nConnection: close\r\n\r\n",
        b"GET /r HTTP/1.1\r\nX-Early: 1\r\n\r\n",
        b"GET /r HTTP/1.1\r\nX-Default-Type: 1\r\n\r\n",
    ]

    def setUp(self):
        self.patch(channel_module, "date_header", lambda: b"Fri, 27 Nov 2026 06:00:00 GMT")

    def serve(self, answer, request, at_once=True):
        site = GatewaySite(Responder(*answer), reactor=Clock())
        if not at_once:
            site.requestFactory = TwistedWrites
        return serve(site, request)

    def test_same_bytes_as_twisted(self):
        """
        Every answer, to every kind of request, is on the wire as Twisted writes it.
        """
        for answer in self.ANSWERS:
            for request in self.REQUESTS:
                ours = self.serve(answer, request)
                theirs = self.serve(answer, request, at_once=False)
                self.assertEqual(ours, theirs, (answer, request))

    def test_one_write(self):
        """
        The usual answer leaves in one send, straight to the socket, and is logged with its
        length.
        """
        logged = []
        site = GatewaySite(Responder(*self.ANSWERS[0]), reactor=Clock())
        site.log = logged.append
        channel = site.buildProtocol(None)
        transport = FakeTCPServer(FakeSocket(), channel, MemoryReactor())
        transport.connected = True
        channel.makeConnection(transport)
        channel.dataReceived(self.REQUESTS[0])
        [sent] = transport.socket.sent
        self.assertTrue(sent.startswith(b"HTTP/1.1 200 OK\r\nDate: "), sent)
        self.assertTrue(sent.endswith(b'Content-Length: 7\r\n\r\n{"a":1}'), sent)
        [request] = logged
        self.assertEqual((request.code, request.sentLength), (200, 7))

    def test_unusual_answers_take_twisteds_path(self):
        """
        A header Twisted would group with its own, an own Content-Length, a status without a
        body and a name Twisted refuses are not sent at once.
        """
        taken = []
        original = GatewayRequest.respond_at_once
        self.patch(GatewayRequest, "respond_at_once",
                   lambda request, *answer: taken.append(original(request, *answer)) or taken[-1])
        for answer in self.ANSWERS:
            self.serve(answer, self.REQUESTS[0])
        self.assertEqual(taken, [True, True, True, True, False, False, False])
