# -*- test-case-name: tests.test_config -*-
"""
Go duration strings (C{"150ms"}, C{"1m30s"}), as C{time.ParseDuration} reads them.

Pure: no Twisted, no I/O.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # micro sign
    "\u03bcs": 1e-6,  # Greek mu
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}

_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(text: str) -> float:
    """
    Parse a Go duration string.

    @param text: for example C{"2s"}, C{"150ms"}, C{"1h2m3.5s"}, C{"-1s"} or C{"0"}.
    @return: the duration in seconds.
    @raise ValueError: if C{text} is not a Go duration; the message says why.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string, got {type(text).__name__}")
    rest = text
    sign = 1.0
    if rest[:1] in ("-", "+"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    position = 0
    while position < len(rest):
        match = _PART.match(rest, position)
        if match is None:
            if rest[position:position + 1].isdigit() or rest[position:position + 1] == ".":
                raise ValueError(f"missing or unknown unit in duration {text!r}")
            raise ValueError(f"invalid duration {text!r}")
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    return sign * total


def format_seconds(seconds: float) -> str:
    """
    Render seconds the short way a log reader expects (C{"150ms"}, C{"2s"}).

    @param seconds: a duration.
    @return: a Go-style duration string.
    """
    if seconds < 1 and seconds != 0:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"
