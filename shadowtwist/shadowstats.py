# -*- test-case-name: tests.test_shadowstats -*-
"""
What the gateway remembers about its shadows, as served by C{GET /__shadow} on the admin listener.

For each (endpoint template, shadow backend) pair a L{ShadowStats} keeps outcome and comparison
counts, recent latencies, the fields that differ most often and the last mismatches. It also holds
the building blocks the dispatcher uses directly: L{AutoPause} (a circuit breaker for a failing
shadow) and L{RateLimiter} (for mismatch log events).

Pure code: no Twisted, no I/O, no clock. Time is always passed in as C{now} in seconds. Nothing here
is thread-safe; call it from one thread (the reactor's), handing results back from any diff
thread first. Every structure is bounded.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Callable, Iterable, Sequence

from shadowtwist.compare import MISMATCH, Comparison, ResponseView

__all__ = [
    "ALWAYS_REDACTED",
    "COMPARE_RESULTS",
    "OUTCOMES",
    "REDACTED",
    "AutoPause",
    "CaptureBuffer",
    "FieldCounter",
    "LatencyWindow",
    "RateLimiter",
    "ShadowRegistry",
    "ShadowStats",
    "capture_entry",
    "plain",
]

OUTCOMES = (
    "ok",
    "error",
    "timeout",
    "dropped",
    "skipped_sampling",
    "skipped_method",
    "skipped_body",
    "skipped_primary",
    "paused",
)
"""What happened to one shadow copy (the C{outcome} label of the metrics)."""

COMPARE_RESULTS = ("match", "mismatch", "noise", "skipped")
"""What the comparison of one shadowed request gave (the C{result} label of the metrics)."""

REDACTED = "[redacted]"

ALWAYS_REDACTED = ("authorization", "proxy-authorization", "cookie", "set-cookie")
"""Headers whose values never appear in a capture."""

STATUS_FIELD = "status"
"""The pseudo-path under which differing statuses are counted among the fields."""

HEADER_FIELD_PREFIX = "header:"
"""Prefix of the pseudo-paths under which differing compared headers are counted."""

MAX_PLAIN_DEPTH = 100
"""L{plain} replaces values nested deeper than this with a marker."""

_INTEGER = re.compile(r"^-?[0-9]+$")


# JSON-ready values


def _number_from_literal(text: str) -> object:
    """
    Turn a JSON number literal into a plain number without losing what it says.

    @param text: the literal, e.g. C{"12"}, C{"0.1"}, C{"1e400"}.
    @return: an C{int}; a C{float} when it represents the literal exactly; else the literal
        itself as a string (too big, too precise, or not a number).
    """
    if _INTEGER.match(text):
        try:
            return int(text)
        except ValueError:  # more digits than int() may parse
            return text
    try:
        number = float(text)
        if math.isfinite(number) and Decimal(repr(number)) == Decimal(text):
            return number
    except (ValueError, InvalidOperation):
        pass
    return text


def _plain_leaf(value: object) -> object:
    """
    Convert a value that is not a container.

    @param value: a scalar of any class.
    @return: C{None}, C{bool}, C{int}, C{float} or C{str}.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    literal = getattr(value, "text", None)
    if isinstance(literal, str):
        return _number_from_literal(literal)
    if isinstance(value, Decimal):
        return _number_from_literal(str(value))
    return str(value)


def plain(value: object, _depth: int = 0) -> object:
    """
    Make a value safe for C{json.dumps}: only dicts with string keys, lists, strings, ints,
    floats, booleans and C{None}.

    Number objects that keep their literal in C{.text} become C{int} or C{float} when that is
    exact, else the literal string; bytes are decoded as UTF-8 with replacement; other objects
    become C{str()}.

    @param value: any value.
    @return: the converted copy; values nested deeper than L{MAX_PLAIN_DEPTH} become
        C{"[too deep]"}.
    """
    if _depth > MAX_PLAIN_DEPTH:
        return "[too deep]"
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            result[str(key)] = plain(item, _depth + 1)
        return result
    if isinstance(value, (list, tuple, deque)):
        items = []
        for item in value:
            items.append(plain(item, _depth + 1))
        return items
    return _plain_leaf(value)


