"""
Test helpers: in-memory backends that record what they receive, and a gateway wired to them
without sockets (L{MemoryEndpoints} to the backends, treq's in-memory agent in front, a
L{task.Clock} for deadlines).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from treq.testing import StubTreq
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.test import iosim
from twisted.web import server
from twisted.web.resource import Resource

from shadowtwist.backend import SHADOW_HOLD_DOWN, BackendClient
from shadowtwist.config import parse_config
from shadowtwist.tap import GatewayService


class Seen:
    """
    One request a fake backend received.
    """

    def __init__(self, request: server.Request) -> None:
        self.method = request.method.decode()
        self.uri = request.uri.decode()
        self.path = request.path.decode()
        self.headers = {k.decode().lower(): [v.decode() for v in vs]
                        for k, vs in request.requestHeaders.getAllRawHeaders()}
        request.content.seek(0)
        self.body = request.content.read()


class FakeBackends(Resource):
    """
    Every backend of a test in one resource, keyed by path.

    A route answers with a (status, headers, body) tuple (a header value may be a list of
    values), a dict or list (JSON, 200), C{None} (never answers: a black hole), or a callable
    taking the L{Seen} request and returning one of those.

    @ivar seen: every request received, in order.
    @ivar pending: requests left unanswered, to finish later with L{answer_pending}.
    """

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.routes: dict = {}
        self.seen: list = []
        self.pending: list = []

    def route(self, path: str, answer: Any) -> None:
        """
        Register an answer: a dict (JSON 200), a (status, headers, body) tuple, a callable, or
        C{None} for a black hole.
        """
        self.routes[path] = answer

    def render(self, request: server.Request) -> Any:
        seen = Seen(request)
        self.seen.append(seen)
        answer = self.routes.get(seen.path, (404, {}, b"no such route"))
        if callable(answer):
            answer = answer(seen)
        if answer is None:
            self.pending.append(request)
            return server.NOT_DONE_YET
        if isinstance(answer, dict) or isinstance(answer, list):
            answer = (200, {"Content-Type": "application/json"}, json.dumps(answer).encode())
        status, headers, body = answer
        request.setResponseCode(status)
        for name, value in headers.items():
            for one in value if isinstance(value, list) else [value]:
                request.responseHeaders.addRawHeader(name.encode(), one.encode())
        return body

    def at(self, path: str) -> list:
        """
        The requests received on one path.
        """
        return [s for s in self.seen if s.path == path]


def capture_events(case: Any, namespace: str) -> list:
    """
    The log events of one namespace emitted while the test runs (the list fills as they come).
    """
    events: list = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == namespace:
            events.append(event)

    globalLogPublisher.addObserver(observe)
    case.addCleanup(globalLogPublisher.removeObserver, observe)
    return events


def shadow_outcomes(event: dict) -> list:
    """
    The shadow outcome records (one dict of fields per shadow call) in a log event: a batch of
    C{shadowtwist.shadow} outcome lines, else none.
    """
    if event.get("log_namespace") == "shadowtwist.shadow" and "shadow_lines" in event:
        return list(event["records"])
    return []


class MemoryEndpoints:
    """
    Connection endpoints for L{BackendClient} that reach a twisted.web resource in memory, over
    C{iosim} transports moved by L{flush}: the gateway's real HTTP client without sockets.
    """

    def __init__(self, resource: Resource) -> None:
        self._site = server.Site(resource, timeout=None)
        self._pumps: list = []
        self.connections = 0

    def __call__(self, scheme: bytes, host: bytes, port: int) -> "MemoryEndpoints":
        return self

    def connect(self, factory: Any) -> Any:
        """
        Connect a client protocol from C{factory} to a new server protocol of the site.
        """
        self.connections += 1
        client_address = IPv4Address("TCP", "127.0.0.1", 40000 + self.connections)
        server_address = IPv4Address("TCP", "127.0.0.1", 80)
        server_protocol = self._site.buildProtocol(client_address)
        client_protocol = factory.buildProtocol(server_address)
        server_transport = iosim.FakeTransport(server_protocol, isServer=True,
                                               hostAddress=server_address, peerAddress=client_address)
        client_transport = iosim.FakeTransport(client_protocol, isServer=False,
                                               hostAddress=client_address, peerAddress=server_address)
        self._pumps.append(iosim.connect(server_protocol, server_transport,
                                         client_protocol, client_transport, greet=False))
        return succeed(client_protocol)

    def flush(self) -> None:
        """
        Move the pending bytes both ways on every connection; forget closed ones.
        """
        pumps, self._pumps = self._pumps, []
        for pump in pumps:
            pump.flush()
            if not (pump.clientIO.disconnected and pump.serverIO.disconnected):
                self._pumps.append(pump)


class Harness:
    """
    A gateway built from a config document, talking to L{FakeBackends} in memory.

    @ivar clock: the reactor for deadlines; advance it to make time pass.
    """

    def __init__(self, document: dict, backends: Optional[FakeBackends] = None,
                 shadow_backends: Optional[FakeBackends] = None, rng: Any = None) -> None:
        self.clock = Clock()
        self.backends = backends or FakeBackends()
        self.shadow_backends = shadow_backends or self.backends
        self.primary_endpoints = MemoryEndpoints(self.backends)
        self.shadow_endpoints = (self.primary_endpoints if self.shadow_backends is self.backends
                                 else MemoryEndpoints(self.shadow_backends))
        self.config = parse_config(document, "test.json")
        primary = BackendClient(self.clock, self.config.client, endpoint_for=self.primary_endpoints,
                                clock=self.clock.seconds)
        shadow = BackendClient(self.clock, self.config.client, retry=False,
                               endpoint_for=self.shadow_endpoints, clock=self.clock.seconds,
                               hold_down=SHADOW_HOLD_DOWN)
        self.gateway = GatewayService(self.config, self.clock, primary, shadow,
                                      clock=self.clock.seconds, rng=rng)
        self.front = StubTreq(self.gateway.site.resource)

    def pump(self, flush_log: bool = True) -> None:
        """
        Move bytes between the client, the gateway and the backends until nothing moves.

        @param flush_log: also emit the shadow outcome lines waiting for their batch.
        """
        for _ in range(10):
            self.primary_endpoints.flush()
            self.shadow_endpoints.flush()
            self.front.flush()
            self.clock.advance(0)  # comparisons run one reactor turn after the response
        if flush_log:
            self.gateway.shadows.outcome_log.flush()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """
        Send a request to the gateway and pump; returns the Deferred of the treq response.
        """
        d = self.front.request(method, "http://gateway.test" + path, **kwargs)
        self.pump()
        return d


def result_of(case: Any, d: Any) -> Any:
    """
    The result of an already fired Deferred (fails the test otherwise).
    """
    return case.successResultOf(d)


def body_of(case: Any, harness: Harness, response: Any) -> bytes:
    """
    Read a treq response's whole body.
    """
    from treq import content

    d = content(response)
    harness.pump()
    return case.successResultOf(d)


def document(*endpoints: dict, **top: Any) -> dict:
    """
    A config document with the given endpoints.
    """
    doc = {"version": 3, "host": ["http://backend.test"], "endpoints": list(endpoints)}
    doc.update(top)
    return doc


def shadow_backend(url_pattern: str, **extra: Any) -> dict:
    """
    A shadow backend entry.
    """
    proxy = {"shadow": True}
    proxy.update(extra.pop("proxy", {}))
    entry = {"host": ["http://shadow.test"], "url_pattern": url_pattern,
             "extra_config": {"proxy": proxy}}
    if extra:
        entry["extra_config"]["shadowgw/shadow"] = extra
    return entry
