"""
The gateway end to end in memory: routing, fan-out, merge, deadlines and shadows, with fake
backends behind treq's in-memory agent and a L{task.Clock} for time.
"""

from __future__ import annotations

import json

from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from tests.support import FakeBackends, Harness, body_of, document, shadow_backend, shadow_outcomes


def backend(url_pattern, **keys):
    """
    A primary backend entry on the default host.
    """
    entry = {"url_pattern": url_pattern}
    entry.update(keys)
    return entry


class CapturedEvents:
    """
    Collects the shadow outcome events of one namespace while a test runs.
    """

    def __init__(self, case, namespace):
        self.events = []
        self._namespace = namespace
        globalLogPublisher.addObserver(self)
        case.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event):
        if event.get("log_namespace") == self._namespace:
            self.events.extend(shadow_outcomes(event))


class RoutingTests(SynchronousTestCase):
    """
    The Resource tree: parameters, 404, 405, health.
    """

    def setUp(self):
        self.harness = Harness(document(
            {"endpoint": "/user/{id}", "backend": [backend("/users/{id}")]},
            {"endpoint": "/user/{id}", "method": "POST", "backend": [backend("/users/{id}")]},
            {"endpoint": "/static/list", "backend": [backend("/list")]},
        ))
        self.harness.backends.route("/users/7", {"id": 7})
        self.harness.backends.route("/list", {"items": []})

    def get(self, path, method="GET"):
        response = self.successResultOf(self.harness.request(method, path, allow_redirects=False))
        return response, body_of(self, self.harness, response)

    def test_param(self):
        """
        A {param} segment is passed into the backend's url_pattern.
        """
        response, body = self.get("/user/7")
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body), {"id": 7})
        self.assertEqual(self.harness.backends.seen[0].path, "/users/7")

    def test_not_found(self):
        """
        Unknown paths (and a param path with an extra segment) get KrakenD's 404.
        """
        for path in ("/nope", "/user/7/extra", "/static"):
            response, body = self.get(path)
            self.assertEqual(response.code, 404, path)
            self.assertEqual(body, b"404 page not found")
            self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/plain"])
            self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["false"])
            self.assertTrue(response.headers.getRawHeaders("x-krakend")[0].startswith("Version "))
        self.assertEqual(self.harness.backends.seen, [])

    def test_method_not_allowed(self):
        """
        A known path with another method gets 405 with Allow; HEAD on a GET path too.
        """
        for method in ("DELETE", "HEAD"):
            response, body = self.get("/user/7", method)
            self.assertEqual(response.code, 405)
            self.assertEqual(response.headers.getRawHeaders("allow"), ["GET, POST"])
            self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["false"])
        self.assertEqual(body, b"")  # HEAD has no body
        response, body = self.get("/static/list", "PUT")
        self.assertEqual((response.code, body), (405, b"405 method not allowed"))

    def test_encoded_params(self):
        """
        A parameter that still holds an escape, ? or # after decoding gets 400.
        """
        response, body = self.get("/user/a%253Fb")
        self.assertEqual((response.code, body), (400, b"error: encoded url params"))
        response, body = self.get("/user/a%3Fb")
        self.assertEqual((response.code, body), (400, b"error: encoded url params"))
        self.assertEqual(self.harness.backends.seen, [])

    def test_health(self):
        """
        /__health answers KrakenD's document, without X-Krakend headers.
        """
        response, body = self.get("/__health")
        self.assertEqual(response.code, 200)
        document = json.loads(body)
        self.assertEqual(document["status"], "ok")
        self.assertEqual(document["agents"], {})
        self.assertIsInstance(document["now"], str)
        self.assertIsNone(response.headers.getRawHeaders("x-krakend"))
        self.assertEqual(self.get("/__health", "HEAD")[0].code, 405)

    def test_trailing_slash_redirect(self):
        """
        /static/list/ redirects to /static/list: 301 for GET, 307 otherwise.
        """
        response, _ = self.get("/static/list/?a=1")
        self.assertEqual(response.code, 301)
        self.assertEqual(response.headers.getRawHeaders("location"), ["/static/list?a=1"])
        response, _ = self.get("/user/7/", "POST")
        self.assertEqual(response.code, 307)
        self.assertEqual(response.headers.getRawHeaders("location"), ["/user/7"])


