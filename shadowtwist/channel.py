# -*- test-case-name: tests.test_channel -*-
"""
The HTTP connections clients make to the gateway: Twisted's L{HTTPChannel} and L{Request}, with
each response's head sent together with its first body bytes, in one write straight to the
socket.

Twisted writes a response head and its body as two queued writes, sent on the next reactor turn
after registering the socket for writing (L{shadowtwist.tcpio} says what that costs). Here
the first C{Request.write} collects what the channel would write (status line, headers, the first
body bytes) and hands it to L{send_now} as one piece; later writes go through L{send_now} too.

L{GatewaySite} serves plain L{GatewayChannel}s, without Twisted's wrapper that switches to
HTTP/2 after a TLS handshake negotiating it: the gateway never offers HTTP/2.
"""

from __future__ import annotations

from typing import Any, List, Optional

from twisted.web import http, server
from twisted.web.http_headers import Headers

from shadowtwist.tcpio import send_now


class GatewayChannel(http.HTTPChannel):
    """
    An HTTP/1.1 server connection whose writes go out at once (L{send_now}), the response head
    joined with the first body bytes while L{hold} is in effect.
    """

    _held: Optional[List[bytes]] = None
    _host: Any = None

    def getHost(self) -> Any:
        """
        The connection's local address, asked of the socket once (Twisted asks it again for
        every request, a C{getsockname} system call each time).
        """
        if self._host is None:
            self._host = self.transport.getHost()
        return self._host

    def hold(self) -> None:
        """
        Collect what is written from now until L{release}.
        """
        self._held = []

    def release(self) -> None:
        """
        Send what was collected since L{hold}, in one write.
        """
        held, self._held = self._held, None
        if held and self.transport is not None:
            send_now(self.transport, b"".join(held))

    def writeHeaders(self, version: bytes, code: bytes, reason: bytes, headers: Any) -> None:
        held = self._held
        if held is None or not isinstance(headers, Headers):
            self.release()
            super().writeHeaders(version, code, reason, headers)
            return
        held += (version, b" ", code, b" ", reason, b"\r\n")
        for name, values in headers.getAllRawHeaders():
            for value in values:
                held += (name, b": ", value, b"\r\n")
        held.append(b"\r\n")

    def write(self, data: bytes) -> None:
        if self._held is not None:
            self._held.append(data)
        else:
            send_now(self.transport, data)

    def writeSequence(self, iovec: Any) -> None:
        if self._held is not None:
            self._held.extend(iovec)
        else:
            send_now(self.transport, b"".join(iovec))


class GatewayRequest(server.Request):
    """
    A twisted.web request whose first write (head and first body bytes) leaves in one piece
    on a L{GatewayChannel}.
    """

    def write(self, data: bytes) -> None:
        channel = self.channel
        if self.startedWriting or self._disconnected or not isinstance(channel, GatewayChannel):
            super().write(data)
            return
        channel.hold()
        try:
            super().write(data)
        finally:
            channel.release()


class GatewaySite(server.Site):
    """
    A Site serving L{GatewayChannel}s and L{GatewayRequest}s.
    """

    protocol = GatewayChannel  # type: ignore[assignment]

    def __init__(self, resource: Any, reactor: Any = None) -> None:
        super().__init__(resource, requestFactory=GatewayRequest, reactor=reactor)
