# -*- test-case-name: tests.test_pipeline -*-
"""
One endpoint's request path: shadows dispatched, primaries called (in parallel under a
L{DeferredList}, or one after another with C{proxy.sequential}), merged, post-processed
(endpoint C{flatmap_filter}, C{proxy.static}) and rendered.

Shadow calls are handed to the L{ShadowDispatcher} and never join the primaries: the client's
answer depends on the primaries alone.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional, Sequence

from twisted.internet.defer import Deferred, DeferredList, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from shadowtwist.backend import (
    BackendClient, BackendResponse, BackendTimeout, IncomingRequest, build_request, describe_failure,
    is_cancellation,
)
from shadowtwist.config import BackendConfig, EndpointConfig, RouterOptions
from shadowtwist.manipulate import apply_flatmap, sequential_params
from shadowtwist.merge import Merged, Part, apply_static, merge_parts
from shadowtwist.metrics import GatewayMetrics
from shadowtwist.responses import GatewayResponse, backend_part, client_response

MERGE_DEADLINE_SHARE = 0.85
CONCURRENT_DEADLINE_SHARE = 0.75
# The answer of an endpoint whose backends are all shadows (KrakenD section 2.8).
NO_PIPELINE = GatewayResponse(500, (), b"")
# One logger for shadow dispatch: a class-level Logger makes a new one on every access, which
# the request path should not pay for.
_dispatch_log = Logger(namespace="shadowtwist.pipeline")


@dataclass
class PrimaryOutcome:
    """
    How the primaries did for one request, handed to the shadows for comparison and logging.

    @ivar latency: seconds from the start of the request to the merged result.
    @ivar response: what the client was sent.
    @ivar parts: each primary's part, in backend order (C{None} for one never called).
    @ivar answers: each primary's raw L{BackendResponse} (or C{None}), in backend order.
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
        several = len(self._primaries) > 1
        share = MERGE_DEADLINE_SHARE if several else 1.0
        if endpoint.concurrent_calls > 1:
            share = min(share, CONCURRENT_DEADLINE_SHARE)
        self._deadline = endpoint.timeout * share
        self._sequential = endpoint.sequential and several
        self._flatmap = endpoint.flatmap if several else None  # KrakenD ignores it for one backend
        metrics = metrics or GatewayMetrics()
        self._requests = metrics.children(metrics.requests)
        self._duration = metrics.children(metrics.request_duration)(endpoint.path)
        backend_calls = metrics.children(metrics.backend_requests)
        self._backend_calls = [{outcome: backend_calls(endpoint.path, b.label, outcome)
                                for outcome in ("ok", "error", "timeout")} for b in self._primaries]

    def handle(self, incoming: IncomingRequest, accept: Optional[str] = None,
               written: Optional[Deferred] = None) -> Deferred:
        """
        Answer one client request.

        @param accept: the client's C{Accept} header (for C{negotiate}).
        @param written: fires once the response has been written to the client (shadows that
            start C{after_response} wait for it, and every shadow learns the primary's outcome
            only then, so that their records and comparisons come after the client's bytes).
        @return: a Deferred firing with a L{GatewayResponse}; it does not fail. Cancelling it
            cancels the primary calls (the client went away) but never the shadows.
        """
        if not self._primaries:
            # KrakenD cannot build a pipeline of shadows alone: the route answers 500, empty,
            # without its headers, and the shadows are not called.
            return succeed(NO_PIPELINE)
        started = self._clock()
        watchers = dispatch_shadows(self.endpoint, self._shadows, incoming, written)
        call = _RequestState(self, started, accept, written, watchers)
        if self._sequential:
            d = self._call_in_sequence(incoming, call)
        elif len(self._primaries) == 1:
            d = self._call(0, self._primaries[0], incoming, call)
        else:
            d = DeferredList([self._call(index, backend, incoming, call)
                              for index, backend in enumerate(self._primaries)], consumeErrors=True)
        return d.addCallbacks(call.combine, call.broken)

    def _post_process(self, merged: Merged) -> Merged:
        """
        After the merge, in KrakenD's order: endpoint flatmap_filter, then the static stub.
        """
        if self._flatmap and merged.data is not None:
            merged = replace(merged, data=apply_flatmap(merged.data, self._flatmap))
        static = self.endpoint.static
        if static is not None:
            merged = apply_static(merged, static.strategy, static.data)
        return merged

    def _count(self, status: int, latency: float) -> None:
        self._requests(self.endpoint.path, self.endpoint.method, str(status)).inc()
        self._duration.observe(latency)

    def _call_in_sequence(self, incoming: IncomingRequest, call: "_RequestState") -> Deferred:
        """
        C{proxy.sequential}: one backend after another under one deadline; a later backend's
        C{{respN_field}} placeholders take values from earlier formatted answers. The chain
        stops at the first failure.
        """
        deadline = self._clock() + self._deadline

        def step(index: int) -> Deferred:
            if index == len(self._primaries):
                return succeed(None)
            backend = self._primaries[index]
            params = dict(incoming.params)
            params.update(sequential_params(backend.url_pattern, [p.data if p else None for p in call.parts]))
            remaining = max(deadline - self._clock(), 0.0)
            d = self._call(index, backend, replace(incoming, params=params), call, remaining)

            def next_step(part: Part) -> Any:
                if part.error is not None or part.data is None or not part.complete:
                    return None
                return step(index + 1)

            return d.addCallback(next_step)

        return step(0)

    def _call(self, index: int, backend: BackendConfig, incoming: IncomingRequest,
              call: "_RequestState", deadline: Optional[float] = None) -> Deferred:
        """
        Call one primary (C{concurrent_calls} copies of it) and record its part.

        @return: a Deferred firing with the L{Part} (never failing).
        """
        deadline = self._deadline if deadline is None else deadline
        if self.endpoint.concurrent_calls == 1:
            return self._send_one(index, backend, incoming, deadline, call)
        d = _first_complete([self._send_one(index, backend, incoming, deadline)
                             for _ in range(self.endpoint.concurrent_calls)])
        primary = _PrimaryCall(self, index, backend, call)
        return d.addCallback(primary.arrived).addErrback(primary.broken)

    def _send_one(self, index: int, backend: BackendConfig, incoming: IncomingRequest,
                  deadline: float, call: Optional["_RequestState"] = None) -> Deferred:
        """
        One call to one backend: a Deferred of (L{BackendResponse} or C{None}, L{Part}), or,
        given C{call}, of the L{Part}, recorded there as it arrives (in one step).
        """
        outgoing = build_request(self.endpoint, backend, incoming, self._choose)
        primary = _PrimaryCall(self, index, backend, call)
        d = self._client.send(outgoing, deadline)
        if call is None:
            return d.addCallbacks(primary.answered, primary.failed)
        return d.addBoth(primary.settle)


