"""
Tests for L{shadowtwist.shadow}: shadowing that never hurts the primary, with sampling, bounds,
safety rules, comparison, learned noise, auto-pause, metrics and C{/__shadow}.

Each test reproduces a failure a peer gateway is known for (see shared/docs/shadowing-peers.md).
"""

from __future__ import annotations

import json
import random

from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.backend import IncomingRequest
from shadowtwist.config import parse_config
from shadowtwist.shadow import _kept_for_comparison
from tests.support import FakeBackends, Harness, body_of, capture_events, document, shadow_backend


def harness_for(shadow_options=None, method="GET", proxy=None, primaries=None, rng=None, **endpoint):
    """
    A gateway with one endpoint C{/item/{id}}: a primary on /v1 and a shadow on /v2.
    """
    shadow = shadow_backend("/v2/item/{id}", proxy=proxy or {}, **(shadow_options or {}))
    if shadow_options == {}:
        shadow["extra_config"]["shadowgw/shadow"] = {}
    entry = {"endpoint": "/item/{id}", "method": method, "timeout": "1s",
             "backend": (primaries or [{"url_pattern": "/v1/item/{id}"}]) + [shadow]}
    entry.update(endpoint)
    shadows = FakeBackends()
    harness = Harness(document(entry), shadow_backends=shadows, rng=rng or random.Random(7))
    return harness, shadows


def stats_of(harness):
    """
    The C{/__shadow} view of the only shadow.
    """
    snapshot = harness.gateway.shadows.registry.snapshot(harness.clock.seconds())
    [endpoint] = snapshot["endpoints"].values()
    [stats] = endpoint.values()
    return stats


def metric(harness, name, **labels):
    """
    The value of one sample of the gateway's metrics.
    """
    harness.gateway.metrics.flush()
    value = harness.gateway.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


class IsolationTests(SynchronousTestCase):
    """
    A slow, black-holed or failing shadow leaves the primary alone, and memory stays bounded.
    """

    def test_black_hole_is_capped(self):
        """
        Under steady load on a black-holed shadow, in-flight copies stay at max_in_flight and
        the rest are dropped and counted, never queued; every client is answered.
        """
        harness, shadows = harness_for({"max_in_flight": 4}, proxy={"shadow_timeout": "30s"})
        harness.backends.route("/v1/item/1", {"id": 1})
        shadows.route("/v2/item/1", None)
        for _ in range(20):
            response = self.successResultOf(harness.request("GET", "/item/1"))
            self.assertEqual(response.code, 200)
        self.assertEqual(len(shadows.pending), 4)
        self.assertEqual(harness.gateway.shadows.in_flight.total, 4)
        stats = stats_of(harness)
        self.assertEqual(stats["outcomes"]["dropped"], 16)
        labels = {"endpoint": "GET /item/{id}", "backend": "http://shadow.test/v2/item/{id}"}
        self.assertEqual(metric(harness, "shadowgw_shadow_requests_total", outcome="dropped", **labels), 16)
        self.assertEqual(metric(harness, "shadowgw_shadow_in_flight", backend=labels["backend"]), 4)
        harness.clock.advance(31)
        harness.pump()
        self.assertEqual(harness.gateway.shadows.in_flight.total, 0)
        self.assertEqual(stats_of(harness)["outcomes"]["timeout"], 4)

    def test_held_down_shadow_not_called(self):
        """
        While the shadow's origin is held down after a failed connection, each copy is an
        error outcome with the hold-down's reason, known without a call; the slot is given back.
        """
        harness, shadows = harness_for({"max_in_flight": 4})
        harness.backends.route("/v1/item/1", {"id": 1})
        client = harness.gateway.shadows._client
        why = "connection refused (not retried for 5s after a failed connection)"
        asked = []
        self.patch(client, "held_down", lambda url: asked.append(url) or why)
        self.patch(client, "send", lambda *args, **kwargs: self.fail("the shadow was called"))
        for _ in range(6):
            self.assertEqual(self.successResultOf(harness.request("GET", "/item/1")).code, 200)
        self.assertEqual(asked, ["http://shadow.test/v2/item/1"] * 6)
        self.assertEqual(stats_of(harness)["outcomes"]["error"], 6)
        self.assertEqual(harness.gateway.shadows.in_flight.total, 0)

    def test_global_cap(self):
        """
        max_shadow_in_flight caps all shadows together.
        """
        shadow = shadow_backend("/v2/item/{id}")
        doc = document({"endpoint": "/item/{id}", "backend": [{"url_pattern": "/v1/item/{id}"}, shadow]},
                       extra_config={"shadowgw": {"max_shadow_in_flight": 2}})
        shadows = FakeBackends()
        harness = Harness(doc, shadow_backends=shadows)
        harness.backends.route("/v1/item/1", {"id": 1})
        shadows.route("/v2/item/1", None)
        for _ in range(5):
            self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(len(shadows.pending), 2)

    def test_response_before_slow_shadow(self):
        """
        The client's complete answer is written while a slow shadow is still working; it carries
        nothing of the shadow.
        """
        harness, shadows = harness_for({})
        harness.backends.route("/v1/item/1", {"id": 1, "price": 10})
        shadows.route("/v2/item/1", None)
        response = self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(json.loads(body_of(self, harness, response)), {"id": 1, "price": 10})
        self.assertEqual(response.headers.getRawHeaders("x-krakend-completed"), ["true"])
        self.assertEqual(len(shadows.pending), 1)


