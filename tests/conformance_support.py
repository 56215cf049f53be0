"""
Machinery for the table-driven KrakenD conformance suite (C{tests.test_conformance}).

A L{Case} is one row of the table: the configuration fragment, what the backends answer, the
client's request, and what the client must get and the backends must have received. L{run_case}
plays it over real loopback sockets: L{RecordingBackend}s (twisted.web servers on 127.0.0.1,
port 0, recording every request) and a L{shadowtwist.tap.GatewayService} on the real reactor,
its Site on 127.0.0.1 port 0 too. Everything started is stopped again, so the reactor is clean.

Strings in a case may use three markers, replaced once the ports are known:

  - C{$B} the primary backend's base URL (C{http://127.0.0.1:<port>}), C{$H} its C{host:port};
  - C{$C} a second backend's base URL (for host lists, redirects and shadows);
  - C{$GW} the gateway's C{host:port}, as the client sends it in C{Host}.
"""

from __future__ import annotations

import dataclasses
import gzip as gzip_module
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web import server
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from twisted.web.resource import Resource
from zope.interface import implementer

import shadowtwist
from shadowtwist.config import parse_config
from shadowtwist.tap import GatewayService

VERSION = f"Version {shadowtwist.__version__}"
USER_AGENT = f"shadowtwist Version {shadowtwist.__version__}"
JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"


class _Absent:
    """
    The marker for "this header must not be there".
    """

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


class _Anything:
    """
    The marker for "this header must be there, whatever its value".
    """

    def __repr__(self) -> str:
        return "ANY"


ANY = _Anything()

# Headers every HTTP server adds and every case ignores (unless a case names them).
FRAMING = ("date", "content-length", "connection", "transfer-encoding")


@dataclass
class Reply:
    """
    One answer of a recording backend.

    @ivar body: bytes, text, or a JSON-able object (sent as C{application/json}).
    @ivar delay: seconds to wait before answering (C{reactor.callLater}).
    @ivar gzip: send the body gzipped with C{Content-Encoding: gzip}.
    @ivar hang: never answer (until the gateway gives up).
    """

    status: int = 200
    body: Any = b""
    headers: Sequence[Tuple[str, str]] = ()
    delay: float = 0.0
    gzip: bool = False
    hang: bool = False

    def encoded(self) -> Tuple[List[Tuple[str, str]], bytes]:
        """
        The headers and body bytes to send.
        """
        headers = list(self.headers)
        body = self.body
        if isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes):
            body = json.dumps(body).encode("utf-8")
            if not any(name.lower() == "content-type" for name, _ in headers):
                headers.append(("Content-Type", "application/json"))
        if self.gzip:
            body = gzip_module.compress(body)
            headers.append(("Content-Encoding", "gzip"))
        return headers, body


def J(obj: Any, status: int = 200, **kwargs: Any) -> Reply:
    """
    A JSON reply, sent with the literal text C{obj} when it is a string.
    """
    if isinstance(obj, str):
        return Reply(status, obj, (("Content-Type", "application/json"),), **kwargs)
    return Reply(status, obj, **kwargs)


@dataclass
class Received:
    """
    One request a recording backend received.

    @ivar uri: the request target as sent (path and query).
    @ivar headers: lower-cased header name to every value, in order.
    """

    method: str
    uri: str
    headers: Dict[str, List[str]]
    body: bytes


Route = Union[Reply, Sequence[Reply], Callable[[Received], Reply]]


