"""
End to end over real loopback sockets: demo backends and the gateway in process, on port 0.
"""

from __future__ import annotations

import json

import treq
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase
from twisted.web.client import Agent, HTTPConnectionPool

from shadowtwist.config import parse_config
from shadowtwist.demo import demo_site
from shadowtwist.tap import GatewayService


class ShadowedEndpointTests(TestCase):
    """
    A shadowed endpoint through real sockets: the client gets v1, the log shows v2.
    """

    @defer.inlineCallbacks
    def setUp(self):
        self.events = []
        self.shadow_logged = defer.Deferred()

        def observe(event):
            if event.get("log_namespace") == "shadowtwist.shadow":
                self.events.append(event)
                if not self.shadow_logged.called:
                    self.shadow_logged.callback(event)

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

    @defer.inlineCallbacks
    def listen(self, site):
        """
        Listen on a free loopback port until the test ends.

        @return: the port number.
        """
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(site)
        self.addCleanup(port.stopListening)
        return port.getHost().port

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
