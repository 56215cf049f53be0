# -*- test-case-name: tests.test_backend -*-
"""
The one module that speaks HTTP to backends: request building, connection pools, timeouts.

Building the outgoing request (L{build_request}) is pure and follows KrakenD sections 2.3, 2.4
and 3.3: the endpoint's header and query allow-lists, C{X-Forwarded-For}, C{X-Forwarded-Host},
C{User-Agent}, C{url_pattern} substitution and an equal share per C{host} entry.
L{BackendClient} sends it over one shared L{HTTPConnectionPool} through an agent stack built
once: gzip decoding, Go-like redirects, and a L{CachingAgent} (each backend's endpoint built
once, IP literals connected without name resolution). It cuts the whole exchange (connect,
headers and body) at a deadline.

Why not treq's C{HTTPClient} here: per request it re-parses the URL with hyperlink (IDNA
included), rebuilds its cookie, redirect and decoder agents and runs the cookie jar; measured
with C{bench/} and py-spy this was about 30 % of the gateway's CPU per proxied request (see the
closing note of the performance issue). treq remains the client of the tests (C{treq.testing}).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence
from urllib.parse import quote, quote_plus

from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.error import TimeoutError
from twisted.internet.protocol import Protocol, connectionDone
from twisted.python.failure import Failure
from twisted.web import http
from twisted.web.client import (
    URI, Agent, BrowserLikePolicyForHTTPS, ContentDecoderAgent, GzipDecoder, HTTPConnectionPool,
    PotentialDataLoss, ResponseDone, ResponseFailed, _HTTP11ClientFactory, _urljoin,
)
from twisted.web.http_headers import Headers
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.web.error import InfiniteRedirection
from twisted.web.iweb import IAgent, IBodyProducer, IPolicyForHTTPS
from zope.interface import implementer

import shadowtwist
from shadowtwist.config import BackendConfig, ClientOptions, EndpointConfig, canonical_header, param_key

GATEWAY_VERSION = f"shadowtwist Version {shadowtwist.__version__}"
GO_USER_AGENT = "Go-http-client/1.1"
_PLACEHOLDER_TEXT = "{%s}"
# Characters a parameter value may keep as-is in a backend path: everything that cannot end a
# segment, start a query or fragment, or be read as an escape.
_PATH_SAFE = "-._~!$&'()*+,;=:@"


@dataclass(frozen=True)
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
        lowered = name.lower()
        values: list = []
        for key, found in self.headers.items():
            if key.lower() == lowered:
                values.extend(found)
        return values


@dataclass(frozen=True)
class OutgoingRequest:
    """
    A request ready to send to a backend.

    @ivar headers: (canonical name, value) pairs, repeats allowed.
    """

    method: str
    url: str
    headers: tuple
    body: Optional[bytes]


@dataclass(frozen=True)
class BackendResponse:
    """
    A backend's answer.

    @ivar truncated: whether the body was cut at the reader's limit (the rest was not read).
    """

    status: int
    headers: Mapping[str, Sequence[str]]
    body: bytes
    url: str
    elapsed: float
    truncated: bool = False


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
        headers=tuple(forwarded_headers(endpoint, backend, incoming)),
        body=incoming.body if has_body else None)


@implementer(IBodyProducer)
class BytesProducer:
    """
    A request body already in memory, written in one go: the client body is read once and the
    same bytes are handed to every backend and shadow, with no cooperator round trips.
    """

    def __init__(self, body: bytes) -> None:
        self._body = body
        self.length = len(body)

    def startProducing(self, consumer: Any) -> Deferred:
        if self._body:
            consumer.write(self._body)
        return succeed(None)

    def pauseProducing(self) -> None:
        pass

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


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


def make_pool(reactor: Any, options: ClientOptions, retry: bool = True) -> HTTPConnectionPool:
    """
    A connection pool sized for a proxy.

    C{maxPersistentPerHost} caps idle sockets kept per backend, not concurrency; KrakenD's
    C{max_idle_connections_per_host} (default 250) maps onto it.

    @param retry: whether idempotent requests are retried once on a stale pooled connection.
    """
    pool = HTTPConnectionPool(reactor, persistent=not options.disable_keep_alives)
    pool._factory = _QuietClientFactory
    pool.maxPersistentPerHost = options.max_idle_connections_per_host
    pool.cachedConnectionTimeout = options.idle_connection_timeout or 90
    pool.retryAutomatically = retry
    return pool


@implementer(IAgent)
class GoRedirectAgent:
    """
    Follows backend redirects the way Go's C{http.Client} does for KrakenD: at most 10; 301,
    302 and 303 re-sent without the body, as GET (HEAD stays HEAD); 307 and 308 re-sent with
    the same method when there is no body to replay, else the redirect itself is the answer;
    a C{Referer} naming the previous URL (not from https to http); credentials dropped when
    the redirect leaves the origin.
    """

    LIMIT = 10
    _SENSITIVE = (b"authorization", b"www-authenticate", b"cookie", b"cookie2", b"proxy-authorization")

    def __init__(self, agent: Any) -> None:
        self._agent = agent

    def request(self, method: bytes, uri: bytes, headers: Optional[Headers] = None,
                bodyProducer: Any = None) -> Deferred:
        """
        Send the request and follow its redirects.
        """
        replayable = bodyProducer is None or getattr(bodyProducer, "length", None) == 0
        d = self._agent.request(method, uri, headers, bodyProducer)
        return d.addCallback(self._answered, method, uri, headers, 0, replayable)

    def _answered(self, response: Any, method: bytes, uri: bytes, headers: Optional[Headers],
                  count: int, replayable: bool) -> Any:
        if response.code in (http.MOVED_PERMANENTLY, http.FOUND, http.SEE_OTHER):
            method = method if method in (b"GET", b"HEAD") else b"GET"
            replayable = True
        elif response.code not in (http.TEMPORARY_REDIRECT, http.PERMANENT_REDIRECT) or not replayable:
            return response
        location = _location(response, uri)
        if not location:
            return response
        if count >= self.LIMIT:
            raise ResponseFailed([Failure(InfiniteRedirection(
                response.code, b"stopped after 10 redirects", location=uri))], response)
        headers = headers.copy() if headers is not None else Headers()
        if URI.fromBytes(location).netloc != URI.fromBytes(uri).netloc:
            for name in self._SENSITIVE:
                headers.removeHeader(name)
        if not (uri.startswith(b"https:") and not location.startswith(b"https:")):
            headers.setRawHeaders(b"referer", [uri])
        body = BytesProducer(b"") if method not in (b"GET", b"HEAD") else None
        d = self._agent.request(method, location, headers, body)

        def chained(new_response: Any) -> Any:
            new_response.setPreviousResponse(response)
            return self._answered(new_response, method, location, headers, count + 1, replayable)

        return d.addCallback(chained)


@implementer(IAgent)
class GoGzipAgent(ContentDecoderAgent):
    """
    Go's transparent gzip: when the request has no C{Accept-Encoding}, ask for gzip and decode
    the answer (dropping its now wrong C{Content-Length}); when the client's own
    C{Accept-Encoding} is forwarded, send it as it is and leave the answer encoded.
    """

    def __init__(self, agent: Any) -> None:
        super().__init__(agent, [(b"gzip", GzipDecoder)])
        self._plain = agent

    def request(self, method: bytes, uri: bytes, headers: Optional[Headers] = None,
                bodyProducer: Any = None) -> Deferred:
        if headers is not None and headers.hasHeader(b"accept-encoding"):
            return self._plain.request(method, uri, headers, bodyProducer)
        return super().request(method, uri, headers, bodyProducer)

    def _handleResponse(self, response: Any) -> Any:
        if not response.headers.hasHeader(b"content-encoding"):
            return response  # (Twisted's own would add an empty Content-Encoding header)
        response = super()._handleResponse(response)
        if not response.headers.hasHeader(b"content-encoding"):
            response.headers.removeHeader(b"content-length")
        return response


def _location(response: Any, uri: bytes) -> bytes:
    found = response.headers.getRawHeaders(b"location", [b""])[0]
    return _urljoin(uri, found) if found else b""


class CachingAgent(Agent):
    """
    An C{Agent} that builds each backend's connection endpoint once instead of per request,
    and connects to IP literals directly (no name resolution in a thread, no IDNA encoding).
    """

    MAX_ENDPOINTS = 256  # backends come from the config; redirects may add a few more

    def __init__(self, reactor: Any, contextFactory: Any, pool: HTTPConnectionPool,
                 connectTimeout: Optional[float] = None) -> None:
        super().__init__(reactor, contextFactory=contextFactory, pool=pool, connectTimeout=connectTimeout)
        self._endpoint_reactor = reactor
        self._connect_timeout = connectTimeout or 30
        self._endpoints: dict = {}

    def _getEndpoint(self, uri: Any) -> Any:
        key = (uri.scheme, uri.host, uri.port)
        endpoint = self._endpoints.get(key)
        if endpoint is None:
            if len(self._endpoints) >= self.MAX_ENDPOINTS:
                self._endpoints.clear()
            endpoint = self._endpoints[key] = self._new_endpoint(uri)
        return endpoint

    def _new_endpoint(self, uri: Any) -> Any:
        if uri.scheme == b"http":
            host = uri.host.decode("ascii", "replace")
            if isIPAddress(host):
                return TCP4ClientEndpoint(self._endpoint_reactor, host, uri.port, timeout=self._connect_timeout)
            if isIPv6Address(host):
                return TCP6ClientEndpoint(self._endpoint_reactor, host, uri.port, timeout=self._connect_timeout)
        return super()._getEndpoint(uri)


class _QuietClientFactory(_HTTP11ClientFactory):
    """
    The pool's connection factory without its "Starting factory" log line per new connection.
    """

    noisy = False


class BackendClient:
    """
    Sends L{OutgoingRequest}s over one connection pool and reads the whole answer.

    @ivar pool: the connection pool; L{close} closes its idle connections.
    """

    def __init__(self, reactor: Any, options: ClientOptions = ClientOptions(),
                 pool: Optional[HTTPConnectionPool] = None, agent: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """
        @param reactor: the reactor (for connections and deadlines).
        @param pool: a pool to use instead of a new one from L{make_pool}.
        @param agent: an C{IAgent} to use instead of an C{Agent} on the pool (tests pass the
            in-memory agent of C{treq.testing}).
        @param clock: a monotonic clock for latencies.
        """
        self._reactor = reactor
        self._clock = clock
        self.pool = pool if pool is not None else make_pool(reactor, options)
        if agent is None:
            tls = _InsecurePolicy() if options.allow_insecure_connections else BrowserLikePolicyForHTTPS()
            agent = CachingAgent(reactor, contextFactory=tls, pool=self.pool,
                                 connectTimeout=options.dialer_timeout or None)
        # The wrappers are built once here rather than per request (treq's HTTPClient.request
        # rebuilds cookie, redirect and decoder agents and re-parses the URL on every call).
        self._agent = GoGzipAgent(GoRedirectAgent(agent))

    def send(self, outgoing: OutgoingRequest, timeout: float, max_body: Optional[int] = None) -> Deferred:
        """
        Send a request and read the response, all within C{timeout} seconds.

        @param max_body: read at most this many body bytes, then drop the connection and mark
            the response truncated (C{None}: read it all).
        @return: a Deferred firing with a L{BackendResponse}, or failing with L{BackendTimeout}
            at the deadline, or with the connection error. Cancelling it aborts the exchange.
        """
        started = self._clock()
        d = self._request(outgoing)

        def read(response: Any) -> Deferred:
            body = read_capped(response, max_body)
            body.addCallback(lambda data: BackendResponse(
                status=response.code,
                headers={k.decode("latin-1"): [v.decode("latin-1") for v in vs]
                         for k, vs in response.headers.getAllRawHeaders()},
                body=data[0] if isinstance(data, tuple) else data,
                url=response.request.absoluteURI.decode("ascii", "replace"),
                elapsed=self._clock() - started,
                truncated=isinstance(data, tuple) and data[1]))
            return body

        d.addCallback(read)
        d.addTimeout(timeout, self._reactor, onTimeoutCancel=_timeout_failure)
        return d

    def _request(self, outgoing: OutgoingRequest) -> Deferred:
        headers = Headers()
        for name, value in outgoing.headers:
            headers.addRawHeader(name.encode("latin-1"), _header_bytes(value))
        # An empty body still gets a producer so that every method with a body sends
        # Content-Length: 0, as Go does (Twisted alone only does it for POST and PUT).
        body = BytesProducer(outgoing.body) if outgoing.body is not None else None
        return self._agent.request(outgoing.method.encode("ascii"), outgoing.url.encode("ascii"),
                                   headers, body)

    def open(self, outgoing: OutgoingRequest, timeout: float) -> Deferred:
        """
        Send a request and stop at the response headers, for streaming the body on.

        @param timeout: the deadline for the headers; the caller bounds the body itself.
        @return: a Deferred firing with the Twisted C{IResponse} (its body not yet read).
        """
        d = self._request(outgoing)
        d.addTimeout(timeout, self._reactor, onTimeoutCancel=_timeout_failure)
        return d

    def call_later(self, seconds: float, function: Callable[[], Any]) -> Any:
        """
        Schedule C{function} on the client's reactor (for deadlines on streamed bodies).
        """
        return self._reactor.callLater(seconds, function)

    def close(self) -> Deferred:
        """
        Close the pool's idle connections (at service stop).
        """
        return self.pool.closeCachedConnections()


class _CappedReader(Protocol):
    """
    Collects at most C{limit} body bytes, then stops the transfer.
    """

    def __init__(self, finished: Deferred, limit: Optional[int]) -> None:
        self._finished = finished
        self._limit = limit
        self._chunks: list = []
        self._size = 0
        self._truncated = False

    def stop(self) -> None:
        """
        Stop reading: nothing more is kept and the connection is dropped.
        """
        self._truncated = True
        if self.transport is not None:
            self.transport.stopProducing()

    def dataReceived(self, data: bytes) -> None:
        if self._truncated:
            return
        room = self._limit - self._size if self._limit is not None else len(data)
        if len(data) > room:
            self._chunks.append(data[:room])
            self._truncated = True
            self.transport.stopProducing()
            return
        self._chunks.append(data)
        self._size += len(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._finished.called:
            return
        if self._truncated or reason.check(ResponseDone, PotentialDataLoss):
            self._finished.callback((b"".join(self._chunks), self._truncated))
        else:
            self._finished.errback(reason)


def _header_bytes(value: str) -> bytes:
    """
    A header value back to bytes: client values were decoded as latin-1 and go back unchanged;
    a configured value outside latin-1 is sent as UTF-8.
    """
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def read_capped(response: Any, limit: Optional[int] = None) -> Deferred:
    """
    Read at most C{limit} bytes of a response body (all of it when C{None}).

    @return: a Deferred firing with C{(body, truncated)}; cancelling it aborts the connection.
    """

    def cancel(d: Deferred) -> None:
        # The body's transport is a producer proxy without abortConnection; stopping it drops
        # the connection, so a timed-out or cancelled call frees its socket at once.
        reader.stop()

    finished: Deferred = Deferred(cancel)
    reader = _CappedReader(finished, limit)
    response.deliverBody(reader)
    return finished


def _timeout_failure(result: Any, timeout: float) -> Failure:
    return Failure(BackendTimeout(f"context deadline exceeded (after {timeout:g}s)"))


def is_cancellation(failure: Failure) -> bool:
    """
    Whether a failed call was cancelled by us (Twisted may wrap the C{CancelledError} in
    C{ResponseNeverReceived}).
    """
    if failure.check(CancelledError):
        return True
    reasons = getattr(failure.value, "reasons", None) or ()
    return any(isinstance(r, Failure) and r.check(CancelledError) for r in reasons)


def describe_failure(failure: Failure) -> str:
    """
    A one-line reason for a failed backend call, for logs and error bodies.

    @param failure: the failure of L{BackendClient.send}.
    @return: the reason, without a traceback.
    """
    error = failure.value
    if isinstance(error, (BackendTimeout, TimeoutError)):
        return "context deadline exceeded"
    reasons = getattr(error, "reasons", None)
    if reasons:
        return "; ".join(describe_failure(r) if isinstance(r, Failure) else str(r) for r in reasons)
    text = str(error) or type(error).__name__
    return text
