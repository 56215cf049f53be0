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

import time
from typing import Any, List, Optional, Tuple
from urllib.parse import unquote_to_bytes

from twisted.python.failure import Failure
from twisted.web import http, resource, server
from twisted.web.http_headers import Headers
from twisted.web.iweb import INonQueuedRequestFactory

from shadowtwist.tcpio import send_now

# The Twisted internals the whole-head path reads (Twisted 24.10 and later have them all);
# without them every request goes through Twisted's own line parser.
_parse_request_line = getattr(http, "_parseRequestLine", None)
_name_encoder = getattr(http, "_nameEncoder", None)
_WHOLE_HEAD = (_parse_request_line is not None and _name_encoder is not None
               and hasattr(http.HTTPChannel, "_HTTPChannel__first_line"))
# Headers that give a request a body: such requests take Twisted's path, which frames bodies.
_BODY_HEADERS = frozenset((b"Content-Length", b"Transfer-Encoding"))


class GatewayChannel(http.HTTPChannel):
    """
    An HTTP/1.1 server connection whose writes go out at once (L{send_now}), the response head
    joined with the first body bytes while L{hold} is in effect.
    """

    _held: Optional[List[bytes]] = None
    _host: Any = None

    def dataReceived(self, data: bytes) -> None:
        """
        Read a request head that arrived whole, without a body and with nothing after it, in
        one pass (L{_read_whole_head}); anything else goes to Twisted's line parser.
        """
        if (_WHOLE_HEAD and self.line_mode and not self._buffer and not self._busyReceiving
                and self._HTTPChannel__first_line == 1 and self.persistent and not self.paused
                and data.endswith(b"\r\n\r\n") and len(data) <= self.totalHeadersSize):
            head = _read_whole_head(data, self.maxHeaders)
            if head is not None:
                self._start_request(*head)
                return
        super().dataReceived(data)

    def _start_request(self, command: bytes, target: bytes, version: bytes,
                       headers: List[Tuple[bytes, bytes]]) -> None:
        """
        What Twisted's C{lineReceived} and C{headerReceived} do for a head without a body,
        from a head already read and checked.
        """
        self.resetTimeout()
        factory = self.requestFactory
        if INonQueuedRequestFactory.providedBy(factory):
            request = factory(self)
        else:
            request = factory(self, len(self.requests))
        self.requests.append(request)
        add = request.requestHeaders.addRawHeader
        for name, value in headers:
            add(name, value)
        self._command, self._path, self._version = command, target, version
        self._HTTPChannel__first_line = 0
        self._busyReceiving = True
        try:
            self.allHeadersReceived()
            self.allContentReceived()
        finally:
            self._busyReceiving = False
        if self._buffer:  # what a finished request handed back while we were busy
            super().dataReceived(b"")

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


def _read_whole_head(data: bytes, max_headers: int) -> Optional[tuple]:
    """
    Read one complete request head with no body: the request line and every header checked as
    Twisted's C{HTTPChannel} checks them.

    @param data: the head, ending with its empty line, and nothing else.
    @return: (command, target, version, [(canonical name, value)]), or C{None} for anything
        Twisted's parser should see instead: a malformed or folded line, a body, a second
        request, too many headers (Twisted then answers 400 or reads the body as it does).
    """
    lines = data[:-4].split(b"\r\n")
    if len(lines) > max_headers + 1 or not lines[0]:
        return None
    try:
        command, target, version = _parse_request_line(lines[0])
    except ValueError:
        return None
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not line or line[0] in b" \t":
            return None
        try:
            name = _name_encoder.encode(name)
        except ValueError:
            return None
        if name in _BODY_HEADERS:
            return None
        value = value.strip(b" \t")
        if len(value.translate(None, b"\x00\r\n")) != len(value):
            return None
        headers.append((name, value))
    return command, target, version, headers


class _DateHeader:
    """
    The C{Date} header value, formatted once per second rather than once per response.
    """

    def __init__(self, now: Any = time.time) -> None:
        self._now = now
        self._second = -1
        self._value = b""

    def __call__(self) -> bytes:
        second = int(self._now())
        if second != self._second:
            self._second = second
            self._value = http.datetimeToString(second)
        return self._value


date_header = _DateHeader()


class GatewayRequest(server.Request):
    """
    A twisted.web request whose first write (head and first body bytes) leaves in one piece
    on a L{GatewayChannel}, answered as Go's C{net/http} answers: a C{Date} header and no
    C{Server} header.
    """

    def process(self) -> None:
        """
        Twisted's C{Request.process}, less its C{Server} header (KrakenD sends none) and with
        the C{Date} header formatted once per second.
        """
        self.site = self.channel.site
        self.responseHeaders.setRawHeaders(b"Date", [date_header()])
        self.prepath = []
        self.postpath = [unquote_to_bytes(segment) for segment in self.path[1:].split(b"/")]
        if self.path == b"*":
            self._handleStar()
            return
        try:
            found = self.site.getResourceFor(self)
            if resource._IEncodingResource.providedBy(found):
                encoder = found.getEncoder(self)
                if encoder is not None:
                    self._encoder = encoder
            self.render(found)
        except BaseException:
            self.processingFailed(Failure())

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
