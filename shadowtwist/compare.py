# -*- test-case-name: tests.test_compare -*-
"""
Comparison of a primary's answer with a shadow's answer.

Everything here is pure: no Twisted, no I/O, no clock. The gateway decodes both answers (or keeps
their raw bytes), wraps them in L{ResponseView}s and calls L{compare}, which returns a
L{Comparison} with the result C{"match"}, C{"mismatch"} or C{"noise"}.

Field paths are JSON pointers (RFC 6901, C{~} escaped as C{~0} and C{/} as C{~1}), for example
C{/items/3/price}. Every L{Difference} also carries a I{pattern}, the same path with array indices
replaced by C{*} (C{/items/*/price}), so that counts and learned noise aggregate across the items
of an array. The diff knows which segments were array indices; L{generalize} on a bare string can
only guess.

Decoded JSON may contain number objects of any class (C{int}, C{float}, or a class that keeps the
literal and compares by numeric value): anything that is not a dict or a list is a leaf and leaves
are compared with C{==}, after checking that both are of the same JSON type (so C{true} never
equals C{1}).

Cost: the diff is linear in the size of the documents and bounded in the differences it keeps.
Subtrees of plain JSON values that are equal are recognised at C speed; on CPython 3.11 two equal
90 kB documents take about 0.5 ms, one changed field among 1000 items about 3 ms, and about 7 ms
when the numbers are objects of a decoder's class. Callers still bound the bytes they decode.
"""

from __future__ import annotations

import marshal
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from shadowtwist.encoding import json_type

__all__ = [
    "Comparison",
    "DiffList",
    "Difference",
    "IgnoreRules",
    "NoiseLearner",
    "ResponseView",
    "compare",
    "compile_ignore",
    "diff_json",
    "format_pointer",
    "generalize",
    "parse_pointer",
    "validate_pointer_pattern",
]

CHANGED = "changed"
ADDED = "added"
REMOVED = "removed"
TYPE = "type"

MATCH = "match"
MISMATCH = "mismatch"
NOISE = "noise"

WILDCARD = "*"

_DESCEND = "descend"

_ARRAY_INDEX = re.compile(r"^(?:0|[1-9][0-9]*)$")
_BAD_ESCAPE = re.compile(r"~(?![01])")
_MISSING = object()


# JSON pointers


def _escape(segment: str) -> str:
    """
    Escape one path segment for a JSON pointer.

    @param segment: the raw key or index text.
    @return: the segment with C{~} written as C{~0} and C{/} as C{~1}.
    """
    return segment.replace("~", "~0").replace("/", "~1")


def _unescape(segment: str) -> str:
    """
    Undo L{_escape}.

    @param segment: one escaped segment of a JSON pointer.
    @return: the raw key text.
    """
    return segment.replace("~1", "/").replace("~0", "~")


def format_pointer(segments: Iterable[object]) -> str:
    """
    Build a JSON pointer from raw segments.

    @param segments: keys (C{str}) and array indices (C{int}), outermost first.
    @return: the pointer, C{""} for the document itself.
    """
    return "".join("/" + _escape(str(segment)) for segment in segments)


def parse_pointer(pointer: str) -> list[str]:
    """
    Split a JSON pointer into its unescaped segments.

    @param pointer: a pointer such as C{"/a~1b/0"}; C{""} is the whole document.
    @return: the segments, e.g. C{["a/b", "0"]}.
    @raise ValueError: if C{pointer} is neither empty nor starts with C{/}.
    """
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer {pointer!r} must start with '/'")
    return [_unescape(segment) for segment in pointer[1:].split("/")]


def generalize(path: str) -> str:
    """
    Replace the array indices of a JSON pointer with C{*}.

    From a bare string an index cannot be told apart from an object key made of digits, so every
    segment that is a canonical array index (C{0} or digits without a leading zero) is replaced.
    Prefer L{Difference.pattern}, which the diff builds knowing which segments were indices.

    @param path: a JSON pointer such as C{"/items/3/price"}.
    @return: the pattern, e.g. C{"/items/*/price"}.
    """
    if path == "":
        return ""
    segments = path.split("/")
    return "/".join(WILDCARD if _ARRAY_INDEX.match(s) else s for s in segments)