class SamplingTests(SynchronousTestCase):
    """
    percentage and sticky_key.
    """

    def incoming(self, user=None):
        headers = {"X-User-Id": [user]} if user else {}
        return IncomingRequest("GET", "/item/1", headers=headers, params={"id": "1"})

    def test_percentage(self):
        """
        Sampling at 10 % over 20,000 requests lands within one point.
        """
        harness, _ = harness_for({"percentage": 10}, rng=random.Random(2026))
        [endpoint] = harness.config.endpoints
        shadow = harness.gateway.shadows.shadow_for(endpoint, endpoint.shadows[0])
        reasons = [shadow.skip_reason(self.incoming(), 0.0) for _ in range(20000)]
        share = reasons.count(None) / 200.0
        self.assertTrue(9.0 <= share <= 11.0, share)
        self.assertEqual(set(reasons), {None, "skipped_sampling"})

    def test_sticky(self):
        """
        The same key always gets the same decision, and the share over many keys holds.
        """
        harness, _ = harness_for({"percentage": 30, "sticky_key": "header:X-User-Id"})
        [endpoint] = harness.config.endpoints
        shadow = harness.gateway.shadows.shadow_for(endpoint, endpoint.shadows[0])
        for user in ("alice", "bob", "carol", "dave"):
            decisions = {shadow.skip_reason(self.incoming(user), 0.0) for _ in range(50)}
            self.assertEqual(len(decisions), 1)
        chosen = sum(shadow.skip_reason(self.incoming(f"user-{n}"), 0.0) is None for n in range(10000))
        self.assertTrue(2800 <= chosen <= 3200, chosen)

    def test_sampled_requests_skip_the_shadow(self):
        """
        Requests not sampled never reach the shadow and are counted as skipped_sampling.
        """
        harness, shadows = harness_for({"percentage": 0})
        harness.backends.route("/v1/item/1", {"id": 1})
        for _ in range(3):
            self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(shadows.seen, [])
        self.assertEqual(stats_of(harness)["outcomes"]["skipped_sampling"], 3)


