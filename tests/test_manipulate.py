"""
Tests for L{shadowtwist.manipulate}: lura's entity formatter (section 3.4) and KrakenD's
C{flatmap_filter} (section 3.5), checked against the upstream Go tests where they exist.
"""

from __future__ import annotations

import copy
from typing import Any, Dict, List

from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.encoding import JSONNumber, dumps, loads
from shadowtwist.manipulate import apply_flatmap, format_backend, validate_flatmap


def op(kind: str, *args: Any) -> Dict[str, Any]:
    """
    Build one C{flatmap_filter} operation.
    """
    return {"type": kind, "args": list(args)}


class FormatterTestMixin:
    """
    Runs L{format_backend} and checks that it never mutates its input.
    """

    def assertFormats(self, data: Dict[str, Any], expected: Dict[str, Any], **options: Any) -> None:
        """
        Assert that formatting C{data} with C{options} gives C{expected} and leaves C{data} as
        it was.
        """
        before = copy.deepcopy(data)
        result = format_backend(data, **options)
        self.assertEqual(result, expected, f"{data} with {options}")  # type: ignore[attr-defined]
        self.assertEqual(data, before, "input was mutated")  # type: ignore[attr-defined]
        self.assertIsNot(result, data)  # type: ignore[attr-defined]


class TargetTests(FormatterTestMixin, SynchronousTestCase):
    """
    C{target} follows a dot path through objects.
    """

    def test_target(self) -> None:
        """
        A path through objects selects that object; a missing or non-object step gives C{{}}.
        """
        data = {"data": {"user": {"id": 1}, "list": [1], "n": 3}, "other": True}
        cases = [
            ("data", {"user": {"id": 1}, "list": [1], "n": 3}),
            ("data.user", {"id": 1}),
            ("data.list", {}),
            ("data.n", {}),
            ("data.missing", {}),
            ("nope", {}),
            ("data.user.id", {}),
        ]
        for target, expected in cases:
            self.assertFormats(data, expected, target=target)


class AllowTests(FormatterTestMixin, SynchronousTestCase):
    """
    C{allow} keeps only the listed dot paths.
    """

    def test_allow(self) -> None:
        """
        A leaf keeps its whole subtree; parents survive only if something below does; arrays
        are not traversed; when nothing survives the result is C{{}}.
        """
        data = {
            "a": {"b": {"deep": [1, 2]}, "c": 2},
            "arr": [{"x": 1}, {"x": 2}],
            "empty": {},
            "n": JSONNumber("1.50"),
        }
        cases = [
            (["a.b"], {"a": {"b": {"deep": [1, 2]}}}),
            (["a"], {"a": {"b": {"deep": [1, 2]}, "c": 2}}),
            (["a.b.deep", "n"], {"a": {"b": {"deep": [1, 2]}}, "n": JSONNumber("1.50")}),
            (["arr.x"], {}),
            (["arr"], {"arr": [{"x": 1}, {"x": 2}]}),
            (["a.missing"], {}),
            (["empty.x"], {}),
            (["empty"], {"empty": {}}),
            (["zzz"], {}),
        ]
        for allow, expected in cases:
            self.assertFormats(data, expected, allow=allow)

    def test_laterPathsRefineEarlierLeaves(self) -> None:
        """
        As in lura's C{buildDictPath}, a longer path listed after a shorter one narrows it,
        while a shorter one listed after a longer one widens it again.
        """
        data = {"a": {"b": 1, "c": 2}}
        self.assertFormats(data, {"a": {"b": 1}}, allow=["a", "a.b"])
        self.assertFormats(data, {"a": {"b": 1, "c": 2}}, allow=["a.b", "a"])

    def test_allowWinsOverDeny(self) -> None:
        """
        When both are set only C{allow} applies.
        """
        self.assertFormats({"a": 1, "b": 2}, {"a": 1}, allow=["a"], deny=["a"])


