"""
Tests for L{shadowtwist.shadowstats}.
"""

from __future__ import annotations

import json
from decimal import Decimal

from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.compare import Comparison, Difference, ResponseView, compare
from shadowtwist.shadowstats import (
    COMPARE_RESULTS,
    OUTCOMES,
    AutoPause,
    CaptureBuffer,
    FieldCounter,
    LatencyWindow,
    RateLimiter,
    ShadowRegistry,
    ShadowStats,
    capture_entry,
    plain,
)


class LiteralNumber:
    """
    A stand-in for a decoder's number class that keeps the literal in C{text}.
    """

    def __init__(self, text: str) -> None:
        """
        @param text: the JSON literal.
        """
        self.text = text


def mismatch_entry(**request_headers: str) -> dict[str, object]:
    """
    Build a capture entry with secrets in every header section.

    @param request_headers: extra request headers.
    @return: the entry.
    """
    headers = {"Authorization": ["Bearer s3cret"], "Accept": ["*/*"]}
    headers.update({name: [value] for name, value in request_headers.items()})
    primary = ResponseView(200, {"Set-Cookie": ["sid=1"], "X-Token": ["t1"]}, body={"a": 1})
    shadow = ResponseView(200, {"set-cookie": ["sid=2"], "X-Token": ["t2"]}, body={"a": 2})
    return capture_entry(
        "GET", "/user/7", "q=1", headers, primary, shadow, compare(primary, shadow), time=10.0
    )


class PlainTests(SynchronousTestCase):
    """
    Tests for L{plain}.
    """

    def test_number_objects(self) -> None:
        """
        Number objects become ints or floats when exact, else keep their literal as a string.
        """
        self.assertEqual(plain(LiteralNumber("12")), 12)
        self.assertEqual(plain(LiteralNumber("0.5")), 0.5)
        self.assertEqual(plain(LiteralNumber("1e400")), "1e400")
        self.assertEqual(plain(LiteralNumber("0.10000000000000000001")), "0.10000000000000000001")
        self.assertEqual(plain(Decimal("2.5")), 2.5)

    def test_json_ready(self) -> None:
        """
        Bytes, tuples, non-string keys and non-finite floats come out JSON-ready.
        """
        value = plain({1: (b"ab\xff", float("inf")), "n": None, "b": True})
        self.assertEqual(value, {"1": ["ab\ufffd", "inf"], "n": None, "b": True})
        json.dumps(value, allow_nan=False)

    def test_depth_bound(self) -> None:
        """
        Values nested too deeply are cut with a marker rather than exhausting the stack.
        """
        value: object = 1
        for _ in range(3000):
            value = [value]
        json.dumps(plain(value))
        self.assertIn("[too deep]", json.dumps(plain(value)))


class LatencyWindowTests(SynchronousTestCase):
    """
    Tests for L{LatencyWindow}.
    """

    def test_empty(self) -> None:
        """
        An empty window has no percentiles.
        """
        self.assertEqual(LatencyWindow().percentiles(), {"p50": None, "p90": None, "p99": None})

    def test_percentiles(self) -> None:
        """
        Nearest-rank percentiles of 1..100 ms are 50, 90 and 99 ms.
        """
        window = LatencyWindow()
        for ms in range(100, 0, -1):
            window.add(ms / 1000)
        self.assertEqual(window.percentiles(), {"p50": 0.05, "p90": 0.09, "p99": 0.099})
        self.assertEqual(window.percentiles((0.999,)), {"p99.9": 0.1})

    def test_bounded_recent(self) -> None:
        """
        The window keeps only the most recent C{capacity} values.
        """
        window = LatencyWindow(capacity=10)
        for _ in range(50):
            window.add(5.0)
        for _ in range(10):
            window.add(0.1)
        self.assertEqual(len(window), 10)
        self.assertEqual(window.count, 60)
        self.assertEqual(window.percentiles((1.0,)), {"p100": 0.1})

    def test_ignores_non_finite(self) -> None:
        """
        NaN and infinities are not recorded.
        """
        window = LatencyWindow()
        window.add(float("nan"))
        window.add(float("inf"))
        self.assertEqual(len(window), 0)