class SafetyTests(SynchronousTestCase):
    """
    Unsafe methods, big bodies and header rewriting.
    """

    def test_unsafe_not_shadowed_by_default(self):
        """
        A POST is not shadowed when shadowgw/shadow is configured without allow_unsafe.
        """
        harness, shadows = harness_for({}, method="POST")
        harness.backends.route("/v1/item/1", (201, {"Content-Type": "application/json"}, b'{"ok":true}'))
        response = self.successResultOf(harness.request("POST", "/item/1", data=b'{"x":1}'))
        self.assertEqual(response.code, 200)
        self.assertEqual(shadows.seen, [])
        self.assertEqual(stats_of(harness)["outcomes"]["skipped_method"], 1)

    def test_unsafe_allowed(self):
        """
        With allow_unsafe, POST, PUT and PATCH are shadowed with the body.
        """
        for method in ("POST", "PUT", "PATCH"):
            harness, shadows = harness_for({"allow_unsafe": True}, method=method)
            harness.backends.route("/v1/item/1", {"ok": True})
            shadows.route("/v2/item/1", {"ok": True})
            self.successResultOf(harness.request(method, "/item/1", data=b'{"x":1}'))
            [seen] = shadows.seen
            self.assertEqual((seen.method, seen.body), (method, b'{"x":1}'))

    def test_big_body(self):
        """
        A 5 MB POST reaches the primary whole; the shadow is skipped, or sent without the body.
        """
        big = b"x" * (5 * 1024 * 1024)
        for overflow in ("skip", "headers_only"):
            harness, shadows = harness_for({"allow_unsafe": True, "on_body_overflow": overflow},
                                           method="POST")
            harness.backends.route("/v1/item/1", {"ok": True})
            shadows.route("/v2/item/1", {"ok": True})
            self.successResultOf(harness.request("POST", "/item/1", data=big))
            [primary] = harness.backends.seen
            self.assertEqual(len(primary.body), len(big))
            if overflow == "skip":
                self.assertEqual(shadows.seen, [])
                self.assertEqual(stats_of(harness)["outcomes"]["skipped_body"], 1)
            else:
                [seen] = shadows.seen
                self.assertEqual(seen.body, b"")

    def test_headers(self):
        """
        The shadow copy is marked and loses the removed headers; the primary keeps them.
        """
        harness, shadows = harness_for({"headers": {"set": {"X-Shadow-Request": "1"},
                                                    "remove": ["Authorization"]}},
                                       input_headers=["Authorization"])
        harness.backends.route("/v1/item/1", {"id": 1})
        shadows.route("/v2/item/1", {"id": 1})
        self.successResultOf(harness.request("GET", "/item/1", headers={"Authorization": "Bearer s3cret"}))
        [primary], [seen] = harness.backends.seen, shadows.seen
        self.assertEqual(primary.headers["authorization"], ["Bearer s3cret"])
        self.assertNotIn("authorization", seen.headers)
        self.assertEqual(seen.headers["x-shadow-request"], ["1"])

    def test_plain_krakend_shadow_unmarked(self):
        """
        Without shadowgw/shadow a shadow keeps KrakenD's meaning: every method, no marking.
        """
        harness, shadows = harness_for(None, method="DELETE")
        harness.backends.route("/v1/item/1", {"ok": True})
        shadows.route("/v2/item/1", {"ok": True})
        self.successResultOf(harness.request("DELETE", "/item/1"))
        [seen] = shadows.seen
        self.assertEqual(seen.method, "DELETE")
        self.assertNotIn("x-shadow-request", seen.headers)


class StartTests(SynchronousTestCase):
    """
    start: after_response and on_primary_success.
    """

    def test_after_response(self):
        """
        The copy starts only once the client's response has been written.
        """
        harness, shadows = harness_for({"start": "after_response"})
        harness.backends.route("/v1/item/1", None)  # the primary holds the response
        shadows.route("/v2/item/1", {"id": 1})
        d = harness.request("GET", "/item/1")
        self.assertNoResult(d)
        self.assertEqual(shadows.seen, [])
        [pending] = harness.backends.pending
        pending.setHeader(b"content-type", b"application/json")
        pending.write(b'{"id": 1}')
        pending.finish()
        harness.pump()
        self.assertEqual(self.successResultOf(d).code, 200)
        self.assertEqual(len(shadows.seen), 1)

    def test_after_response_told_by_the_primary(self):
        """
        Without a written signal, an after_response copy starts once the primary's outcome is
        known; a second telling changes nothing.
        """
        from shadowtwist.pipeline import PrimaryOutcome
        from shadowtwist.responses import GatewayResponse

        harness, shadows = harness_for({"start": "after_response"})
        shadows.route("/v2/item/1", {"id": 1})
        endpoint = harness.config.endpoints[0]
        incoming = IncomingRequest(method="GET", path="/item/1", params={"id": "1"})
        call = harness.gateway.shadows.dispatch(endpoint, endpoint.shadows[0], incoming, None)
        harness.pump()
        self.assertEqual(shadows.seen, [])
        outcome = PrimaryOutcome(0.01, GatewayResponse(200, (), b'{"id":1}'), (None,), (None,))
        call.primary_known(outcome)
        call.primary_known(outcome)
        harness.pump()
        self.assertEqual(len(shadows.seen), 1)
        self.assertEqual(stats_of(harness)["outcomes"]["ok"], 1)

    def test_on_primary_success(self):
        """
        The copy is sent only when the primary succeeded.
        """
        harness, shadows = harness_for({"start": "on_primary_success"})
        harness.backends.route("/v1/item/1", {"id": 1})
        harness.backends.route("/v1/item/2", (500, {}, b""))
        shadows.route("/v2/item/1", {"id": 1})
        self.successResultOf(harness.request("GET", "/item/1"))
        self.successResultOf(harness.request("GET", "/item/2"))
        self.assertEqual([s.path for s in shadows.seen], ["/v2/item/1"])
        self.assertEqual(stats_of(harness)["outcomes"]["skipped_primary"], 1)