class RecordingBackend(Resource):
    """
    A backend that records every request and answers from its routes (path without the query
    to a L{Reply}, a list of replies used in turn, or a callable taking the L{Received}).
    Unknown paths get a 404.
    """

    isLeaf = True

    def __init__(self, routes: Mapping[str, Route]) -> None:
        super().__init__()
        self.routes = dict(routes)
        self.received: List[Received] = []
        self.calls: List[Any] = []
        self._turns: Dict[str, int] = {}
        self._waiting: List[Tuple[int, defer.Deferred]] = []

    def render(self, request: server.Request) -> Any:
        request.content.seek(0)
        seen = Received(
            method=request.method.decode("latin-1"), uri=request.uri.decode("latin-1"),
            headers={k.decode("latin-1").lower(): [v.decode("latin-1") for v in vs]
                     for k, vs in request.requestHeaders.getAllRawHeaders()},
            body=request.content.read())
        self.received.append(seen)
        for count, d in list(self._waiting):
            if len(self.received) >= count and not d.called:
                self._waiting.remove((count, d))
                d.callback(None)
        path = request.path.decode("latin-1")
        route = self.routes.get(path)
        if route is None:
            reply = Reply(404, "404 page not found", (("Content-Type", "text/plain"),))
        elif callable(route):
            reply = route(seen)
        elif isinstance(route, Reply):
            reply = route
        else:
            turn = self._turns.get(path, 0)
            self._turns[path] = turn + 1
            reply = route[min(turn, len(route) - 1)]
        request.defaultContentType = None
        if reply.hang:
            return server.NOT_DONE_YET
        if reply.delay:
            call = reactor.callLater(reply.delay, self._answer, request, reply)
            self.calls.append(call)
            request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
            return server.NOT_DONE_YET
        self._answer(request, reply)
        return server.NOT_DONE_YET

    def _answer(self, request: server.Request, reply: Reply) -> None:
        if request._disconnected:
            return
        headers, body = reply.encoded()
        request.setResponseCode(reply.status)
        request.responseHeaders.removeHeader(b"server")
        for name, value in headers:
            request.responseHeaders.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        if request.method != b"HEAD":
            request.setHeader(b"content-length", str(len(body)).encode("ascii"))
            request.write(body)
        request.finish()

    def wait_for(self, count: int, timeout: float = 2.0) -> defer.Deferred:
        """
        Fire once C{count} requests have been received (fail after C{timeout} seconds).
        """
        if len(self.received) >= count:
            return defer.succeed(None)
        d: defer.Deferred = defer.Deferred()
        self._waiting.append((count, d))
        d.addTimeout(timeout, reactor)
        return d

    def stop(self) -> None:
        """
        Cancel every delayed answer still pending.
        """
        for call in self.calls:
            if call.active():
                call.cancel()


def _tracked(site: server.Site) -> server.Site:
    """
    Make C{site} remember its connections, so that the test can close them all at the end.
    """
    site.noisy = False
    site.protocols = []
    build = site.buildProtocol

    def build_and_track(addr: Any) -> Any:
        protocol = build(addr)
        site.protocols.append(protocol)
        return protocol

    site.buildProtocol = build_and_track
    return site


