# -*- test-case-name: tests.test_shadow -*-
"""
Shadow dispatch: send a copy of the live request to a shadow backend, bounded and detached, then
compare its answer with the primary's and record how it did.

A shadow call is never part of the primaries' L{DeferredList}: it has its own deadline, its own
connection pool, in-flight caps (over them the copy is dropped and counted, never queued), and
its chain always ends in a callback that records the outcome, so a failing shadow is a log event
and never an "Unhandled error in Deferred". The client going away does not cancel it.

Per shadow backend (L{ShadowBackend}): sampling (random or sticky), method and body rules, the
start mode (C{parallel}, C{after_response}, C{on_primary_success}), header rewriting, the
comparison (status, headers, structural JSON diff with ignore rules and learned noise), the last
mismatches, and C{auto_pause}. Comparisons run after the client's bytes are written, one per
reactor turn from a bounded queue; when the queue is full they are skipped and counted.
"""

from __future__ import annotations

import random
import time
from collections import deque
from dataclasses import dataclass, replace
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from shadowtwist import encoding
from shadowtwist.backend import (
    BackendClient, BackendResponse, BackendTimeout, IncomingRequest, OutgoingRequest, build_request,
    describe_failure,
)
from shadowtwist.compare import Comparison, NoiseLearner, ResponseView, compare, compile_ignore
from shadowtwist.config import SAFE_METHODS, BackendConfig, EndpointConfig
from shadowtwist.logbatch import LogBatch
from shadowtwist.metrics import COMPARE_RESULTS, SHADOW_OUTCOMES, GatewayMetrics
from shadowtwist.responses import backend_part
from shadowtwist.sampling import Sampler, parse_sticky_key
from shadowtwist.shadowstats import AutoPause, RateLimiter, ShadowRegistry, ShadowStats, capture_entry

_log = Logger(namespace="shadowtwist.shadow")

# A shadow's answer is read up to this size; a longer one is cut and not compared.
MAX_SHADOW_BODY = 1024 * 1024
# Comparisons waiting for the reactor; past this they are skipped, never queued without bound.
COMPARE_SLICE = 0.002  # seconds of comparisons per reactor turn
MAX_PENDING_COMPARISONS = 256
MISMATCH_LOGS_PER_SECOND = 1.0
MISMATCH_LOG_BURST = 10
# The verdict of every byte-identical answer (one shared object: nothing differs in it).
MATCHED = Comparison("match")


@dataclass
class ShadowResult:
    """
    How one shadow call ended.

    @ivar outcome: C{ok}, C{error}, C{timeout}, C{dropped} or a C{skipped_*}/C{paused} reason.
    @ivar response: the shadow's answer when it answered.
    """

    outcome: str
    url: str = ""
    latency: Optional[float] = None
    response: Optional[BackendResponse] = None
    error: Optional[str] = None


class InFlight:
    """
    Counts shadow calls in flight, per shadow backend and in total, against their caps.
    """

    def __init__(self, total_cap: int) -> None:
        self.total_cap = total_cap
        self.total = 0
        self.per_backend: dict = {}

    def acquire(self, key: Any, cap: int) -> bool:
        """
        Take a slot for C{key} if both caps allow it.

        @return: whether the call may go ahead.
        """
        current = self.per_backend.get(key, 0)
        if current >= cap or self.total >= self.total_cap:
            return False
        self.per_backend[key] = current + 1
        self.total += 1
        return True

    def release(self, key: Any) -> None:
        """
        Give back the slot taken by L{acquire}.
        """
        self.per_backend[key] -= 1
        self.total -= 1