class FieldCounterTests(SynchronousTestCase):
    """
    Tests for L{FieldCounter}.
    """

    def test_top(self) -> None:
        """
        The most frequent paths come first, noise and mismatch counted apart.
        """
        counter = FieldCounter()
        for _ in range(3):
            counter.add("/price")
        counter.add("/ts", noise=True)
        counter.add("/ts", noise=True)
        counter.add("/ts")
        self.assertEqual(
            counter.top(2),
            [
                {"path": "/price", "count": 3, "noise": False},
                {"path": "/ts", "count": 2, "noise": True},
            ],
        )

    def test_bounded_keeps_heavy_hitter(self) -> None:
        """
        A full table evicts the least counted entry, and a frequent path arriving late still
        makes it to the top.
        """
        counter = FieldCounter(max_fields=5)
        for i in range(5):
            counter.add(f"/old{i}")
            counter.add(f"/old{i}")
        for i in range(100):
            counter.add(f"/rare{i}")
            counter.add("/hot")
        self.assertEqual(len(counter), 5)
        self.assertGreater(counter.evicted, 0)
        self.assertEqual(counter.top(1)[0]["path"], "/hot")


class CaptureBufferTests(SynchronousTestCase):
    """
    Tests for L{CaptureBuffer} and L{capture_entry}.
    """

    def test_entry_shape(self) -> None:
        """
        An entry holds the request, both answers and the diff.
        """
        entry = mismatch_entry()
        self.assertEqual(entry["request"]["method"], "GET")
        self.assertEqual(entry["request"]["path"], "/user/7")
        self.assertEqual(entry["primary"]["body"], {"a": 1})
        self.assertEqual(entry["shadow"]["body"], {"a": 2})
        self.assertEqual(
            entry["diff"], [{"path": "/a", "kind": "changed", "primary": 1, "shadow": 2}]
        )

    def test_redaction(self) -> None:
        """
        Authorization, Cookie, Set-Cookie and configured headers are redacted in the request and
        in both answers, in any case; other headers are kept.
        """
        buffer = CaptureBuffer(redact_headers=["x-token"])
        buffer.add(mismatch_entry(Cookie="sid=1"))
        entry = buffer.items()[0]
        self.assertEqual(
            entry["request"]["headers"],
            {"Authorization": ["[redacted]"], "Accept": ["*/*"], "Cookie": ["[redacted]"]},
        )
        self.assertEqual(
            entry["primary"]["headers"], {"Set-Cookie": ["[redacted]"], "X-Token": ["[redacted]"]}
        )
        self.assertEqual(
            entry["shadow"]["headers"], {"set-cookie": ["[redacted]"], "X-Token": ["[redacted]"]}
        )
        self.assertNotIn("s3cret", json.dumps(plain(buffer.items())))

    def test_redaction_does_not_touch_caller(self) -> None:
        """
        Redaction works on a copy; the caller's entry is unchanged.
        """
        entry = mismatch_entry()
        CaptureBuffer().add(entry)
        self.assertEqual(entry["request"]["headers"]["Authorization"], ["Bearer s3cret"])

    def test_ring(self) -> None:
        """
        Only the last C{capacity} entries are kept, oldest first.
        """
        buffer = CaptureBuffer(capacity=2)
        for i in range(5):
            buffer.add({"n": i})
        self.assertEqual([e["n"] for e in buffer.items()], [3, 4])
        self.assertEqual(buffer.total, 5)

    def test_zero_capacity(self) -> None:
        """
        Capacity 0 keeps nothing.
        """
        buffer = CaptureBuffer(capacity=0)
        buffer.add(mismatch_entry())
        self.assertEqual(buffer.items(), [])