class CompareTests(SynchronousTestCase):
    """
    Comparison with ignore rules and learned noise.
    """

    def test_ignored_timestamp_and_changed_price(self):
        """
        A difference in an ignored field is a match; a changed price is one mismatch with its
        path, captured with both answers, and the Authorization header redacted.
        """
        harness, shadows = harness_for({"compare": {"ignore": ["/items/*/updated_at"]}},
                                       input_headers=["Authorization"])
        v1 = {"items": [{"price": 10, "updated_at": "t1"}, {"price": 5, "updated_at": "t1"}]}
        v2_same = {"items": [{"price": 10, "updated_at": "t2"}, {"price": 5, "updated_at": "t9"}]}
        v2_price = {"items": [{"price": 10, "updated_at": "t2"}, {"price": 6, "updated_at": "t9"}]}
        harness.backends.route("/v1/item/1", v1)
        shadows.route("/v2/item/1", v2_same)
        self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(stats_of(harness)["compare"]["match"], 1)
        shadows.route("/v2/item/1", v2_price)
        self.successResultOf(harness.request("GET", "/item/1", headers={"Authorization": "Bearer s3cret"}))
        stats = stats_of(harness)
        self.assertEqual(stats["compare"]["mismatch"], 1)
        [capture] = stats["captures"]
        self.assertEqual([d["path"] for d in capture["diff"]], ["/items/1/price"])
        self.assertEqual(capture["request"]["headers"]["Authorization"], ["[redacted]"])
        self.assertEqual(capture["shadow"]["body"]["items"][1]["price"], 6)
        self.assertIn("/items/*/price", [f["path"] for f in stats["fields"]])
        labels = {"endpoint": "GET /item/{id}", "backend": "http://shadow.test/v2/item/{id}"}
        self.assertEqual(metric(harness, "shadowgw_shadow_compare_total", result="mismatch", **labels), 1)
        self.assertEqual(metric(harness, "shadowgw_shadow_compare_total", result="match", **labels), 1)

    def test_outcome_line_before_mismatch(self):
        """
        A call's outcome line is logged before its mismatch warning, though outcome lines are
        batched and the warning is not.
        """
        events = capture_events(self, "shadowtwist.shadow")
        harness, shadows = harness_for({})
        harness.backends.route("/v1/item/1", {"price": 1})
        shadows.route("/v2/item/1", {"price": 2})
        self.successResultOf(harness.request("GET", "/item/1"))
        kinds = ["outcome" if "shadow_lines" in e else "mismatch" for e in events
                 if "shadow_lines" in e or "differing_paths" in e]
        self.assertEqual(kinds, ["outcome", "mismatch"])
        self.assertIn("shadow ok GET /item/{id}", events[0]["shadow_lines"])

    def test_capture_after_the_request_is_let_go(self):
        """
        A call sent keeps only what a capture shows of its request (not the body, nor the
        request itself); the capture still names the method, path, query and headers.
        """
        harness, shadows = harness_for({"allow_unsafe": True}, method="POST",
                                       input_query_strings=["q"])
        harness.backends.route("/v1/item/1", {"price": 1})
        shadows.route("/v2/item/1", {"price": 2})
        dispatcher = harness.gateway.shadows
        sent = []  # (what the call keeps once sending, the request sent)

        def send(shadow, incoming, finished):
            sent.append((finished.__self__.incoming, incoming))
            return original(shadow, incoming, finished)

        original = dispatcher.send
        self.patch(dispatcher, "send", send)
        self.successResultOf(harness.request("POST", "/item/1?q=7", data=b'{"big": "body"}',
                                             headers={"X-Trace": "t1"}))
        [(kept, incoming)] = sent
        self.assertEqual(incoming.body, b'{"big": "body"}')
        self.assertIsNot(kept, incoming)
        self.assertEqual((kept.body, kept.params, kept.client_ip), (b"", {}, ""))
        [capture] = stats_of(harness)["captures"]
        self.assertEqual(capture["request"]["method"], "POST")
        self.assertEqual(capture["request"]["path"], "/item/1")
        self.assertEqual(capture["request"]["query"], {"q": ["7"]})
        self.assertEqual(capture["request"]["headers"]["X-Trace"], ["t1"])

    def test_kept_for_comparison(self):
        """
        Once sent, a call keeps the whole request only to learn noise, the captured parts
        only to capture, and nothing otherwise.
        """
        incoming = IncomingRequest("POST", "/item/1", (("q", "7"),), {"X-Trace": ["t1"]},
                                   {"id": "1"}, b"body", "10.0.0.1", "gw.test")

        def options(**shadow):
            return parse_config({"version": 3, "endpoints": [{"endpoint": "/item/{id}", "backend": [
                {"host": ["http://v1.test"], "url_pattern": "/v1"},
                shadow_backend("/v2", **shadow)]}]}).endpoints[0].shadows[0].shadow_options

        self.assertIs(_kept_for_comparison(options(compare={"learn_noise": 0.1}), incoming), incoming)
        self.assertIsNone(_kept_for_comparison(options(capture=0), incoming))
        kept = _kept_for_comparison(options(), incoming)
        self.assertEqual((kept.method, kept.path, kept.query, kept.headers),
                         (incoming.method, incoming.path, incoming.query, incoming.headers))
        self.assertEqual((kept.body, kept.params), (b"", {}))

    def test_learned_noise(self):
        """
        A field that differs between two answers of the primary itself is learned as noise and
        no longer counts as a mismatch.
        """
        counter = iter(range(1000))
        harness, shadows = harness_for({"compare": {"learn_noise": 1.0}})
        harness.backends.route("/v1/item/1", lambda seen: {"id": 1, "nonce": next(counter)})
        shadows.route("/v2/item/1", lambda seen: {"id": 1, "nonce": -1})
        # the repeated primary call goes over the shadow pool (the fake shadow backends here)
        shadows.route("/v1/item/1", lambda seen: {"id": 1, "nonce": next(counter)})
        self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(stats_of(harness)["compare"]["mismatch"], 1)  # not learned yet
        self.assertIn("/v1/item/1", [seen.path for seen in shadows.seen])
        self.successResultOf(harness.request("GET", "/item/1"))
        stats = stats_of(harness)
        self.assertEqual(stats["compare"]["noise"], 1)
        self.assertEqual([f["path"] for f in stats["fields"] if f["noise"]], ["/nonce"])

    def test_identical_bytes_skip_the_diff(self):
        """
        A shadow answering byte for byte like the primary (same status, same shaping) is a match
        without decoding or diffing anything, counted at once rather than queued for a diff.
        """
        import shadowtwist.shadow as shadow_module

        harness, shadows = harness_for({})
        answer = (200, {"Content-Type": "application/json"}, b'{"id": 1, "items": [1, 2, 3]}')
        harness.backends.route("/v1/item/1", answer)
        shadows.route("/v2/item/1", answer)

        def no_diff(*args, **kwargs):
            raise AssertionError("the structural diff ran")

        self.patch(shadow_module, "compare", no_diff)
        self.patch(shadow_module.ShadowDispatcher, "enqueue_comparison", no_diff)
        self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(stats_of(harness)["compare"]["match"], 1)

    def test_status_difference(self):
        """
        A shadow answering 404 where the primary answered 200 is a status mismatch.
        """
        harness, shadows = harness_for({})
        harness.backends.route("/v1/item/1", {"id": 1})
        shadows.route("/v2/item/1", (404, {}, b"gone"))
        self.successResultOf(harness.request("GET", "/item/1"))
        stats = stats_of(harness)
        self.assertEqual(stats["compare"]["mismatch"], 1)
        self.assertTrue(stats["captures"][0]["status_differs"])

    def test_against_a_primary(self):
        """
        compare.against picks which primary the shadow is compared with.
        """
        primaries = [{"url_pattern": "/v1/user/{id}", "group": "user"}, {"url_pattern": "/v1/item/{id}"}]
        harness, shadows = harness_for({"compare": {"against": 1}}, primaries=primaries)
        harness.backends.route("/v1/user/1", {"name": "x"})
        harness.backends.route("/v1/item/1", {"id": 1})
        shadows.route("/v2/item/1", {"id": 1})
        self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(stats_of(harness)["compare"]["match"], 1)