class ShadowBackend:
    """
    Everything kept for one shadow backend of one endpoint.
    """

    def __init__(self, endpoint: EndpointConfig, backend: BackendConfig, rng: Any) -> None:
        options = backend.shadow_options
        self.endpoint = endpoint
        self.backend = backend
        self.options = options
        rules = options.headers
        self.dropped_headers = frozenset(n.lower() for n in (*rules.remove, *rules.set))
        self.added_headers = tuple(rules.set.items())
        self.key = (endpoint.name, backend.index)
        sticky = parse_sticky_key(options.sticky_key) if options.sticky_key else None
        self.sampler = Sampler(options.percentage, sticky, rng)
        self.sticky = sticky
        self.ignore = compile_ignore(options.compare.ignore)
        self.noise = NoiseLearner()
        pause = options.auto_pause
        self.auto_pause = AutoPause(pause.error_rate, pause.window, pause.min_requests) if pause else None
        self.meters: Any = None  # its metric children (the dispatcher's _Meters)
        self.stats = ShadowStats(capture=options.capture, redact_headers=options.headers.remove,
                                 auto_pause=self.auto_pause)
        self.log_limit = RateLimiter(MISMATCH_LOGS_PER_SECOND, MISMATCH_LOG_BURST)
        self.compares = options.compare.status or options.compare.body or bool(options.compare.headers)
        self.compared_index = _compared_index(endpoint, options.compare.against)
        # When the shadow shapes its answer exactly as the compared primary does, byte-identical
        # answers are a match without decoding either (the common case of a healthy v2).
        self.identical_bytes_match = self.compared_index is not None and _same_shaping(
            endpoint.primaries[self.compared_index], backend)

    def skip_reason(self, incoming: IncomingRequest, now: float) -> Optional[str]:
        """
        Why this request is not shadowed (an outcome), or C{None} if it is.
        """
        if self.auto_pause is not None and self.auto_pause.paused(now):
            return "paused"
        if incoming.method not in self.options.methods:
            return "skipped_method"
        key_value = None
        if self.sticky is not None:
            key_value = self.sticky.extract(incoming.headers, _cookies(incoming), _query(incoming),
                                            incoming.client_ip)
        if not self.sampler.decide(key_value):
            return "skipped_sampling"
        if len(incoming.body) > self.options.max_body_bytes and self.options.on_body_overflow == "skip":
            return "skipped_body"
        return None


class _Meters:
    """
    One shadow backend's metric children, looked up once.
    """

    def __init__(self, dispatcher: "ShadowDispatcher", endpoint: str, backend: str) -> None:
        self.endpoint = endpoint
        self.backend = backend
        self.in_flight = dispatcher.in_flight_gauge(backend)
        self.requests = {outcome: dispatcher.requests_counter(endpoint, backend, outcome)
                         for outcome in SHADOW_OUTCOMES}
        self.duration = dispatcher.duration_histogram(endpoint, backend)
        self.delta = dispatcher.delta_histogram(endpoint, backend)
        self.compares = {result: dispatcher.compare_counter(endpoint, backend, result)
                         for result in COMPARE_RESULTS}