def _ancestors(pattern: str) -> list[str]:
    """
    List a pointer and every pointer above it, up to the document itself.

    @param pattern: an escaped pointer (escaped C{/} never appears inside a segment).
    @return: e.g. C{["/a/b", "/a", ""]} for C{"/a/b"}.
    """
    result = [pattern]
    while pattern:
        pattern = pattern[: pattern.rfind("/")]
        result.append(pattern)
    return result


class _Path:
    """
    A position in a document, as a linked list to its parent so that descending costs O(1).

    @ivar parent: the enclosing position, or C{None} at the document itself.
    @ivar segment: the key or index that leads here from C{parent}.
    @ivar is_index: whether C{segment} is an array index.
    """

    __slots__ = ("parent", "segment", "is_index")

    def __init__(self, parent: _Path | None, segment: object, is_index: bool) -> None:
        """
        @param parent: see L{_Path.parent}.
        @param segment: see L{_Path.segment}.
        @param is_index: see L{_Path.is_index}.
        """
        self.parent = parent
        self.segment = segment
        self.is_index = is_index

    def _chain(self) -> list[_Path]:
        """
        @return: the positions from the outermost one down to this one.
        """
        chain = []
        node: _Path | None = self
        while node is not None:
            chain.append(node)
            node = node.parent
        chain.reverse()
        return chain

    def pointer(self) -> str:
        """
        @return: the JSON pointer of this position.
        """
        return format_pointer(node.segment for node in self._chain())

    def pattern(self) -> str:
        """
        @return: the JSON pointer with array indices replaced by C{*}.
        """
        return "".join(
            "/" + (WILDCARD if node.is_index else _escape(str(node.segment)))
            for node in self._chain()
        )


def _pointer_of(path: _Path | None) -> str:
    """
    @param path: a position or C{None} for the document itself.
    @return: its JSON pointer.
    """
    return "" if path is None else path.pointer()


def _pattern_of(path: _Path | None) -> str:
    """
    @param path: a position or C{None} for the document itself.
    @return: its generalized JSON pointer.
    """
    return "" if path is None else path.pattern()


# Differences


@dataclass(frozen=True)
class Difference:
    """
    One place where two JSON documents differ.

    @ivar path: JSON pointer of the place, C{""} for the whole document.
    @ivar kind: C{"changed"} (same JSON type, other value), C{"added"} (only in the shadow),
        C{"removed"} (only in the primary) or C{"type"} (different JSON types, e.g. object and
        array, or a JSON body against a non-JSON one).
    @ivar primary: the primary's value there, C{None} when it is absent.
    @ivar shadow: the shadow's value there, C{None} when it is absent.
    @ivar pattern: C{path} with array indices replaced by C{*}; when not given it is guessed from
        C{path} with L{generalize}.
    """

    path: str
    kind: str
    primary: object = None
    shadow: object = None
    pattern: str = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        """
        Fill in C{pattern} when it was not given.
        """
        if self.pattern is None:
            object.__setattr__(self, "pattern", generalize(self.path))

    def as_dict(self) -> dict[str, object]:
        """
        @return: C{{"path", "kind", "primary", "shadow"}} with the raw values, for captures.
        """
        return {
            "path": self.path,
            "kind": self.kind,
            "primary": self.primary,
            "shadow": self.shadow,
        }


class DiffList(list):  # type: ignore[type-arg]
    """
    The L{Difference}s found by L{diff_json}, in document order.

    @ivar truncated: C{True} when the diff stopped at C{max_differences} although more
        differences exist; the list then holds exactly the first C{max_differences}.
    """

    truncated: bool = False


# Ignore rules


def validate_pointer_pattern(pattern: object) -> str | None:
    """
    Check one entry of C{compare.ignore}.

    A pattern is a JSON pointer in which a segment that is exactly C{*} matches any one key or
    index. C{*} inside a longer segment is refused rather than silently taken literally.

    @param pattern: the configured value.
    @return: C{None} when valid, else a sentence that says what is wrong.
    """
    if not isinstance(pattern, str):
        return (
            f"ignore pattern {pattern!r} must be a string, a JSON pointer like "
            f"'/meta/request_id'"
        )
    if pattern == "":
        return "ignore pattern '' would ignore the whole body; set compare.body to false instead"
    if not pattern.startswith("/"):
        return (
            f"ignore pattern {pattern!r} must start with '/', a JSON pointer like "
            f"'/meta/request_id'"
        )
    bad = _BAD_ESCAPE.search(pattern)
    if bad:
        return (
            f"ignore pattern {pattern!r} has '~' not followed by 0 or 1; write '~0' for '~' "
            f"and '~1' for '/' (RFC 6901)"
        )
    for segment in pattern[1:].split("/"):
        if WILDCARD in segment and segment != WILDCARD:
            return (
                f"ignore pattern {pattern!r} has '*' inside the segment {segment!r}; '*' only "
                f"works as a whole segment, as in '/items/*/updated_at'"
            )
    return None


