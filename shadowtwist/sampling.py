# -*- test-case-name: tests.test_sampling -*-
"""
Which requests are shadowed: percentage sampling, optionally sticky per key.

Pure code: randomness comes from an injected C{random.Random}-like object and the sticky hash is
BLAKE2b, so a key's decision is the same in every process, after every restart and on every
Python implementation (Python's own C{hash()} is salted per process and would not be).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Sequence

__all__ = ["BUCKETS", "Sampler", "StickyKey", "parse_sticky_key", "sticky_bucket"]

BUCKETS = 10000
"""Sticky keys hash into this many buckets, so sticky percentages have a 0.01 point grain."""

_NAMED_SOURCES = ("header", "cookie", "query")
_CLIENT_IP = "client_ip"


@dataclass(frozen=True)
class StickyKey:
    """
    Where a request's sticky sampling key comes from.

    @ivar source: C{"header"}, C{"cookie"}, C{"query"} or C{"client_ip"}.
    @ivar name: the header, cookie or query parameter name; C{""} for C{client_ip}.
    """

    source: str
    name: str = ""

    def __str__(self) -> str:
        """
        @return: the spec this key was parsed from, e.g. C{header:X-User-Id}.
        """
        return self.source if self.source == _CLIENT_IP else f"{self.source}:{self.name}"

    def extract(
        self,
        headers: Mapping[str, Sequence[str]],
        cookies: Mapping[str, str],
        query: Mapping[str, Sequence[str]],
        client_ip: str | None,
    ) -> str | None:
        """
        Find this key's value in a request.

        Header names are case-insensitive; cookie and query names are not. With several values the
        first one is used. An empty value counts as missing, so that requests without a real key
        are not all pinned to one decision.

        @param headers: header names (any case) to lists of values.
        @param cookies: cookie names to values.
        @param query: query parameter names to lists of values.
        @param client_ip: the client's address.
        @return: the value, or C{None} when the request has none.
        """
        if self.source == "header":
            value = _first(_header_values(headers, self.name))
        elif self.source == "cookie":
            value = cookies.get(self.name)
        elif self.source == "query":
            value = _first(query.get(self.name))
        else:
            value = client_ip
        return value or None


def _header_values(headers: Mapping[str, Sequence[str]], name: str) -> Sequence[str] | None:
    """
    Look up a header case-insensitively.

    @param headers: header names (any case) to lists of values.
    @param name: the wanted name.
    @return: its values, or C{None}.
    """
    values = headers.get(name)
    if values is not None:
        return values
    wanted = name.lower()
    for candidate, candidate_values in headers.items():
        if candidate.lower() == wanted:
            return candidate_values
    return None


def _first(values: Sequence[str] | str | None) -> str | None:
    """
    @param values: a list of values, a single value, or C{None}.
    @return: the first value, or C{None}.
    """
    if values is None or isinstance(values, str):
        return values
    return values[0] if values else None


def parse_sticky_key(spec: object) -> StickyKey:
    """
    Parse the C{sticky_key} setting.

    @param spec: C{"header:NAME"}, C{"cookie:NAME"}, C{"query:NAME"} or C{"client_ip"}.
    @return: the parsed key.
    @raise ValueError: naming the accepted forms, when C{spec} is anything else.
    """
    expected = "expected header:NAME, cookie:NAME, query:NAME or client_ip"
    if not isinstance(spec, str):
        raise ValueError(f"sticky_key must be a string ({expected}), got {spec!r}")
    if spec == _CLIENT_IP:
        return StickyKey(_CLIENT_IP)
    source, colon, name = spec.partition(":")
    if not colon or source not in _NAMED_SOURCES:
        raise ValueError(f"sticky_key {spec!r} is not understood: {expected}")
    if not name or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"sticky_key {spec!r} needs a {source} name without spaces after ':'")
    return StickyKey(source, name)


def sticky_bucket(value: str) -> int:
    """
    Hash a sticky key value into a bucket.

    @param value: the key's value.
    @return: a bucket in C{range(BUCKETS)}, the same in every process.
    """
    digest = hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def _check_percentage(percentage: object) -> float:
    """
    @param percentage: the configured share: any number that C{float()} accepts (so number
        classes of a JSON decoder work too), but not a string or a boolean.
    @return: it as a float.
    @raise ValueError: unless it is a number from 0 to 100.
    """
    problem = f"percentage must be a number from 0 to 100, got {percentage!r}"
    if isinstance(percentage, (bool, str, bytes)):
        raise ValueError(problem)
    try:
        value = float(percentage)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(problem) from None
    if math.isnan(value) or not 0 <= value <= 100:
        raise ValueError(problem)
    return value


class Sampler:
    """
    Decides whether one request is shadowed.

    Without a sticky key, or for a request that lacks the key's value, the decision is random
    with probability C{percentage / 100}. With a key value it is deterministic:
    C{sticky_bucket(value) < percentage * 100}, so one user is always in or always out, and
    raising the percentage only adds users. 100 always shadows and 0 never does, whatever the key.
    Sticky shares have a grain of 0.01 point (L{BUCKETS}): 12.345 acts as 12.35, and anything
    above 0 shadows at least the keys of bucket 0.

    @ivar percentage: the share of requests shadowed, from 0 to 100.
    @ivar sticky_key: where the key comes from, or C{None}.
    """

    def __init__(
        self,
        percentage: float,
        sticky_key: StickyKey | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """
        @param percentage: see L{Sampler.percentage}; decimals allowed.
        @param sticky_key: see L{Sampler.sticky_key}.
        @param rng: anything with a C{random()} method returning a float in [0, 1); a fresh
            C{random.Random()} by default.
        @raise ValueError: if C{percentage} is not a number from 0 to 100.
        """
        self.percentage = _check_percentage(percentage)
        self.sticky_key = sticky_key
        self._rng = rng if rng is not None else random.Random()

    def decide(self, key_value: str | None = None) -> bool:
        """
        @param key_value: the request's sticky key value (see L{StickyKey.extract}); ignored
            without a sticky key.
        @return: whether to shadow the request.
        """
        if self.percentage >= 100:
            return True
        if self.percentage <= 0:
            return False
        if self.sticky_key is not None and key_value is not None:
            return sticky_bucket(key_value) < self.percentage * BUCKETS / 100
        return self._rng.random() * 100 < self.percentage
