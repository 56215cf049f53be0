"""
Tests for L{shadowtwist.tcpio}: reads sized to what arrives, writes straight to the socket when
nothing is queued.
"""

from __future__ import annotations

from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.tcpio import READ_MAX, READ_MIN, WRITE_THROUGH_MAX, fit_reads, send_now, sized_reads


class FakeSocket:
    """
    The part of a socket a TCP transport uses here: C{send} records what it takes.

    @ivar accept: how many bytes each C{send} takes (C{None}: all), or an exception to raise.
    """

    def __init__(self, accept=None):
        self.accept = accept
        self.sent = []
        self.arriving = []
        self.read_sizes = []

    def setblocking(self, flag):
        pass

    def fileno(self):
        return 99

    def setsockopt(self, *args):
        pass

    def send(self, data):
        if isinstance(self.accept, Exception):
            raise self.accept
        taken = data if self.accept is None else data[:self.accept]
        self.sent.append(bytes(taken))
        return len(taken)

    def recv(self, size):
        self.read_sizes.append(size)
        data, self.arriving[:1] = self.arriving[0][:size], [self.arriving[0][size:]]
        if not self.arriving[0]:
            del self.arriving[0]
        return data


def tcp_transport(accept=None):
    """
    A real Twisted TCP transport over a L{FakeSocket}, on a L{MemoryReactor}.
    """
    reactor = MemoryReactor()
    transport = tcp.Connection(FakeSocket(accept), Protocol(), reactor)
    transport.connected = True
    return transport, reactor


class SendNowTests(SynchronousTestCase):
    """
    What goes to the socket at once and what goes through the transport's queue.
    """

    def test_straight_to_the_socket(self):
        """
        With nothing queued, the bytes are sent at once and the socket is not registered for
        writing.
        """
        transport, reactor = tcp_transport()
        send_now(transport, b"hello")
        self.assertEqual(transport.socket.sent, [b"hello"])
        self.assertEqual(reactor.writers, set())
        self.assertFalse(transport._tempDataBuffer)

    def test_queued_bytes_keep_their_place(self):
        """
        When something is already queued, the bytes queue behind it.
        """
        transport, reactor = tcp_transport()
        transport.write(b"first")
        send_now(transport, b"second")
        self.assertEqual(transport.socket.sent, [])
        self.assertEqual(b"".join(transport._tempDataBuffer), b"firstsecond")
        self.assertIn(transport, reactor.writers)

    def test_rest_of_a_partial_send_is_queued(self):
        """
        What the kernel did not take goes through the transport's queue.
        """
        transport, reactor = tcp_transport(accept=3)
        send_now(transport, b"abcdef")
        self.assertEqual(transport.socket.sent, [b"abc"])
        self.assertEqual(b"".join(transport._tempDataBuffer), b"def")
        self.assertIn(transport, reactor.writers)

    def test_send_error_leaves_it_to_the_transport(self):
        """
        A failing send (EAGAIN, a reset) queues everything: Twisted's write path reports it.
        """
        transport, _ = tcp_transport(accept=BlockingIOError())
        send_now(transport, b"abc")
        self.assertEqual(b"".join(transport._tempDataBuffer), b"abc")

    def test_large_writes_queued(self):
        """
        A write larger than L{WRITE_THROUGH_MAX} goes through the transport.
        """
        transport, _ = tcp_transport()
        send_now(transport, b"x" * (WRITE_THROUGH_MAX + 1))
        self.assertEqual(transport.socket.sent, [])

    def test_tls_transport(self):
        """
        On a TLS connection the bytes go to the TLS layer, never to the socket.
        """
        transport, _ = tcp_transport()
        transport.TLS = True
        transport.protocol = StringTransport()  # the TLS layer: what it is asked to encrypt
        send_now(transport, b"abc")
        self.assertEqual(transport.socket.sent, [])
        self.assertEqual(transport.protocol.value(), b"abc")

    def test_closing_transport(self):
        """
        A connection being closed keeps Twisted's write path.
        """
        transport, _ = tcp_transport()
        transport.disconnecting = True
        send_now(transport, b"abc")
        self.assertEqual(transport.socket.sent, [])

    def test_other_transports(self):
        """
        Any other transport is written to as usual.
        """
        transport = StringTransport()
        send_now(transport, b"abc")
        self.assertEqual(transport.value(), b"abc")



class Reader(Protocol):
    """
    A protocol that sizes its transport's reads as the gateway's connections do.
    """

    def __init__(self):
        self.received = []

    def connectionMade(self):
        self.sized = sized_reads(self.transport)

    def dataReceived(self, data):
        self.received.append(data)
        fit_reads(self.transport, len(data))


class SizedReadsTests(SynchronousTestCase):
    """
    Reads start small, grow while they fill the buffer and shrink back after small ones.
    """

    def connection(self):
        reader = Reader()
        transport = tcp.Connection(FakeSocket(), reader, MemoryReactor())
        transport.connected = True
        reader.makeConnection(transport)
        return reader, transport

    def test_first_read_is_small(self):
        """
        A TCP connection's first C{recv} asks for L{READ_MIN} bytes, not Twisted's 64 kB.
        """
        reader, transport = self.connection()
        transport.socket.arriving.append(b"GET / HTTP/1.1\r\n\r\n")
        transport.doRead()
        self.assertTrue(reader.sized)
        self.assertEqual(transport.socket.read_sizes, [READ_MIN])
        self.assertEqual(reader.received, [b"GET / HTTP/1.1\r\n\r\n"])

    def test_growing_and_shrinking(self):
        """
        Reads that fill the buffer make the next one four times larger, up to L{READ_MAX}; a read
        that brings less than a quarter makes the next one small again. A large body arrives
        whole, in order.
        """
        reader, transport = self.connection()
        body = bytes(range(256)) * 1024  # 256 kB
        transport.socket.arriving += [body, b"small", b"next"]
        for _ in range(8):
            transport.doRead()
        self.assertEqual(transport.socket.read_sizes,
                         [READ_MIN, 4 * READ_MIN, READ_MAX, READ_MAX, READ_MAX, READ_MAX, READ_MAX, READ_MIN])
        self.assertEqual(b"".join(reader.received), body + b"smallnext")

    def test_between_a_quarter_and_full(self):
        """
        A read that brings a quarter of the buffer or more, short of filling it, keeps the size.
        """
        reader, transport = self.connection()
        transport.bufferSize = READ_MAX
        fit_reads(transport, READ_MAX // 4)
        self.assertEqual(transport.bufferSize, READ_MAX)
        fit_reads(transport, READ_MAX // 4 - 1)
        self.assertEqual(transport.bufferSize, READ_MIN)

    def test_other_transports(self):
        """
        Transports that are not plain TCP connections (TLS, in-memory) are left alone.
        """
        memory = StringTransport()
        self.assertFalse(sized_reads(memory))
        self.assertFalse(hasattr(memory, "bufferSize"))
        transport, _ = tcp_transport()
        transport.TLS = True
        self.assertFalse(sized_reads(transport))
        self.assertEqual(transport.bufferSize, READ_MAX)
