# -*- test-case-name: tests.test_memo -*-
"""
Results of pure functions remembered by argument, within a bound: the gateway's request path
meets the same few values again and again (a backend's response head until its C{Date}
changes, an endpoint's response header set, header names), and working them out once is
cheaper than every time.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Generic, Optional, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    """
    C{build(key)}, remembered for the next identical C{key}: at most C{limit} results, all
    forgotten at once when full (the values the request path repeats come back at once).
    Unhashable keys are built every time.

    On the request path, keep and call its bound C{__call__}: CPython calls an instance
    through C{__call__} by a slower way than a bound method.
    """

    def __init__(self, build: Callable[[K], V], limit: int,
                 keep: Optional[Callable[[K, V], bool]] = None) -> None:
        """
        @param keep: whether a result is worth keeping (for example, not one too large);
            C{None}: every result is.
        """
        self._build = build
        self._limit = limit
        self._keep = keep
        self._found: Dict[Any, V] = {}

    def __call__(self, key: K) -> V:
        found = self._found
        try:
            return found[key]
        except KeyError:
            pass
        except TypeError:
            return self._build(key)
        value = self._build(key)
        if self._keep is None or self._keep(key, value):
            if len(found) >= self._limit:
                found.clear()
            found[key] = value
        return value

    def __len__(self) -> int:
        return len(self._found)
