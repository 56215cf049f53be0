# -*- test-case-name: tests.test_httpclient -*-
"""
HTTP/1.1 on the wire to backends: a lean client connection and the pool that keeps them.

L{backend.BackendClient} is the only user; it adds what Go's client does on top (redirects,
gzip, deadlines). Here a request is written with one call, a response head is parsed with a
few C{bytes} splits, and the body goes to whoever reads it: whole and capped (L{ClientResponse.
read}), streamed with flow control (L{ClientResponse.deliverBody}, the C{IResponse} way), or
dropped (L{ClientResponse.discard}).

Why not Twisted's C{Agent} and C{HTTPConnectionPool}: profiled under C{bench/} with py-spy,
they cost most of the gateway's CPU per proxied request: C{URI} parsing and a C{Headers} object
per request, a C{LineReceiver}-based parser with a state-machine dispatch per line, five or six
chained Deferreds and a pool timer per exchange. The closing note of the performance issue has
the numbers.
"""

from __future__ import annotations

import re
import zlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import CancelledError, Deferred, DeferredList, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.error import ConnectingCancelledError, ConnectionAborted
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web.client import PotentialDataLoss, ResponseDone, ResponseFailed, ResponseNeverReceived
from twisted.web.http_headers import Headers
from twisted.web.iweb import UNKNOWN_LENGTH, IResponse
from zope.interface import implementer

from shadowtwist.memo import BoundedMemo
from shadowtwist.tcpio import WRITE_THROUGH_MAX, fit_reads, send_now, sized_reads

Key = Tuple[bytes, bytes, int]  # scheme, host, port
HeaderPairs = Sequence[Tuple[bytes, bytes]]

IDEMPOTENT = frozenset((b"GET", b"HEAD", b"OPTIONS", b"TRACE", b"PUT", b"DELETE"))
MAX_HEAD = 1024 * 1024  # bytes of status line and headers before the answer counts as broken
GUNZIP_STEP = 64 * 1024  # decoded bytes per step of a gzip body
REDIRECT_SLURP = 2048  # Go reads this much of a redirect's body to keep its connection
_URL = re.compile(rb"([A-Za-z][A-Za-z0-9+.\-]*)://([^/?#]*)([^#]*)")
_UNSAFE_HEADER = re.compile(rb"[\r\n]")
_UNUSUAL_ORIGIN = re.compile(rb"[?#@\s]")
_IDLE, _HEAD, _BODY, _CLOSED = range(4)
_FRAMING_HEADERS = frozenset((b"content-length", b"transfer-encoding", b"content-encoding", b"connection"))
_CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS = range(4)


# How a body ended, without building a Failure on the common path (Failure() is costly):
# DONE and DATA_LOSS become ResponseDone and PotentialDataLoss only for deliverBody readers.
DONE = "done"
DATA_LOSS = "data loss"


class HeldDown(Exception):
    """
    Not tried: a connection to this origin failed a moment ago (L{ConnectionPool.hold_down}).
    """

    def __init__(self, why: str, seconds: float) -> None:
        super().__init__(f"{why} (not retried for {seconds:g}s after a failed connection)")


class MalformedResponse(Exception):
    """
    The backend's bytes are not an HTTP/1.x response.
    """


def split_url(url: bytes) -> Tuple[Key, bytes, bytes]:
    """
    Split an absolute C{http(s)} URL for sending.

    @return: the connection key (scheme, host, port), the C{Host} header value (the URL's
        authority as written, as Go sends it) and the request target (path and query).
    @raise ValueError: not an absolute http or https URL.
    """
    match = _URL.match(url)
    if match is None:
        raise ValueError(f"not an absolute URL: {url!r}")
    scheme, authority, target = match.groups()
    scheme = scheme.lower()
    if scheme not in (b"http", b"https"):
        raise ValueError(f"unsupported protocol scheme {scheme.decode('ascii', 'replace')!r}")
    authority = authority.rpartition(b"@")[2]
    if authority.startswith(b"["):
        host, _, rest = authority[1:].partition(b"]")
        port_text = rest[1:] if rest.startswith(b":") else b""
    else:
        host, _, port_text = authority.partition(b":")
    if not host:
        raise ValueError(f"no host in URL: {url!r}")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"invalid port in URL: {url!r}")
        port = int(port_text)
    else:
        port = 443 if scheme == b"https" else 80
    if not target.startswith(b"/"):
        target = b"/" + target
    return (scheme, host, port), authority, target