class ShadowDispatcher:
    """
    Sends shadow copies, compares their answers with the primary's, and records the results.

    @ivar registry: per endpoint and shadow backend statistics (what C{/__shadow} shows).
    """

    def __init__(self, client: BackendClient, reactor: Any, metrics: Optional[GatewayMetrics] = None,
                 clock: Callable[[], float] = time.monotonic, max_in_flight: int = 1000,
                 rng: Any = None) -> None:
        """
        @param client: a client over the shadows' own connection pool.
        @param reactor: for scheduling comparisons after the client's response is written.
        @param metrics: where to count; a private set when C{None}.
        @param clock: a monotonic clock for latencies and auto-pause windows.
        @param max_in_flight: the cap on shadow calls in flight across all shadow backends.
        @param rng: randomness for sampling and noise learning (C{random.Random}-like).
        """
        self._client = client
        self._reactor = reactor
        self.metrics = metrics = metrics or GatewayMetrics()
        self.in_flight_gauge = metrics.children(metrics.shadow_in_flight)
        self.requests_counter = metrics.children(metrics.shadow_requests)
        self.duration_histogram = metrics.children(metrics.shadow_duration)
        self.delta_histogram = metrics.children(metrics.shadow_latency_delta)
        self.compare_counter = metrics.children(metrics.shadow_compare)
        self._clock = clock
        self._rng = rng or random.Random()
        self.in_flight = InFlight(max_in_flight)
        self.registry = ShadowRegistry()
        self._shadows: dict = {}
        self._comparisons: deque = deque()
        self._comparing = False
        self._sending: set = set()
        self.outcome_log = LogBatch(_log, reactor, "shadow_lines", render=_outcome_line)

    def shadow_for(self, endpoint: EndpointConfig, backend: BackendConfig) -> ShadowBackend:
        """
        The state kept for a shadow backend, created on first use.
        """
        key = (endpoint.name, backend.index)
        state = self._shadows.get(key)
        if state is None:
            state = self._shadows[key] = ShadowBackend(endpoint, backend, self._rng)
            self.registry.register(endpoint.name, backend.label, state.stats)
            state.meters = _Meters(self, endpoint.name, backend.label)
        return state

    def dispatch(self, endpoint: EndpointConfig, backend: BackendConfig, incoming: IncomingRequest,
                 written: Optional[Deferred] = None) -> Optional["_ShadowCall"]:
        """
        Shadow one request (or count why not); compare and record once the primary is done.
        The request path never waits on a shadow.

        @param written: fires once the client's response is written (for C{after_response}).
        @return: the call, to be told the L{shadowtwist.pipeline.PrimaryOutcome} through its
            C{primary_known}, or C{None} for a copy skipped or dropped here (already recorded:
            it needs no outcome).
        """
        shadow = self.shadow_for(endpoint, backend)
        call = _ShadowCall(self, shadow, incoming)
        reason = shadow.skip_reason(incoming, self._clock())
        if reason is not None:
            call.finish(ShadowResult(reason))
            return None
        if not self.in_flight.acquire(shadow.key, shadow.options.max_in_flight):
            call.finish(ShadowResult("dropped", error="too many shadow calls in flight"))
            return None
        call.holding_slot = True
        shadow.meters.in_flight.inc()
        start = shadow.options.start
        if start == "parallel":
            call.send()
        elif start == "after_response" and written is not None:
            written.addCallback(lambda _: call.send())
        elif start == "after_response":
            call.send_when_primary_known = True
        return call

    def release(self, shadow: ShadowBackend) -> None:
        """
        Give back a shadow's in-flight slot.
        """
        self.in_flight.release(shadow.key)
        shadow.meters.in_flight.dec()

    def enqueue_comparison(self, work: Callable[[], None]) -> bool:
        """
        Queue a comparison to run after the current reactor turn (so after the client's bytes).

        @return: C{False} when the queue is full (the comparison is skipped).
        """
        if len(self._comparisons) >= MAX_PENDING_COMPARISONS:
            return False
        self._comparisons.append(work)
        if not self._comparing:
            self._comparing = True
            self._reactor.callLater(0, self._compare_one)
        return True

    def _compare_one(self) -> None:
        # Queued comparisons run for at most COMPARE_SLICE seconds per reactor turn, so a burst
        # of large diffs cannot hold up the primaries' I/O, nor a timer be spent on each one.
        deadline = self._clock() + COMPARE_SLICE
        while self._comparisons:
            work = self._comparisons.popleft()
            try:
                work()
            except Exception:
                _log.failure("comparing a shadow answer failed")
            if self._clock() >= deadline:
                break
        if self._comparisons:
            self._reactor.callLater(0, self._compare_one)
        else:
            self._comparing = False

    def learn_noise(self, shadow: ShadowBackend, incoming: IncomingRequest, backend: BackendConfig,
                    first: ResponseView) -> None:
        """
        Send the same request to the compared primary again (over the shadow pool) and learn
        which fields differ between its two answers. These extra calls are bounded like the
        shadow's own (its max_in_flight, and the global cap); over them, nothing is learned.
        """
        key = shadow.key + ("noise",)
        if not self.in_flight.acquire(key, shadow.options.max_in_flight):
            return
        outgoing = build_request(shadow.endpoint, backend, incoming)
        d = self._client.send(outgoing, shadow.endpoint.timeout, MAX_SHADOW_BODY)
        self._sending.add(d)

        def done(result: Any) -> None:
            self._sending.discard(d)
            self.in_flight.release(key)

        def learned(response: BackendResponse) -> None:
            if not response.truncated:
                shadow.noise.learn(first, _answer_view(backend, response), shadow.ignore)

        d.addCallbacks(learned, lambda failure: None)
        d.addBoth(done)

    def send(self, shadow: ShadowBackend, incoming: IncomingRequest,
             finished: Callable[[ShadowResult], None]) -> None:
        """
        Send one shadow copy now; C{finished} gets its L{ShadowResult} (at once when the
        shadow's origin is held down after a failed connection).
        """
        options = shadow.options
        if len(incoming.body) > options.max_body_bytes:  # on_body_overflow: headers_only
            incoming = replace(incoming, body=b"")
        outgoing = _rewrite_headers(build_request(shadow.endpoint, shadow.backend, incoming), shadow)
        held_down = self._client.held_down(outgoing.url)
        if held_down is not None:
            # a dead shadow: the error is known without a call, and costs less than a live one
            finished(ShadowResult("error", outgoing.url, 0.0, error=held_down))
            return
        d = self._client.send(outgoing, shadow.backend.shadow_timeout or shadow.endpoint.timeout,
                              MAX_SHADOW_BODY)
        self._sending.add(d)
        d.addBoth(self._settled, d, outgoing.url, self._clock(), finished)

    def _settled(self, result: Any, d: Deferred, url: str, started: float,
                 finished: Callable[[ShadowResult], None]) -> None:
        self._sending.discard(d)
        if isinstance(result, Failure):
            outcome = "timeout" if result.check(BackendTimeout) else "error"
            finished(ShadowResult(outcome, url, self._clock() - started, error=describe_failure(result)))
        else:
            finished(ShadowResult("ok", url, self._clock() - started, result))

    def chance(self, share: float) -> bool:
        """
        A random draw that is true with probability C{share}.
        """
        return self._rng.random() < share

    def stop(self) -> None:
        """
        Cancel the shadow calls still in flight (the gateway is stopping).
        """
        for pending in list(self._sending):
            pending.cancel()
        self.outcome_log.flush()

    def now(self) -> float:
        """
        The dispatcher's monotonic time.
        """
        return self._clock()