class _TrieNode:
    """
    One node of the ignore trie.

    @ivar children: the next node for each literal segment.
    @ivar wildcard: the next node for a C{*} segment, if any pattern has one here.
    @ivar terminal: whether a pattern ends here.
    """

    __slots__ = ("children", "wildcard", "terminal")

    def __init__(self) -> None:
        """
        Make an empty node.
        """
        self.children: dict[str, _TrieNode] = {}
        self.wildcard: _TrieNode | None = None
        self.terminal = False


_States = tuple  # a tuple of _TrieNode: the trie nodes reached by the path so far


class IgnoreRules:
    """
    Compiled C{compare.ignore} patterns: a path that matches a pattern, and everything below it,
    is left out of the comparison.

    Patterns are kept in a trie, so the diff checks each node of a document against all patterns
    at once, and stops checking below a node no pattern can reach.

    @ivar patterns: the patterns as given.
    """

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        """
        @param patterns: JSON pointer patterns; they are assumed valid (see L{compile_ignore}).
        """
        self.patterns = tuple(patterns)
        self._root = _TrieNode()
        for pattern in self.patterns:
            self._insert(parse_pointer(pattern))

    def _insert(self, segments: list[str]) -> None:
        """
        Add one pattern to the trie.

        @param segments: the pattern's unescaped segments.
        """
        node = self._root
        for segment in segments:
            if segment == WILDCARD:
                if node.wildcard is None:
                    node.wildcard = _TrieNode()
                node = node.wildcard
            else:
                node = node.children.setdefault(segment, _TrieNode())
        node.terminal = True

    def __bool__(self) -> bool:
        """
        @return: whether there is at least one pattern.
        """
        return bool(self.patterns)

    def __repr__(self) -> str:
        """
        @return: a readable form listing the patterns.
        """
        return f"IgnoreRules({list(self.patterns)!r})"

    def _start(self) -> _States:
        """
        @return: the trie states for the document itself.
        """
        return (self._root,) if self.patterns else ()

    def _root_ignored(self) -> bool:
        """
        @return: whether the whole document is ignored (an empty pattern).
        """
        return self._root.terminal

    @staticmethod
    def _step(states: _States, segment: str) -> tuple[_States, bool]:
        """
        Descend one segment.

        @param states: the trie nodes reached by the parent path.
        @param segment: the key, or the index as text.
        @return: the nodes reached by the child path, and whether the child is ignored.
        """
        reached = []
        for node in states:
            child = node.children.get(segment)
            if child is not None:
                reached.append(child)
            if node.wildcard is not None:
                reached.append(node.wildcard)
        return tuple(reached), any(node.terminal for node in reached)

    def matches(self, path_segments: Sequence[object]) -> bool:
        """
        Tell whether a path is ignored: it matches a pattern or lies below one that matches.

        @param path_segments: raw keys and indices, e.g. C{["items", 3, "updated_at"]}; indices may
            be C{int} or text.
        @return: C{True} if the path is ignored.
        """
        if self._root_ignored():
            return True
        states = self._start()
        for segment in path_segments:
            if not states:
                return False
            states, ignored = self._step(states, str(segment))
            if ignored:
                return True
        return False

    def matches_pointer(self, pointer: str) -> bool:
        """
        Like L{matches}, for a JSON pointer.

        @param pointer: e.g. C{"/items/3/updated_at"}.
        @return: C{True} if the path is ignored.
        """
        return self.matches(parse_pointer(pointer))


def compile_ignore(patterns: Iterable[str] | None) -> IgnoreRules:
    """
    Validate and compile the C{compare.ignore} list.

    @param patterns: JSON pointer patterns, or C{None} for none.
    @return: the compiled rules.
    @raise ValueError: with the text of L{validate_pointer_pattern} for the first bad pattern, or
        when C{patterns} is a single string instead of a list.
    """
    if patterns is None:
        return IgnoreRules(())
    if isinstance(patterns, (str, bytes)):
        raise ValueError(f"ignore must be a list of JSON pointers, not the string {patterns!r}")
    patterns = list(patterns)
    for pattern in patterns:
        problem = validate_pointer_pattern(pattern)
        if problem is not None:
            raise ValueError(problem)
    return IgnoreRules(patterns)