class _PrimaryCall:
    """
    One call to one primary backend, and what becomes of its answer: the backend's L{Part},
    counted, and recorded in the request's L{_RequestState} (when given one).
    """

    __slots__ = ("_pipeline", "_index", "_backend", "_call")

    def __init__(self, pipeline: EndpointPipeline, index: int, backend: BackendConfig,
                 call: Optional["_RequestState"]) -> None:
        self._pipeline = pipeline
        self._index = index
        self._backend = backend
        self._call = call

    def answered(self, response: BackendResponse) -> tuple:
        backend = self._backend
        part = backend_part(backend, response.status, response.headers, response.body, response.url)
        self._pipeline._backend_calls[self._index]["ok" if part.error is None else "error"].inc()
        return response, part

    def failed(self, failure: Failure) -> tuple:
        if is_cancellation(failure):  # another copy won, or the client went away
            return None, Part(data=None, error="context canceled")
        pipeline = self._pipeline
        pipeline._backend_calls[self._index]["timeout" if failure.check(BackendTimeout) else "error"].inc()
        reason = describe_failure(failure)
        pipeline._log.warn("backend {backend} of {endpoint} failed: {reason}",
                           backend=self._backend.label, endpoint=pipeline.endpoint.name, reason=reason)
        return None, Part(data=None, error=reason)

    def arrived(self, result: tuple) -> Part:
        response, part = result
        self._call.arrive(self._index, response, part)
        return part

    def broken(self, failure: Failure) -> Part:
        self._pipeline._log.failure("processing the answer of {backend} failed", failure,
                                    backend=self._backend.label)
        part = Part(data=None, error="internal error")
        self._call.arrive(self._index, None, part)
        return part

    def settle(self, result: Any) -> Part:
        """
        L{answered} or L{failed}, then L{arrived}: the whole of a single copy's answer.
        """
        try:
            return self.arrived(self.failed(result) if isinstance(result, Failure) else self.answered(result))
        except Exception:
            return self.broken(Failure())


