# -*- test-case-name: tests.test_tcpio -*-
"""
How the gateway's connections (to clients and to backends) use their TCP sockets: reads sized to
what arrives, writes at once.

Reading: Twisted's TCP transport reads with C{recv(65536)} whatever arrives. On PyPy every such
call allocates a 64 kB buffer that counts against the young generation (PyPy's default is 256 kB
to 1 MB on the machines measured here), so two reads per proxied request made a minor collection
every few requests, and the in-flight requests those collections promoted kept the major
collector busy.
L{sized_reads} starts a connection's reads at L{READ_MIN} bytes and L{fit_reads} grows them
fourfold whenever a read fills the buffer (more is probably waiting), up to Twisted's
L{READ_MAX}, and shrinks them back after a read that brought less than a quarter.

Writing: Twisted's TCP transport only queues a write: it registers the socket for writing, sends on the
next reactor turn, then unregisters it, which is two C{epoll_ctl} calls and one more reactor
turn per write (once for the backend request, once for the client's response). L{send_now}
sends straight away when nothing is queued before the bytes; what the kernel does not take, and
every other transport (TLS, in-memory ones in tests), goes through C{transport.write} as usual,
so order and flow control stay Twisted's.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import tcp

# Larger writes go through the transport: one send of a big body is no cheaper than Twisted's.
WRITE_THROUGH_MAX = 64 * 1024
# The first read of a connection, and the largest (Twisted's own size).
READ_MIN = 4 * 1024
READ_MAX = 64 * 1024


def sized_reads(transport: Any) -> bool:
    """
    Start the reads of C{transport} at L{READ_MIN} bytes if it is a plain TCP connection.

    @return: whether it is, and so whether L{fit_reads} applies to it.
    """
    if isinstance(transport, tcp.Connection) and not getattr(transport, "TLS", False):
        transport.bufferSize = READ_MIN
        return True
    return False


def fit_reads(transport: Any, received: int) -> None:
    """
    Size the next read of C{transport} (one L{sized_reads} accepted) after one that brought
    C{received} bytes.
    """
    size = transport.bufferSize
    if received >= size:
        if size < READ_MAX:
            transport.bufferSize = min(size * 4, READ_MAX)
    elif size > READ_MIN and received < size >> 2:
        transport.bufferSize = READ_MIN


def send_now(transport: Any, data: bytes) -> None:
    """
    Write C{data} on C{transport}, straight to its socket when that is safe.

    @param transport: the connection's transport.
    @param data: the bytes, in order after everything written before.
    """
    if not data:
        return
    sock = getattr(transport, "socket", None)
    if (sock is None or not isinstance(transport, tcp.Connection) or getattr(transport, "TLS", False)
            or transport.dataBuffer or transport._tempDataBuffer or transport.disconnecting
            or not transport.connected or len(data) > WRITE_THROUGH_MAX):
        transport.write(data)
        return
    try:
        sent = sock.send(data)
    except OSError:  # EAGAIN, or a broken connection Twisted's own write path will report
        sent = 0
    if sent < len(data):
        transport.write(data[sent:])