def request_head(method: bytes, target: bytes, host: bytes, headers: HeaderPairs,
                 body: Optional[bytes], persistent: bool) -> bytes:
    """
    The bytes of a request line and its headers, C{Host} first. Line breaks in a header value
    become spaces, so no value can add a header. A C{Host} among C{headers} is left out (the
    URL's authority is the host, as in Go).

    @param body: the request body, which adds C{Content-Length} (even C{0}); C{None} for none.
    @param persistent: C{False} adds C{Connection: close}.
    """
    block = b"".join([name + b": " + value + b"\r\n" for name, value in headers])
    # One check over the whole block in the common case: a line break or a Host header
    # anywhere sends it through the careful path.
    if block.count(b"\n") != len(headers) or block.count(b"\r") != len(headers) \
            or b"\nhost:" in b"\n" + block.lower():
        block = _careful_header_block(headers)
    lines = [method, b" ", target, b" HTTP/1.1\r\nHost: ", host, b"\r\n", block]
    if body is not None:
        lines += (b"Content-Length: ", b"%d" % len(body), b"\r\n")
    if not persistent:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _careful_header_block(headers: HeaderPairs) -> bytes:
    lines: List[bytes] = []
    for name, value in headers:
        if b"\n" in value or b"\r" in value:
            value = _UNSAFE_HEADER.sub(b" ", value)
        if b"\n" in name or b"\r" in name or b":" in name or name.lower() == b"host":
            continue
        lines += (name, b": ", value, b"\r\n")
    return b"".join(lines)