# Structural diff


_PLAIN_SCALARS = frozenset({str, int, float, bool, type(None)})
"""Exact types whose values are equal when C{==} says so (both sides of the very same type)."""


def _plainly_equal(primary: object, shadow: object) -> bool:
    """
    A cheap check that spares equal leaves the rest of the walk.

    @param primary: a value of the primary.
    @param shadow: the matching value of the shadow (never both L{_MISSING}).
    @return: C{True} only if they are certainly equal: the same object; equal plain scalars of
        the very same type (so C{True} and C{1} are never taken as equal here); or two number
        objects of the same class that keep the very same literal in C{text}.
    """
    if primary is shadow:
        return True
    kind = type(primary)
    if kind is not type(shadow):
        return False
    if kind in _PLAIN_SCALARS:
        return primary == shadow  # type: ignore[no-any-return]
    literal = getattr(primary, "text", None)
    return isinstance(literal, str) and literal == getattr(shadow, "text", None)


def _differing_children(
    primary: object, shadow: object, json_type: str
) -> list[tuple[object, bool, object, object]]:
    """
    Pair up the children of two containers of the same type, leaving out plainly equal ones.

    @param primary: the primary's object or array.
    @param shadow: the shadow's object or array.
    @param json_type: C{"object"} or C{"array"}.
    @return: C{(key, is_index, primary child, shadow child)} in document order (the primary's keys,
        then the keys only the shadow has; or the indices); an absent child is L{_MISSING}.
    """
    pairs: list[tuple[object, bool, object, object]] = []
    if json_type == "array":
        for index, (p, s) in enumerate(zip(primary, shadow)):  # type: ignore[call-overload]
            if p is not s and not _plainly_equal(p, s):
                pairs.append((index, True, p, s))
        p_len, s_len = len(primary), len(shadow)  # type: ignore[arg-type]
        common = min(p_len, s_len)
        for index in range(common, p_len):
            pairs.append((index, True, primary[index], _MISSING))  # type: ignore[index]
        for index in range(common, s_len):
            pairs.append((index, True, _MISSING, shadow[index]))  # type: ignore[index]
        return pairs
    for key, p in primary.items():  # type: ignore[attr-defined]
        s = shadow.get(key, _MISSING)  # type: ignore[attr-defined]
        if p is not s and not _plainly_equal(p, s):
            pairs.append((key, False, p, s))
    if shadow.keys() != primary.keys():  # type: ignore[attr-defined]
        pairs.extend(
            (key, False, _MISSING, s)
            for key, s in shadow.items()  # type: ignore[attr-defined]
            if key not in primary  # type: ignore[operator]
        )
    return pairs


def _identical_encoding(primary: object, shadow: object) -> bool | None:
    """
    Tell at C speed whether two subtrees are the same, for the common case of equal answers.

    C{==} alone cannot say it, because Python takes C{True == 1}. C{marshal} writes the exact
    type of every value, so equal bytes mean equal documents. Different bytes prove nothing
    (C{1} against C{1.0}, other key order, other sharing of strings): the walk then decides.

    @param primary: a subtree of the primary.
    @param shadow: the matching subtree of the shadow.
    @return: C{True} if certainly equal, C{False} if the walk must decide, C{None} if the values
        cannot be encoded (objects of other classes, such as a decoder's number class), so that
        the caller stops trying for this document.
    """
    try:
        return marshal.dumps(primary) == marshal.dumps(shadow)
    except (ValueError, RecursionError):
        return None


def _leaf_difference(primary: object, shadow: object) -> str | None:
    """
    Compare two values at the same place without descending into them.

    @param primary: the primary's value or L{_MISSING}.
    @param shadow: the shadow's value or L{_MISSING}.
    @return: the kind of difference, C{"descend"} when both are containers of the same type, or
        C{None} when they are equal leaves.
    """
    if shadow is _MISSING:
        return REMOVED
    if primary is _MISSING:
        return ADDED
    primary_type = json_type(primary)
    if primary_type != json_type(shadow):
        return TYPE
    if primary_type in ("object", "array"):
        return _DESCEND
    return None if primary == shadow else CHANGED


