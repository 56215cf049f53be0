# -*- test-case-name: tests.test_admin -*-
"""
The admin listener: C{/metrics} (Prometheus) and C{/__shadow} (what each shadow is doing).

It runs on its own listener (C{--admin STRPORT} or C{extra_config.shadowgw.admin}), never on the
gateway's port, so that clients of the API never see it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from shadowtwist.metrics import CONTENT_TYPE, GatewayMetrics
from shadowtwist.shadowstats import ShadowRegistry


class _MetricsPage(Resource):
    isLeaf = True

    def __init__(self, metrics: GatewayMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE.encode("ascii"))
        return self._metrics.exposition()


class _ShadowPage(Resource):
    isLeaf = True

    def __init__(self, registry: ShadowRegistry, clock: Callable[[], float]) -> None:
        super().__init__()
        self._registry = registry
        self._clock = clock

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"application/json; charset=utf-8")
        snapshot = self._registry.snapshot(self._clock())
        return json.dumps(snapshot, indent=2, sort_keys=True, default=str).encode("utf-8")


def admin_site(metrics: GatewayMetrics, registry: ShadowRegistry, clock: Callable[[], float],
               reactor: Any = None) -> Site:
    """
    The admin Site: C{GET /metrics} and C{GET /__shadow}.

    @param clock: the monotonic clock of the shadow dispatcher (for auto-pause states).
    """
    root = Resource()
    root.putChild(b"metrics", _MetricsPage(metrics))
    root.putChild(b"__shadow", _ShadowPage(registry, clock))
    site = Site(root, reactor=reactor)
    site.displayTracebacks = False
    return site
