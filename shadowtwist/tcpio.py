# -*- test-case-name: tests.test_tcpio -*-
"""
How the gateway's connections (to clients and to backends) write to their TCP sockets: at once.

Twisted's TCP transport only queues a write: it registers the socket for writing, sends on the
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