class MergeTests(SynchronousTestCase):
    """
    Fan-out to several primaries and the merge.
    """

    def harness(self, **endpoint_keys):
        endpoint = {"endpoint": "/both", "timeout": "1s", "cache_ttl": "90s",
                    "backend": [backend("/a", group="a"), backend("/b")]}
        endpoint.update(endpoint_keys)
        return Harness(document(endpoint))

    def fetch(self, harness):
        response = self.successResultOf(harness.request("GET", "/both"))
        return response, body_of(self, harness, response)

    def test_complete(self):
        """
        Both answers merged at the top level; completed, with Cache-Control.
        """
        harness = self.harness()
        harness.backends.route("/a", {"x": 1})
        harness.backends.route("/b", {"y": [1, 2], "z": "<&>"})
        response, body = self.fetch(harness)
        self.assertEqual(response.code, 200)
        self.assertEqual(body, b'{"a":{"x":1},"y":[1,2],"z":"\\u003c\\u0026\\u003e"}')
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["true"])
        self.assertEqual(response.headers.getRawHeaders("cache-control"), ["public, max-age=90"])
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/json; charset=utf-8"])

    def test_partial(self):
        """
        One failing backend gives 200 with the other's data, completed false, no Cache-Control.
        """
        harness = self.harness()
        harness.backends.route("/a", {"x": 1})
        harness.backends.route("/b", (500, {}, b"boom"))
        response, body = self.fetch(harness)
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body), {"a": {"x": 1}})
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["false"])
        self.assertIsNone(response.headers.getRawHeaders("cache-control"))

    def test_all_failed(self):
        """
        All backends failing gives 500 with an empty body.
        """
        harness = self.harness()
        harness.backends.route("/a", (503, {}, b""))
        harness.backends.route("/b", (404, {}, b""))
        response, body = self.fetch(harness)
        self.assertEqual((response.code, body), (500, b""))
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["false"])

    def test_merge_deadline(self):
        """
        With several backends, the merge waits 85 % of the endpoint timeout, then answers with
        what arrived.
        """
        harness = self.harness()
        harness.backends.route("/a", {"x": 1})
        harness.backends.route("/b", None)  # never answers
        d = harness.request("GET", "/both")
        self.assertNoResult(d)
        harness.clock.advance(0.84)
        harness.pump()
        self.assertNoResult(d)
        harness.clock.advance(0.02)
        harness.pump()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body_of(self, harness, response)), {"a": {"x": 1}})
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["false"])

    def test_single_backend_timeout(self):
        """
        One backend gets the whole endpoint timeout; missing it is a 500 (never 504).
        """
        harness = Harness(document({"endpoint": "/one", "timeout": "1s", "backend": [backend("/slow")]},
                                   extra_config={"router": {"return_error_msg": True}}))
        harness.backends.route("/slow", None)
        d = harness.request("GET", "/one")
        harness.clock.advance(0.9)
        harness.pump()
        self.assertNoResult(d)
        harness.clock.advance(0.2)
        harness.pump()
        response = self.successResultOf(d)
        self.assertEqual(response.code, 500)
        self.assertEqual(body_of(self, harness, response), b"context deadline exceeded")

    def test_header_bytes_unchanged(self):
        """
        A forwarded header's bytes reach the backend exactly as the client sent them (UTF-8
        included), not decoded and encoded again.
        """
        harness = Harness(document({"endpoint": "/c", "input_headers": ["X-Name"], "backend": [backend("/c")]}))
        harness.backends.route("/c", {})
        raw = []
        original = harness.backends.render

        def render(request):
            raw.append(request.requestHeaders.getRawHeaders(b"x-name"))
            return original(request)

        harness.backends.render = render
        self.successResultOf(harness.request("GET", "/c", headers={b"X-Name": [b"caf\xc3\xa9"]}))
        self.assertEqual(raw, [[b"caf\xc3\xa9"]])

    def test_no_cookie_leak(self):
        """
        A backend's Set-Cookie for one user is never sent with the next user's request.
        """
        harness = Harness(document({"endpoint": "/c", "backend": [backend("/c")]}))
        harness.backends.route("/c", (200, {"Set-Cookie": "session=user-A-secret; Path=/",
                                           "Content-Type": "application/json"}, b"{}"))
        for _ in range(2):
            self.successResultOf(harness.request("GET", "/c"))
        self.assertEqual([s.headers.get("cookie") for s in harness.backends.seen], [None, None])


