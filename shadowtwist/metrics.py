# -*- test-case-name: tests.test_metrics -*-
"""
Prometheus metrics of the gateway and its shadows.

Every label is bounded: the endpoint is its template (C{GET /user/{id}}), never the raw path,
and backends are named by their configured host and URL pattern. Each gateway has its own
L{CollectorRegistry}, so tests and several gateways in one process never share counters.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

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


class LabelCache:
    """
    The children of one metric, looked up once per set of label values: prometheus_client's
    C{labels()} takes a lock and checks its arguments on every call, which showed in the hot
    path's profile. Label values here come from the config (endpoints, backends) and from
    statuses, so the cache stays small; past C{limit} entries lookups go uncached.
    """

    def __init__(self, metric: Any, limit: int = 1024) -> None:
        self._metric = metric
        self._limit = limit
        self._children: Dict[Tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        """
        The child for these label values.
        """
        child = self._children.get(values)
        if child is None:
            child = self._metric.labels(*values)
            if len(self._children) < self._limit:
                self._children[values] = child
        return child


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

    def exposition(self) -> bytes:
        """
        The metrics in Prometheus text format (summed over all workers in multiprocess mode).
        """
        if self._shared:
            combined = CollectorRegistry()
            MultiProcessCollector(combined, self._shared)
            return generate_latest(combined)
        return generate_latest(self.registry)