class DenyTests(FormatterTestMixin, SynchronousTestCase):
    """
    C{deny} removes the listed dot paths.
    """

    def test_deny(self) -> None:
        """
        Paths go through objects only; missing keys are ignored; emptied objects stay as C{{}}.
        """
        data = {"a": {"b": {"c": 1, "d": 2}, "e": 3}, "arr": [{"x": 1}], "f": 4}
        cases = [
            (["f"], {"a": {"b": {"c": 1, "d": 2}, "e": 3}, "arr": [{"x": 1}]}),
            (["a.b.c"], {"a": {"b": {"d": 2}, "e": 3}, "arr": [{"x": 1}], "f": 4}),
            (["a.b", "a.e"], {"a": {}, "arr": [{"x": 1}], "f": 4}),
            (["arr.x"], data),
            (["missing", "a.missing.deeper", "f.g"], data),
            (["a", "a.b.c"], {"arr": [{"x": 1}], "f": 4}),
            (["a.b.c", "a"], {"arr": [{"x": 1}], "f": 4}),
        ]
        for deny, expected in cases:
            self.assertFormats(data, expected, deny=deny)


class MappingAndGroupTests(FormatterTestMixin, SynchronousTestCase):
    """
    C{mapping} renames top-level keys and C{group} wraps the result.
    """

    def test_mapping(self) -> None:
        """
        Only top-level keys are renamed; the new name is cut at its first dot; missing keys
        are ignored; a key mapped to itself disappears (lura sets, then deletes).
        """
        data = {"a": 1, "b": {"c": 2}}
        cases = [
            ({"a": "x"}, {"x": 1, "b": {"c": 2}}),
            ({"a": "x.y.z"}, {"x": 1, "b": {"c": 2}}),
            ({"b.c": "x"}, data),
            ({"missing": "x"}, data),
            ({"a": "b"}, {"b": 1}),
            ({"a": "a"}, {"b": {"c": 2}}),
        ]
        for mapping, expected in cases:
            self.assertFormats(data, expected, mapping=mapping)

    def test_groupWrapsEvenWhenEmpty(self) -> None:
        """
        C{group} wraps the data, including an empty result (C{{"g": {}}}).
        """
        self.assertFormats({"a": 1}, {"g": {"a": 1}}, group="g")
        self.assertFormats({}, {"g": {}}, group="g")
        self.assertFormats({"a": 1}, {"g": {}}, group="g", allow=["nothing"])
        self.assertFormats({"a": 1}, {"g": {}}, group="g", target="missing")

    def test_order(self) -> None:
        """
        The steps run as target, allow, mapping, group.
        """
        data = {"data": {"id": 7, "name": "n", "secret": "s"}, "meta": 1}
        self.assertFormats(
            data,
            {"user": {"identifier": 7, "name": "n"}},
            target="data",
            allow=["id", "name"],
            mapping={"id": "identifier"},
            group="user",
        )
        self.assertFormats(
            data,
            {"user": {"identifier": 7, "name": "n"}},
            target="data",
            deny=["secret"],
            mapping={"id": "identifier"},
            group="user",
        )

    def test_noOptionsCopies(self) -> None:
        """
        Without options the result equals the input but is a new dict.
        """
        self.assertFormats({"a": [1]}, {"a": [1]})

    def test_numbersKeepTheirText(self) -> None:
        """
        Formatting never touches values, so number literals survive to the output.
        """
        data = loads(b'{"data":{"price":19.990,"skip":1e5}}')
        result = format_backend(data, target="data", deny=["skip"], group="g")
        self.assertEqual(dumps(result), b'{"g":{"price":19.990}}')


class FlatmapFormatterTests(FormatterTestMixin, SynchronousTestCase):
    """
    A C{flatmap_filter} on a backend replaces allow, deny and mapping.
    """

    def test_replacesAllowDenyMapping(self) -> None:
        """
        With flatmap ops, C{target} and C{group} still apply but allow, deny and mapping don't.
        """
        data = {"res": {"collection": [{"i": 1, "v": "a"}], "x": 1}}
        self.assertFormats(
            data,
            {"g": {"items": [{"v": "a"}], "x": 1}},
            target="res",
            allow=["x"],
            deny=["x"],
            mapping={"x": "y"},
            group="g",
            flatmap=[op("move", "collection", "items"), op("del", "items.*.i")],
        )

    def test_emptyFlatmapIgnored(self) -> None:
        """
        An empty list, or one without any operation that has a string type, is ignored and
        the normal filters run, as in lura.
        """
        for flatmap in ([], [{"args": ["a"]}, "junk", {"type": 3}]):
            self.assertFormats({"a": 1, "b": 2}, {"a": 1}, allow=["a"], flatmap=flatmap)

    def test_unknownTypeStillDisablesFilters(self) -> None:
        """
        An operation with an unknown type does nothing, but it still switches the backend to
        the flatmap formatter, so allow is not applied.
        """
        self.assertFormats({"a": 1, "b": 2}, {"a": 1, "b": 2}, allow=["a"], flatmap=[op("mov", "a", "c")])