# Latencies


class LatencyWindow:
    """
    The most recent latencies, in a ring of fixed size, for percentiles.

    @ivar capacity: how many latencies are kept.
    @ivar count: how many were ever added.
    """

    def __init__(self, capacity: int = 1024) -> None:
        """
        @param capacity: see L{LatencyWindow.capacity}; at least 1.
        @raise ValueError: if C{capacity} is below 1.
        """
        if capacity < 1:
            raise ValueError(f"latency window capacity must be at least 1, got {capacity!r}")
        self.capacity = capacity
        self.count = 0
        self._values: list[float] = []
        self._next = 0

    def __len__(self) -> int:
        """
        @return: how many latencies are in the window.
        """
        return len(self._values)

    def add(self, seconds: float) -> None:
        """
        Add one latency, replacing the oldest when full. Values that are not finite are ignored.

        @param seconds: the latency (may be negative for a latency delta).
        """
        seconds = float(seconds)
        if not math.isfinite(seconds):
            return
        self.count += 1
        if len(self._values) < self.capacity:
            self._values.append(seconds)
        else:
            self._values[self._next] = seconds
            self._next = (self._next + 1) % self.capacity

    def percentiles(self, quantiles: Sequence[float] = (0.5, 0.9, 0.99)) -> dict[str, float | None]:
        """
        Nearest-rank percentiles of the window.

        @param quantiles: fractions in (0, 1].
        @return: e.g. C{{"p50": 0.012, "p90": 0.03, "p99": 0.2}}; values are C{None} when the
            window is empty.
        """
        ordered = sorted(self._values)
        return {_quantile_label(q): _nearest_rank(ordered, q) for q in quantiles}


def _quantile_label(quantile: float) -> str:
    """
    @param quantile: a fraction, e.g. C{0.5} or C{0.999}.
    @return: its label, e.g. C{"p50"} or C{"p99.9"}.
    """
    return "p" + format(round(quantile * 100, 6), "g")


def _nearest_rank(ordered: list[float], quantile: float) -> float | None:
    """
    @param ordered: sorted values.
    @param quantile: a fraction in (0, 1].
    @return: the smallest value with at least C{quantile} of the values at or below it, or
        C{None} when there are no values.
    """
    if not ordered:
        return None
    rank = math.ceil(quantile * len(ordered)) - 1
    return ordered[min(max(rank, 0), len(ordered) - 1)]


# Fields that differ most often


class FieldCounter:
    """
    Counts how often each generalized path differs, separately as mismatch and as noise, in a
    bounded table.

    When the table is full, a new path evicts the entry with the least count and takes over its
    count plus one (the Space-Saving algorithm): any path that accounts for more than
    C{1/max_fields} of all differences is guaranteed to be in the table, at the price that counts
    of paths that came in by eviction are upper bounds. C{evicted} tells whether that happened.

    @ivar max_fields: how many (path, noise) entries are kept.
    @ivar evicted: how many entries were evicted.
    """

    def __init__(self, max_fields: int = 200) -> None:
        """
        @param max_fields: see L{FieldCounter.max_fields}; at least 1.
        @raise ValueError: if C{max_fields} is below 1.
        """
        if max_fields < 1:
            raise ValueError(f"max_fields must be at least 1, got {max_fields!r}")
        self.max_fields = max_fields
        self.evicted = 0
        self._counts: dict[tuple[str, bool], int] = {}

    def __len__(self) -> int:
        """
        @return: how many entries are in the table.
        """
        return len(self._counts)

    def add(self, path: str, noise: bool = False, count: int = 1) -> None:
        """
        Count a differing path.

        @param path: a generalized JSON pointer, or a pseudo-path such as C{"status"}.
        @param noise: whether the difference was learned noise.
        @param count: how many times to count it.
        """
        key = (path, bool(noise))
        if key in self._counts:
            self._counts[key] += count
            return
        floor = 0
        if len(self._counts) >= self.max_fields:
            victim = min(self._counts, key=self._counts.__getitem__)
            floor = self._counts.pop(victim)
            self.evicted += 1
        self._counts[key] = floor + count

    def top(self, n: int = 10) -> list[dict[str, object]]:
        """
        @param n: how many entries to return.
        @return: the C{n} entries with the highest counts, as C{{"path", "count", "noise"}},
            highest first (ties by path).
        """
        ranked = sorted(self._counts.items(), key=lambda item: (-item[1], item[0]))
        return [
            {"path": path, "count": count, "noise": noise} for (path, noise), count in ranked[:n]
        ]