class _ShadowCall:
    """
    One shadowed request: waits for both the shadow's and the primary's outcome, then records.
    """

    def __init__(self, dispatcher: ShadowDispatcher, shadow: ShadowBackend, incoming: IncomingRequest) -> None:
        self.dispatcher = dispatcher
        self.shadow = shadow
        self.incoming = incoming
        self.primary: Any = None
        self.result: Optional[ShadowResult] = None
        self.holding_slot = False
        self.sent = False
        self.send_when_primary_known = False
        self.finished = False

    def send(self) -> None:
        if self.sent:
            return
        self.sent = True
        try:
            incoming = self.incoming
            self.incoming = _kept_for_comparison(self.shadow.options, incoming)
            self.dispatcher.send(self.shadow, incoming, self.shadow_finished)
        except Exception:
            self._bug(Failure())

    def primary_known(self, outcome: Any) -> None:
        """
        The primary's outcome (a L{shadowtwist.pipeline.PrimaryOutcome}); only the first
        counts.
        """
        if self.primary is not None:
            return
        self.primary = outcome
        if self.send_when_primary_known:
            self.send()
        elif self.shadow.options.start == "on_primary_success" and not self.sent:
            if _primary_succeeded(self.shadow, outcome):
                self.send()
            else:
                self.shadow_finished(ShadowResult("skipped_primary"))
                return
        self._settle()

    def shadow_finished(self, result: ShadowResult) -> None:
        try:
            self.result = result
            if self.holding_slot:
                self.holding_slot = False
                self.dispatcher.release(self.shadow)
            self._settle()
        except Exception:
            self._bug(Failure())

    def _settle(self) -> None:
        if self.result is None or self.primary is None or self.finished:
            return
        self.finish(self.result)

    def finish(self, result: ShadowResult) -> None:
        """
        Record the outcome (and start the comparison) exactly once.
        """
        if self.finished:
            return
        self.finished = True
        try:
            self._record(result)
        except Exception:
            _log.failure("recording a shadow outcome failed")

    def _bug(self, failure: Failure) -> None:
        _log.failure("shadow call failed unexpectedly", failure)
        self.shadow_finished(ShadowResult("error", error="internal error"))

    def _record(self, result: ShadowResult) -> None:
        shadow, dispatcher = self.shadow, self.dispatcher
        meters = shadow.meters
        outcome, latency = result.outcome, result.latency
        shadow.stats.record_outcome(outcome)
        meters.requests[outcome].inc()
        primary = self.primary
        if primary is None:  # skipped or dropped before anything was sent
            return
        primary_latency = primary.latency
        shadow.stats.record_latencies(primary_latency, latency)
        if latency is not None:
            meters.duration.observe(latency)
            meters.delta.observe(latency - primary_latency)
        response = result.response
        if shadow.auto_pause is not None:
            healthy = outcome == "ok" and response is not None and response.status < 500
            shadow.auto_pause.record(healthy, dispatcher.now())
        status = response.status if response is not None else None
        size = len(response.body) if response is not None else None
        # its line and record are made at flush (see LogBatch)
        dispatcher.outcome_log.add((outcome, meters, result.url, status, size, latency, result.error,
                                    primary.response.status, primary_latency))
        if response is not None and shadow.compares:
            if shadow.identical_bytes_match and _identical(shadow, primary, response):
                # the common case of a healthy shadow: a match known without a diff, counted
                # now rather than queued for a later reactor turn
                self._record_match()
            elif not dispatcher.enqueue_comparison(lambda: self._compare(result)):
                self._count_compare("skipped")

    def _record_match(self) -> None:
        self.shadow.stats.record_comparison(MATCHED)
        self._count_compare("match")

    def _count_compare(self, outcome: str) -> None:
        if outcome == "skipped":
            self.shadow.stats.record_compare_skipped()
        self.shadow.meters.compares[outcome].inc()

    def _compare(self, result: ShadowResult) -> None:
        shadow = self.shadow
        primary_view, compared_backend = _primary_view(shadow, self.primary)
        if primary_view is None or result.response.truncated:
            self._count_compare("skipped")
            return
        shadow_view = _answer_view(shadow.backend, result.response)
        options = shadow.options.compare
        comparison = compare(primary_view, shadow_view, status=options.status, body=options.body,
                             headers=options.headers, ignore=shadow.ignore, noise=shadow.noise)
        capture = None
        if comparison.result == "mismatch" and shadow.options.capture:
            incoming = self.incoming
            capture = capture_entry(incoming.method, incoming.path, _query(incoming), incoming.headers,
                                    primary_view, shadow_view, comparison, time.time())
        shadow.stats.record_comparison(comparison, capture)
        self._count_compare(comparison.result)
        if comparison.result == "mismatch":
            self._log_mismatch(comparison)
        if (options.learn_noise and compared_backend is not None and self.incoming.method in SAFE_METHODS
                and self.dispatcher.chance(options.learn_noise)):
            self.dispatcher.learn_noise(shadow, self.incoming, compared_backend, primary_view)

    def _log_mismatch(self, comparison: Any) -> None:
        shadow = self.shadow
        if not shadow.log_limit.allow(self.dispatcher.now()):
            return
        paths = [d.path or "(body)" for d in comparison.differences[:20]]
        if comparison.status_differs:
            paths.insert(0, "status")
        paths += [f"header:{name}" for name in comparison.header_differences]
        suppressed = shadow.log_limit.take_suppressed()
        # the outcome lines waiting for their batch go first, so a call's outcome line comes
        # before its mismatch (mismatch events are rate-limited, so these flushes are few)
        self.dispatcher.outcome_log.flush()
        _log.warn("shadow mismatch {endpoint} -> {shadow_backend}: {paths}{suppressed_text}",
                  endpoint=shadow.endpoint.name, shadow_backend=shadow.backend.label,
                  paths=", ".join(paths), differing_paths=paths, suppressed=suppressed,
                  suppressed_text=f" ({suppressed} earlier mismatch events suppressed)" if suppressed else "")