class AutoPauseTests(SynchronousTestCase):
    """
    A failing shadow pauses itself and resumes after the window.
    """

    def test_pause_and_resume(self):
        """
        After min_requests with enough errors the shadow is paused (copies counted as paused),
        and after the window it is shadowed again.
        """
        harness, shadows = harness_for({"auto_pause": {"error_rate": 0.5, "window": "10s", "min_requests": 4}})
        harness.backends.route("/v1/item/1", {"id": 1})
        shadows.route("/v2/item/1", (503, {}, b"down"))
        for _ in range(6):
            self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(len(shadows.seen), 4)
        stats = stats_of(harness)
        self.assertEqual(stats["outcomes"]["paused"], 2)
        self.assertTrue(stats["auto_pause"]["paused"])
        harness.clock.advance(11)
        shadows.route("/v2/item/1", {"id": 1})
        self.successResultOf(harness.request("GET", "/item/1"))
        self.assertEqual(len(shadows.seen), 5)
        self.assertFalse(stats_of(harness)["auto_pause"]["paused"])


class AdminTests(SynchronousTestCase):
    """
    /metrics and /__shadow on the admin site.
    """

    def test_admin_pages(self):
        """
        Both pages answer and show the shadow's counts.
        """
        from treq.testing import StubTreq

        harness, shadows = harness_for({})
        harness.backends.route("/v1/item/1", {"id": 1})
        shadows.route("/v2/item/1", {"id": 2})
        self.successResultOf(harness.request("GET", "/item/1"))
        admin = StubTreq(harness.gateway.admin_site.resource)
        metrics = self.successResultOf(admin.get("http://admin/metrics"))
        text = self.successResultOf(metrics.text())
        self.assertIn('shadowgw_requests_total{code="200",endpoint="/item/{id}",method="GET"} 1.0', text)
        self.assertIn('shadowgw_shadow_requests_total{backend="http://shadow.test/v2/item/{id}",'
                      'endpoint="GET /item/{id}",outcome="ok"} 1.0', text)
        self.assertIn("shadowgw_shadow_latency_delta_seconds_bucket", text)
        page = self.successResultOf(admin.get("http://admin/__shadow"))
        snapshot = json.loads(self.successResultOf(page.content()))
        stats = snapshot["endpoints"]["GET /item/{id}"]["http://shadow.test/v2/item/{id}"]
        self.assertEqual(stats["outcomes"]["ok"], 1)
        self.assertEqual(stats["compare"]["mismatch"], 1)