# Captured mismatches


def _redact_headers(headers: object, redacted: frozenset[str]) -> object:
    """
    Copy a header mapping with the values of secret headers replaced.

    @param headers: header names (any case) to lists of values, or anything else (kept as is).
    @param redacted: lower-case names to redact.
    @return: the copy; a redacted list of values becomes C{["[redacted]"]}, a single value
        C{"[redacted]"}.
    """
    if not isinstance(headers, Mapping):
        return headers
    result = {}
    for name, values in headers.items():
        if str(name).lower() not in redacted:
            result[name] = list(values) if isinstance(values, (list, tuple)) else values
        elif isinstance(values, (str, bytes)):
            result[name] = REDACTED
        else:
            result[name] = [REDACTED]
    return result


def _response_entry(view: ResponseView) -> dict[str, object]:
    """
    @param view: one answer.
    @return: its status, headers, body (the decoded JSON, else the raw bytes) and error.
    """
    return {
        "status": view.status,
        "headers": dict(view.headers),
        "body": view.body if view.body is not None else view.raw,
        "error": view.error,
    }


def capture_entry(
    method: str,
    path: str,
    query: object,
    headers: Mapping[str, Sequence[str]],
    primary: ResponseView,
    shadow: ResponseView,
    comparison: Comparison | None = None,
    time: float | None = None,
) -> dict[str, object]:
    """
    Build the record of one mismatch in the shape L{CaptureBuffer} keeps.

    @param method: the request method.
    @param path: the request path.
    @param query: the query string, or a mapping of parameters.
    @param headers: the request headers as received from the client.
    @param primary: the primary's answer (bodies should already be bounded by the caller).
    @param shadow: the shadow's answer.
    @param comparison: the verdict, for the diff.
    @param time: when it happened, in seconds.
    @return: C{{"time", "request": {"method", "path", "query", "headers"}, "primary": {...},
        "shadow": {...}, "diff": [...], "noise": [...], "status_differs", "header_differences",
        "truncated"}}, where C{diff} and C{noise} hold C{{"path", "kind", "primary", "shadow"}}.
    """
    entry: dict[str, object] = {
        "time": time,
        "request": {"method": method, "path": path, "query": query, "headers": dict(headers)},
        "primary": _response_entry(primary),
        "shadow": _response_entry(shadow),
        "diff": [],
        "noise": [],
        "status_differs": False,
        "header_differences": [],
        "truncated": False,
    }
    if comparison is not None:
        entry["diff"] = [difference.as_dict() for difference in comparison.differences]
        entry["noise"] = [difference.as_dict() for difference in comparison.noise_differences]
        entry["status_differs"] = comparison.status_differs
        entry["header_differences"] = list(comparison.header_differences)
        entry["truncated"] = comparison.truncated
    return entry