def _container_type(primary: object, shadow: object) -> str | None:
    """
    The fast way to see that two values are plain containers of the same type.

    @param primary: the primary's value.
    @param shadow: the shadow's value.
    @return: C{"object"} for two dicts, C{"array"} for two lists, else C{None}.
    """
    kind = type(primary)
    if kind is type(shadow):
        if kind is dict:
            return "object"
        if kind is list:
            return "array"
    return None


def _append_difference(
    result: DiffList, kind: str, primary: object, shadow: object, path: _Path | None, limit: int
) -> bool:
    """
    Add one difference unless the bound is reached.

    @param result: the differences so far.
    @param kind: the kind of difference.
    @param primary: the primary's value or L{_MISSING}.
    @param shadow: the shadow's value or L{_MISSING}.
    @param path: where it is.
    @param limit: the bound on the number of differences.
    @return: C{False} when the bound was reached (C{result} is then marked truncated).
    """
    if len(result) >= limit:
        result.truncated = True
        return False
    result.append(
        Difference(
            path=_pointer_of(path),
            kind=kind,
            primary=None if primary is _MISSING else primary,
            shadow=None if shadow is _MISSING else shadow,
            pattern=_pattern_of(path),
        )
    )
    return True


def diff_json(
    primary: object,
    shadow: object,
    ignore: IgnoreRules | None = None,
    max_differences: int = 100,
) -> DiffList:
    """
    Diff two decoded JSON documents structurally.

    Objects are compared key by key and arrays index by index (a longer array gives C{added} or
    C{removed} items at the end). A path on the ignore list, and everything below it, is skipped.
    The walk uses an explicit stack, so deep documents cannot exhaust Python's recursion limit.
    Equal subtrees of plain JSON values are recognised at C speed (see L{_identical_encoding}).

    @param primary: the primary's decoded body.
    @param shadow: the shadow's decoded body.
    @param ignore: paths to leave out.
    @param max_differences: stop after this many differences; the result then has C{truncated}
        set. C{0} answers only whether the documents differ, at the cost of finding one difference.
    @return: the differences in document order, as a L{DiffList} (a C{list} with C{truncated}).
    """
    result = DiffList()
    if (ignore is not None and ignore._root_ignored()) or _plainly_equal(primary, shadow):
        return result
    start = ignore._start() if ignore is not None else ()
    stack: list[tuple[object, object, _Path | None, _States]] = [(primary, shadow, None, start)]
    try_encoding = True
    while stack:
        p, s, path, states = stack.pop()
        json_type = _container_type(p, s)
        if json_type is None:
            kind = _leaf_difference(p, s)
            if kind is None:
                continue
            if kind != _DESCEND:
                if not _append_difference(result, kind, p, s, path, max_differences):
                    break
                continue
            json_type = json_type(p)
        if try_encoding:
            identical = _identical_encoding(p, s)
            if identical:
                continue
            try_encoding = identical is not None
        for key, is_index, p_child, s_child in reversed(_differing_children(p, s, json_type)):
            child_states: _States = ()
            if states:
                child_states, ignored = IgnoreRules._step(states, str(key))
                if ignored:
                    continue
            stack.append((p_child, s_child, _Path(path, key, is_index), child_states))
    return result


# Learned noise