class FlatmapMoveTests(SynchronousTestCase):
    """
    C{move}, with the cases of krakend/flatmap's C{TestTree_Move}.
    """

    def assertMoves(self, data: Dict[str, Any], source: str, destination: str, expected: Any) -> None:
        """
        Assert that one move gives C{expected} and leaves C{data} untouched.
        """
        before = copy.deepcopy(data)
        result = apply_flatmap(data, [op("move", source, destination)])
        self.assertEqual(result, expected, f"{source} -> {destination}")
        self.assertEqual(data, before)

    def test_upstreamCases(self) -> None:
        """
        Renames, embedding, extraction and wildcard moves match the Go library's tests.
        """
        self.assertMoves({"a": 42}, "a", "b", {"b": 42})
        self.assertMoves({"a": 1, "b": {"a": 42}}, "b.a", "b.c", {"a": 1, "b": {"c": 42}})
        self.assertMoves(
            {"a": 1, "b": {"a": 42}},
            "b.a",
            "b.b.a.b.a.b.c",
            {"a": 1, "b": {"b": {"a": {"b": {"a": {"b": {"c": 42}}}}}}},
        )
        self.assertMoves({"a": 1, "b": {"a": 42}}, "b.a", "c", {"a": 1, "b": None, "c": 42})
        self.assertMoves(
            {"c": 42, "b": {"first": {"c": {"d": 42}}, "last": {"m": 42, "c": {"d": 42}}}},
            "b.*.c",
            "b.*.x",
            {"c": 42, "b": {"first": {"x": {"d": 42}}, "last": {"m": 42, "x": {"d": 42}}}},
        )
        self.assertMoves(
            {"c": 42, "b": {"first": {"c": {"d": 42}}, "last": {"m": 42, "c": {"d": 42}}}},
            "b.*.c",
            "b.*.c.b.x",
            {
                "c": 42,
                "b": {
                    "first": {"c": {"b": {"x": {"d": 42}}}},
                    "last": {"m": 42, "c": {"b": {"x": {"d": 42}}}},
                },
            },
        )
        self.assertMoves(
            {"a": 42, "b": [{"c": 42}, {"c": {"d": 42}}]},
            "b.*.c",
            "b.*.x",
            {"a": 42, "b": [{"x": 42}, {"x": {"d": 42}}]},
        )
        self.assertMoves(
            {"a": 42, "b": {"a": 42, "bb": True, "b": {"a": 42}}},
            "b.b",
            "c",
            {"a": 42, "b": {"a": 42, "bb": True}, "c": {"a": 42}},
        )
        self.assertMoves(
            {"a": [{"b": [{"c": {"a": 1}, "aa": 1}, {"c": {"a": 2}, "aa": 1}], "aa": 1}]},
            "a.*.b.*.c",
            "a.*.b.*.x",
            {"a": [{"b": [{"x": {"a": 1}, "aa": 1}, {"x": {"a": 2}, "aa": 1}], "aa": 1}]},
        )

    def test_relabelIgnoresDestinationPrefix(self) -> None:
        """
        When source and destination have the same depth only the last segment is renamed, so
        C{a.b -> c.d} renames C{b} to C{d} inside C{a}.
        """
        self.assertMoves({"a": {"b": 1}}, "a.b", "c.d", {"a": {"d": 1}})

    def test_extractFromEveryElement(self) -> None:
        """
        Extracting C{*.field} to the root keeps only the last element's value (later edges win).
        """
        self.assertMoves({"l": [{"v": 1}, {"v": 2}]}, "l.*.v", "v", {"l": [None, None], "v": 2})

    def test_missingSourceIsNoop(self) -> None:
        """
        Moving something that does not exist changes nothing.
        """
        self.assertMoves({"a": 1}, "x.y", "z", {"a": 1})
        self.assertMoves({"a": 1}, "x", "y", {"a": 1})