def _kept_for_comparison(options: Any, incoming: IncomingRequest) -> Optional[IncomingRequest]:
    """
    What a shadow call keeps of its client request once the copy is sent: the whole request
    when it may learn noise (it sends the request again), the parts a mismatch capture shows
    when it captures, else nothing. Its body and per-request caches go, so a call waiting for
    its shadow holds less.
    """
    if options.compare.learn_noise:
        return incoming
    if options.capture:
        return IncomingRequest(incoming.method, incoming.path, incoming.query, incoming.headers)
    return None


def _outcome_line(entry: tuple) -> tuple:
    """
    A shadow call's outcome line and its record of fields, from what L{_ShadowCall._record}
    kept.
    """
    outcome, meters, url, status, size, latency, error, primary_status, primary_latency = entry
    endpoint = meters.endpoint
    line = (f"shadow {outcome} {endpoint} -> {url}: status {status}, {size} bytes in "
            f"{_ms(latency)}ms (primary {primary_status} in {_ms(primary_latency)}ms)"
            + (f", error: {error}" if error else ""))
    return line, {"endpoint": endpoint, "shadow_backend": meters.backend, "shadow_url": url,
                  "outcome": outcome, "shadow_status": status, "shadow_latency": latency,
                  "shadow_size": size, "shadow_error": error, "primary_status": primary_status,
                  "primary_latency": primary_latency}


