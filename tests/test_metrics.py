"""
Tests for L{shadowtwist.metrics}: the request path's metric updates, batched until a flush.
"""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.config import parse_config
from shadowtwist.metrics import (
    DELTA_BUCKETS, FLUSH_INTERVAL, BatchedHistogram, GatewayMetrics, LabelCache,
)
from shadowtwist.tap import GatewayService


def samples(registry, name):
    """
    Every sample of metric C{name}, as {(sample name, sorted labels): value}.
    """
    found = {}
    for family in registry.collect():
        if family.name == name:
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


class BatchedTests(SynchronousTestCase):
    """
    Batched children give, once flushed, the same samples as updating the metric directly.
    """

    def test_histogram_same_samples(self):
        """
        Observations on bucket bounds, between them, beyond them and below the lowest land in
        the buckets prometheus_client puts them in, with the same sum and count.
        """
        values = [-3, -2.5, -0.0005, 0, 0.0001, 0.001, 0.0010001, 0.7, 2.5, 3, 1e9, math.inf]
        direct, batched = CollectorRegistry(), CollectorRegistry()
        for registry in (direct, batched):
            Histogram("h", "h", ["x"], buckets=DELTA_BUCKETS, registry=registry)
        [one] = [c for c in direct._collector_to_names if hasattr(c, "labels")]
        [other] = [c for c in batched._collector_to_names if hasattr(c, "labels")]
        child = BatchedHistogram(other.labels("a"))
        for value in values:
            one.labels("a").observe(value)
            child.observe(value)
        self.assertNotEqual(samples(direct, "h"), samples(batched, "h"))
        child.flush()
        self.assertEqual(samples(direct, "h"), samples(batched, "h"))
        child.flush()  # nothing new: nothing added twice
        self.assertEqual(samples(direct, "h"), samples(batched, "h"))

    def test_histogram_nan(self):
        """
        NaN goes to the metric at once, as prometheus_client counts it (in the sum only).
        """
        registry = CollectorRegistry()
        metric = Histogram("h", "h", ["x"], registry=registry)
        child = BatchedHistogram(metric.labels("a"))
        child.observe(float("nan"))
        self.assertTrue(math.isnan(registry.get_sample_value("h_sum", {"x": "a"})))

    def test_counter_and_gauge(self):
        """
        Increments reach a counter, and increments and decrements a gauge, at flush.
        """
        registry = CollectorRegistry()
        counter = LabelCache(Counter("c", "c", ["x"], registry=registry))
        gauge = LabelCache(Gauge("g", "g", ["x"], registry=registry))
        for _ in range(3):
            counter("a").inc()
            gauge("a").inc()
        gauge("a").dec()
        self.assertEqual(registry.get_sample_value("c_total", {"x": "a"}), 0)
        self.assertEqual(registry.get_sample_value("g", {"x": "a"}), 0)
        counter.flush()
        gauge.flush()
        self.assertEqual(registry.get_sample_value("c_total", {"x": "a"}), 3)
        self.assertEqual(registry.get_sample_value("g", {"x": "a"}), 2)

    def test_past_the_limit_updates_at_once(self):
        """
        Label values past the cache's limit get the metric's own child, updated at once.
        """
        registry = CollectorRegistry()
        counter = LabelCache(Counter("c", "c", ["x"], registry=registry), limit=1)
        counter("a").inc()
        counter("b").inc()
        self.assertEqual(registry.get_sample_value("c_total", {"x": "a"}), 0)
        self.assertEqual(registry.get_sample_value("c_total", {"x": "b"}), 1)

    def test_exposition_flushes(self):
        """
        What C{/metrics} shows includes every update made before it was asked for.
        """
        metrics = GatewayMetrics()
        metrics.children(metrics.requests)("GET /a", "GET", "200").inc()
        self.assertIn(b'shadowgw_requests_total{code="200",endpoint="GET /a",method="GET"} 1.0',
                      metrics.exposition())


class GatewayFlushTests(SynchronousTestCase):
    """
    The gateway hands its batched updates over every FLUSH_INTERVAL and when it stops.
    """

    def test_periodic_and_at_stop(self):
        config = parse_config({"version": 3, "endpoints": [{"endpoint": "/a", "backend": [
            {"host": ["http://127.0.0.1:8000"], "url_pattern": "/a"}]}]}, "krakend.json")
        clock = Clock()
        gateway = GatewayService(config, clock)
        counted = gateway.metrics.children(gateway.metrics.requests)
        registry = gateway.metrics.registry
        labels = {"endpoint": "/a", "method": "GET", "code": "200"}
        gateway.startService()
        counted("/a", "GET", "200").inc()
        clock.advance(FLUSH_INTERVAL - 0.01)
        self.assertEqual(registry.get_sample_value("shadowgw_requests_total", labels), 0)
        clock.advance(0.01)
        self.assertEqual(registry.get_sample_value("shadowgw_requests_total", labels), 1)
        counted("/a", "GET", "200").inc()
        gateway.stopService()
        self.assertEqual(registry.get_sample_value("shadowgw_requests_total", labels), 2)
        self.assertEqual(clock.getDelayedCalls(), [])