class _RequestState:
    """
    One client request through a pipeline: what its primaries produced, as it arrives, and
    the response made of it.

    @ivar arrivals: (backend index, part) in arrival order, which is KrakenD's merge order.
    """

    def __init__(self, pipeline: EndpointPipeline, started: float, accept: Optional[str],
                 written: Optional[Deferred], watchers: list) -> None:
        count = len(pipeline._primaries)
        self.arrivals: list = []
        self.parts: list = [None] * count
        self.answers: list = [None] * count
        self._pipeline = pipeline
        self._accept = accept
        self._written = written
        self._watchers = watchers
        self._started = started

    def arrive(self, index: int, response: Optional[BackendResponse], part: Part) -> None:
        self.arrivals.append((index, part))
        self.parts[index] = part
        self.answers[index] = response

    def combine(self, _: Any) -> GatewayResponse:
        """
        The client's response, made of the parts that arrived; the shadows learn it.
        """
        pipeline = self._pipeline
        try:
            merged = pipeline._post_process(merge_parts([part for _, part in self.arrivals]))
            response = client_response(pipeline.endpoint, pipeline._router, merged, self._accept)
        except Exception:
            return self.broken(Failure())
        latency = pipeline._clock() - self._started
        pipeline._count(response.status, latency)
        watchers = self._watchers
        if watchers:
            outcome = PrimaryOutcome(latency, response, tuple(self.parts), tuple(self.answers))
            written = self._written
            if written is not None and not written.called:
                # the shadows' records and comparisons wait until the client has its bytes
                written.addCallback(_tell_later, watchers, outcome)
            else:
                tell(watchers, outcome)
        return response

    def broken(self, failure: Failure) -> GatewayResponse:
        pipeline = self._pipeline
        pipeline._log.failure("endpoint {endpoint} failed", failure, endpoint=pipeline.endpoint.name)
        response = client_response(pipeline.endpoint, pipeline._router, Merged(None, False, ("internal error",)))
        tell(self._watchers, PrimaryOutcome(pipeline._clock() - self._started, response, (), ()))
        return response


def _first_complete(copies: Sequence[Deferred]) -> Deferred:
    """
    C{concurrent_calls}: the first complete answer wins and the other copies are cancelled;
    when none is complete, the last result is used.

    @param copies: Deferreds of (response, part) that never fail.
    """
    winner: Deferred = Deferred(lambda _: [c.cancel() for c in copies])
    left = [len(copies)]

    def settled(result: tuple) -> None:
        left[0] -= 1
        if winner.called:
            return
        part = result[1]
        if part.error is None and part.data is not None and part.complete:
            winner.callback(result)
            for copy in copies:
                copy.cancel()
        elif left[0] == 0:
            winner.callback(result)

    for copy in copies:
        copy.addCallback(settled)
    return winner


def dispatch_shadows(endpoint: EndpointConfig, shadows: Any, incoming: IncomingRequest,
                     written: Optional[Deferred]) -> list:
    """
    Hand one request to every shadow backend of an endpoint.

    @param written: fires once the client's response is written (passed on to each shadow).
    @return: a watcher for each shadow copy that waits for the L{PrimaryOutcome} (copies
        skipped or dropped at once wait for nothing), to be told via L{tell}.
    """
    watchers = []
    for backend in endpoint.shadows:
        try:
            watcher = shadows.dispatch(endpoint, backend, incoming, written)
        except Exception:  # a shadow must never fail the primary
            _dispatch_log.failure("dispatching shadow {backend} failed", backend=backend.label)
            continue
        if watcher is not None:
            watchers.append(watcher)
    return watchers


def _tell_later(result: Any, watchers: Sequence[Any], outcome: PrimaryOutcome) -> Any:
    tell(watchers, outcome)
    return result


def tell(watchers: Sequence[Any], outcome: Optional[PrimaryOutcome]) -> None:
    """
    Tell every watcher the primary's outcome (each counts only the first it is told).
    """
    for watcher in watchers:
        watcher.primary_known(outcome)