class CaptureBuffer:
    """
    The last mismatches, with secrets redacted as they come in.

    The values of C{Authorization}, C{Proxy-Authorization}, C{Cookie}, C{Set-Cookie} and of every
    header in C{redact_headers} (case-insensitive) are replaced by C{"[redacted]"} in the request
    headers and in both answers' headers. Bodies are kept as given: the caller bounds them.

    @ivar capacity: how many entries are kept; C{0} keeps nothing.
    @ivar total: how many entries were ever added.
    """

    def __init__(self, capacity: int = 50, redact_headers: Iterable[str] = ()) -> None:
        """
        @param capacity: see L{CaptureBuffer.capacity}.
        @param redact_headers: more header names to redact, e.g. C{headers.remove}.
        @raise ValueError: if C{capacity} is negative.
        """
        if capacity < 0:
            raise ValueError(f"capture capacity must not be negative, got {capacity!r}")
        self.capacity = capacity
        self.total = 0
        self._redacted = frozenset(ALWAYS_REDACTED) | {name.lower() for name in redact_headers}
        self._entries: deque[dict[str, object]] = deque(maxlen=capacity)

    def __len__(self) -> int:
        """
        @return: how many entries are kept.
        """
        return len(self._entries)

    def add(self, entry: Mapping[str, object]) -> None:
        """
        Keep one mismatch, dropping the oldest when full.

        @param entry: a record shaped like the result of L{capture_entry}; its C{request},
            C{primary} and C{shadow} sections may carry C{headers}.
        """
        self.total += 1
        if self.capacity == 0:
            return
        self._entries.append(self._redact(entry))

    def _redact(self, entry: Mapping[str, object]) -> dict[str, object]:
        """
        @param entry: a capture record.
        @return: a copy with the secret header values of every section replaced.
        """
        result = dict(entry)
        for section in ("request", "primary", "shadow"):
            part = result.get(section)
            if isinstance(part, Mapping) and "headers" in part:
                part = dict(part)
                part["headers"] = _redact_headers(part["headers"], self._redacted)
                result[section] = part
        return result

    def items(self) -> list[dict[str, object]]:
        """
        @return: the kept entries, oldest first.
        """
        return list(self._entries)


# Circuit breaker for a shadow


