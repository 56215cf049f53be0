# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics of the gateway and its shadows.

Every label is bounded: the endpoint is its template (C{GET /user/{id}}), never the raw path,
and backends are named by their configured host and URL pattern. Each gateway has its own
L{CollectorRegistry}, so tests and several gateways in one process never share counters. The
request path updates batched children (L{GatewayMetrics.children}), which L{GatewayMetrics.flush}
hands to prometheus_client.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Dict, List, Optional, Tuple

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
DELTA_BUCKETS = (-2.5, -1, -0.5, -0.25, -0.1, -0.05, -0.025, -0.01, -0.005, -0.001,
                 0, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
SHADOW_OUTCOMES = ("ok", "error", "timeout", "dropped", "skipped_sampling", "skipped_method",
                   "skipped_body", "skipped_primary", "paused")
COMPARE_RESULTS = ("match", "mismatch", "noise", "skipped")
CONTENT_TYPE = CONTENT_TYPE_LATEST
# Seconds between hand-overs of the request path's batched metric updates: a worker's counts
# reach the shared metrics at most this late.
FLUSH_INTERVAL = 1.0


MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def enable_multiprocess(directory: str) -> None:
    """
    Share metrics between worker processes (C{--workers}): every process writes its values to
    files in C{directory}, and L{GatewayMetrics.exposition} adds them all up. Must be called in
    each process before any L{GatewayMetrics} is created.
    """
    os.environ[MULTIPROCESS_ENV] = directory
    values.ValueClass = values.MultiProcessValue()


def multiprocess_directory() -> Optional[str]:
    """
    The shared metrics directory when multiprocess mode is on, else C{None}.
    """
    return os.environ.get(MULTIPROCESS_ENV) if getattr(values.ValueClass, "_multiprocess", False) else None


class BatchedCounter:
    """
    A counter child's increments, kept as a plain number until L{flush} hands them over.
    Works for gauges too (C{dec}, and negative amounts).
    """

    __slots__ = ("_child", "_pending")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._pending = 0.0

    def inc(self, amount: float = 1) -> None:
        """
        Add C{amount}.
        """
        self._pending += amount

    def dec(self, amount: float = 1) -> None:
        """
        Take C{amount} away (gauges).
        """
        self._pending -= amount

    def flush(self) -> None:
        """
        Hand what was added since the last flush to the metric.
        """
        if self._pending:
            pending, self._pending = self._pending, 0.0
            self._child.inc(pending)


class BatchedHistogram:
    """
    A histogram child's observations, counted per bucket (found by bisection) until L{flush}
    adds them to the metric's buckets and sum: the same samples as one C{observe} each.
    """

    __slots__ = ("_child", "_bounds", "_counts", "_sum", "_observed")

    def __init__(self, child: Any) -> None:
        self._child = child
        self._bounds = list(child._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        self._observed = False

    def observe(self, amount: float) -> None:
        """
        Count one observation.
        """
        if amount != amount:  # NaN: prometheus_client adds it to the sum and to no bucket
            self._child.observe(amount)
            return
        self._counts[bisect_left(self._bounds, amount)] += 1
        self._sum += amount
        self._observed = True

    def flush(self) -> None:
        """
        Hand the observations since the last flush to the metric.
        """
        if not self._observed:
            return
        counts, self._counts = self._counts, [0] * len(self._bounds)
        total, self._sum, self._observed = self._sum, 0.0, False
        child = self._child
        child._sum.inc(total)
        for index, count in enumerate(counts):
            if count:
                child._buckets[index].inc(count)


class LabelCache:
    """
    The children of one metric, looked up once per set of label values, and batched
    (L{BatchedCounter}, L{BatchedHistogram}) until L{flush}.

    prometheus_client's C{labels()} takes a lock and checks its arguments on every call, and
    each C{inc} or C{observe} goes through three or four calls and a lock: together about 5 %
    of a shadowed request's CPU in the benchmark's profile. Label values here come from the
    config (endpoints, backends) and from statuses, so the cache stays small; past C{limit}
    entries lookups return the metric's own child, updated at once.
    """

    def __init__(self, metric: Any, limit: int = 1024) -> None:
        self._metric = metric
        self._limit = limit
        self._children: Dict[Tuple[str, ...], Any] = {}
        self._batch = BatchedHistogram if isinstance(metric, Histogram) else BatchedCounter

    def __call__(self, *values: str) -> Any:
        """
        The (batched) child for these label values.
        """
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*values)
            if len(self._children) < self._limit:
                child = self._children[values] = self._batch(child)
        return child

    def flush(self) -> None:
        """
        Hand every batched update to the metric.
        """
        for child in self._children.values():
            child.flush()


class GatewayMetrics:
    """
    The gateway's metrics, registered in their own registry.
    """

    def __init__(self, registry: Optional[CollectorRegistry] = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter("shadowgw_requests", "Client requests answered.",
                                ["endpoint", "method", "code"], registry=r)
        self.request_duration = Histogram("shadowgw_request_duration_seconds",
                                          "Time to answer a client request.", ["endpoint"],
                                          buckets=LATENCY_BUCKETS, registry=r)
        self.backend_requests = Counter("shadowgw_backend_requests", "Calls to primary backends.",
                                        ["endpoint", "backend", "outcome"], registry=r)
        self.shadow_requests = Counter("shadowgw_shadow_requests",
                                       "Shadow copies by outcome (sent, dropped or skipped).",
                                       ["endpoint", "backend", "outcome"], registry=r)
        self.shadow_duration = Histogram("shadowgw_shadow_duration_seconds",
                                         "Time a shadow backend took to answer.",
                                         ["endpoint", "backend"], buckets=LATENCY_BUCKETS, registry=r)
        self.shadow_latency_delta = Histogram("shadowgw_shadow_latency_delta_seconds",
                                              "Shadow latency minus primary latency, per request.",
                                              ["endpoint", "backend"], buckets=DELTA_BUCKETS, registry=r)
        self.shadow_compare = Counter("shadowgw_shadow_compare",
                                      "Shadow answers compared with the primary's, by result.",
                                      ["endpoint", "backend", "result"], registry=r)
        self.shadow_in_flight = Gauge("shadowgw_shadow_in_flight", "Shadow calls in flight.",
                                      ["backend"], registry=r, multiprocess_mode="livesum")
        self._shared = multiprocess_directory()
        self._caches: List[LabelCache] = []

    def children(self, metric: Any) -> LabelCache:
        """
        A L{LabelCache} of C{metric} whose batched updates L{flush} hands over.
        """
        cache = LabelCache(metric)
        self._caches.append(cache)
        return cache

    def flush(self) -> None:
        """
        Hand every batched update of the request path to the metrics (the gateway does so
        every L{FLUSH_INTERVAL} seconds, at stop and before every exposition).
        """
        for cache in self._caches:
            cache.flush()

    def exposition(self) -> bytes:
        """
        The metrics in Prometheus text format (summed over all workers in multiprocess mode).
        """
        self.flush()
        if self._shared:
            combined = CollectorRegistry()
            MultiProcessCollector(combined, self._shared)
            return generate_latest(combined)
        return generate_latest(self.registry)