class FlatmapDelAppendTests(SynchronousTestCase):
    """
    C{del} and C{append}, with the cases of krakend/flatmap's C{TestTree_Del} and
    C{TestTree_Append}.
    """

    def test_del(self) -> None:
        """
        Deletion by plain, nested and wildcard paths.
        """
        cases: List[Any] = [
            ({"supu": 42, "tupu": False}, "abc", {"supu": 42, "tupu": False}),
            ({"data": []}, "data.*.password", {"data": []}),
            ({"data": {}}, "data.*.password", {"data": {}}),
            ({"supu": 42, "tupu": False}, "supu", {"tupu": False}),
            ({"internal": {"supu": 42, "tupu": False}, "tupu": False}, "internal.supu",
             {"internal": {"tupu": False}, "tupu": False}),
            ({"a": {"first": {"supu": 42, "tupu": False}, "0": {"supu": 1, "tupu": True}}}, "a.*.supu",
             {"a": {"first": {"tupu": False}, "0": {"tupu": True}}}),
            ({"a": [{"a": {"a": {"a": 1}, "aa": 1}, "aa": 1}, {"a": 42, "aa": 1}], "tupu": False}, "a.*.a",
             {"a": [{"aa": 1}, {"aa": 1}], "tupu": False}),
            ({"a": [{"b": [{"c": 1, "aa": 1}, {"c": 2, "aa": 1}], "aa": 1}]}, "a.*.b.*.c",
             {"a": [{"b": [{"aa": 1}, {"aa": 1}], "aa": 1}]}),
            ({"a": [1, 2, 3]}, "a.1", {"a": [1, 3]}),
        ]
        for data, path, expected in cases:
            self.assertEqual(apply_flatmap(data, [op("del", path)]), expected, path)

    def test_delSeveralPaths(self) -> None:
        """
        One C{del} takes any number of paths.
        """
        self.assertEqual(apply_flatmap({"a": 1, "b": 2, "c": 3}, [op("del", "a", "c", "zz")]), {"b": 2})

    def test_emptiedContainersBecomeNull(self) -> None:
        """
        As in krakend/flatmap, an object or array that loses every child expands to null, and
        deleting every top-level key gives an empty result.
        """
        self.assertEqual(
            apply_flatmap({"o": {"x": 1}, "keep": 1}, [op("del", "o.x")]), {"o": None, "keep": 1}
        )
        self.assertEqual(apply_flatmap({"l": [1, 2]}, [op("del", "l.*")]), {"l": None})
        self.assertEqual(apply_flatmap({"a": 1}, [op("del", "a")]), {})

    def test_append(self) -> None:
        """
        C{append} adds the source array's items to the destination array and removes the
        source; it does nothing unless both are arrays.
        """
        cases: List[Any] = [
            ({"a": [42], "b": [1]}, "a", "b", {"b": [1, 42]}),
            ({"a": [{"x": 1}], "b": []}, "a", "b", {"b": [{"x": 1}]}),
            ({"a": [], "b": [1]}, "a", "b", {"b": [1]}),
            ({"a": {"l": [2, 3]}, "b": [1]}, "a.l", "b", {"a": None, "b": [1, 2, 3]}),
            ({"a": [1], "b": {"x": 1}}, "a", "b", {"a": [1], "b": {"x": 1}}),
            ({"a": 1, "b": [1]}, "a", "b", {"a": 1, "b": [1]}),
            ({"a": [1]}, "a", "missing", {"a": [1]}),
            ({"l": [{"v": 1}, {"v": 2}], "b": [0]}, "l.*.v", "b", {"l": [None, None], "b": [0, 1, 2]}),
        ]
        for data, source, destination, expected in cases:
            before = copy.deepcopy(data)
            self.assertEqual(apply_flatmap(data, [op("append", source, destination)]), expected, source)
            self.assertEqual(data, before)


