"""
Backend response manipulation: KrakenD's entity formatter and C{flatmap_filter}.

L{format_backend} is lura's C{proxy/formatter.go}: target, then allow or deny, then mapping,
then group; or target, flatmap operations, group when a flatmap filter is configured.
L{apply_flatmap} is the krakend/flatmap C{tree} package that runs those operations (also used
at endpoint level after a merge).  See C{docs/krakend-behaviour.md} sections 3.4 and 3.5.

Nothing here mutates its input.  The formatter's result may share untouched sub-objects with
the input, so treat both as read-only; flatmap results are built from scratch.

This module is pure: no Twisted, no I/O.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

__all__ = ["format_backend", "apply_flatmap", "validate_flatmap", "FLATMAP_TYPES"]

FLATMAP_TYPES = ("move", "del", "append")

_WILDCARD = "*"


# ---------------------------------------------------------------------------------------------
# Entity formatter (target, allow, deny, mapping, group)


def _extract_target(data: Dict[str, Any], target: str) -> Dict[str, Any]:
    for part in target.split("."):
        value = data.get(part)
        if not isinstance(value, dict):
            return {}
        data = value
    return data


def _build_allow_tree(paths: Sequence[str]) -> Dict[str, Any]:
    """
    lura's C{buildDictPath}: leaves are C{True}.  A later, longer path replaces an earlier leaf
    (C{["a", "a.b"]} keeps only C{a.b}); a later, shorter one replaces a subtree.
    """
    tree: Dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node = tree
        depth = 0
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                break
            node = child
            depth += 1
        for part in parents[depth:]:
            node[part] = {}
            node = node[part]
        node[leaf] = True
    return tree


def _allow(tree: Dict[str, Any], data: Dict[str, Any]) -> Dict[str, Any]:
    """
    lura's C{AllowlistPrune}: a leaf keeps its whole value; a branch keeps an object only if
    something below it survives; anything else (arrays included) is dropped.
    """
    kept: Dict[str, Any] = {}
    for key, value in data.items():
        if key not in tree:
            continue
        rule = tree[key]
        if rule is True:
            kept[key] = value
        elif isinstance(value, dict):
            below = _allow(rule, value)
            if below:
                kept[key] = below
    return kept


def _build_deny_tree(paths: Sequence[str]) -> Dict[str, Any]:
    """
    lura's C{buildDenyTree}: C{None} marks a key to delete, which also swallows any deeper
    path under it, whatever the order.
    """
    tree: Dict[str, Any] = {}
    for path in paths:
        *parents, leaf = path.split(".")
        node: Optional[Dict[str, Any]] = tree
        for part in parents:
            if part not in node:
                node[part] = {}
            node = node[part]
            if node is None:
                break
        if node is not None:
            node[leaf] = None
    return tree


def _deny(tree: Dict[str, Any], data: Dict[str, Any]) -> Dict[str, Any]:
    """
    lura's C{recDelete}, copy-on-write: returns C{data} itself when nothing was removed.
    """
    result = data
    for key, rule in tree.items():
        if key not in data:
            continue
        if rule is None:
            if result is data:
                result = dict(data)
            del result[key]
            continue
        child = data[key]
        if isinstance(child, dict):
            pruned = _deny(rule, child)
            if pruned is not child:
                if result is data:
                    result = dict(data)
                result[key] = pruned
    return result


def _apply_mapping(data: Dict[str, Any], mapping: Mapping[str, str]) -> Dict[str, Any]:
    result = dict(data)
    for old, new in mapping.items():
        new = new.split(".")[0]
        if old in result:
            value = result[old]
            # Same order as lura: set, then delete, so mapping a key to itself removes it.
            result[new] = value
            del result[old]
    return result


def format_backend(
    data: Dict[str, Any],
    *,
    target: str = "",
    allow: Sequence[str] = (),
    deny: Sequence[str] = (),
    mapping: Optional[Mapping[str, str]] = None,
    group: str = "",
    flatmap: Optional[Sequence[Mapping[str, Any]]] = None,
) -> Dict[str, Any]:
    """
    Format a decoded backend response as lura's entity formatter does.

    Order: C{target} -> C{allow} (or C{deny} when C{allow} is empty) -> C{mapping} -> C{group}.

      - C{target}: follow the dot path through objects; a missing or non-object step gives C{{}}.
      - C{allow}: dot paths; a leaf keeps its whole value, a parent survives only if something
        below it does, arrays are not traversed (C{a.b} with C{a} an array drops C{a}).
      - C{deny}: dot paths through objects; missing keys are ignored.
      - C{mapping}: renames top-level keys; the new name is cut at its first C{.}.  Renames run
        in the mapping's order (Go's order is random, so chained renames are undefined there).
      - C{group}: wraps the result, even an empty one.

    A C{flatmap} with at least one operation that has a string C{type} replaces allow, deny and
    mapping: C{target} -> L{apply_flatmap} -> C{group}.  An empty or wholly malformed C{flatmap}
    is ignored, as in lura.

    @param data: the decoded response.
    @param target: the backend C{target}.
    @param allow: the backend C{allow} list.
    @param deny: the backend C{deny} list.
    @param mapping: the backend C{mapping} (old name -> new name).
    @param group: the backend C{group}.
    @param flatmap: the backend's C{extra_config.proxy.flatmap_filter}.
    @return: a new dict.
    """
    if target:
        data = _extract_target(data, target)
    operations = _parse_operations(flatmap) if flatmap is not None else []
    if operations:
        data = _run_operations(data, operations)
    else:
        if data and allow:
            data = _allow(_build_allow_tree(allow), data)
        elif data and deny:
            data = _deny(_build_deny_tree(deny), data)
        if data and mapping:
            data = _apply_mapping(data, mapping)
    if group:
        return {group: dict(data)}
    return dict(data)


# ---------------------------------------------------------------------------------------------
# flatmap: a port of krakend/flatmap's tree package.
#
# The data is exploded into a tree whose edges are object keys or array indexes ("0", "1", ...);
# operations relabel, cut and graft edges, and the tree is expanded back at the end.  Quirks of
# the Go code are kept on purpose (they decide what KrakenD returns):
#   - an object or array that loses all its children expands to null, not {} or [];
#   - a move whose source and destination have the same number of segments only relabels the
#     last segment (the destination's other segments are ignored);
#   - a move to a shorter path walks the destination from the root, substituting "*" with the
#     source's index, and stops at the first missing segment, grafting there;
#   - a move to a longer path ignores the destination's first len(source)-1 segments and builds
#     the rest below the source's parent;
#   - a later edge with the same label wins when an object is expanded.
# Go explodes objects in random key order; here insertion order is used, so those results are
# deterministic.


class _Node:
    __slots__ = ("value", "is_collection", "edges")

    def __init__(self) -> None:
        self.value: Any = None
        self.is_collection = False
        self.edges: List[_Edge] = []

    def child(self, label: str) -> Optional[_Node]:
        for edge in self.edges:
            if edge.label == label:
                return edge.node
        return None

    def flatten(self, value: Any) -> None:
        """
        Explode C{value} into this node (merging with existing children, as C{Append} needs).
        """
        if isinstance(value, dict):
            self.is_collection = False
            if not value:
                self.value = {}
                return
            items: Any = value.items()
        elif isinstance(value, (list, tuple)):
            self.is_collection = True
            if not value:
                self.value = []
                return
            items = ((str(index), item) for index, item in enumerate(value))
        else:
            self.is_collection = False
            self.value = value
            return
        existing = {}
        for edge in self.edges:
            existing.setdefault(edge.label, edge)
        for label, item in items:
            edge = existing.get(label)
            if edge is None:
                edge = _Edge(label, _Node())
                self.edges.append(edge)
                existing[label] = edge
            edge.node.flatten(item)

    def add(self, path: Sequence[str], value: Any) -> None:
        node = self
        for label in path:
            child = node.child(label)
            if child is None:
                child = _Node()
                node.edges.append(_Edge(label, child))
            node = child
        node.flatten(value)

    def get(self, path: Sequence[str], start: int = 0) -> Any:
        node = self
        index = start
        while True:
            if not node.edges and index < len(path):
                return None
            if index == len(path):
                return node.expand()
            label = path[index]
            if label == _WILDCARD:
                return [edge.node.get(path, index + 1) for edge in node.edges]
            child = node.child(label)
            if child is None:
                return None
            node = child
            index += 1

    def expand(self) -> Any:
        if not self.edges:
            return self.value
        if self.is_collection:
            return [edge.node.expand() for edge in self.edges]
        return {edge.label: edge.node.expand() for edge in self.edges}

    def delete(self, path: Sequence[str], start: int = 0) -> None:
        if start >= len(path) or not self.edges:
            return
        label = path[start]
        last = start == len(path) - 1
        if label == _WILDCARD:
            if last:
                self.edges = []
            else:
                for edge in self.edges:
                    edge.node.delete(path, start + 1)
            return
        for position, edge in enumerate(self.edges):
            if edge.label == label:
                if last:
                    del self.edges[position]
                else:
                    edge.node.delete(path, start + 1)
                return


class _Edge:
    __slots__ = ("label", "node")

    def __init__(self, label: str, node: _Node) -> None:
        self.label = label
        self.node = node


# A matched node and the labels leading to it.
_Candidate = Tuple[_Node, List[str]]


def _move_candidates(root: _Node, steps: Sequence[str]) -> List[_Candidate]:
    candidates: List[_Candidate] = [(root, [])]
    for step in steps:
        found: List[_Candidate] = []
        for node, path in candidates:
            for edge in node.edges:
                if step == _WILDCARD or edge.label == step:
                    found.append((edge.node, path + [edge.label]))
                    if step != _WILDCARD:
                        break
        candidates = found
    return candidates


def _move(root: _Node, source: Sequence[str], destination: Sequence[str]) -> None:
    depth = len(source)
    relabel = depth == len(destination)
    moved: List[Tuple[_Node, List[str], _Edge]] = []
    for parent, path in _move_candidates(root, source[:-1]):
        for position, edge in enumerate(parent.edges):
            if edge.label != source[-1]:
                continue
            if relabel:
                edge.label = destination[-1]
            else:
                moved.append((parent, path, edge))
                del parent.edges[position]
            break
    if relabel:
        return
    if depth > len(destination):
        _promote(root, moved, destination)
    else:
        _embed(moved, destination[depth - 1 :])


def _promote(
    root: _Node, moved: List[Tuple[_Node, List[str], _Edge]], destination: Sequence[str]
) -> None:
    for _, path, edge in moved:
        parent = root
        for index, step in enumerate(destination[:-1]):
            label = path[index] if step == _WILDCARD else step
            child = parent.child(label)
            if child is None:
                break
            parent = child
        edge.label = destination[-1]
        parent.edges.append(edge)


def _embed(moved: List[Tuple[_Node, List[str], _Edge]], destination: Sequence[str]) -> None:
    for parent, _, edge in moved:
        node = parent
        for label in destination[:-1]:
            child = node.child(label)
            if child is None:
                child = _Node()
                node.edges.append(_Edge(label, child))
            node = child
        edge.label = destination[-1]
        node.edges.append(edge)


def _append(root: _Node, source: Sequence[str], destination: Sequence[str]) -> None:
    appended = root.get(source)
    if not isinstance(appended, list):
        return
    existing = root.get(destination)
    if not isinstance(existing, list):
        return
    root.add(destination, existing + appended)
    root.delete(source)


# An operation as lura parses it: its type and each argument split on ".", or None for an
# argument that is not a string.
_Operation = Tuple[str, Optional[List[Optional[List[str]]]]]


def _parse_operations(ops: Any) -> List[_Operation]:
    """
    lura's C{newFlatmapFormatter}: keep every object whose C{type} is a string.
    """
    if not isinstance(ops, (list, tuple)):
        return []
    parsed: List[_Operation] = []
    for op in ops:
        if not isinstance(op, Mapping) or not isinstance(op.get("type"), str):
            continue
        args = op.get("args")
        split: Optional[List[Optional[List[str]]]] = None
        if isinstance(args, (list, tuple)):
            split = [arg.split(".") if isinstance(arg, str) else None for arg in args]
        parsed.append((op["type"], split))
    return parsed


def _run_operations(data: Dict[str, Any], operations: List[_Operation]) -> Dict[str, Any]:
    root = _Node()
    root.flatten(data)
    for kind, args in operations:
        args = args or []
        if kind == "del":
            for path in args:
                if path is not None:
                    root.delete(path)
        elif kind in ("move", "append"):
            # Go indexes args[0] and args[1] blindly and panics when they are missing; here such
            # an operation is skipped (validate_flatmap reports it).
            if len(args) < 2 or args[0] is None or args[1] is None:
                continue
            if kind == "move":
                _move(root, args[0], args[1])
            else:
                _append(root, args[0], args[1])
        # Unknown types are ignored, as in lura.
    result = root.expand()
    # Go asserts the result to a map; anything else (e.g. null after deleting everything)
    # becomes a nil map, which the gateway treats as empty.
    return result if isinstance(result, dict) else {}


def apply_flatmap(data: Dict[str, Any], ops: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """
    Run KrakenD C{flatmap_filter} operations on C{data}.

    Operations run in order.  Paths are dot paths; C{*} matches every array index (or object
    key) at its level, and array indexes can be named (C{items.0.id}).

      - C{{"type": "move", "args": [from, to]}}: move or rename.  E.g. C{collection -> paths},
        or C{paths.*.path -> paths.*.url} to rename inside every element.
      - C{{"type": "del", "args": [path, ...]}}: delete each path.
      - C{{"type": "append", "args": [from, to]}}: when both are arrays, append C{from}'s
        elements to C{to} and delete C{from}; otherwise nothing happens.

    Semantics follow krakend/flatmap exactly, including its quirks (listed in this module's
    source): e.g. an object whose keys are all deleted becomes C{null}.  Malformed operations
    are skipped; see L{validate_flatmap}.

    @param data: the response data.
    @param ops: the C{flatmap_filter} list.
    @return: a new dict.
    """
    operations = _parse_operations(ops)
    if not operations:
        return dict(data)
    return _run_operations(data, operations)


def _describe(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def _validate_operation(index: int, op: Any) -> List[str]:
    where = f"flatmap_filter[{index}]"
    if not isinstance(op, Mapping):
        return [f"{where}: operation must be an object, got {_describe(op)}"]
    kind = op.get("type")
    if not isinstance(kind, str):
        return [f"{where}: 'type' must be a string, got {_describe(kind)}"]
    if kind not in FLATMAP_TYPES:
        return [f"{where}: unknown type {kind!r} (expected move, del or append)"]
    args = op.get("args")
    if not isinstance(args, (list, tuple)):
        return [f"{where}: {kind} needs 'args' as a list, got {_describe(args)}"]
    problems = []
    if kind in ("move", "append") and len(args) != 2:
        problems.append(f"{where}: {kind} needs 2 args, got {len(args)}")
    if kind == "del" and not args:
        problems.append(f"{where}: del needs at least 1 arg")
    for position, arg in enumerate(args):
        if not isinstance(arg, str):
            problems.append(f"{where}: args[{position}] must be a string, got {_describe(arg)}")
        elif not arg:
            problems.append(f"{where}: args[{position}] is an empty path")
    if kind == "move" and args and isinstance(args[0], str) and args[0].split(".")[-1] == _WILDCARD:
        problems.append(f"{where}: move source {args[0]!r} ends with '*' and never matches")
    return problems


def validate_flatmap(ops: object) -> List[str]:
    """
    Check a C{flatmap_filter} value for configuration validation.

    @param ops: the configured value.
    @return: human-readable problems, e.g. C{"flatmap_filter[0]: unknown type 'mov' (expected
        move, del or append)"} or C{"flatmap_filter[1]: move needs 2 args, got 1"}; empty when
        the value is fine.
    """
    if not isinstance(ops, (list, tuple)):
        return [f"flatmap_filter must be a list of operations, got {_describe(ops)}"]
    problems: List[str] = []
    for index, op in enumerate(ops):
        problems.extend(_validate_operation(index, op))
    return problems


_RESPONSE_PLACEHOLDER = re.compile(r"\{(resp(\d+)_([^{}]+))\}")


def go_value_text(value: Any) -> str:
    """
    A decoded value as KrakenD prints it into a sequential C{{respN_field}} placeholder:
    strings as they are, numbers as their literal text, booleans as C{true}/C{false}, arrays
    comma-joined, C{null} as C{<nil>}, objects as Go's C{map[k:v ...]}.

    @param value: a decoded JSON value.
    @return: the text placed in the URL.
    """
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(go_value_text(item) for item in value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_value_text(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def sequential_params(url_pattern: str, answers: Sequence[Optional[Dict[str, Any]]]) -> Dict[str, str]:
    """
    The values of a sequential backend's C{{respN_field}} placeholders (C{{resp0_a.b}} is field
    C{a.b} of backend 0's formatted answer). Missing fields are left out, so their placeholders
    stay literal, as in KrakenD.

    @param url_pattern: the later backend's C{url_pattern}.
    @param answers: the formatted data of the earlier backends by index (C{None} if absent).
    @return: placeholder name to text.
    """
    params: Dict[str, str] = {}
    for name, index, path in _RESPONSE_PLACEHOLDER.findall(url_pattern):
        position = int(index)
        value: Any = answers[position] if position < len(answers) else None
        found = value is not None
        for step in path.split("."):
            if not found or not isinstance(value, dict) or step not in value:
                found = False
                break
            value = value[step]
        if found:
            params[name] = go_value_text(value)
    return params