@implementer(IBodyProducer)
class _Body:
    """
    A client request body of known length.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self.length = len(data)

    def startProducing(self, consumer: Any) -> defer.Deferred:
        consumer.write(self._data)
        return defer.succeed(None)

    def pauseProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


@dataclass
class Request:
    """
    What the client sends.

    @ivar headers: (name, value) pairs; C{Host} may be given to replace the default.
    """

    method: str = "GET"
    path: str = "/"
    headers: Sequence[Tuple[str, str]] = ()
    body: Optional[bytes] = None


@dataclass
class Response:
    """
    What the client must get.

    @ivar headers: lower-case-insensitive name to a value, a list of values, L{ABSENT} or L{ANY}.
    @ivar exact: when true, the response may have no header besides these and L{FRAMING}.
    @ivar body: the exact bytes, a JSON-able object compared after decoding, a callable
        returning a problem text (or C{None}), or L{ANY}.
    """

    status: int
    headers: Mapping[str, Any] = field(default_factory=dict)
    body: Any = b""
    exact: bool = True


@dataclass
class Sent:
    """
    What a backend must have received.

    @ivar uri: path and query exactly as sent.
    @ivar headers: name to a value, a list of values, L{ABSENT} or L{ANY}.
    @ivar exact: when true, no header besides these and C{Host} was sent
        (C{Host} is checked when named).
    @ivar body: the exact body bytes (L{ANY} to skip).
    """

    method: str
    uri: str
    headers: Mapping[str, Any] = field(default_factory=dict)
    body: Any = b""
    exact: bool = False


@dataclass
class Case:
    """
    One row of the conformance table.

    @ivar section: the section of C{krakend-behaviour.md} the row checks.
    @ivar what: the behaviour, in one sentence (becomes the test's docstring).
    @ivar config: the whole document, or a list of endpoint objects (C{version: 3} added).
    @ivar top: top-level keys added to the document.
    @ivar routes: the primary backend's (C{$B}) routes.
    @ivar other: the second backend's (C{$C}) routes.
    @ivar exchanges: (request, expected response) pairs, sent in order.
    @ivar sent: what C{$B} received, in order; C{None} to skip the check.
    @ivar sent_other: what C{$C} received, in order; C{None} to skip the check.
    @ivar within: (low, high) seconds the first exchange must take, when timing matters.
    @ivar after: a last check given both backends, returning a problem text or C{None}.
    """

    section: str
    name: str
    what: str
    config: Any
    exchanges: Sequence[Tuple[Request, Response]]
    routes: Mapping[str, Route] = field(default_factory=dict)
    other: Mapping[str, Route] = field(default_factory=dict)
    top: Mapping[str, Any] = field(default_factory=dict)
    sent: Optional[Sequence[Sent]] = ()
    sent_other: Optional[Sequence[Sent]] = ()
    within: Optional[Tuple[float, float]] = None
    after: Optional[Callable[[RecordingBackend, RecordingBackend], Optional[str]]] = None


def substitute(value: Any, markers: Mapping[str, str]) -> Any:
    """
    Replace the C{$B}, C{$C} and C{$GW} markers everywhere in a nested value.
    """
    if isinstance(value, str):
        for marker in ("$GW", "$B", "$C", "$H"):
            value = value.replace(marker, markers[marker])
        return value
    if isinstance(value, bytes):
        return substitute(value.decode("latin-1"), markers).encode("latin-1")
    if isinstance(value, dict):
        return {substitute(k, markers): substitute(v, markers) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(substitute(v, markers) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: substitute(getattr(value, f.name), markers) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


def _values(found: Mapping[str, List[str]], name: str) -> Optional[List[str]]:
    return found.get(name.lower())


def check_headers(test: Any, where: str, found: Mapping[str, List[str]], expected: Mapping[str, Any],
                  exact: bool, ignored: Sequence[str]) -> None:
    """
    Compare headers (lower-cased names to lists of values) with the expectations.
    """
    for name, want in expected.items():
        got = _values(found, name)
        if want is ABSENT:
            test.assertIsNone(got, f"{where}: {name} should be absent, got {got!r}")
        elif want is ANY:
            test.assertIsNotNone(got, f"{where}: {name} missing")
        else:
            want = list(want) if isinstance(want, (list, tuple)) else [want]
            test.assertEqual(got, want, f"{where}: header {name}")
    if exact:
        allowed = {n.lower() for n, v in expected.items() if v is not ABSENT} | set(ignored)
        extra = sorted(set(found) - allowed)
        test.assertEqual(extra, [], f"{where}: unexpected headers {[(n, found[n]) for n in extra]}")


def check_body(test: Any, where: str, got: bytes, want: Any) -> None:
    """
    Compare a body with its expectation (bytes, JSON-able object, callable or L{ANY}).
    """
    if want is ANY:
        return
    if callable(want):
        problem = want(got)
        test.assertIsNone(problem, f"{where}: body {got!r}: {problem}")
    elif isinstance(want, (bytes, str)):
        want = want.encode("utf-8") if isinstance(want, str) else want
        test.assertEqual(got, want, f"{where}: body")
    else:
        test.assertEqual(json.loads(got), want, f"{where}: body {got!r}")


class Environment:
    """
    The backends, the gateway and the client of one case, and their tear-down.
    """

    def __init__(self, test: Any) -> None:
        self.test = test
        self.ports: list = []
        self.sites: list = []
        self.backends: list = []
        self.gateway: Optional[GatewayService] = None
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)
        test.addCleanup(self.close)

    @defer.inlineCallbacks
    def listen(self, resource: Any) -> Any:
        """
        Serve C{resource} (or a Site, such as the gateway's own) on 127.0.0.1, port 0; returns
        the port number.
        """
        if not isinstance(resource, server.Site):
            resource = server.Site(resource, reactor=reactor)
        site = _tracked(resource)
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.ports.append(port)
        self.sites.append(site)
        return port.getHost().port

    @defer.inlineCallbacks
    def backend(self, routes: Mapping[str, Route]) -> Any:
        """
        Start a recording backend; returns it and its base URL.
        """
        backend = RecordingBackend(routes)
        self.backends.append(backend)
        port = yield self.listen(backend)
        return backend, f"http://127.0.0.1:{port}"

    @defer.inlineCallbacks
    def start_gateway(self, document: Any) -> Any:
        """
        Start the gateway on a document; returns the port it listens on.
        """
        config = parse_config(document, "conformance.json")
        self.gateway = GatewayService(config, reactor)
        self.gateway.startService()
        port = yield self.listen(self.gateway.site)
        return port

    @defer.inlineCallbacks
    def send(self, port: int, request: Request) -> Any:
        """
        Send one request to the gateway; returns (status, headers, body).
        """
        headers = Headers()
        for name, value in request.headers:
            headers.addRawHeader(name.encode("latin-1"), value.encode("latin-1"))
        body = _Body(request.body) if request.body is not None else None
        url = f"http://127.0.0.1:{port}{request.path}".encode("latin-1")
        response = yield self.agent.request(request.method.encode("ascii"), url, headers, body)
        data = yield readBody(response)
        found = {k.decode("latin-1").lower(): [v.decode("latin-1") for v in vs]
                 for k, vs in response.headers.getAllRawHeaders()}
        return response.code, found, data

    @defer.inlineCallbacks
    def close(self) -> Any:
        """
        Stop everything started, and close every connection, so that the reactor is clean.
        """
        if self.gateway is not None:
            # shadows still in flight finish (or reach their deadline) first
            for _ in range(400):
                if not self.gateway.shadows.in_flight.total:
                    break
                yield deferLater(0.01)
            yield self.gateway.stopService()
        for backend in self.backends:
            backend.stop()
        for port in self.ports:
            yield port.stopListening()
        lost = []
        for site in self.sites:
            for protocol in site.protocols:
                transport = getattr(protocol, "transport", None)
                if transport is not None and transport.connected:
                    d: defer.Deferred = defer.Deferred()
                    original = protocol.connectionLost

                    def connection_lost(reason: Any, original: Any = original, d: Any = d) -> None:
                        original(reason)
                        if not d.called:
                            d.callback(None)

                    protocol.connectionLost = connection_lost
                    transport.abortConnection()
                    lost.append(d)
        yield defer.gatherResults(lost)
        yield self.pool.closeCachedConnections()
        # Let aborted client sockets finish closing on the reactor.
        yield deferLater(0)


def deferLater(seconds: float) -> defer.Deferred:
    """
    A Deferred firing after C{seconds} on the real reactor.
    """
    from twisted.internet.task import deferLater as later

    return later(reactor, seconds, lambda: None)


def build_document(case: Case) -> Any:
    """
    The configuration document of a case (still with its markers).
    """
    if isinstance(case.config, dict):
        document = dict(case.config)
    else:
        document = {"version": 3, "endpoints": list(case.config)}
    document.update(case.top)
    return document


@defer.inlineCallbacks
def run_case(test: Any, case: Case) -> Any:
    """
    Play one case and check everything it expects.
    """
    env = Environment(test)
    primary, primary_url = yield env.backend({})
    other, other_url = yield env.backend({})
    markers = {"$B": primary_url, "$C": other_url, "$GW": "", "$H": primary_url[len("http://"):]}
    primary.routes = substitute(dict(case.routes), markers)
    other.routes = substitute(dict(case.other), markers)
    document = substitute(build_document(case), markers)
    port = yield env.start_gateway(document)
    markers["$GW"] = f"127.0.0.1:{port}"
    for index, (request, expected) in enumerate(case.exchanges):
        request = substitute(request, markers)
        expected = substitute(expected, markers)
        where = f"{case.name} exchange {index} ({request.method} {request.path})"
        started = reactor.seconds()
        status, headers, body = yield env.send(port, request)
        took = reactor.seconds() - started
        test.assertEqual(status, expected.status, f"{where}: status (body {body!r})")
        check_headers(test, where, headers, expected.headers, expected.exact, FRAMING)
        check_body(test, where, body, expected.body)
        if index == 0 and case.within is not None:
            low, high = case.within
            test.assertTrue(low <= took <= high, f"{where}: took {took:.3f}s, not in {case.within}")
    for backend, expectations, label in ((primary, case.sent, "$B"), (other, case.sent_other, "$C")):
        if expectations is None:
            continue
        if expectations:
            yield backend.wait_for(len(expectations))
        expectations = substitute(list(expectations), markers)
        test.assertEqual(
            [(r.method, r.uri) for r in backend.received], [(s.method, s.uri) for s in expectations],
            f"{case.name}: what {label} received")
        for got, want in zip(backend.received, expectations):
            where = f"{case.name}: {label} {want.method} {want.uri}"
            check_headers(test, where, got.headers, want.headers, want.exact, ("host",))
            check_body(test, where, got.body, want.body)
    if case.after is not None:
        test.assertIsNone(case.after(primary, other), f"{case.name}: final check")


def backend_headers(**overrides: Any) -> Dict[str, Any]:
    """
    What every backend request carries unless a case says otherwise: the gateway's User-Agent,
    C{Accept-Encoding: gzip}, C{X-Forwarded-Host} (the client's Host) and C{X-Forwarded-For}.
    Keyword names use C{_} for C{-}; a value of L{ABSENT} removes the header.
    """
    headers: Dict[str, Any] = {
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "gzip",
        "X-Forwarded-Host": "$GW",
        "X-Forwarded-For": "127.0.0.1",
    }
    for key, value in overrides.items():
        headers[key.replace("_", "-")] = value
    return headers


def gateway_headers(completed: str = "true", content_type: Optional[str] = JSON_TYPE,
                    **more: Any) -> Dict[str, Any]:
    """
    The headers of an endpoint response: C{Content-Type}, C{X-Krakend} and
    C{X-Krakend-Completed}, plus any given (C{_} for C{-}); C{Cache-Control} absent unless given.
    """
    headers: Dict[str, Any] = {"X-Krakend": VERSION, "X-Krakend-Completed": completed}
    if content_type is not None:
        headers["Content-Type"] = content_type
    headers["Cache-Control"] = ABSENT
    for key, value in more.items():
        headers[key.replace("_", "-")] = value
    return headers


def add_cases(namespace: Dict[str, Any], base: type, cases: Sequence[Case]) -> None:
    """
    Make one trial TestCase class per section, one test method per case, in C{namespace}.
    """
    by_section: Dict[str, Dict[str, Any]] = {}
    for case in cases:
        methods = by_section.setdefault(case.section, {})
        name = "test_" + case.name
        if name in methods:
            raise ValueError(f"duplicate case name {case.name!r} in section {case.section}")

        def test(self: Any, case: Case = case) -> Any:
            return run_case(self, case)

        test.__name__ = name
        test.__doc__ = f"\u00a7{case.section}: {case.what}"
        methods[name] = test
    for section, methods in by_section.items():
        class_name = "Section_" + section.replace(".", "_")
        methods["__doc__"] = f"KrakenD behaviour, section {section}."
        methods["__module__"] = namespace["__name__"]
        namespace[class_name] = type(class_name, (base,), methods)