class AutoPauseTests(SynchronousTestCase):
    """
    Tests for L{AutoPause}.
    """

    def test_stops_and_resumes(self) -> None:
        """
        A failing shadow is paused once enough outcomes are in, and resumes after the window.
        """
        breaker = AutoPause(error_rate=0.5, window=30, min_requests=10)
        for i in range(9):
            breaker.record(False, 100.0 + i * 0.1)
        self.assertFalse(breaker.paused(101.0))
        breaker.record(False, 101.0)
        self.assertTrue(breaker.paused(101.0))
        self.assertTrue(breaker.paused(130.9))
        self.assertFalse(breaker.paused(131.0))
        self.assertEqual(breaker.trips, 1)

    def test_below_rate(self) -> None:
        """
        An error share below the threshold never pauses.
        """
        breaker = AutoPause(error_rate=0.5, window=30, min_requests=10)
        for i in range(100):
            breaker.record(i % 3 != 0, 100.0 + i * 0.01)
        self.assertFalse(breaker.paused(102.0))

    def test_fresh_counts_after_resume(self) -> None:
        """
        After a pause the counts start over: it takes C{min_requests} new failures to pause again,
        and outcomes reported during the pause do not count.
        """
        breaker = AutoPause(error_rate=0.5, window=10, min_requests=4)
        for _ in range(4):
            breaker.record(False, 0.0)
        for _ in range(10):
            breaker.record(False, 5.0)
        self.assertFalse(breaker.paused(10.0))
        for _ in range(3):
            breaker.record(False, 10.5)
        self.assertFalse(breaker.paused(10.5))
        breaker.record(False, 10.5)
        self.assertTrue(breaker.paused(10.5))
        self.assertEqual(breaker.trips, 2)

    def test_old_outcomes_leave_window(self) -> None:
        """
        Failures older than the window no longer count toward a pause.
        """
        breaker = AutoPause(error_rate=0.5, window=10, min_requests=4)
        for _ in range(3):
            breaker.record(False, 0.0)
        breaker.record(False, 20.0)
        self.assertFalse(breaker.paused(20.0))

    def test_state(self) -> None:
        """
        The state shows the pause and the window counts.
        """
        breaker = AutoPause(error_rate=0.5, window=10, min_requests=3)
        breaker.record(True, 1.0)
        breaker.record(False, 1.0)
        state = breaker.state(2.0)
        self.assertEqual(state["paused"], False)
        self.assertEqual(state["window"], {"requests": 2, "errors": 1, "error_rate": 0.5})
        breaker.record(False, 2.0)
        state = breaker.state(3.0)
        self.assertEqual((state["paused"], state["paused_until"]), (True, 12.0))

    def test_clock_going_back(self) -> None:
        """
        A clock that jumps back never makes a pause longer than the window.
        """
        breaker = AutoPause(error_rate=0.5, window=10, min_requests=1)
        breaker.record(False, 1000.0)
        self.assertTrue(breaker.paused(500.0))
        self.assertFalse(breaker.paused(510.0))

    def test_invalid(self) -> None:
        """
        Settings outside their ranges are refused.
        """
        self.assertRaises(ValueError, AutoPause, 0, 30, 50)
        self.assertRaises(ValueError, AutoPause, 1.5, 30, 50)
        self.assertRaises(ValueError, AutoPause, 0.5, 0, 50)
        self.assertRaises(ValueError, AutoPause, 0.5, 30, 0)


class RateLimiterTests(SynchronousTestCase):
    """
    Tests for L{RateLimiter}.
    """

    def test_burst_then_rate(self) -> None:
        """
        A burst goes through at once, then events pass at the rate and the rest are counted.
        """
        limiter = RateLimiter(rate_per_second=2, burst=3)
        self.assertEqual([limiter.allow(0.0) for _ in range(5)], [True, True, True, False, False])
        self.assertEqual(limiter.suppressed, 2)
        self.assertTrue(limiter.allow(0.5))
        self.assertFalse(limiter.allow(0.5))
        self.assertEqual(limiter.take_suppressed(), 3)
        self.assertEqual(limiter.take_suppressed(), 0)
        self.assertEqual(limiter.suppressed, 3)

    def test_flood_is_bounded(self) -> None:
        """
        A flood of 10,000 events in 10 seconds lets through only the burst plus the rate.
        """
        limiter = RateLimiter(rate_per_second=1, burst=5)
        allowed = sum(limiter.allow(i / 1000) for i in range(10000))
        self.assertEqual(allowed, 5 + 9)

    def test_refill_capped(self) -> None:
        """
        A long quiet time refills no more than the burst.
        """
        limiter = RateLimiter(rate_per_second=100, burst=2)
        limiter.allow(0.0)
        self.assertEqual(sum(limiter.allow(1000.0) for _ in range(10)), 2)