class NoiseLearner:
    """
    Learns which fields differ between two answers of the I{primary} to the same request (time
    stamps, ids, random order), so that the same fields differing in the shadow count as noise.

    A difference is noise when its pattern, or a pattern above it, was learned: if C{/meta}
    changed type between two primary answers, everything below C{/meta} is noise (and a learned
    C{""}, a whole body that differs, makes every body difference noise).

    L{is_noise} may run in a diff thread while L{learn} runs in another: readers never iterate the
    live table, so the GIL is enough. Patterns are never forgotten; build a new learner to start
    over (for instance when the configuration is reloaded).

    @ivar max_patterns: at most this many patterns are kept; new ones beyond are dropped.
    @ivar samples: how many pairs of primary answers were learned from.
    @ivar dropped: how many new patterns were not kept because the learner was full.
    """

    def __init__(self, max_patterns: int = 1000) -> None:
        """
        @param max_patterns: see L{NoiseLearner.max_patterns}.
        """
        self.max_patterns = max_patterns
        self.samples = 0
        self.dropped = 0
        self._counts: dict[str, int] = {}

    def learn(
        self, primary_a: object, primary_b: object, ignore: IgnoreRules | None = None
    ) -> list[str]:
        """
        Record the fields that differ between two answers of the primary.

        @param primary_a: the first decoded body, or a L{ResponseView}.
        @param primary_b: the second decoded body, or a L{ResponseView}. Two L{ResponseView}s are
            compared like L{compare} compares bodies (JSON structurally, otherwise raw bytes), so
            a no-op endpoint whose bytes differ between calls learns C{""}: its whole body is
            noise.
        @param ignore: paths that are ignored anyway and need no learning.
        @return: the patterns learned by this call that were not known before.
        """
        self.samples += 1
        if isinstance(primary_a, ResponseView) and isinstance(primary_b, ResponseView):
            differences, _ = _body_differences(primary_a, primary_b, ignore, self.max_patterns)
        else:
            differences = diff_json(primary_a, primary_b, ignore, self.max_patterns)
        new = []
        for difference in differences:
            if self._add(difference.pattern):
                new.append(difference.pattern)
        return new

    def _add(self, pattern: str) -> bool:
        """
        Count one noisy pattern.

        @param pattern: a generalized path.
        @return: whether the pattern is new.
        """
        if pattern in self._counts:
            self._counts[pattern] += 1
            return False
        if len(self._counts) >= self.max_patterns:
            self.dropped += 1
            return False
        self._counts[pattern] = 1
        return True

    def is_noise(self, difference: Difference) -> bool:
        """
        @param difference: a difference between the primary and a shadow.
        @return: whether its pattern or one above it was learned as noise.
        """
        if not self._counts:
            return False
        return any(pattern in self._counts for pattern in _ancestors(difference.pattern))

    def noise_paths(self) -> list[str]:
        """
        @return: the learned patterns, sorted.
        """
        return sorted(self._counts.copy())

    def counts(self) -> dict[str, int]:
        """
        @return: how often each learned pattern differed between primary answers.
        """
        return self._counts.copy()


# Response comparison


