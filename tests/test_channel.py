"""
Tests for L{shadowtwist.channel}: a response's head and first body bytes in one write.
"""

from __future__ import annotations

from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial.unittest import SynchronousTestCase
from twisted.web import server
from twisted.web.resource import Resource

from shadowtwist.channel import GatewayChannel, GatewayRequest, GatewaySite
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

    def render(self, request):
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
