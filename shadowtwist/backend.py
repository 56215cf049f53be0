# -*- test-case-name: tests.test_backend -*-
"""
The one module that speaks HTTP to backends: request building, connection pools, timeouts.

Building the outgoing request (L{build_request}) is pure and follows KrakenD sections 2.3, 2.4
and 3.3: the endpoint's header and query allow-lists, C{X-Forwarded-For}, C{X-Forwarded-Host},
C{User-Agent}, C{url_pattern} substitution and an equal share per C{host} entry.
L{BackendClient} sends it as Go's client does for KrakenD (transparent gzip, redirects, a
deadline over connect, headers and body) over the lean pooled connections of L{httpclient}.

Why not treq's C{HTTPClient}, nor Twisted's C{Agent} under it: per request the first re-parses
the URL with hyperlink (IDNA included), rebuilds its cookie, redirect and decoder agents and runs
the cookie jar; the second builds C{URI} and C{Headers} objects, parses line by line and chains
a Deferred per state. Measured with C{bench/} and py-spy they were most of the gateway's CPU
per proxied request (see the closing note of the performance issue). treq remains the client
of the tests (C{treq.testing}).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple
from urllib.parse import quote, quote_plus

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectingCancelledError, TimeoutError
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.python.failure import Failure
from twisted.web.client import BrowserLikePolicyForHTTPS, ResponseFailed, _urljoin
from twisted.web.error import InfiniteRedirection
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

import shadowtwist
from shadowtwist.config import BackendConfig, ClientOptions, EndpointConfig, canonical_header, param_key
from shadowtwist.deadlines import Deadline, Deadlines
from shadowtwist.httpclient import (
    ClientResponse, ConnectionPool, EndpointFor, HeaderPairs, TCPEndpoints, split_url,
)
from shadowtwist.memo import BoundedMemo

GATEWAY_VERSION = f"shadowtwist Version {shadowtwist.__version__}"
GO_USER_AGENT = "Go-http-client/1.1"
_PLACEHOLDER_TEXT = "{%s}"
# Characters a parameter value may keep as-is in a backend path: everything that cannot end a
# segment, start a query or fragment, or be read as an escape.
_PATH_SAFE = "-._~!$&'()*+,;=:@"


class _per_request:
    """
    C{functools.cached_property} without its lock (Python before 3.12 takes one on every first
    access, which is every request here): computed on first use, then an instance attribute.
    """

    def __init__(self, compute: Callable[[Any], Any]) -> None:
        self._compute = compute
        self._name = compute.__name__
        self.__doc__ = compute.__doc__

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        value = instance.__dict__[self._name] = self._compute(instance)
        return value


# The per-request dataclasses here (and Part, Merged, GatewayResponse, PrimaryOutcome,
# ShadowResult) are not frozen: a frozen dataclass sets every field through object.__setattr__,
# which made up 6 % of the instructions of a proxied request. Nothing changes them once built.
@dataclass
class IncomingRequest:
    """
    What the gateway took from a client request, decoupled from twisted.web.

    @ivar headers: header name (any case) to every value, in order.
    @ivar query: the query parameters as (name, value) pairs in order.
    @ivar params: path parameter name (as in the template) to its decoded value.
    """

    method: str
    path: str
    query: tuple = ()
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    client_ip: str = ""
    host: str = ""

    def header_values(self, name: str) -> list:
        """
        Every value of a header, whatever the case of its name.

        @param name: the header name.
        @return: the values, possibly empty.
        """
        return list(self._by_lower_name.get(name.lower(), ()))

    def forwarded(self, endpoint: EndpointConfig, backend: BackendConfig) -> tuple:
        """
        L{forwarded_headers} for this request, worked out once per pair of header allow-lists:
        a request's primaries and shadows mostly share them.
        """
        key = (endpoint.input_headers, backend.input_headers)
        cache = self._forwarded_cache
        found = cache.get(key)
        if found is None:
            found = cache[key] = tuple(forwarded_headers(endpoint, backend, self))
        return found

    @_per_request
    def _forwarded_cache(self) -> dict:
        return {}

    @_per_request
    def _by_lower_name(self) -> Dict[str, list]:
        # Built once per request: several lookups per backend call (allowed headers, client IP).
        by_name: Dict[str, list] = {}
        for key, found in self.headers.items():
            by_name.setdefault(key.lower(), []).extend(found)
        return by_name


@dataclass
class OutgoingRequest:
    """
    A request ready to send to a backend.

    @ivar headers: (canonical name, value) pairs, repeats allowed.
    """

    method: str
    url: str
    headers: tuple
    body: Optional[bytes]


class BackendResponse:
    """
    A backend's answer.

    @ivar headers: Go-canonical header name to its values; given, or worked out from
        C{raw_headers} on first use (a shadow's are mostly never looked at).
    @ivar truncated: whether the body was cut at the reader's limit (the rest was not read).
    """

    def __init__(self, status: int, headers: Optional[Mapping[str, Sequence[str]]] = None,
                 body: bytes = b"", url: str = "", elapsed: float = 0.0, truncated: bool = False,
                 raw_headers: Sequence[Tuple[bytes, bytes]] = ()) -> None:
        self.status = status
        self._headers = headers
        self._raw_headers = raw_headers
        self.body = body
        self.url = url
        self.elapsed = elapsed
        self.truncated = truncated

    @property
    def headers(self) -> Mapping[str, Sequence[str]]:
        if self._headers is None:
            headers: Dict[str, list] = {}
            for name, value in self._raw_headers:
                headers.setdefault(_go_canonical(name), []).append(value.decode("latin-1"))
            self._headers = headers
        return self._headers

    def __repr__(self) -> str:
        return (f"BackendResponse(status={self.status!r}, headers={self.headers!r}, body={self.body!r}, "
                f"url={self.url!r}, elapsed={self.elapsed!r}, truncated={self.truncated!r})")

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, BackendResponse):
            return NotImplemented
        return (self.status, self.headers, self.body, self.url, self.elapsed, self.truncated) == \
            (other.status, other.headers, other.body, other.url, other.elapsed, other.truncated)

    __hash__ = None  # type: ignore[assignment]


# A shadow whose origin refuses connections is not dialled at full request rate: after a failed
# connection its copies fail at once for this long (an error outcome each), which keeps a dead
# shadow cheaper than a live one.
SHADOW_HOLD_DOWN = 1.0


class BackendTimeout(Exception):
    """
    The backend did not finish answering before its deadline.
    """


def client_ip(incoming: IncomingRequest) -> str:
    """
    gin's C{ClientIP()} with KrakenD's defaults (every proxy trusted): the left-most address of
    the first C{X-Forwarded-For} header, then of C{X-Real-IP}, then the TCP peer. As in gin, a
    header counts only when every address in it is a valid IP.

    @param incoming: the client request.
    @return: the address to send as C{X-Forwarded-For}.
    """
    for name in ("X-Forwarded-For", "X-Real-Ip"):
        values = incoming.header_values(name)
        if values:
            items = [item.strip() for item in values[0].split(",")]
            if all(isIPAddress(item) or isIPv6Address(item) for item in items):
                return items[0]
    return incoming.client_ip


def forwarded_headers(endpoint: EndpointConfig, backend: BackendConfig,
                      incoming: IncomingRequest) -> list:
    """
    The headers KrakenD sends a backend (section 2.3), as (canonical name, value) pairs.

    @param endpoint: the endpoint configuration (first-level C{input_headers}).
    @param backend: the backend configuration (second-level C{input_headers}).
    @param incoming: the client request.
    @return: the header pairs, before the HTTP client adds C{Host} and C{Accept-Encoding}.
    """
    allowed = endpoint.input_headers or ("Content-Type",)
    headers: dict = {}
    if "*" in allowed:
        for name, values in incoming.headers.items():
            headers.setdefault(canonical_header(name), []).extend(values)
    else:
        for name in allowed:
            values = incoming.header_values(name)
            if values:
                headers[canonical_header(name)] = list(values)
    headers["X-Forwarded-For"] = [client_ip(incoming)]
    headers["X-Forwarded-Host"] = [incoming.host]
    if "User-Agent" in headers:
        headers["X-Forwarded-Via"] = [GATEWAY_VERSION]
    else:
        headers["User-Agent"] = [GATEWAY_VERSION]
    if backend.input_headers is not None and "*" not in backend.input_headers:
        keep = {canonical_header(n) for n in backend.input_headers}
        headers = {k: v for k, v in headers.items() if k in keep}
        if "User-Agent" not in headers:
            headers["User-Agent"] = [GO_USER_AGENT]  # what Go's client then sends by itself
    for hop in ("Connection", "Keep-Alive", "Transfer-Encoding", "Te", "Trailer", "Upgrade",
                "Proxy-Connection", "Host", "Content-Length"):
        headers.pop(hop, None)
    return [(name, value) for name, values in headers.items() for value in values]


def forwarded_query(endpoint: EndpointConfig, backend: BackendConfig,
                    incoming: IncomingRequest) -> str:
    """
    The client's query parameters KrakenD forwards (section 2.4), encoded as Go's
    C{url.Values.Encode()} does: keys sorted, repeats kept in order, space as C{+}.

    @return: the encoded query without C{?}, possibly empty.
    """
    allowed = endpoint.input_query_strings
    if not allowed:
        return ""
    values: dict = {}
    for name, value in incoming.query:
        if "*" in allowed or name in allowed:
            values.setdefault(name, []).append(value)
    narrow = backend.input_query_strings
    if narrow is not None and "*" not in narrow:
        values = {k: v for k, v in values.items() if k in narrow}
    return "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k in sorted(values) for v in values[k])


def fill_url_pattern(url_pattern: str, params: Mapping[str, str]) -> str:
    """
    Substitute C{{param}} placeholders with the client's values, percent-encoded so that a value
    can never add a path segment, a query or a fragment (KrakenD places them raw; see README).
    Placeholders with no value stay as literal text, as in KrakenD.

    @param url_pattern: the backend's C{url_pattern}.
    @param params: parameter name to decoded value.
    @return: the path (and query) to request.
    """
    if "{" not in url_pattern:
        return url_pattern
    by_key = {param_key(name): value for name, value in params.items()}
    path, question, query = url_pattern.partition("?")

    def fill(part: str, safe: str) -> str:
        pieces = part.split("{")
        out = [pieces[0]]
        for piece in pieces[1:]:
            name, brace, rest = piece.partition("}")
            value = by_key.get(param_key(name)) if brace else None
            if value is None:
                out.append("{" + piece)
            else:
                encoded = quote(value, safe=safe)
                if encoded in (".", ".."):
                    encoded = encoded.replace(".", "%2E")
                out.append(encoded + rest)
        return "".join(out)

    return fill(path, _PATH_SAFE) + question + fill(query, "-._~")


def build_request(endpoint: EndpointConfig, backend: BackendConfig, incoming: IncomingRequest,
                  choose: Callable[[Sequence[str]], str] = random.choice) -> OutgoingRequest:
    """
    Build the request KrakenD would send this backend for this client request.

    @param choose: picks one entry of the backend's C{host} list (each entry an equal share).
    @return: the outgoing request.
    """
    host = backend.hosts[0] if len(backend.hosts) == 1 else choose(backend.hosts)
    url = host + fill_url_pattern(backend.url_pattern, incoming.params)
    query = forwarded_query(endpoint, backend, incoming)
    if query:
        if "?" not in url:
            url += "?"
        elif not url.endswith("?"):
            url += "&"
        url += query
    has_body = backend.method not in ("GET", "HEAD")
    return OutgoingRequest(
        method=backend.method, url=url,
        headers=incoming.forwarded(endpoint, backend),
        body=incoming.body if has_body else None)


@implementer(IPolicyForHTTPS)
class _InsecurePolicy:
    """
    TLS without certificate checks, for KrakenD's C{allow_insecure_connections}.
    """

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return _UnverifiedCreator(hostname)


@implementer(IOpenSSLClientConnectionCreator)
class _UnverifiedCreator:
    def __init__(self, hostname: bytes) -> None:
        self._hostname = hostname

    def clientConnectionForTLS(self, tlsProtocol: Any) -> Any:
        from OpenSSL import SSL
        from twisted.internet.ssl import CertificateOptions

        connection = SSL.Connection(CertificateOptions(verify=False).getContext(), None)
        connection.set_app_data(tlsProtocol)
        connection.set_tlsext_host_name(self._hostname)
        return connection


# A header name as Go's CanonicalMIMEHeaderKey spells it (remembered: backends repeat names).
_go_canonical = BoundedMemo(lambda name: canonical_header(name.decode("latin-1")), 4096).__call__


class BackendClient:
    """
    Sends L{OutgoingRequest}s the way Go's C{http.Client} does for KrakenD, over one
    L{ConnectionPool}: transparent gzip, redirects, a deadline over the whole exchange.

    @ivar pool: the connection pool; L{close} closes its idle connections.
    """

    REDIRECT_LIMIT = 10
    _SENSITIVE = (b"authorization", b"www-authenticate", b"cookie", b"cookie2", b"proxy-authorization")

    def __init__(self, reactor: Any, options: ClientOptions = ClientOptions(), retry: bool = True,
                 endpoint_for: Optional[EndpointFor] = None,
                 clock: Callable[[], float] = time.monotonic, hold_down: float = 0.0) -> None:
        """
        @param reactor: the reactor (for connections and deadlines).
        @param retry: whether idempotent requests are sent again once when a pooled connection
            turns out to be closed (the shadow client does not).
        @param endpoint_for: (scheme, host, port) to the endpoint to connect to; by default
            L{TCPEndpoints} (tests pass in-memory ones).
        @param clock: a monotonic clock for latencies.
        @param hold_down: after a failed connection to an origin, fail new ones to it at once
            for this many seconds (the shadow client's L{SHADOW_HOLD_DOWN}; 0 for primaries,
            which, as in KrakenD, try every time).
        """
        self._reactor = reactor
        self._clock = clock
        self._deadlines = Deadlines(reactor)
        if endpoint_for is None:
            tls = _InsecurePolicy() if options.allow_insecure_connections else BrowserLikePolicyForHTTPS()
            endpoint_for = TCPEndpoints(reactor, tls, options.dialer_timeout or 30)
        self.pool = ConnectionPool(
            reactor, endpoint_for, persistent=not options.disable_keep_alives,
            max_idle_per_host=options.max_idle_connections_per_host,
            idle_timeout=options.idle_connection_timeout or 90, retry=retry, hold_down=hold_down)

    def send(self, outgoing: OutgoingRequest, timeout: float, max_body: Optional[int] = None) -> Deferred:
        """
        Send a request and read the response, all within C{timeout} seconds.

        @param max_body: read at most this many body bytes, then drop the connection and mark
            the response truncated (C{None}: read it all).
        @return: a Deferred firing with a L{BackendResponse}, or failing with L{BackendTimeout}
            at the deadline, or with the connection error. Cancelling it aborts the exchange.
        """
        d = self._fetch(outgoing, (self._clock(), max_body))
        return self._with_deadline(d, timeout)

    def held_down(self, url: str) -> Optional[str]:
        """
        Why a request to C{url} would fail at once, its origin held down after a failed
        connection (the shadow client's C{hold_down}), else C{None}.
        """
        try:
            error = self.pool.held_down(url.encode("ascii"))
        except UnicodeEncodeError:
            return None
        return None if error is None else str(error)

    def _read(self, response: ClientResponse, started: float, max_body: Optional[int]) -> Any:
        whole = response.read_complete(max_body)
        if whole is not None:
            return self._whole(whole, response, started)
        return response.read(max_body).addCallback(self._whole, response, started)

    def _whole(self, body: Tuple[bytes, bool], response: ClientResponse, started: float) -> BackendResponse:
        return BackendResponse(status=response.code, body=body[0], raw_headers=response.raw_headers,
                               url=response.url.decode("ascii", "replace"),
                               elapsed=self._clock() - started, truncated=body[1])

    def open(self, outgoing: OutgoingRequest, timeout: float) -> Deferred:
        """
        Send a request and stop at the response headers, for streaming the body on.

        @param timeout: the deadline for the headers; the caller bounds the body itself.
        @return: a Deferred firing with the L{ClientResponse} (an C{IResponse}, its body not
            yet read).
        """
        d = self._fetch(outgoing)
        return self._with_deadline(d, timeout)

    def _with_deadline(self, d: Deferred, timeout: float) -> Deferred:
        """
        Cancel C{d} after C{timeout} seconds; its failure then becomes L{BackendTimeout}.
        (Twisted's C{addTimeout} does the same with a timer per call, three closures and two
        callbacks more.)
        """
        deadline = self._deadlines.start(timeout, d.cancel)
        return d.addBoth(_end_deadline, deadline, timeout)

    def _fetch(self, outgoing: OutgoingRequest, read: Optional[tuple] = None) -> Deferred:
        """
        Send C{outgoing}, following redirects; fire with the final L{ClientResponse}, or, given
        C{read} (the start time and the body limit of L{_read}), with its L{BackendResponse}
        (one callback for both steps: the body usually arrives with the head).
        """
        headers, gunzip = _encoded_headers(outgoing.headers)
        body = outgoing.body
        replayable = not body
        method = outgoing.method.encode("ascii")
        url = outgoing.url.encode("ascii")
        return self._exchange(method, url, headers, body, gunzip, 0, replayable, read)

    def _exchange(self, method: bytes, url: bytes, headers: HeaderPairs, body: Optional[bytes],
                  gunzip: bool, redirects: int, replayable: bool, read: Optional[tuple]) -> Deferred:
        d = self.pool.request(method, url, headers, body)
        return d.addCallback(self._answered, method, url, headers, gunzip, redirects, replayable, read)

    def _answered(self, response: ClientResponse, method: bytes, url: bytes, headers: HeaderPairs,
                  gunzip: bool, redirects: int, replayable: bool, read: Optional[tuple]) -> Any:
        if gunzip:
            encoding = response.content_encoding
            if encoding is not None and encoding.strip().lower() == b"gzip":
                response.decode_gzip()
        code = response.code
        if code in (301, 302, 303):
            method = method if method in (b"GET", b"HEAD") else b"GET"
            replayable = True
        elif code not in (307, 308) or not replayable:
            return response if read is None else self._read(response, *read)
        return self._redirect(response, method, url, headers, gunzip, redirects, replayable, read)

    def _redirect(self, response: ClientResponse, method: bytes, url: bytes, headers: HeaderPairs,
                  gunzip: bool, redirects: int, replayable: bool, read: Optional[tuple]) -> Any:
        """
        Follow a redirect as Go's C{http.Client} does for KrakenD: at most 10; 301, 302 and 303
        re-sent without the body, as GET (HEAD stays HEAD); 307 and 308 re-sent with the same
        method when there is no body to replay, else the redirect itself is the answer; a
        C{Referer} naming the previous URL (not from https to http); credentials dropped when
        the redirect leaves the origin.
        """
        found = response.header(b"location")
        if not found:
            return response if read is None else self._read(response, *read)
        location = _urljoin(url, found)
        response.discard()
        if redirects >= self.REDIRECT_LIMIT:
            raise ResponseFailed([Failure(InfiniteRedirection(
                response.code, b"stopped after 10 redirects", location=url))], response)
        headers = [(n, v) for n, v in headers if n.lower() != b"referer"]
        try:
            same_origin = split_url(location)[0] == split_url(url)[0]
        except ValueError as e:
            raise ResponseFailed([Failure(e)], response)
        if not same_origin:
            headers = [(n, v) for n, v in headers if n.lower() not in self._SENSITIVE]
        if not (url.startswith(b"https:") and not location.startswith(b"https:")):
            headers.append((b"Referer", url))
        body = b"" if method not in (b"GET", b"HEAD") else None
        return self._exchange(method, location, headers, body, gunzip, redirects + 1, replayable, read)

    def call_later(self, seconds: float, function: Callable[[], Any]) -> Any:
        """
        Schedule C{function} on the client's reactor (for deadlines on streamed bodies).
        """
        return self._reactor.callLater(seconds, function)

    def close(self) -> Deferred:
        """
        Close the pool's idle connections (at service stop).
        """
        return self.pool.close()


def _encode_headers(headers: Sequence[Tuple[str, str]]) -> Tuple[tuple, bool]:
    """
    Request headers as bytes pairs, and whether the answer is to be gunzipped: Go's
    transparent gzip asks for it (C{Accept-Encoding: gzip} added) and decodes it only when
    the request names no C{Accept-Encoding} of its own (a forwarded one is sent as it is, the
    answer left encoded).
    """
    encoded = [(name.encode("latin-1"), _header_bytes(value)) for name, value in headers]
    gunzip = True
    for name, _ in encoded:
        if name.lower() == b"accept-encoding":
            gunzip = False
            break
    if gunzip:
        encoded.append((b"Accept-Encoding", b"gzip"))
    return tuple(encoded), gunzip


class _LastEncoded:
    """
    L{_encode_headers} remembering its last tuple of headers: a client request's primaries
    and shadows are mostly given the same tuple (L{IncomingRequest.forwarded}), so it is
    encoded once per request rather than once per backend. Only tuples are remembered (they
    cannot change while remembered); one entry, so nothing outlives the next request.
    """

    __slots__ = ("_headers", "_result")

    def __init__(self) -> None:
        self._headers: Any = None
        self._result: Tuple[tuple, bool] = ((), True)

    def __call__(self, headers: Sequence[Tuple[str, str]]) -> Tuple[tuple, bool]:
        if headers is self._headers:
            return self._result
        result = _encode_headers(headers)
        if type(headers) is tuple:
            self._headers, self._result = headers, result
        return result


_encoded_headers = _LastEncoded()


def _header_bytes(value: str) -> bytes:
    """
    A header value back to bytes: client values were decoded as latin-1 and go back unchanged;
    a configured value outside latin-1 is sent as UTF-8.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _end_deadline(result: Any, deadline: Deadline, timeout: float) -> Any:
    if deadline.expired:
        if isinstance(result, Failure):
            return Failure(BackendTimeout(f"context deadline exceeded (after {timeout:g}s)"))
    else:
        deadline.end()
    return result


def is_cancellation(failure: Failure) -> bool:
    """
    Whether a failed call was cancelled by us (Twisted may wrap the C{CancelledError} in
    C{ResponseNeverReceived}; a call cancelled while connecting fails with
    C{ConnectingCancelledError} instead).
    """
    if failure.check(CancelledError, ConnectingCancelledError):
        return True
    reasons = getattr(failure.value, "reasons", None) or ()
    return any(isinstance(r, Failure) and r.check(CancelledError, ConnectingCancelledError) for r in reasons)


def describe_failure(failure: Failure) -> str:
    """
    A one-line reason for a failed backend call, for logs and error bodies.

    @param failure: the failure of L{BackendClient.send}.
    @return: the reason, without a traceback.
    """
    error = failure.value
    if isinstance(error, (BackendTimeout, TimeoutError)):
        return "context deadline exceeded"
    if isinstance(error, ConnectingCancelledError):  # its text is only the address
        return "context canceled"
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(describe_failure(r) if isinstance(r, Failure) else str(r) for r in reasons)
    text = str(error) or type(error).__name__
    return text