def _lower_headers(headers: Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """
    Index headers by lower-case name.

    @param headers: names to lists of values, in any case; two spellings of one name are merged.
    @return: lower-case names to lists of values.
    """
    result: dict[str, list[str]] = {}
    for name, values in (headers or {}).items():
        if isinstance(values, (str, bytes)):
            values = [values]
        result.setdefault(name.lower(), []).extend(values)
    return result


@dataclass
class ResponseView:
    """
    What the comparison needs from one answer.

    @ivar status: the HTTP status, C{None} when there was no answer.
    @ivar headers: header names (any case) to lists of values.
    @ivar body: the decoded JSON body, or C{None} when the body is not JSON (or was not decoded).
        A body that is literally C{null} therefore counts as not JSON and is compared by its raw
        bytes, which gives the same verdict.
    @ivar raw: the body's bytes, for non-JSON answers and no-op endpoints; C{None} if not kept.
    @ivar error: why there is no answer (timeout, refused, ...), else C{None}.
    """

    status: int | None = None
    headers: Mapping[str, Sequence[str]] = field(default_factory=dict)
    body: object = None
    raw: bytes | None = None
    error: str | None = None

    def header(self, name: str) -> list[str]:
        """
        @param name: a header name, in any case.
        @return: all its values, C{[]} when absent.
        """
        return _lower_headers(self.headers).get(name.lower(), [])


@dataclass
class Comparison:
    """
    The verdict on one primary/shadow pair.

    @ivar result: C{"mismatch"} when the status, a compared header or a body field differs (or one
        side failed), C{"noise"} when the only differences are learned noise, else C{"match"}.
    @ivar differences: body differences that count as mismatches.
    @ivar noise_differences: body differences that are learned noise.
    @ivar status_differs: whether the statuses differ (only when status is compared).
    @ivar header_differences: the compared header names whose values differ, as configured.
    @ivar truncated: whether the body diff stopped at its bound before the end.
    """

    result: str
    differences: list[Difference] = field(default_factory=list)
    noise_differences: list[Difference] = field(default_factory=list)
    status_differs: bool = False
    header_differences: list[str] = field(default_factory=list)
    truncated: bool = False


def _body_of(view: ResponseView) -> object:
    """
    @param view: an answer.
    @return: its decoded body, else its raw bytes, else C{None}.
    """
    return view.body if view.body is not None else view.raw


def _body_differences(
    primary: ResponseView,
    shadow: ResponseView,
    ignore: IgnoreRules | None,
    max_differences: int,
) -> tuple[list[Difference], bool]:
    """
    Compare two bodies: JSON structurally, otherwise raw bytes.

    @param primary: the primary's answer.
    @param shadow: the shadow's answer.
    @param ignore: paths to leave out of a JSON diff.
    @param max_differences: bound of the JSON diff.
    @return: the differences and whether the diff was truncated. Bytes that differ give one
        C{changed} difference at C{""}; a JSON body against a body that cannot be compared with it
        (no raw bytes on both sides) gives one C{type} difference at C{""}.
    """
    if primary.body is not None and shadow.body is not None:
        found = diff_json(primary.body, shadow.body, ignore, max_differences)
        return list(found), found.truncated
    if primary.raw is not None and shadow.raw is not None:
        if bytes(primary.raw) == bytes(shadow.raw):
            return [], False
        return [Difference("", CHANGED, primary.raw, shadow.raw, "")], False
    primary_body, shadow_body = _body_of(primary), _body_of(shadow)
    if primary_body is None and shadow_body is None:
        return [], False
    return [Difference("", TYPE, primary_body, shadow_body, "")], False


def _header_differences(
    primary: ResponseView, shadow: ResponseView, names: Sequence[str]
) -> list[str]:
    """
    @param primary: the primary's answer.
    @param shadow: the shadow's answer.
    @param names: header names to compare, in any case.
    @return: the names whose value lists differ (a missing header is an empty list).
    """
    primary_headers = _lower_headers(primary.headers)
    shadow_headers = _lower_headers(shadow.headers)
    return [
        name
        for name in names
        if primary_headers.get(name.lower(), []) != shadow_headers.get(name.lower(), [])
    ]


def _error_comparison(primary: ResponseView, shadow: ResponseView) -> Comparison:
    """
    The verdict when at least one side has no answer.

    @param primary: the primary's answer.
    @param shadow: the shadow's answer.
    @return: C{"match"} when both failed (there is nothing to compare), else a C{"mismatch"} with
        one C{changed} difference at C{""} whose values are the error texts.
    """
    if primary.error is not None and shadow.error is not None:
        return Comparison(MATCH)
    failure = Difference("", CHANGED, primary.error, shadow.error, "")
    return Comparison(MISMATCH, differences=[failure])


def compare(
    primary: ResponseView,
    shadow: ResponseView,
    *,
    status: bool = True,
    body: bool = True,
    headers: Sequence[str] = (),
    ignore: IgnoreRules | None = None,
    noise: NoiseLearner | None = None,
    max_differences: int = 100,
) -> Comparison:
    """
    Compare a shadow's answer with the primary's.

    When either side has an C{error}, nothing else is compared (see L{_error_comparison}).

    @param primary: the primary's answer.
    @param shadow: the shadow's answer.
    @param status: compare the statuses.
    @param body: compare the bodies: a structural diff when both are decoded JSON, else their raw
        bytes.
    @param headers: response header names to compare; names are case-insensitive, values are
        compared as lists.
    @param ignore: body paths to leave out.
    @param noise: learned noise; matching body differences go to C{noise_differences}.
    @param max_differences: bound of the body diff.
    @return: the verdict.
    """
    if primary.error is not None or shadow.error is not None:
        return _error_comparison(primary, shadow)
    status_differs = status and primary.status != shadow.status
    header_differences = _header_differences(primary, shadow, headers)
    found: list[Difference] = []
    truncated = False
    if body:
        found, truncated = _body_differences(primary, shadow, ignore, max_differences)
    real, noisy = _split_noise(found, noise)
    if status_differs or header_differences or real:
        result = MISMATCH
    elif noisy:
        result = NOISE
    else:
        result = MATCH
    return Comparison(result, real, noisy, status_differs, header_differences, truncated)


def _split_noise(
    differences: list[Difference], noise: NoiseLearner | None
) -> tuple[list[Difference], list[Difference]]:
    """
    @param differences: body differences.
    @param noise: learned noise, or C{None}.
    @return: the real differences and the noisy ones.
    """
    if noise is None:
        return differences, []
    real: list[Difference] = []
    noisy: list[Difference] = []
    for difference in differences:
        (noisy if noise.is_noise(difference) else real).append(difference)
    return real, noisy