class FlatmapSequenceTests(SynchronousTestCase):
    """
    Several operations run in order.
    """

    def test_behaviourDocExample(self) -> None:
        """
        Section 3.5's example: move C{collection} to C{paths}, delete C{paths.*.i}, rename
        C{paths.*.path} to C{paths.*.url}.
        """
        data = loads(b'{"collection":[{"i":1,"path":"/a","w":1.50},{"i":2,"path":"/b","w":2e3}]}')
        result = apply_flatmap(
            data,
            [
                op("move", "collection", "paths"),
                op("del", "paths.*.i"),
                op("move", "paths.*.path", "paths.*.url"),
            ],
        )
        self.assertEqual(dumps(result), b'{"paths":[{"url":"/a","w":1.50},{"url":"/b","w":2e3}]}')

    def test_malformedOperationsSkipped(self) -> None:
        """
        Operations Go would crash on (too few or non-string args) and unknown types are
        skipped; the valid ones still run.
        """
        ops = [
            op("move", "a"),
            {"type": "move", "args": "a b"},
            op("move", 1, "b"),
            {"type": "append"},
            op("rename", "a", "b"),
            "not an op",
            op("del", None, "b"),
            op("move", "a", "c"),
        ]
        self.assertEqual(apply_flatmap({"a": 1, "b": 2}, ops), {"c": 1})

    def test_noOperations(self) -> None:
        """
        Without any usable operation the data comes back as a new, equal dict.
        """
        data = {"a": {"b": []}}
        result = apply_flatmap(data, [])
        self.assertEqual(result, data)
        self.assertIsNot(result, data)

    def test_resultIsIndependent(self) -> None:
        """
        The flatmap result shares no containers with the input.
        """
        data = {"a": {"b": [1, {}]}, "c": []}
        result = apply_flatmap(data, [op("move", "c", "d")])
        result["a"]["b"].append(2)
        result["a"]["b"][1]["x"] = 1
        result["d"].append(1)
        self.assertEqual(data, {"a": {"b": [1, {}]}, "c": []})


class ValidateFlatmapTests(SynchronousTestCase):
    """
    L{validate_flatmap} explains what is wrong with a C{flatmap_filter} value.
    """

    def test_valid(self) -> None:
        """
        Well-formed operations give no problems.
        """
        ops = [op("move", "a", "b"), op("del", "x", "y.*.z"), op("append", "l", "m")]
        self.assertEqual(validate_flatmap(ops), [])
        self.assertEqual(validate_flatmap([]), [])

    def test_problems(self) -> None:
        """
        Each kind of mistake is reported with its position.
        """
        cases = [
            ({"type": "move"}, "flatmap_filter[0]: move needs 'args' as a list, got null"),
            (op("mov", "a", "b"), "flatmap_filter[0]: unknown type 'mov' (expected move, del or append)"),
            ({"args": ["a"]}, "flatmap_filter[0]: 'type' must be a string, got null"),
            (op("move", "a"), "flatmap_filter[0]: move needs 2 args, got 1"),
            (op("append", "a", "b", "c"), "flatmap_filter[0]: append needs 2 args, got 3"),
            (op("del"), "flatmap_filter[0]: del needs at least 1 arg"),
            (op("del", 3), "flatmap_filter[0]: args[0] must be a string, got int"),
            (op("del", ""), "flatmap_filter[0]: args[0] is an empty path"),
            (op("move", "a.*", "b"), "flatmap_filter[0]: move source 'a.*' ends with '*' and never matches"),
            ("move", "flatmap_filter[0]: operation must be an object, got str"),
        ]
        for operation, problem in cases:
            self.assertEqual(validate_flatmap([operation]), [problem], operation)

    def test_notAList(self) -> None:
        """
        The value itself must be a list.
        """
        self.assertEqual(
            validate_flatmap({"type": "move"}), ["flatmap_filter must be a list of operations, got dict"]
        )

    def test_positions(self) -> None:
        """
        Problems in several operations are all reported, in order.
        """
        self.assertEqual(
            validate_flatmap([op("move", "a", "b"), op("x"), op("del")]),
            [
                "flatmap_filter[1]: unknown type 'x' (expected move, del or append)",
                "flatmap_filter[2]: del needs at least 1 arg",
            ],
        )