_SHAPING = ("encoding", "is_collection", "target", "allow", "deny", "mapping", "group", "flatmap")


def _same_shaping(primary: BackendConfig, shadow: BackendConfig) -> bool:
    return all(getattr(primary, key) == getattr(shadow, key) for key in _SHAPING)


def _compared_index(endpoint: EndpointConfig, against: Optional[int]) -> Optional[int]:
    """
    The index of the primary a shadow is compared with, or C{None} for the merged response.
    """
    primaries = endpoint.primaries
    if against is None and len(primaries) == 1:
        return 0
    if against is not None and against < len(primaries):
        return against
    return None


def _identical(shadow: ShadowBackend, outcome: Any, answer: BackendResponse) -> bool:
    """
    Whether the shadow's answer is byte for byte the compared primary's, with the same status
    and the same values of every compared header.
    """
    index = shadow.compared_index
    primary = outcome.answers[index] if index < len(outcome.answers) else None
    if primary is None or primary.truncated or answer.truncated:
        return False
    if primary.status != answer.status or primary.body != answer.body:
        return False
    for name in shadow.options.compare.headers:
        if _header(primary.headers, name) != _header(answer.headers, name):
            return False
    return True


def _header(headers: Any, name: str) -> list:
    lowered = name.lower()
    return [v for key, values in headers.items() if key.lower() == lowered for v in values]


def _primary_succeeded(shadow: ShadowBackend, outcome: Any) -> bool:
    against = shadow.options.compare.against
    if against is not None and against < len(outcome.parts):
        part = outcome.parts[against]
        return part is not None and part.error is None and part.data is not None
    return 200 <= outcome.response.status < 300


def _primary_view(shadow: ShadowBackend, outcome: Any) -> tuple:
    """
    The primary answer the shadow is compared with: the configured backend (C{against}), the
    only primary, or else the merged response.

    @return: (L{ResponseView} or C{None}, the compared primary backend or C{None}).
    """
    primaries = shadow.endpoint.primaries
    index = shadow.compared_index
    if index is not None:
        answer = outcome.answers[index] if index < len(outcome.answers) else None
        if answer is None:
            return None, None
        return _answer_view(primaries[index], answer), primaries[index]
    response = outcome.response
    try:
        body = encoding.loads(response.body) if response.body else None
    except encoding.DecodeError:
        body = None
    headers: dict = {}
    for name, value in response.headers:
        headers.setdefault(name, []).append(value)
    return ResponseView(status=response.status, headers=headers, body=body, raw=response.body), None


def _answer_view(backend: BackendConfig, response: BackendResponse) -> ResponseView:
    """
    A backend answer as compared: decoded and shaped by the backend's own manipulation.
    """
    if backend.encoding == "no-op":  # compared as raw bytes
        return ResponseView(status=response.status, headers=response.headers, body=None, raw=response.body)
    part = backend_part(backend, response.status, response.headers, response.body, response.url)
    return ResponseView(status=response.status, headers=response.headers,
                        body=part.data if part.error is None else None, raw=response.body)


def _rewrite_headers(outgoing: OutgoingRequest, shadow: ShadowBackend) -> OutgoingRequest:
    """
    The shadow's header rules: its C{remove} and C{set} names dropped, then its C{set} added.
    """
    dropped = shadow.dropped_headers
    if not dropped:
        return outgoing
    headers = tuple((k, v) for k, v in outgoing.headers if k.lower() not in dropped)
    return OutgoingRequest(outgoing.method, outgoing.url, headers + shadow.added_headers, outgoing.body)


def _cookies(incoming: IncomingRequest) -> dict:
    cookies: dict = {}
    for header in incoming.header_values("Cookie"):
        for pair in header.split(";"):
            name, _, value = pair.strip().partition("=")
            if name:
                cookies.setdefault(name, value)
    return cookies


def _query(incoming: IncomingRequest) -> dict:
    query: dict = {}
    for name, value in incoming.query:
        query.setdefault(name, []).append(value)
    return query


def _ms(seconds: Optional[float]) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"