def parse_head(head: bytes) -> Tuple[bytes, int, bytes, List[Tuple[bytes, bytes]]]:
    """
    Parse a response head (without its blank line). Lines may end in CRLF or LF; obsolete
    folded lines are joined to the previous value with a space.

    @return: the version, the status code, the reason phrase and the (name, value) pairs.
    @raise MalformedResponse: not a valid HTTP/1.x status line or header line.
    """
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[1]) != 3 \
            or not parts[1].isdigit():
        raise MalformedResponse(f"malformed HTTP status line: {lines[0][:80]!r}")
    headers: List[Tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            if not headers:
                raise MalformedResponse("malformed HTTP header: continuation without a header")
            name, value = headers[-1]
            headers[-1] = (name, (value + b" " + line.strip()).strip())
            continue
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or b" " in name:
            raise MalformedResponse(f"malformed HTTP header line: {line[:80]!r}")
        headers.append((name, value.strip()))
    return parts[0], int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


def framing_fields(version: bytes, headers: HeaderPairs) -> Tuple[Optional[bytes], Optional[bytes], Optional[bytes], bool]:
    """
    What a response head says of its body and connection: the C{Content-Length} (the same in
    every copy), C{Transfer-Encoding} (lower case), the first C{Content-Encoding}, and whether
    the connection is kept (HTTP/1.1 by default, then C{Connection} tokens).

    @raise MalformedResponse: conflicting C{Content-Length} headers.
    """
    length: Optional[bytes] = None
    encoding: Optional[bytes] = None
    content_encoding: Optional[bytes] = None
    keep_alive = version == b"HTTP/1.1"
    for name, value in headers:
        lowered = name.lower()
        if lowered not in _FRAMING_HEADERS:
            continue
        if lowered == b"content-length":
            if length is not None and value != length:
                raise MalformedResponse("conflicting Content-Length headers")
            length = value
        elif lowered == b"transfer-encoding":
            encoding = value.lower()
        elif lowered == b"content-encoding" and content_encoding is None:
            content_encoding = value
        elif lowered == b"connection":
            tokens = [t.strip() for t in value.lower().split(b",")]
            if b"close" in tokens:
                keep_alive = False
            elif b"keep-alive" in tokens:
                keep_alive = True
    return length, encoding, content_encoding, keep_alive


def _parsed_head(head: bytes) -> tuple:
    """
    L{parse_head} and L{framing_fields} of a head.
    """
    version, code, phrase, headers = parse_head(head)
    headers = tuple(headers)
    return version, code, phrase, headers, framing_fields(version, headers)


# Parsed response heads by their bytes: a backend sends the same head again and again (until its
# Date changes). Heads over 4 kB are parsed every time, never kept.
_read_head = BoundedMemo(_parsed_head, 256, keep=lambda head, parsed: len(head) <= 4096).__call__


@implementer(IResponse)
class ClientResponse:
    """
    A backend's answer, its head parsed and its body still arriving. Read the body once, in
    one of three ways: L{read}, L{deliverBody} or L{discard}; bytes that arrive before are kept.

    @ivar code: the status code.
    @ivar raw_headers: the (name, value) pairs as received.
    @ivar url: the URL requested.
    @ivar content_encoding: the first C{Content-Encoding} value, if any.
    """

    # Defaults at class level: one response per exchange, most of them never changed.
    content_encoding: Optional[bytes] = None
    previousResponse: Optional[Any] = None
    request = None
    _headers: Optional[Headers] = None
    _gunzip: Any = None
    _sink: Optional[Callable[[bytes], None]] = None
    _end_sink: Optional[Callable[[Any], None]] = None
    _ended: Any = None
    _told_end = False

    def __init__(self, connection: "ClientConnection", version: bytes, code: int, phrase: bytes,
                 raw_headers: HeaderPairs, url: bytes) -> None:
        self._connection = connection
        self.version = (b"HTTP", 1, 1 if version == b"HTTP/1.1" else 0)
        self.code = code
        self.phrase = phrase
        self.raw_headers = raw_headers
        self.url = url
        self._pending: List[bytes] = []

    @property
    def headers(self) -> Headers:
        """
        The headers as a Twisted C{Headers} (built on first use).
        """
        if self._headers is None:
            headers = self._headers = Headers()
            for name, value in self.raw_headers:
                headers.addRawHeader(name, value)
        return self._headers

    @property
    def length(self) -> Any:
        """
        The announced body length, or C{UNKNOWN_LENGTH}.
        """
        value = self.header(b"content-length")
        return int(value) if value is not None and value.isdigit() else UNKNOWN_LENGTH

    def header(self, lowered_name: bytes) -> Optional[bytes]:
        """
        The first value of a header.

        @param lowered_name: the header name in lower case.
        """
        for name, value in self.raw_headers:
            if name.lower() == lowered_name:
                return value
        return None

    def setPreviousResponse(self, response: Any) -> None:
        self.previousResponse = response

    def decode_gzip(self) -> None:
        """
        Decode the body from gzip as it arrives, and drop the C{Content-Encoding} and
        C{Content-Length} headers that no longer describe it (Go's transparent gzip).
        """
        self._gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.content_encoding = None
        self.raw_headers = [(n, v) for n, v in self.raw_headers
                            if n.lower() not in (b"content-encoding", b"content-length")]
        self._headers = None
        pending, self._pending = self._pending, []
        for chunk in pending:
            self._gunzip_data(chunk)

    def read(self, limit: Optional[int] = None) -> Deferred:
        """
        Read the whole body, or its first C{limit} bytes: past the limit the connection is
        dropped and the body marked truncated.

        @return: a Deferred firing with C{(body, truncated)}; cancelling it drops the connection.
        """
        collector = _Collector(self, limit)
        self._attach(collector.data, collector.end)
        return collector.finished

    def read_complete(self, limit: Optional[int] = None) -> Optional[Tuple[bytes, bool]]:
        """
        L{read} without a Deferred, for a body that has already arrived whole (the usual small
        answer, which comes with its head): C{(body, False)}, or C{None} when the body is not
        complete yet, is being gunzipped or is over C{limit} (then use L{read}).
        """
        ended = self._ended
        if (ended is not DONE and ended is not DATA_LOSS) or self._gunzip is not None or self._sink is not None:
            return None
        body = b"".join(self._pending) if len(self._pending) != 1 else self._pending[0]
        if limit is not None and len(body) > limit:
            return None
        self._pending = []
        self._sink = self._end_sink = _ignore
        self._told_end = True
        return body, False

    def deliverBody(self, protocol: Any) -> None:
        """
        Stream the body to C{protocol} (C{IResponse.deliverBody}): its transport pauses, resumes
        and stops the backend connection; C{connectionLost} gets C{ResponseDone} at the end,
        C{PotentialDataLoss} when the backend closed an undelimited body, else the failure.
        """
        protocol.makeConnection(_BodyTransport(self._connection))
        self._attach(protocol.dataReceived, lambda reason: protocol.connectionLost(_as_failure(reason)))

    def discard(self) -> None:
        """
        Drop the body, keeping the connection when it is short (as Go does for redirects).
        """
        seen = [0]

        def data(chunk: bytes) -> None:
            seen[0] += len(chunk)
            if seen[0] > REDIRECT_SLURP:
                self.stop_receiving()

        self._attach(data, lambda reason: None)

    def stop_receiving(self) -> None:
        """
        Drop the connection, unless the body has already arrived whole (the connection is then
        back in the pool, or closed, and owes nothing more).
        """
        if self._ended is None:
            self._connection.abort()

    def _attach(self, sink: Callable[[bytes], None], end_sink: Callable[[Any], None]) -> None:
        if self._sink is not None:
            raise RuntimeError("the response body can be read only once")
        self._sink = sink
        self._end_sink = end_sink
        pending, self._pending = self._pending, []
        for chunk in pending:
            if self._told_end:
                return
            sink(chunk)
        if self._ended is not None:
            self._tell_end()

    def _data(self, data: bytes) -> None:
        if self._gunzip is not None:
            self._gunzip_data(data)
        elif self._sink is None:
            self._pending.append(data)
        else:
            self._sink(data)

    def _gunzip_data(self, data: bytes) -> None:
        # Decoded in steps, so a reader's limit stops a gzip bomb before it is all in memory.
        decoder = self._gunzip
        while data and not self._told_end:
            try:
                plain = decoder.decompress(data, GUNZIP_STEP)
            except zlib.error as e:
                self._connection.abort(Failure(MalformedResponse(f"gzip: invalid data: {e}")))
                return
            data = decoder.unconsumed_tail
            if plain:
                if self._sink is None:
                    self._pending.append(plain)
                else:
                    self._sink(plain)

    def _end(self, reason: Any) -> None:
        """
        The body ended: L{DONE}, L{DATA_LOSS} (an undelimited body ended by a close), or a
        C{Failure}.
        """
        if self._ended is not None:
            return
        self._ended = reason
        if self._end_sink is not None:
            self._tell_end()

    def _tell_end(self) -> None:
        if not self._told_end:
            self._told_end = True
            reason = self._ended
            if self._gunzip is not None and (reason is DONE or reason is DATA_LOSS) \
                    and not self._gunzip.eof:
                reason = Failure(ResponseFailed([Failure(MalformedResponse("gzip: unexpected EOF"))]))
            self._end_sink(reason)  # type: ignore[misc]


def _ignore(_: Any) -> None:
    pass


def _as_failure(reason: Any) -> Failure:
    if reason is DONE:
        return Failure(ResponseDone("Response body fully received"))
    if reason is DATA_LOSS:
        return Failure(PotentialDataLoss())
    return reason  # type: ignore[no-any-return]


class _Collector:
    """
    Collects a body up to a limit for L{ClientResponse.read}.
    """

    def __init__(self, response: ClientResponse, limit: Optional[int]) -> None:
        self._response = response
        self._limit = limit
        self._chunks: List[bytes] = []
        self._size = 0
        self._cancelled = False
        self._cut = False
        self.finished: Deferred = Deferred(self._cancel)

    def _cancel(self, d: Deferred) -> None:
        self._cancelled = True  # the Deferred then fails with CancelledError
        self._response.stop_receiving()

    def data(self, chunk: bytes) -> None:
        if self.finished.called or self._cut:
            return
        self._size += len(chunk)
        if self._limit is not None and self._size > self._limit:
            self._chunks.append(chunk[:len(chunk) - (self._size - self._limit)])
            self._cut = True
            self._response.stop_receiving()
            self.finished.callback((b"".join(self._chunks), True))
            return
        self._chunks.append(chunk)

    def end(self, reason: Any) -> None:
        if self.finished.called or self._cancelled or self._cut:
            return
        if reason is DONE or reason is DATA_LOSS:
            self.finished.callback((b"".join(self._chunks), False))
        else:
            self.finished.errback(reason)


class _BodyTransport:
    """
    What a L{ClientResponse.deliverBody} protocol sees as its transport: a push producer over
    the backend connection.
    """

    def __init__(self, connection: "ClientConnection") -> None:
        self._connection = connection

    def pauseProducing(self) -> None:
        self._connection.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self._connection.transport.resumeProducing()

    def stopProducing(self) -> None:
        self._connection.abort()

    def abortConnection(self) -> None:
        self._connection.abort()

    loseConnection = abortConnection


class ClientConnection(Protocol):
    """
    One connection to a backend, one exchange at a time (no pipelining).

    @ivar key: the pool key (scheme, host, port).
    @ivar reused: whether an earlier exchange ran on this connection.
    @ivar idle_since: when it last went back to the pool.
    """

    def __init__(self, pool: "ConnectionPool", key: Key) -> None:
        self._pool = pool
        self.key = key
        self.reused = False
        self.idle_since = 0.0
        self.in_pool = False
        self._state = _IDLE
        self._buffer = b""
        self._waiting: Optional[Deferred] = None
        self._response: Optional[ClientResponse] = None
        self._method = b""
        self._url = b""
        self._received = False
        self._keep_alive = True
        self._remaining = 0  # body bytes still due: -1 until close, else a count
        self._chunked = False
        self._chunk_state = _CHUNK_SIZE
        self._lost_waiters: List[Deferred] = []
        self._sized_reads = False

    def connectionMade(self) -> None:
        self._sized_reads = sized_reads(self.transport)

    # -- sending ---------------------------------------------------------------------------

    def usable(self) -> bool:
        """
        Whether a new exchange can start here.
        """
        return self._state == _IDLE and self.transport is not None

    def send(self, method: bytes, head: bytes, body: Optional[bytes], url: bytes) -> Deferred:
        """
        Write a request.

        @param head: the bytes of L{request_head}.
        @return: a Deferred firing with the L{ClientResponse} once its head has arrived;
            cancelling it drops the connection.
        """
        self._state = _HEAD
        self._method = method
        self._url = url
        self._received = False
        self._waiting = d = Deferred(self._cancel_head)
        if body and len(body) > WRITE_THROUGH_MAX:
            self.transport.writeSequence((head, body))  # no copy of a large body
        else:
            send_now(self.transport, head + body if body else head)
        return d

    def received_nothing(self) -> bool:
        """
        Whether the last exchange got no byte at all (a stale pooled connection).
        """
        return not self._received

    def _cancel_head(self, d: Deferred) -> None:
        self._waiting = None
        self.abort()

    # -- receiving -------------------------------------------------------------------------

    def dataReceived(self, data: bytes) -> None:
        self._received = True
        if self._sized_reads:
            fit_reads(self.transport, len(data))
        if self._state == _BODY:
            self._body_bytes(data)
        elif self._state == _HEAD:
            self._buffer = self._buffer + data if self._buffer else data
            self._head_bytes()
        elif self._state == _IDLE:
            self.abort()  # nothing was asked: the backend is not speaking HTTP/1.1 with us

    def _head_bytes(self) -> None:
        while self._state == _HEAD:
            buffer = self._buffer
            end = buffer.find(b"\r\n\r\n")
            size = 4
            bare = buffer.find(b"\n\n", 0, end if end >= 0 else len(buffer))
            if bare >= 0:
                end, size = bare, 2
            if end < 0:
                if len(buffer) > MAX_HEAD:
                    self._fail_head(MalformedResponse("response head too large"))
                return
            rest = buffer[end + size:]
            self._buffer = b""
            try:
                version, code, phrase, headers, fields = _read_head(buffer[:end])
                body = self._framing(code, fields)
            except (MalformedResponse, ValueError) as e:
                self._fail_head(e)
                return
            if 100 <= code < 200 and code != 101:
                self._buffer = rest  # an interim answer (100 Continue): the real one follows
                continue
            self._response = response = ClientResponse(self, version, code, phrase, headers, self._url)
            response.content_encoding = self._content_encoding
            waiting, self._waiting = self._waiting, None
            self._state = _BODY
            if waiting is not None and self._content_encoding is None and (
                    not body or (not self._chunked and 0 < self._remaining <= len(rest))):
                # The whole body came with the head (the usual small answer): it is taken in
                # first, so a reader attaching in the callbacks finds it complete and its
                # Deferred already fired, rather than chained and resumed later.
                if not body:
                    self._finish_body(rest)
                else:
                    self._body_bytes(rest)
                waiting.callback(response)
                return
            if waiting is not None:
                waiting.callback(response)
            if self._state != _BODY:
                return
            if not body:
                self._finish_body(rest)
            elif rest:
                self._body_bytes(rest)

    def _framing(self, code: int, fields: Tuple[Optional[bytes], Optional[bytes], Optional[bytes], bool]) -> bool:
        """
        Set how the body is delimited (from L{framing_fields}); return whether there is one.
        """
        length, encoding, content_encoding, keep_alive = fields
        self._keep_alive = keep_alive
        self._content_encoding = content_encoding
        self._chunked = False
        if self._method == b"HEAD" or code in (204, 304) or 100 <= code < 200:
            self._remaining = 0
            return False
        if encoding is not None:
            if encoding != b"chunked":
                raise MalformedResponse(f"unsupported transfer encoding: {encoding!r}")
            self._chunked = True
            self._chunk_state = _CHUNK_SIZE
            return True
        if length is not None:
            if not length.isdigit():
                raise MalformedResponse(f"bad Content-Length: {length[:40]!r}")
            self._remaining = int(length)
            return self._remaining > 0
        self._remaining = -1
        self._keep_alive = False
        return True

    def _body_bytes(self, data: bytes) -> None:
        if self._chunked:
            self._chunk_bytes(data)
            return
        remaining = self._remaining
        response = self._response
        if remaining < 0 or len(data) < remaining:
            if remaining > 0:
                self._remaining -= len(data)
            response._data(data)  # type: ignore[union-attr]
            return
        self._remaining = 0
        response._data(data[:remaining] if len(data) > remaining else data)  # type: ignore[union-attr]
        if self._state == _BODY:
            self._finish_body(data[remaining:])

    def _chunk_bytes(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        self._buffer = b""
        position = 0
        response = self._response
        while self._state == _BODY:
            state = self._chunk_state
            if state == _CHUNK_DATA:
                piece = buffer[position:position + self._remaining]
                if piece:
                    position += len(piece)
                    self._remaining -= len(piece)
                    response._data(piece)  # type: ignore[union-attr]
                if self._remaining:
                    return
                self._chunk_state = _CHUNK_END
                continue
            end = buffer.find(b"\n", position)
            if end < 0:
                self._buffer = buffer[position:]
                if len(self._buffer) > MAX_HEAD:
                    self.abort(Failure(ResponseFailed([Failure(MalformedResponse("chunk line too long"))])))
                return
            line = buffer[position:end].rstrip(b"\r")
            position = end + 1
            if state == _CHUNK_END:
                if line:
                    self.abort(Failure(ResponseFailed([Failure(MalformedResponse("malformed chunked encoding"))])))
                    return
                self._chunk_state = _CHUNK_SIZE
            elif state == _CHUNK_SIZE:
                size_text = line.split(b";", 1)[0].strip()
                try:
                    size = int(size_text, 16)
                except ValueError:
                    size = -1
                if size < 0 or not size_text:
                    self.abort(Failure(ResponseFailed([Failure(MalformedResponse("malformed chunked encoding"))])))
                    return
                if size == 0:
                    self._chunk_state = _TRAILERS
                else:
                    self._remaining = size
                    self._chunk_state = _CHUNK_DATA
            elif not line:  # the blank line after the trailers: the body is complete
                self._finish_body(buffer[position:])
                return

    def _finish_body(self, extra: bytes) -> None:
        response = self._response
        self._response = None
        self._state = _IDLE
        if extra or not self._keep_alive:
            self._close()
        else:
            self.reused = True
            self._pool.release(self)
        response._end(DONE)  # type: ignore[union-attr]

    def _fail_head(self, error: Exception) -> None:
        waiting, self._waiting = self._waiting, None
        self._close()
        if waiting is not None:
            waiting.errback(Failure(ResponseFailed([Failure(error)])))

    # -- closing ---------------------------------------------------------------------------

    def abort(self, reason: Optional[Failure] = None) -> None:
        """
        Drop the connection now; a body being read ends with C{reason} (by default
        C{ConnectionAborted}).
        """
        if self._state == _CLOSED:
            return
        response = self._response if self._state == _BODY else None
        self._state = _CLOSED
        self._response = None
        self._pool.forget(self)
        if self.transport is not None:
            self.transport.abortConnection()
        if response is not None:
            response._end(reason or Failure(ResponseFailed([Failure(ConnectionAborted())])))

    def _close(self) -> None:
        self._state = _CLOSED
        self._pool.forget(self)
        self.transport.loseConnection()

    def close(self) -> Deferred:
        """
        Close the connection (an idle one: at pool close).

        @return: a Deferred firing once it is closed.
        """
        d: Deferred = Deferred()
        if self.transport is None or (self._state == _CLOSED and not self.connected):
            d.callback(None)
            return d
        self._lost_waiters.append(d)
        if self._state != _CLOSED:
            self._close()
        return d

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.connected = False
        state, self._state = self._state, _CLOSED
        self._pool.forget(self)
        if state == _HEAD:
            waiting, self._waiting = self._waiting, None
            if waiting is not None:
                waiting.errback(Failure(ResponseNeverReceived([reason])))
        elif state == _BODY and self._response is not None:
            response, self._response = self._response, None
            if self._remaining < 0 and not self._chunked:
                response._end(DATA_LOSS)
            else:
                response._end(Failure(ResponseFailed([reason])))
        waiters, self._lost_waiters = self._lost_waiters, []
        for d in waiters:
            d.callback(None)


class _ConnectionFactory(ClientFactory):
    noisy = False

    def __init__(self, pool: "ConnectionPool", key: Key) -> None:
        self._pool = pool
        self._key = key

    def buildProtocol(self, addr: Any) -> ClientConnection:
        return ClientConnection(self._pool, self._key)


EndpointFor = Callable[[bytes, bytes, int], Any]


class TCPEndpoints:
    """
    The connection endpoint of each backend origin, built once: IP literals connect directly
    (no name resolution, no IDNA), names through C{HostnameEndpoint}, https wrapped in TLS.
    """

    MAX = 256  # origins come from the config; redirects may add a few more

    def __init__(self, reactor: Any, tls_policy: Any, connect_timeout: float = 30) -> None:
        self._reactor = reactor
        self._tls_policy = tls_policy
        self._timeout = connect_timeout
        self._cache: Dict[Key, Any] = {}

    def __call__(self, scheme: bytes, host: bytes, port: int) -> Any:
        key = (scheme, host, port)
        endpoint = self._cache.get(key)
        if endpoint is None:
            if len(self._cache) >= self.MAX:
                self._cache.clear()
            endpoint = self._cache[key] = self._new(scheme, host, port)
        return endpoint

    def _new(self, scheme: bytes, host: bytes, port: int) -> Any:
        text = host.decode("ascii", "replace")
        if isIPAddress(text):
            endpoint: Any = TCP4ClientEndpoint(self._reactor, text, port, timeout=self._timeout)
        elif isIPv6Address(text):
            endpoint = TCP6ClientEndpoint(self._reactor, text, port, timeout=self._timeout)
        else:
            endpoint = HostnameEndpoint(self._reactor, host, port, timeout=self._timeout)
        if scheme == b"https":
            endpoint = wrapClientTLS(self._tls_policy.creatorForNetloc(host, port), endpoint)
        return endpoint


class ConnectionPool:
    """
    Keeps idle connections per backend origin and sends requests over them.

    @ivar persistent: whether connections are kept between exchanges.
    @ivar max_idle_per_host: idle connections kept per origin (not a cap on concurrency).
    @ivar idle_timeout: seconds an idle connection is kept.
    @ivar retry: whether an idempotent request that meets a stale pooled connection (closed
        by the backend before a byte of answer) is sent once more on a new one.
    @ivar hold_down: seconds after a failed connection attempt during which new connections
        to that origin fail at once with the same error (0: every request tries).
    """

    def __init__(self, reactor: Any, endpoint_for: EndpointFor, persistent: bool = True,
                 max_idle_per_host: int = 250, idle_timeout: float = 90.0, retry: bool = True,
                 hold_down: float = 0.0) -> None:
        """
        @param reactor: for the idle timer.
        @param endpoint_for: (scheme, host, port) to the C{IStreamClientEndpoint} to connect to.
        """
        self._reactor = reactor
        self._endpoint_for = endpoint_for
        self.persistent = persistent
        self.max_idle_per_host = max_idle_per_host
        self.idle_timeout = idle_timeout
        self.retry = retry
        self.hold_down = hold_down
        self._failed: Dict[Key, Tuple[float, str]] = {}  # origin: (until, why)
        self._idle: Dict[Key, List[ClientConnection]] = {}
        self._factories: Dict[Key, _ConnectionFactory] = {}
        self._origins: Dict[bytes, Tuple[Key, bytes]] = {}
        self._sweep_call: Any = None

    def request(self, method: bytes, url: bytes, headers: HeaderPairs,
                body: Optional[bytes] = None) -> Deferred:
        """
        Send a request.

        @param url: the absolute URL.
        @param headers: (name, value) pairs; C{Host} and C{Content-Length} are added here.
        @param body: the body, or C{None} for a request without one.
        @return: a Deferred firing with the L{ClientResponse} once its head has arrived, or
            failing (C{ValueError} for a bad URL, the connection error, C{ResponseFailed} or
            C{ResponseNeverReceived}). Cancelling it drops the connection.
        """
        try:
            key, host, target = self._split(url)
        except ValueError as e:
            return fail(e)
        head = request_head(method, target, host, headers, body, self.persistent)
        connection = self._take_idle(key)
        if connection is None:
            return self._connect_and_send(key, method, head, body, url)
        d = connection.send(method, head, body, url)
        if self.retry and method in IDEMPOTENT:
            d.addErrback(self._retry_stale, connection, key, method, head, body, url)
        return d

    def held_down(self, url: bytes) -> Optional[HeldDown]:
        """
        The error a request to C{url} would fail with at once, its origin being held down after
        a failed connection (and no idle connection to it left), else C{None}.
        """
        if not self._failed:
            return None
        try:
            key = self._split(url)[0]
        except ValueError:
            return None
        return None if self._idle.get(key) else self._held_error(key)

    def _held_error(self, key: Key) -> Optional[HeldDown]:
        """
        The error of a connection to C{key} failed within C{hold_down} seconds, else C{None}
        (an expired hold-down is forgotten).
        """
        held = self._failed.get(key)
        if held is None:
            return None
        if held[0] > self._reactor.seconds():
            return HeldDown(held[1], self.hold_down)
        del self._failed[key]
        return None

    def _split(self, url: bytes) -> Tuple[Key, bytes, bytes]:
        """
        L{split_url}, with each origin's key and host parsed once: backend URLs differ in
        their paths, not in their origins.
        """
        slash = url.find(b"/", url.find(b"://") + 3)
        origin = url[:slash]
        known = self._origins.get(origin) if slash > 0 else None
        if known is None:
            key, host, target = split_url(url)
            if slash > 0 and len(self._origins) < 256 and not _UNUSUAL_ORIGIN.search(origin):
                self._origins[origin] = (key, host)
            return key, host, target
        target = url[slash:]
        if b"#" in target:
            target = target.partition(b"#")[0]
        return known[0], known[1], target

    def _take_idle(self, key: Key) -> Optional[ClientConnection]:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            connection.in_pool = False
            if connection.usable():
                return connection
        return None

    def _connect_and_send(self, key: Key, method: bytes, head: bytes, body: Optional[bytes],
                          url: bytes) -> Deferred:
        if self._failed:
            error = self._held_error(key)
            if error is not None:
                return fail(error)
        factory = self._factories.get(key)
        if factory is None:
            factory = self._factories[key] = _ConnectionFactory(self, key)
        d = self._endpoint_for(*key).connect(factory)
        if self.hold_down:
            d.addErrback(self._connect_failed, key)
        return d.addCallback(lambda connection: connection.send(method, head, body, url))

    def _connect_failed(self, failure: Failure, key: Key) -> Failure:
        if not failure.check(CancelledError) and len(self._failed) < 1024:
            if failure.check(ConnectingCancelledError):
                # the call's deadline cut the attempt (Twisted's error text is the address)
                why = "connection not established before the deadline"
            else:
                why = str(failure.value) or type(failure.value).__name__
            self._failed[key] = (self._reactor.seconds() + self.hold_down, why)
        return failure

    def _retry_stale(self, failure: Failure, connection: ClientConnection, key: Key,
                     method: bytes, head: bytes, body: Optional[bytes], url: bytes) -> Any:
        if failure.check(ResponseNeverReceived) and connection.received_nothing():
            return self._connect_and_send(key, method, head, body, url)
        return failure

    def release(self, connection: ClientConnection) -> None:
        """
        Take back a connection whose exchange is over.
        """
        if not self.persistent:
            connection.close()
            return
        idle = self._idle.setdefault(connection.key, [])
        if len(idle) >= self.max_idle_per_host:
            connection.close()
            return
        connection.idle_since = self._reactor.seconds()
        connection.in_pool = True
        idle.append(connection)
        if self._sweep_call is None:
            self._sweep_call = self._reactor.callLater(self.idle_timeout, self._sweep)

    def forget(self, connection: ClientConnection) -> None:
        """
        A connection closed or broke: it is no longer available.
        """
        if connection.in_pool:
            connection.in_pool = False
            idle = self._idle.get(connection.key)
            if idle and connection in idle:
                idle.remove(connection)

    def idle_count(self) -> int:
        """
        How many idle connections are kept, over all origins.
        """
        return sum(len(idle) for idle in self._idle.values())

    def _sweep(self) -> None:
        self._sweep_call = None
        deadline = self._reactor.seconds() - self.idle_timeout
        oldest: Optional[float] = None
        for idle in list(self._idle.values()):
            for connection in list(idle):
                if connection.idle_since <= deadline:
                    connection.close()
                elif oldest is None or connection.idle_since < oldest:
                    oldest = connection.idle_since
        if oldest is not None:
            delay = max(oldest + self.idle_timeout - self._reactor.seconds(), 0.001)
            self._sweep_call = self._reactor.callLater(delay, self._sweep)

    def close(self) -> Deferred:
        """
        Close every idle connection (at service stop); exchanges under way are left to finish.

        @return: a Deferred firing once they are closed.
        """
        if self._sweep_call is not None and self._sweep_call.active():
            self._sweep_call.cancel()
        self._sweep_call = None
        closing = [connection.close() for idle in list(self._idle.values()) for connection in list(idle)]
        self._idle.clear()
        return DeferredList(closing) if closing else succeed(None)
