# -*- test-case-name: tests.test_pipeline -*-
"""
One endpoint's request path: shadows dispatched, primaries fanned out in parallel, combined with
a L{DeferredList}, merged and rendered.

Shadow calls are handed to the L{ShadowDispatcher} and never join the L{DeferredList}: the
client's answer depends on the primaries alone.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from twisted.internet.defer import Deferred, DeferredList
from twisted.logger import Logger
from twisted.python.failure import Failure

from shadowtwist.backend import (
    BackendClient, BackendResponse, BackendTimeout, IncomingRequest, build_request, describe_failure,
)
from shadowtwist.config import EndpointConfig, RouterOptions
from shadowtwist.merge import Merged, Part, merge_parts
from shadowtwist.metrics import GatewayMetrics
from shadowtwist.responses import GatewayResponse, backend_part, client_response

MERGE_DEADLINE_SHARE = 0.85


@dataclass(frozen=True)
class PrimaryOutcome:
    """
    How the primaries did for one request, handed to the shadows for comparison and logging.

    @ivar latency: seconds from the start of the request to the merged result.
    @ivar response: what the client was sent.
    @ivar parts: each primary's part, in backend order.
    @ivar answers: each primary's raw L{BackendResponse} (or C{None} if it failed), in backend order.
    """

    latency: float
    response: GatewayResponse
    parts: tuple
    answers: tuple


class EndpointPipeline:
    """
    Serves one endpoint object (one path template and one method).
    """

    _log = Logger()

    def __init__(self, endpoint: EndpointConfig, router: RouterOptions, client: BackendClient,
                 shadows: Any, clock: Callable[[], float] = time.monotonic,
                 choose: Callable[[Sequence[str]], str] = random.choice,
                 metrics: Optional[GatewayMetrics] = None) -> None:
        """
        @param client: sends the primary calls.
        @param shadows: a L{shadowtwist.shadow.ShadowDispatcher} (or anything with its
            C{dispatch} method).
        @param clock: a monotonic clock, for latencies.
        @param choose: picks a host from a backend's C{host} list.
        @param metrics: where requests and backend calls are counted.
        """
        self.endpoint = endpoint
        self._router = router
        self._client = client
        self._shadows = shadows
        self._clock = clock
        self._choose = choose
        self._primaries = endpoint.primaries
        share = 1.0 if len(self._primaries) == 1 else MERGE_DEADLINE_SHARE
        self._deadline = endpoint.timeout * share
        metrics = metrics or GatewayMetrics()
        self._requests = metrics.requests
        self._duration = metrics.request_duration.labels(endpoint.path)
        self._backend_calls = [{outcome: metrics.backend_requests.labels(endpoint.path, b.label, outcome)
                                for outcome in ("ok", "error", "timeout")} for b in self._primaries]

    def handle(self, incoming: IncomingRequest, accept: Optional[str] = None,
               written: Optional[Deferred] = None) -> Deferred:
        """
        Answer one client request.

        @param accept: the client's C{Accept} header (for C{negotiate}).
        @param written: fires once the response has been written to the client (shadows that
            start C{after_response} wait for it).
        @return: a Deferred firing with a L{GatewayResponse}; it does not fail. Cancelling it
            cancels the primary calls (the client went away) but never the shadows.
        """
        started = self._clock()
        watchers = [Deferred() for _ in self.endpoint.shadows]
        written_watchers = [Deferred() for _ in self.endpoint.shadows]
        if written is not None and written_watchers:
            written.addBoth(lambda _: _tell(written_watchers, None))
        for backend, primary_done, shadow_written in zip(self.endpoint.shadows, watchers, written_watchers):
            try:
                self._shadows.dispatch(self.endpoint, backend, incoming, primary_done,
                                       shadow_written if written is not None else None)
            except Exception:  # a shadow must never fail the primary
                self._log.failure("dispatching shadow {backend} failed", backend=backend.label)
        arrivals: list = []
        answers: list = [None] * len(self._primaries)
        calls = [self._call(index, backend, incoming, arrivals, answers)
                 for index, backend in enumerate(self._primaries)]

        def combine(_: Any) -> GatewayResponse:
            merged = merge_parts([part for _, part in arrivals])
            response = client_response(self.endpoint, self._router, merged, accept)
            parts = tuple(part for _, part in sorted(arrivals, key=lambda pair: pair[0]))
            latency = self._clock() - started
            self._count(response.status, latency)
            _tell(watchers, PrimaryOutcome(latency, response, parts, tuple(answers)))
            return response

        def broken(failure: Failure) -> GatewayResponse:
            self._log.failure("endpoint {endpoint} failed", failure, endpoint=self.endpoint.name)
            response = client_response(self.endpoint, self._router, Merged(None, False, ("internal error",)))
            _tell(watchers, PrimaryOutcome(self._clock() - started, response, (), ()))
            return response

        d = DeferredList(calls, consumeErrors=True)
        d.addCallback(combine)
        d.addErrback(broken)
        return d

    def _count(self, status: int, latency: float) -> None:
        self._requests.labels(self.endpoint.path, self.endpoint.method, str(status)).inc()
        self._duration.observe(latency)

    def _call(self, index: int, backend: Any, incoming: IncomingRequest, arrivals: list,
              answers: list) -> Deferred:
        outgoing = build_request(self.endpoint, backend, incoming, self._choose)
        d = self._client.send(outgoing, self._deadline)

        counters = self._backend_calls[index]

        def answered(response: BackendResponse) -> Part:
            answers[index] = response
            part = backend_part(backend, response.status, response.headers, response.body, response.url)
            counters["ok" if part.error is None else "error"].inc()
            return part

        def failed(failure: Failure) -> Part:
            counters["timeout" if failure.check(BackendTimeout) else "error"].inc()
            reason = describe_failure(failure)
            self._log.warn("backend {backend} of {endpoint} failed: {reason}",
                           backend=backend.label, endpoint=self.endpoint.name, reason=reason)
            return Part(data=None, error=reason)

        def arrived(part: Part) -> Part:
            arrivals.append((index, part))
            return part

        def broken(failure: Failure) -> Part:
            self._log.failure("processing the answer of {backend} failed", failure, backend=backend.label)
            return Part(data=None, error="internal error")

        d.addCallbacks(answered, failed)
        d.addErrback(broken)
        d.addCallback(arrived)
        return d


def _tell(watchers: Sequence[Deferred], outcome: Optional[PrimaryOutcome]) -> None:
    for watcher in watchers:
        if not watcher.called:
            watcher.callback(outcome)