class ShadowStatsTests(SynchronousTestCase):
    """
    Tests for L{ShadowStats} and L{ShadowRegistry}.
    """

    def test_outcomes(self) -> None:
        """
        Every outcome is counted; unknown ones are refused.
        """
        stats = ShadowStats()
        for outcome in OUTCOMES:
            stats.record_outcome(outcome)
        stats.record_outcome("ok")
        snapshot = stats.snapshot()
        self.assertEqual(snapshot["outcomes"]["ok"], 2)
        self.assertEqual(set(snapshot["outcomes"]), set(OUTCOMES))
        self.assertRaises(ValueError, stats.record_outcome, "okay")

    def test_comparisons(self) -> None:
        """
        Results are counted, differing fields tallied with their noise flag, and only mismatches
        captured.
        """
        stats = ShadowStats()
        mismatch = Comparison(
            "mismatch",
            [Difference("/items/3/price", "changed", 1, 2, "/items/*/price")],
            [Difference("/ts", "changed", 1, 2)],
            status_differs=True,
            header_differences=["Content-Type"],
        )
        stats.record_comparison(mismatch, {"request": {"headers": {}}, "n": 1})
        noise = Comparison("noise", [], [Difference("/ts", "changed", 1, 2)])
        stats.record_comparison(noise, {"n": 2})
        stats.record_comparison(Comparison("match"))
        stats.record_compare_skipped()
        snapshot = stats.snapshot()
        self.assertEqual(snapshot["compare"], {"match": 1, "mismatch": 1, "noise": 1, "skipped": 1})
        self.assertEqual(set(snapshot["compare"]), set(COMPARE_RESULTS))
        self.assertIn({"path": "/ts", "count": 2, "noise": True}, snapshot["fields"])
        self.assertIn({"path": "/items/*/price", "count": 1, "noise": False}, snapshot["fields"])
        self.assertIn({"path": "status", "count": 1, "noise": False}, snapshot["fields"])
        header = {"path": "header:Content-Type", "count": 1, "noise": False}
        self.assertIn(header, snapshot["fields"])
        self.assertEqual([c["n"] for c in snapshot["captures"]], [1])

    def test_latencies(self) -> None:
        """
        Primary, shadow and delta latencies get percentiles.
        """
        stats = ShadowStats()
        stats.record_latencies(0.010, 0.030)
        stats.record_latencies(0.020, None)
        latency = stats.snapshot()["latency"]
        self.assertEqual(latency["primary"]["count"], 2)
        self.assertEqual(latency["shadow"]["p50"], 0.030)
        self.assertAlmostEqual(latency["delta"]["p99"], 0.020)
        self.assertEqual(latency["delta"]["count"], 1)

    def test_snapshot_json(self) -> None:
        """
        A snapshot with a capture of number objects and bytes serialises as strict JSON, with
        secrets redacted, and shows the auto-pause state.
        """
        stats = ShadowStats(auto_pause=AutoPause(0.5, 30, 1))
        primary = ResponseView(200, {"Set-Cookie": ["a=1"]}, body={"n": LiteralNumber("1.5")})
        shadow = ResponseView(502, {}, raw=b"bad gateway")
        comparison = compare(primary, shadow)
        entry = capture_entry("GET", "/x", "", {"Cookie": ["c=1"]}, primary, shadow, comparison)
        stats.record_comparison(comparison, entry)
        stats.auto_pause.record(False, 5.0)
        text = json.dumps(stats.snapshot(now=6.0), allow_nan=False)
        snapshot = json.loads(text)
        capture = snapshot["captures"][0]
        self.assertEqual(capture["primary"]["body"], {"n": 1.5})
        self.assertEqual(capture["shadow"]["body"], "bad gateway")
        self.assertEqual(capture["request"]["headers"], {"Cookie": ["[redacted]"]})
        self.assertNotIn("a=1", text)
        self.assertTrue(snapshot["auto_pause"]["paused"])

    def test_registry(self) -> None:
        """
        The registry gives one stats object per pair and snapshots them by endpoint and backend.
        """
        registry = ShadowRegistry()
        registry.get("GET /user/{id}", "v2").record_outcome("ok")
        registry.get("GET /user/{id}", "v2").record_outcome("timeout")
        registry.get("GET /user/{id}", "v3").record_outcome("dropped")
        configured = registry.register("GET /items", "v2", ShadowStats(capture=0))
        self.assertIs(registry.get("GET /items", "v2"), configured)
        snapshot = registry.snapshot(now=1.0)
        self.assertEqual(sorted(snapshot["endpoints"]), ["GET /items", "GET /user/{id}"])
        user = snapshot["endpoints"]["GET /user/{id}"]
        self.assertEqual(user["v2"]["outcomes"]["timeout"], 1)
        self.assertEqual(user["v3"]["outcomes"]["dropped"], 1)
        json.dumps(snapshot)
