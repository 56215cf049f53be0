# -*- test-case-name: tests.test_channel -*-
"""
The HTTP connections clients make to the gateway: Twisted's L{HTTPChannel} and L{Request}, with
the common case shortened at both ends.

Reading: a request head that arrives whole, without a body and with nothing after it, is read
in one pass with Twisted's own checks (L{GatewayChannel.dataReceived}); anything else, a
malformed head included, goes to Twisted's line parser, which answers it as before.

Writing: Twisted writes a response head and its body as two queued writes, sent on the next
reactor turn after registering the socket for writing (L{shadowtwist.tcpio} says what that
costs). A whole response (L{respond}) is formatted as one piece, byte for byte what Twisted's
write path would send, and handed to L{send_now}; on Twisted's path (streamed bodies, anything
unusual) the first C{Request.write} still collects the status line, headers and first body
bytes into one write.

L{GatewaySite} serves plain L{GatewayChannel}s, without Twisted's wrapper that switches to
HTTP/2 after a TLS handshake negotiating it: the gateway never offers HTTP/2.
"""

from __future__ import annotations

import time
from typing import Any, List, Optional, Sequence, Tuple
from urllib.parse import unquote_to_bytes

from twisted.python.failure import Failure
from twisted.web import http, resource, server
from twisted.web.http_headers import Headers
from twisted.web.iweb import INonQueuedRequestFactory

from shadowtwist.memo import BoundedMemo
from shadowtwist.tcpio import fit_reads, send_now, sized_reads

# The Twisted internals the whole-head path reads (Twisted 24.10 and later have them all);
# without them every request goes through Twisted's own line parser.
_parse_request_line = getattr(http, "_parseRequestLine", None)
_name_encoder = getattr(http, "_nameEncoder", None)
_WHOLE_HEAD = (_parse_request_line is not None and _name_encoder is not None
               and hasattr(http.HTTPChannel, "_HTTPChannel__first_line"))
# Read once: twisted.web.http is behind a deprecation proxy that makes every attribute lookup on
# the module a few Python calls.
_NO_BODY_CODES = http.NO_BODY_CODES
_NON_QUEUED: dict = {}


def _non_queued(factory: Any) -> bool:
    """
    Whether a request factory takes the channel alone (C{INonQueuedRequestFactory}), asked of
    zope.interface once per factory.
    """
    found = _NON_QUEUED.get(factory)
    if found is None:
        found = _NON_QUEUED[factory] = bool(INonQueuedRequestFactory.providedBy(factory))
    return found


# Headers that give a request a body: such requests take Twisted's path, which frames bodies.
_BODY_HEADERS = frozenset((b"Content-Length", b"Transfer-Encoding"))


class GatewayChannel(http.HTTPChannel):
    """
    An HTTP/1.1 server connection whose writes go out at once (L{send_now}), the response head
    joined with the first body bytes while L{hold} is in effect.
    """

    _held: Optional[List[bytes]] = None
    _host: Any = None
    _sized_reads = False

    _pausing_idle_timer = False
    _refeeding = False

    def connectionMade(self) -> None:
        super().connectionMade()
        self._sized_reads = sized_reads(self.transport)

    def setLineMode(self, extra: bytes = b"") -> Any:
        """
        Twisted's, noting that C{extra} (bytes that arrived while a request was being answered)
        comes back through L{dataReceived}: it is no read, and must not size the next one.
        """
        refeeding, self._refeeding = self._refeeding, True
        try:
            return super().setLineMode(extra)
        finally:
            self._refeeding = refeeding

    def allContentReceived(self) -> None:
        """
        Twisted's, with the idle timer paused rather than replaced: Twisted stops it here
        (C{setTimeout(None)}) and starts a new one when the response is done, which left a
        cancelled C{DelayedCall} in the reactor's heap and made a new one for every request.
        """
        self._pausing_idle_timer = bool(self.timeOut)
        try:
            super().allContentReceived()
        finally:
            self._pausing_idle_timer = False

    def setTimeout(self, period: Optional[float]) -> Optional[float]:
        """
        C{TimeoutMixin.setTimeout}, except that the first C{setTimeout(None)} of
        L{allContentReceived} keeps the timer: when the response is done, Twisted's
        C{setTimeout(period)} pushes it back by the idle timeout again.
        """
        if period is None and self._pausing_idle_timer:
            self._pausing_idle_timer = False
            previous, self.timeOut = self.timeOut, None
            return previous
        return super().setTimeout(period)  # type: ignore[no-any-return]

    def timeoutConnection(self) -> None:
        if self.timeOut is None:  # the timer went off while a request is being answered
            return
        super().timeoutConnection()

    def dataReceived(self, data: bytes) -> None:
        """
        Read a request head that arrived whole, without a body and with nothing after it, in
        one pass (L{_read_whole_head}); anything else goes to Twisted's line parser.
        """
        if self._sized_reads and not self._refeeding:
            fit_reads(self.transport, len(data))
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
        if _non_queued(factory):
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