class ComparisonQueueTests(SynchronousTestCase):
    """
    Queued comparisons: after the current turn, a bounded slice of time per turn, a bounded queue.
    """

    def test_time_slice_per_turn(self):
        """
        Comparisons wait for the next reactor turn, then run until COMPARE_SLICE has passed;
        the rest run on later turns. Over MAX_PENDING_COMPARISONS the queue refuses.
        """
        from shadowtwist.shadow import COMPARE_SLICE, MAX_PENDING_COMPARISONS, ShadowDispatcher

        now = [0.0]
        turns = []

        class Reactor:
            def callLater(self, delay, function):
                turns.append(function)

        dispatcher = ShadowDispatcher(None, Reactor(), clock=lambda: now[0])
        ran = []

        def work(n):
            ran.append(n)
            now[0] += COMPARE_SLICE / 2  # each comparison takes half a slice

        for n in range(5):
            self.assertTrue(dispatcher.enqueue_comparison(lambda n=n: work(n)))
        self.assertEqual((ran, len(turns)), ([], 1))
        for expected in ([0, 1], [0, 1, 2, 3], [0, 1, 2, 3, 4]):
            turns.pop(0)()
            self.assertEqual(ran, expected)
        self.assertEqual(turns, [])
        for _ in range(MAX_PENDING_COMPARISONS):
            dispatcher.enqueue_comparison(lambda: None)
        self.assertFalse(dispatcher.enqueue_comparison(lambda: None))