class AutoPause:
    """
    Pauses a shadow whose error share gets too high, and resumes it after a while.

    Outcomes are counted over a sliding window of C{window} seconds, kept in ten buckets of
    C{window / 10} seconds, so an old outcome leaves the count at most one bucket late. When the
    window holds at least C{min_requests} outcomes and the share of failures is at least
    C{error_rate}, the shadow is paused for C{window} seconds. Outcomes reported while paused (from
    copies still in flight) are ignored. After the pause the shadow resumes fully, with fresh
    counts; there is no half-open probing, so a shadow that still fails is paused again after
    C{min_requests} more outcomes.

    What counts as a failure is the caller's choice (errors and timeouts; drops are not outcomes of
    the shadow). If the clock goes back, buckets from the future are dropped and a pause never lasts
    more than C{window} from the current time.

    @ivar error_rate: the failure share that trips the pause, in (0, 1].
    @ivar window: the window and the pause length, in seconds.
    @ivar min_requests: outcomes needed in the window before it can trip.
    @ivar paused_until: when the current pause ends, or C{None}.
    @ivar trips: how many times it paused.
    """

    BUCKETS = 10

    def __init__(self, error_rate: float, window: float, min_requests: int) -> None:
        """
        @param error_rate: see L{AutoPause.error_rate}.
        @param window: see L{AutoPause.window}.
        @param min_requests: see L{AutoPause.min_requests}.
        @raise ValueError: for an error rate outside (0, 1], a window that is not positive, or
            C{min_requests} below 1.
        """
        error_rate, window, min_requests = float(error_rate), float(window), int(min_requests)
        if not 0 < error_rate <= 1:
            raise ValueError(
                f"auto_pause error_rate must be above 0 and at most 1, got {error_rate}"
            )
        if not (math.isfinite(window) and window > 0):
            raise ValueError(f"auto_pause window must be a positive duration, got {window}")
        if min_requests < 1:
            raise ValueError(f"auto_pause min_requests must be at least 1, got {min_requests}")
        self.error_rate = error_rate
        self.window = window
        self.min_requests = min_requests
        self.paused_until: float | None = None
        self.trips = 0
        self._width = window / self.BUCKETS
        self._buckets: deque[list[int]] = deque()  # [bucket index, outcomes, failures]

    def _expire(self, now: float) -> int:
        """
        Drop buckets that left the window (or lie in the future after a clock jump).

        @param now: the current time.
        @return: the index of the current bucket.
        """
        current = math.floor(now / self._width)
        oldest = current - self.BUCKETS + 1
        self._buckets = deque(b for b in self._buckets if oldest <= b[0] <= current)
        return current

    def _totals(self) -> tuple[int, int]:
        """
        @return: outcomes and failures in the buckets kept.
        """
        return sum(b[1] for b in self._buckets), sum(b[2] for b in self._buckets)

    def record(self, ok: bool, now: float) -> None:
        """
        Count one outcome of the shadow, and pause it if that trips the threshold.

        @param ok: whether the shadow answered (any status counts as an answer).
        @param now: the current time, in seconds.
        """
        if self.paused(now):
            return
        current = self._expire(now)
        if not self._buckets or self._buckets[-1][0] != current:
            self._buckets.append([current, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += 0 if ok else 1
        requests, failures = self._totals()
        if requests >= self.min_requests and failures / requests >= self.error_rate:
            self._trip(now)

    def _trip(self, now: float) -> None:
        """
        Start a pause.

        @param now: the current time.
        """
        self.paused_until = now + self.window
        self.trips += 1
        self._buckets.clear()

    def paused(self, now: float) -> bool:
        """
        Tell whether the shadow is paused; a pause that is over ends here.

        @param now: the current time, in seconds.
        @return: C{True} while paused.
        """
        if self.paused_until is None:
            return False
        if now >= self.paused_until:
            self.paused_until = None
            self._buckets.clear()
            return False
        self.paused_until = min(self.paused_until, now + self.window)
        return True

    def state(self, now: float) -> dict[str, object]:
        """
        @param now: the current time, in seconds.
        @return: C{{"paused", "paused_until", "trips", "window": {"requests", "errors",
            "error_rate"}, "settings": {"error_rate", "window", "min_requests"}}}.
        """
        paused = self.paused(now)
        self._expire(now)
        requests, failures = self._totals()
        return {
            "paused": paused,
            "paused_until": self.paused_until,
            "trips": self.trips,
            "window": {
                "requests": requests,
                "errors": failures,
                "error_rate": failures / requests if requests else None,
            },
            "settings": {
                "error_rate": self.error_rate,
                "window": self.window,
                "min_requests": self.min_requests,
            },
        }


# Rate limiting of log events


class RateLimiter:
    """
    A token bucket: C{burst} events at once, then C{rate_per_second} on average.

    @ivar rate_per_second: tokens added per second.
    @ivar burst: the bucket size; it starts full.
    @ivar suppressed: how many events were refused in total.
    """

    def __init__(self, rate_per_second: float, burst: int) -> None:
        """
        @param rate_per_second: see L{RateLimiter.rate_per_second}; 0 allows only the burst.
        @param burst: see L{RateLimiter.burst}; at least 1.
        @raise ValueError: for a negative rate or a burst below 1.
        """
        rate_per_second = float(rate_per_second)
        if not (math.isfinite(rate_per_second) and rate_per_second >= 0):
            raise ValueError(f"rate must be a finite number >= 0, got {rate_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst}")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self.suppressed = 0
        self._tokens = float(burst)
        self._last: float | None = None
        self._unreported = 0

    def _refill(self, now: float) -> None:
        """
        Add the tokens earned since the last call; a clock that went back earns nothing.

        @param now: the current time.
        """
        if self._last is not None and now > self._last:
            earned = (now - self._last) * self.rate_per_second
            self._tokens = min(float(self.burst), self._tokens + earned)
        self._last = now

    def allow(self, now: float) -> bool:
        """
        @param now: the current time, in seconds.
        @return: whether the event may go out; a refused one is counted in C{suppressed}.
        """
        self._refill(now)
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        self.suppressed += 1
        self._unreported += 1
        return False

    def take_suppressed(self) -> int:
        """
        For the next event that goes out, to say how many were left out before it.

        @return: how many events were refused since the previous call.
        """
        count, self._unreported = self._unreported, 0
        return count


# Per endpoint and shadow


class ShadowStats:
    """
    Everything C{/__shadow} shows for one endpoint and one shadow backend.

    @ivar outcomes: counts per shadow outcome (L{OUTCOMES}).
    @ivar compares: counts per comparison result (L{COMPARE_RESULTS}).
    @ivar primary_latency: the primary's recent latencies.
    @ivar shadow_latency: the shadow's recent latencies.
    @ivar delta_latency: recent shadow-minus-primary latencies.
    @ivar fields: the paths that differ most often. Next to JSON pointers it counts C{"status"} for
        differing statuses and C{"header:NAME"} for each differing compared header.
    @ivar captures: the last mismatches.
    @ivar auto_pause: the shadow's circuit breaker, if configured; shown in the snapshot.
    @ivar top_fields: how many fields the snapshot lists.
    """

    def __init__(
        self,
        capture: int = 50,
        redact_headers: Iterable[str] = (),
        latency_capacity: int = 1024,
        max_fields: int = 200,
        top_fields: int = 20,
        auto_pause: AutoPause | None = None,
    ) -> None:
        """
        @param capture: how many mismatches to keep (the C{capture} setting).
        @param redact_headers: more header names to redact in captures (C{headers.remove}).
        @param latency_capacity: how many latencies each window keeps.
        @param max_fields: the size of the field table.
        @param top_fields: see L{ShadowStats.top_fields}.
        @param auto_pause: see L{ShadowStats.auto_pause}.
        """
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.compares = dict.fromkeys(COMPARE_RESULTS, 0)
        self.primary_latency = LatencyWindow(latency_capacity)
        self.shadow_latency = LatencyWindow(latency_capacity)
        self.delta_latency = LatencyWindow(latency_capacity)
        self.fields = FieldCounter(max_fields)
        self.captures = CaptureBuffer(capture, redact_headers)
        self.auto_pause = auto_pause
        self.top_fields = top_fields

    def record_outcome(self, outcome: str) -> None:
        """
        Count what happened to one shadow copy.

        @param outcome: one of L{OUTCOMES}.
        @raise ValueError: for any other outcome.
        """
        if outcome not in self.outcomes:
            raise ValueError(f"unknown shadow outcome {outcome!r}, expected one of {OUTCOMES}")
        self.outcomes[outcome] += 1

    def record_latencies(self, primary_s: float | None, shadow_s: float | None) -> None:
        """
        Record the latencies of one shadowed request; the delta is recorded when both are known.

        @param primary_s: the primary's latency in seconds, or C{None}.
        @param shadow_s: the shadow's latency in seconds, or C{None}.
        """
        if primary_s is not None:
            self.primary_latency.add(primary_s)
        if shadow_s is not None:
            self.shadow_latency.add(shadow_s)
        if primary_s is not None and shadow_s is not None:
            self.delta_latency.add(shadow_s - primary_s)

    def record_comparison(
        self, comparison: Comparison, capture: Mapping[str, object] | None = None
    ) -> None:
        """
        Count one comparison and its differing fields, and keep the capture of a mismatch.

        @param comparison: the verdict.
        @param capture: the record of the request (see L{capture_entry}); kept only when the
            result is a mismatch.
        """
        self.compares[comparison.result] += 1
        for difference in comparison.differences:
            self.fields.add(difference.pattern, noise=False)
        for difference in comparison.noise_differences:
            self.fields.add(difference.pattern, noise=True)
        if comparison.status_differs:
            self.fields.add(STATUS_FIELD)
        for name in comparison.header_differences:
            self.fields.add(HEADER_FIELD_PREFIX + name)
        if capture is not None and comparison.result == MISMATCH:
            self.captures.add(capture)

    def record_compare_skipped(self) -> None:
        """
        Count a comparison that was not made (the diff could not keep up, or an answer was cut).
        """
        self.compares["skipped"] += 1

    def snapshot(self, now: float | None = None) -> dict[str, object]:
        """
        @param now: the current time, for the C{auto_pause} state; without it the state is left
            out (C{None}).
        @return: a JSON-ready dict: C{outcomes}, C{compare}, C{latency} (C{primary}, C{shadow},
            C{delta}, each with C{count} and percentiles), C{fields}, C{fields_evicted},
            C{captures} (oldest first), C{captured_total} and C{auto_pause}.
        """
        pause = None
        if self.auto_pause is not None and now is not None:
            pause = self.auto_pause.state(now)
        return plain(
            {
                "outcomes": self.outcomes,
                "compare": self.compares,
                "latency": {
                    "primary": _latency_view(self.primary_latency),
                    "shadow": _latency_view(self.shadow_latency),
                    "delta": _latency_view(self.delta_latency),
                },
                "fields": self.fields.top(self.top_fields),
                "fields_evicted": self.fields.evicted,
                "captures": self.captures.items(),
                "captured_total": self.captures.total,
                "auto_pause": pause,
            }
        )  # type: ignore[return-value]


def _latency_view(window: LatencyWindow) -> dict[str, object]:
    """
    @param window: a latency window.
    @return: C{{"count", "p50", "p90", "p99"}}.
    """
    view: dict[str, object] = {"count": window.count}
    view.update(window.percentiles())
    return view


class ShadowRegistry:
    """
    The L{ShadowStats} of every (endpoint template, shadow backend label) pair.

    Keys come from the configuration, never from raw request paths, so the registry stays bounded.
    """

    def __init__(self, factory: Callable[[], ShadowStats] = ShadowStats) -> None:
        """
        @param factory: makes the stats of a pair seen for the first time by L{get}.
        """
        self._factory = factory
        self._stats: dict[tuple[str, str], ShadowStats] = {}

    def get(self, endpoint: str, backend: str) -> ShadowStats:
        """
        @param endpoint: the endpoint template, e.g. C{"GET /user/{id}"}.
        @param backend: the shadow backend's label.
        @return: its stats, made by the factory the first time.
        """
        key = (endpoint, backend)
        stats = self._stats.get(key)
        if stats is None:
            stats = self._stats[key] = self._factory()
        return stats

    def register(self, endpoint: str, backend: str, stats: ShadowStats) -> ShadowStats:
        """
        Install configured stats for a pair (for instance with its capture size and redactions),
        replacing any there.

        @param endpoint: the endpoint template.
        @param backend: the shadow backend's label.
        @param stats: the stats to use.
        @return: C{stats}.
        """
        self._stats[(endpoint, backend)] = stats
        return stats

    def pairs(self) -> list[tuple[str, str]]:
        """
        @return: the (endpoint, backend) pairs known, sorted.
        """
        return sorted(self._stats)

    def snapshot(self, now: float | None = None) -> dict[str, object]:
        """
        @param now: the current time, passed to L{ShadowStats.snapshot}.
        @return: C{{"endpoints": {endpoint: {backend: stats snapshot}}}}, sorted by endpoint and
            backend.
        """
        endpoints: dict[str, dict[str, object]] = {}
        for endpoint, backend in self.pairs():
            stats = self._stats[(endpoint, backend)]
            endpoints.setdefault(endpoint, {})[backend] = stats.snapshot(now)
        return {"endpoints": endpoints}