class ShadowTests(SynchronousTestCase):
    """
    Shadows never touch the client's response.
    """

    def harness(self, shadow):
        self.shadows = FakeBackends()
        harness = Harness(document({"endpoint": "/user/{id}", "timeout": "150ms",
                                    "backend": [backend("/v1/users/{id}"), shadow]}),
                          shadow_backends=self.shadows)
        harness.backends.route("/v1/users/1", {"id": 1, "plan": "free"})
        self.events = CapturedEvents(self, "shadowtwist.shadow")
        return harness

    def test_outcomes_batched(self):
        """
        Shadow outcome lines are logged together, one event per interval, and stopping the
        dispatcher writes what is pending.
        """
        harness = self.harness(shadow_backend("/v2/users/{id}"))
        self.shadows.route("/v2/users/1", {"id": 1, "plan": "free"})  # a match: no warning flushes them
        for _ in range(3):
            harness.front.request("GET", "http://gateway.test/user/1")
            harness.pump(flush_log=False)
        self.assertEqual(self.events.events, [])
        harness.gateway.shadows.stop()
        self.assertEqual([e["outcome"] for e in self.events.events], ["ok"] * 3)

    def test_black_hole_shadow(self):
        """
        With a shadow that never answers, the client's response is written while the shadow is
        still pending; the shadow is cut at its own deadline and logged as a timeout.
        """
        harness = self.harness(shadow_backend("/v2/users/{id}", proxy={"shadow_timeout": "2s"}))
        self.shadows.route("/v2/users/1", None)
        response = self.successResultOf(harness.request("GET", "/user/1"))
        self.assertEqual(response.code, 200)
        self.assertEqual(json.loads(body_of(self, harness, response)), {"id": 1, "plan": "free"})
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["true"])
        self.assertEqual(len(self.shadows.pending), 1)
        self.assertEqual(self.events.events, [])
        harness.clock.advance(2.1)
        harness.pump()
        [event] = self.events.events
        self.assertEqual(event["outcome"], "timeout")
        self.assertEqual(event["shadow_url"], "http://shadow.test/v2/users/1")
        self.assertEqual(event["primary_status"], 200)
        self.assertEqual(harness.gateway.shadows.in_flight.total, 0)

    def test_failing_shadow(self):
        """
        A shadow answering 500 leaves the response untouched; its log event carries the status.
        """
        harness = self.harness(shadow_backend("/v2/users/{id}"))
        self.shadows.route("/v2/users/1", (500, {}, b"v2 is broken"))
        response = self.successResultOf(harness.request("GET", "/user/1"))
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["true"])
        [event] = self.events.events
        self.assertEqual(event["outcome"], "ok")
        self.assertEqual(event["shadow_status"], 500)
        self.assertEqual(event["shadow_size"], len(b"v2 is broken"))
        self.assertEqual(event["endpoint"], "GET /user/{id}")
        self.assertIsNotNone(event["primary_latency"])

    def test_unreachable_shadow(self):
        """
        A shadow whose connection fails is a log event naming the error, never an unhandled
        error, and the primary is untouched.
        """
        harness = self.harness(shadow_backend("/v2/users/{id}"))
        harness.gateway.shadows._client = _FailingClient()
        response = self.successResultOf(harness.request("GET", "/user/1"))
        self.assertEqual(response.code, 200)
        [event] = self.events.events
        self.assertEqual(event["outcome"], "error")
        self.assertIn("Connection was refused", event["shadow_error"])

    def test_shadow_gets_a_copy(self):
        """
        The shadow receives the same request as the primary would (path, forwarded headers).
        """
        harness = self.harness(shadow_backend("/v2/users/{id}"))
        self.shadows.route("/v2/users/1", {"id": 1, "plan": "starter"})
        self.successResultOf(harness.request("GET", "/user/1", headers={"Content-Type": "text/x"}))
        [seen] = self.shadows.at("/v2/users/1")
        self.assertEqual(seen.headers["content-type"], ["text/x"])
        self.assertIn("x-forwarded-for", seen.headers)


class _FailingClient:
    """
    A backend client whose every call fails to connect.
    """

    def send(self, outgoing, timeout, max_body=None):
        from twisted.internet.defer import fail
        from twisted.internet.error import ConnectionRefusedError

        return fail(ConnectionRefusedError())

    def held_down(self, url):
        return None
