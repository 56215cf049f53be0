# -*- test-case-name: tests.test_tcpio -*-
"""
How the gateway's connections (to clients and to backends) use their TCP sockets.

Writes go to the socket at once. Twisted's TCP transport only queues a write: it registers the
socket for writing, sends on the next reactor turn, then unregisters it, which is two
C{epoll_ctl} calls and one more reactor turn per write (once for the backend request, once for
the client's response). L{send_now} sends straight away when nothing is queued before the
bytes; what the kernel does not take, and every other transport (TLS, in-memory ones in tests),
goes through C{transport.write} as usual, so order and flow control stay Twisted's.

Reads start small. Twisted reads up to 64 kB at a time, and each read allocates a buffer of the
size asked for; on PyPy that counts against a young generation of 256 kB (on the benchmark's
machine): a loop of 200-byte reads made a minor collection every 7 reads at 64 kB and every 57
at 8 kB. Connections here read L{SMALL_READ} bytes at a time until a read fills that, then
Twisted's full size (L{read_small}, L{adapt_read_size}): small answers cost small buffers, large
bodies one extra read. Paired on one core, the gateway with a shadow on PyPy answered 1.14x as
many requests; CPython was unchanged.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import abstract, tcp

# Larger writes go through the transport: one send of a big body is no cheaper than Twisted's.
WRITE_THROUGH_MAX = 64 * 1024
SMALL_READ = 8 * 1024
LARGE_READ = abstract.FileDescriptor.bufferSize  # Twisted's, 64 kB


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


def read_small(transport: Any) -> None:
    """
    Make a new connection's reads L{SMALL_READ} bytes at a time (a socket transport's only).
    """
    if isinstance(transport, abstract.FileDescriptor):
        transport.bufferSize = SMALL_READ


def adapt_read_size(transport: Any, received: int) -> None:
    """
    After a read of C{received} bytes: one that filled the small buffer means more is waiting,
    so the connection's next reads take Twisted's full size.
    """
    if received >= SMALL_READ and getattr(transport, "bufferSize", LARGE_READ) < LARGE_READ:
        transport.bufferSize = LARGE_READ