def _header_block(headers: Sequence[Tuple[str, str]]) -> Optional[Tuple[bytes, frozenset]]:
    """
    The bytes of a response's own header lines, as Twisted's C{Headers} would write them (names
    canonicalized, repeats grouped under the first, line breaks in values made spaces).

    @return: (header lines, their names), or C{None} for headers this cannot write as Twisted
        would (a name Twisted refuses, or a C{Content-Length} of their own).
    """
    grouped = Headers()
    try:
        for name, value in headers:
            grouped.addRawHeader(name, value)
    except (ValueError, UnicodeError):
        return None
    names = frozenset(name for name, _ in grouped.getAllRawHeaders())
    if b"Content-Length" in names:
        return None
    lines = b"".join(name + b": " + value + b"\r\n"
                     for name, values in grouped.getAllRawHeaders() for value in values)
    return lines, names


# Kept per distinct header tuple (an endpoint answers with the same few header sets again and
# again); blocks over 4 kB are built every time, never kept.
_header_blocks = BoundedMemo(_header_block, 512,
                             keep=lambda headers, block: block is None or len(block[0]) <= 4096).__call__


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

    def respond_at_once(self, code: int, headers: Sequence[Tuple[str, str]], body: bytes) -> bool:
        """
        Send a whole response in one write and finish, when nothing about it needs Twisted's
        own write path (see L{respond}).

        @return: whether it was sent; if not, nothing was done.
        """
        channel = self.channel
        if (self.startedWriting or self.finished or self._disconnected or self._encoder
                or self._inFakeHead or self.cookies or self.lastModified is not None
                or self.etag is not None or self.defaultContentType is not None
                or code in _NO_BODY_CODES
                or not isinstance(channel, GatewayChannel) or channel.transport is None):
            return False
        found = _header_blocks(headers)
        if found is None:
            return False
        block, names = found
        parts = []
        for name, values in self.responseHeaders.getAllRawHeaders():
            if name in names or name == b"Content-Length":
                return False  # Twisted would group these with ours
            for value in values:
                parts += (name, b": ", value, b"\r\n")
        self.setResponseCode(code)
        self.startedWriting = 1
        head = b"%s %d %s\r\n%s%sContent-Length: %d\r\n\r\n" % (
            self.clientproto, code, self.code_message, b"".join(parts), block, len(body))
        if body and self.method != b"HEAD":
            self.sentLength = len(body)
            send_now(channel.transport, head + body)
        else:
            send_now(channel.transport, head)
        self.finish()
        return True

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


def respond(request: server.Request, code: int, headers: Sequence[Tuple[str, str]], body: bytes) -> None:
    """
    Write a whole response (status, header pairs in order, body with its C{Content-Length})
    and finish the request. A L{GatewayRequest} sends it in one piece (L{GatewayRequest.
    respond_at_once}); any other request, or anything unusual, goes through Twisted's
    C{Request.write} and C{finish}, with the same bytes on the wire.
    """
    if isinstance(request, GatewayRequest) and request.respond_at_once(code, headers, body):
        return
    request.setResponseCode(code)
    response_headers = request.responseHeaders
    for name, value in headers:
        response_headers.addRawHeader(name, value)
    response_headers.setRawHeaders(b"content-length", [b"%d" % len(body)])
    if body and request.method != b"HEAD":
        request.write(body)
    request.finish()


class GatewaySite(server.Site):
    """
    A Site serving L{GatewayChannel}s and L{GatewayRequest}s.
    """

    protocol = GatewayChannel  # type: ignore[assignment]

    def __init__(self, resource: Any, reactor: Any = None) -> None:
        super().__init__(resource, requestFactory=GatewayRequest, reactor=reactor)
