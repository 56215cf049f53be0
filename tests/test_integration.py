"""
End to end over real loopback sockets: demo backends and the gateway in process, on port 0.
"""

from __future__ import annotations

import json
import socket

import treq
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

from shadowtwist.config import parse_config
from shadowtwist.demo import demo_site
from shadowtwist.tap import GatewayService
from tests.support import shadow_outcomes


@defer.inlineCallbacks
def listen(case, site):
    """
    Listen on a free loopback port until the test C{case} ends.

    @return: a Deferred firing with the port number.
    """
    port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
    case.addCleanup(port.stopListening)
    return port.getHost().port


class ShadowedEndpointTests(TestCase):
    """
    A shadowed endpoint through real sockets: the client gets v1, the log shows v2.
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.events = []
        self.shadow_logged = defer.Deferred()

        def observe(event):
            for outcome in shadow_outcomes(event):
                self.events.append(outcome)
                if not self.shadow_logged.called:
                    self.shadow_logged.callback(outcome)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        v1 = yield self.listen(demo_site(1))
        v2 = yield self.listen(demo_site(2))
        config = parse_config({
            "version": 3,
            "endpoints": [{
                "endpoint": "/user/{id}", "timeout": "2s",
                "backend": [
                    {"host": [f"http://127.0.0.1:{v1}"], "url_pattern": "/users/{id}"},
                    {"host": [f"http://127.0.0.1:{v2}"], "url_pattern": "/users/{id}",
                     "extra_config": {"proxy": {"shadow": True, "shadow_timeout": "1s"}}},
                ]}],
        }, "integration.json")
        self.gateway = GatewayService(config, reactor)
        self.gateway.startService()
        self.addCleanup(self.gateway.stopService)
        self.port = yield self.listen(self.gateway.site)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.client = treq.client.HTTPClient(Agent(reactor, pool=pool))

    def listen(self, site):
        """
        Listen on a free loopback port until the test ends.
        """
        return listen(self, site)

    @defer.inlineCallbacks
    def test_v1_answers_v2_is_logged(self):
        """
        GET /user/1 returns the v1 document; the shadow event reports v2's answer.
        """
        response = yield self.client.get(f"http://127.0.0.1:{self.port}/user/1")
        body = yield response.content()
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body)["plan"], "free")
        self.assertNotIn("display_name", json.loads(body))
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["true"])
        event = yield self.shadow_logged
        self.assertEqual(event["outcome"], "ok")
        self.assertEqual(event["shadow_status"], 200)
        self.assertEqual(event["endpoint"], "GET /user/{id}")
        self.assertGreater(event["shadow_size"], len(body))
        self.assertGreater(event["primary_latency"], 0)
        yield self.gateway.stopService()
        self.assertEqual(self.gateway.shadows.in_flight.total, 0)


class _Counting(Site):
    """
    A Site counting the connections clients open to it.
    """

    connections = 0

    def buildProtocol(self, addr):
        self.connections += 1
        return super().buildProtocol(addr)


class _BlackHole(Resource):
    """
    A backend that accepts every request and never answers it.
    """

    isLeaf = True

    def __init__(self):
        super().__init__()
        self.pending = []

    def render(self, request):
        self.pending.append(request)
        return NOT_DONE_YET


class SlowShadowTests(TestCase):
    """
    A shadow that takes ten seconds leaves the primary's latency and keep-alive reuse alone
    (nginx's mirror makes its clients wait).
    """

    @defer.inlineCallbacks
    def test_keep_alive_and_latency_unchanged(self):
        """
        Five requests on one keep-alive connection are all answered while the five shadow copies
        are still unanswered, over a single client connection.
        """
        black_hole = _BlackHole()
        v1 = yield listen(self, demo_site(1))
        v2 = yield listen(self, Site(black_hole))
        config = parse_config({"version": 3, "endpoints": [{
            "endpoint": "/user/{id}", "timeout": "2s",
            "backend": [
                {"host": [f"http://127.0.0.1:{v1}"], "url_pattern": "/users/{id}"},
                {"host": [f"http://127.0.0.1:{v2}"], "url_pattern": "/users/{id}",
                 "extra_config": {"proxy": {"shadow": True, "shadow_timeout": "10s"}}}]}]})
        gateway = GatewayService(config, reactor)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        counting = _Counting(gateway.site.resource)
        port = yield listen(self, counting)
        pool = HTTPConnectionPool(reactor, persistent=True)
        pool.maxPersistentPerHost = 1
        self.addCleanup(pool.closeCachedConnections)
        client = treq.client.HTTPClient(Agent(reactor, pool=pool))
        for n in range(5):
            response = yield client.get(f"http://127.0.0.1:{port}/user/{n}")
            body = yield response.content()
            self.assertEqual(response.code, 200)
            self.assertEqual(json.loads(body)["id"], n)
        self.assertEqual(len(black_hole.pending), 5)
        self.assertEqual(counting.connections, 1)
        self.assertEqual(gateway.shadows.in_flight.total, 5)


class _Garbage(Protocol):
    """
    Answers any request with bytes that are not HTTP, then hangs up.
    """

    def dataReceived(self, data):
        self.transport.write(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
        self.transport.loseConnection()


class BrokenShadowTests(TestCase):
    """
    Shadows that refuse connections or answer garbage are outcome events; the primary is fine.
    """

    @defer.inlineCallbacks
    def test_refused_and_garbage(self):
        """
        Both shadows end as C{error} events and the client gets the v1 answer.
        """
        events = []
        done = defer.Deferred()

        def observe(event):
            events.extend(shadow_outcomes(event))
            if len(events) == 2 and not done.called:
                done.callback(None)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        v1 = yield listen(self, demo_site(1))
        factory = Factory.forProtocol(_Garbage)
        garbage = yield listen(self, factory)
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            refused = probe.getsockname()[1]
        shadow = {"extra_config": {"proxy": {"shadow": True}}, "url_pattern": "/users/{id}"}
        config = parse_config({"version": 3, "endpoints": [{
            "endpoint": "/user/{id}", "timeout": "2s",
            "backend": [{"host": [f"http://127.0.0.1:{v1}"], "url_pattern": "/users/{id}"},
                        dict(shadow, host=[f"http://127.0.0.1:{garbage}"]),
                        dict(shadow, host=[f"http://127.0.0.1:{refused}"])]}]})
        gateway = GatewayService(config, reactor)
        gateway.startService()
        self.addCleanup(gateway.stopService)
        port = yield listen(self, gateway.site)
        client = treq.client.HTTPClient(Agent(reactor, pool=HTTPConnectionPool(reactor, persistent=False)))
        response = yield client.get(f"http://127.0.0.1:{port}/user/1")
        body = yield response.content()
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body)["plan"], "free")
        yield done
        self.assertEqual(sorted(e["outcome"] for e in events), ["error", "error"])
        self.assertTrue(all(e["shadow_error"] for e in events))
