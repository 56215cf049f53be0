"""
Tests for L{shadowtwist.compare}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.compare import (
    Comparison,
    Difference,
    NoiseLearner,
    ResponseView,
    compare,
    compile_ignore,
    diff_json,
    format_pointer,
    generalize,
    parse_pointer,
    validate_pointer_pattern,
)


class LiteralNumber:
    """
    A stand-in for a decoder's number class: keeps the literal, compares by value.
    """

    def __init__(self, text: str) -> None:
        """
        @param text: the JSON literal.
        """
        self.text = text

    def __eq__(self, other: object) -> bool:
        """
        @param other: another number.
        @return: whether both have the same numeric value.
        """
        value = other.text if isinstance(other, LiteralNumber) else other
        try:
            return float(self.text) == float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False

    def __hash__(self) -> int:
        """
        @return: a hash consistent with equality.
        """
        return hash(float(self.text))


class PointerTests(SynchronousTestCase):
    """
    Tests for L{format_pointer}, L{parse_pointer} and L{generalize}.
    """

    def test_format_escapes(self) -> None:
        """
        C{~} and C{/} inside keys are escaped as RFC 6901 requires.
        """
        self.assertEqual(format_pointer(["a/b", "m~n", 3]), "/a~1b/m~0n/3")

    def test_format_root(self) -> None:
        """
        The document itself is the empty pointer.
        """
        self.assertEqual(format_pointer([]), "")

    def test_parse_round_trip(self) -> None:
        """
        Parsing undoes the escaping, including the tricky C{~01} (a literal C{~1}).
        """
        self.assertEqual(parse_pointer("/a~1b/m~0n/~01"), ["a/b", "m~n", "~1"])

    def test_parse_rejects_relative(self) -> None:
        """
        A pointer must start with C{/}.
        """
        self.assertRaises(ValueError, parse_pointer, "a/b")

    def test_generalize_indices(self) -> None:
        """
        Canonical array indices become C{*}; keys and leading-zero numbers stay.
        """
        self.assertEqual(generalize("/items/3/price"), "/items/*/price")
        self.assertEqual(generalize("/a/10/b/0"), "/a/*/b/*")
        self.assertEqual(generalize("/codes/007"), "/codes/007")
        self.assertEqual(generalize(""), "")


class IgnoreRulesTests(SynchronousTestCase):
    """
    Tests for L{IgnoreRules}, L{compile_ignore} and L{validate_pointer_pattern}.
    """

    def test_exact_path(self) -> None:
        """
        A literal pattern matches its own path and everything below it, nothing else.
        """
        rules = compile_ignore(["/meta/request_id"])
        self.assertTrue(rules.matches(["meta", "request_id"]))
        self.assertTrue(rules.matches(["meta", "request_id", "inner"]))
        self.assertFalse(rules.matches(["meta"]))
        self.assertFalse(rules.matches(["meta", "other"]))

    def test_wildcard(self) -> None:
        """
        C{*} matches exactly one key or index, whatever it is.
        """
        rules = compile_ignore(["/items/*/updated_at"])
        self.assertTrue(rules.matches(["items", 0, "updated_at"]))
        self.assertTrue(rules.matches(["items", "17", "updated_at"]))
        self.assertTrue(rules.matches(["items", "key", "updated_at"]))
        self.assertFalse(rules.matches(["items", "updated_at"]))
        self.assertFalse(rules.matches(["items", 0, "price"]))

    def test_escaped_pattern(self) -> None:
        """
        Patterns are unescaped, so a key holding C{/} can be ignored.
        """
        rules = compile_ignore(["/a~1b"])
        self.assertTrue(rules.matches(["a/b"]))
        self.assertTrue(rules.matches_pointer("/a~1b/c"))
        self.assertFalse(rules.matches(["a", "b"]))

    def test_overlapping_patterns(self) -> None:
        """
        A literal and a wildcard pattern at the same level are both honoured.
        """
        rules = compile_ignore(["/x/a/z", "/x/*/y"])
        self.assertTrue(rules.matches(["x", "a", "z"]))
        self.assertTrue(rules.matches(["x", "a", "y"]))
        self.assertFalse(rules.matches(["x", "b", "z"]))

    def test_empty_rules(self) -> None:
        """
        No patterns match nothing and are falsy.
        """
        rules = compile_ignore(None)
        self.assertFalse(rules)
        self.assertFalse(rules.matches(["anything"]))

    def test_validate_accepts(self) -> None:
        """
        Well-formed patterns have no problem.
        """
        for pattern in ("/meta/request_id", "/items/*/updated_at", "/a~0b~1c", "/*"):
            self.assertIsNone(validate_pointer_pattern(pattern), pattern)

    def test_validate_problems(self) -> None:
        """
        Each kind of mistake gets a sentence that names it.
        """
        self.assertIn("start with '/'", validate_pointer_pattern("meta/id"))
        self.assertIn("whole body", validate_pointer_pattern(""))
        self.assertIn("'~'", validate_pointer_pattern("/a~2"))
        self.assertIn("whole segment", validate_pointer_pattern("/items/upd*"))
        self.assertIn("must be a string", validate_pointer_pattern(3))

    def test_compile_rejects(self) -> None:
        """
        L{compile_ignore} raises with the validation text, and refuses a bare string.
        """
        error = self.assertRaises(ValueError, compile_ignore, ["/ok", "bad"])
        self.assertIn("'bad'", str(error))
        self.assertRaises(ValueError, compile_ignore, "/meta/id")


class DiffJsonTests(SynchronousTestCase):
    """
    Tests for L{diff_json}.
    """

    def test_equal(self) -> None:
        """
        Equal documents give no difference.
        """
        document = {"a": [1, {"b": None}], "c": "x", "d": True}
        self.assertEqual(diff_json(document, {"a": [1, {"b": None}], "c": "x", "d": True}), [])

    def test_changed_leaf_path(self) -> None:
        """
        A changed price in an array item is reported at its pointer, with both values.
        """
        primary = {"items": [{"price": 1}, {"price": 2}, {"price": 3}, {"price": 4}]}
        shadow = {"items": [{"price": 1}, {"price": 2}, {"price": 3}, {"price": 5}]}
        self.assertEqual(
            diff_json(primary, shadow),
            [Difference("/items/3/price", "changed", 4, 5, "/items/*/price")],
        )

    def test_added_removed_keys(self) -> None:
        """
        Keys only in the shadow are C{added}, keys only in the primary are C{removed}.
        """
        differences = diff_json({"old": 1, "same": 2}, {"same": 2, "new": 3})
        self.assertEqual(
            [(d.path, d.kind, d.primary, d.shadow) for d in differences],
            [("/old", "removed", 1, None), ("/new", "added", None, 3)],
        )

    def test_array_length(self) -> None:
        """
        Arrays are compared by index; extra items are added or removed.
        """
        self.assertEqual(
            [(d.path, d.kind) for d in diff_json([1, 2, 3], [1, 2])], [("/2", "removed")]
        )
        self.assertEqual(
            [(d.path, d.kind) for d in diff_json([1], [1, 2, 3])],
            [("/1", "added"), ("/2", "added")],
        )

    def test_type_changes(self) -> None:
        """
        Different JSON types give one C{type} difference and no descent; C{true} is not C{1}.
        """
        differences = diff_json({"a": {"x": 1}, "b": True, "c": "1"}, {"a": [1], "b": 1, "c": 1})
        self.assertEqual(
            [(d.path, d.kind) for d in differences],
            [("/a", "type"), ("/b", "type"), ("/c", "type")],
        )

    def test_booleans_inside_equal_looking_subtrees(self) -> None:
        """
        Python finds C{{"a": [True]}} equal to C{{"a": [1]}}; the diff does not.
        """
        primary = {"a": [True, {"b": False}], "c": 1}
        shadow = {"a": [1, {"b": 0}], "c": 1}
        self.assertEqual(primary, shadow)
        self.assertEqual(
            [(d.path, d.kind) for d in diff_json(primary, shadow)],
            [("/a/0", "type"), ("/a/1/b", "type")],
        )

    def test_equal_plain_documents(self) -> None:
        """
        Separately built but equal documents, large and nested, give no difference.
        """
        primary, shadow = (
            {"items": [{"id": i, "p": i / 3, "t": ["x", None]} for i in range(500)]}
            for _ in range(2)
        )
        self.assertIsNot(primary, shadow)
        self.assertEqual(diff_json(primary, shadow), [])
        shadow["items"][250]["t"][1] = False
        self.assertEqual([d.path for d in diff_json(primary, shadow)], ["/items/250/t/1"])

    def test_null_is_a_value(self) -> None:
        """
        A key whose value is C{null} is present: against a missing key it is C{removed}.
        """
        differences = diff_json({"a": None}, {})
        self.assertEqual([(d.path, d.kind) for d in differences], [("/a", "removed")])

    def test_numeric_object_keys_not_generalized(self) -> None:
        """
        Object keys made of digits stay in the pattern; only real array indices become C{*}.
        """
        differences = diff_json({"byid": {"17": {"n": 1}}}, {"byid": {"17": {"n": 2}}})
        self.assertEqual(differences[0].path, "/byid/17/n")
        self.assertEqual(differences[0].pattern, "/byid/17/n")

    def test_escaped_keys_in_path(self) -> None:
        """
        Keys with C{/} or C{~} are escaped in the reported path.
        """
        differences = diff_json({"a/b": {"~": 1}}, {"a/b": {"~": 2}})
        self.assertEqual(differences[0].path, "/a~1b/~0")

    def test_ignore_timestamp(self) -> None:
        """
        An ignored timestamp gives zero differences while a changed price gives one.
        """
        ignore = compile_ignore(["/meta/request_id", "/items/*/updated_at"])
        primary = {
            "meta": {"request_id": "a1"},
            "items": [{"price": 10, "updated_at": "2024-01-01T00:00:00Z"}],
        }
        shadow = {
            "meta": {"request_id": "b2"},
            "items": [{"price": 10, "updated_at": "2024-06-01T12:00:00Z"}],
        }
        self.assertEqual(diff_json(primary, shadow, ignore), [])
        shadow["items"][0]["price"] = 11
        self.assertEqual([d.path for d in diff_json(primary, shadow, ignore)], ["/items/0/price"])

    def test_ignore_subtree(self) -> None:
        """
        Everything below an ignored path is ignored, including added and removed keys.
        """
        ignore = compile_ignore(["/debug"])
        self.assertEqual(diff_json({"debug": {"a": 1}}, {"debug": {"b": [2]}}, ignore), [])
        self.assertEqual(diff_json({"x": 1}, {"x": 1, "debug": 5}, ignore), [])

    def test_number_objects(self) -> None:
        """
        Number objects that compare by value are leaves: same value matches, another does not.
        """
        self.assertEqual(diff_json({"n": LiteralNumber("1.0")}, {"n": 1}), [])
        differences = diff_json({"n": LiteralNumber("1.5")}, {"n": LiteralNumber("2")})
        self.assertEqual([(d.path, d.kind) for d in differences], [("/n", "changed")])
        self.assertEqual(diff_json({"n": LiteralNumber("1")}, {"n": "1"})[0].kind, "type")
        self.assertEqual(diff_json([LiteralNumber("1.50")], [LiteralNumber("1.5")]), [])

    def test_bounded(self) -> None:
        """
        The diff stops at C{max_differences} and says it was truncated.
        """
        differences = diff_json(list(range(50)), list(range(1, 51)), max_differences=10)
        self.assertEqual(len(differences), 10)
        self.assertTrue(differences.truncated)
        self.assertEqual(differences[0].path, "/0")

    def test_not_truncated_at_exact_bound(self) -> None:
        """
        Exactly C{max_differences} differences are not reported as truncated.
        """
        differences = diff_json([1, 2], [3, 4], max_differences=2)
        self.assertEqual(len(differences), 2)
        self.assertFalse(differences.truncated)

    def test_deep_document(self) -> None:
        """
        A document deeper than the recursion limit is diffed without error.
        """
        primary: object = 1
        shadow: object = 2
        for _ in range(5000):
            primary, shadow = [primary], [shadow]
        differences = diff_json(primary, shadow)
        self.assertEqual(len(differences), 1)
        self.assertEqual(differences[0].pattern, "/*" * 5000)

    def test_document_order(self) -> None:
        """
        Differences come out in document order, nested ones before later siblings.
        """
        differences = diff_json({"a": {"x": 1}, "b": 1}, {"a": {"x": 2}, "b": 2, "c": 3})
        self.assertEqual([d.path for d in differences], ["/a/x", "/b", "/c"])


class NoiseLearnerTests(SynchronousTestCase):
    """
    Tests for L{NoiseLearner}.
    """

    def test_learns_generalized_paths(self) -> None:
        """
        Fields that differ between two primary answers are learned as patterns.
        """
        learner = NoiseLearner()
        new = learner.learn(
            {"items": [{"nonce": 1, "price": 5}], "t": 1},
            {"items": [{"nonce": 2, "price": 5}], "t": 2},
        )
        self.assertEqual(new, ["/items/*/nonce", "/t"])
        self.assertEqual(learner.noise_paths(), ["/items/*/nonce", "/t"])
        self.assertEqual(learner.learn({"t": 1}, {"t": 3}), [])
        self.assertEqual(learner.counts()["/t"], 2)

    def test_is_noise(self) -> None:
        """
        A difference on a learned pattern, at any index, is noise; others are not.
        """
        learner = NoiseLearner()
        learner.learn({"items": [{"nonce": 1}]}, {"items": [{"nonce": 2}]})
        nonce = Difference("/items/7/nonce", "changed", 1, 2, "/items/*/nonce")
        price = Difference("/items/7/price", "changed", 1, 2, "/items/*/price")
        self.assertTrue(learner.is_noise(nonce))
        self.assertFalse(learner.is_noise(price))

    def test_noise_below_learned(self) -> None:
        """
        Below a learned pattern everything is noise.
        """
        learner = NoiseLearner()
        learner.learn({"meta": {"a": 1}}, {"meta": None})
        self.assertTrue(learner.is_noise(Difference("/meta/a/b", "changed", 1, 2)))
        self.assertFalse(learner.is_noise(Difference("/metadata", "changed", 1, 2)))

    def test_ignore_not_learned(self) -> None:
        """
        Ignored paths are not learned.
        """
        learner = NoiseLearner()
        learner.learn({"t": 1, "u": 1}, {"t": 2, "u": 2}, compile_ignore(["/t"]))
        self.assertEqual(learner.noise_paths(), ["/u"])

    def test_bounded(self) -> None:
        """
        At most C{max_patterns} patterns are kept; the rest are counted as dropped.
        """
        learner = NoiseLearner(max_patterns=3)
        learner.learn({"a": 1, "b": 1}, {"a": 2, "b": 2})
        learner.learn({"c": 1, "d": 1, "a": 1}, {"c": 2, "d": 2, "a": 2})
        self.assertEqual(learner.noise_paths(), ["/a", "/b", "/c"])
        self.assertEqual(learner.dropped, 1)
        self.assertEqual(learner.counts()["/a"], 2)

    def test_learn_from_raw_views(self) -> None:
        """
        Two primary answers with different raw bytes make the whole raw body noise.
        """
        learner = NoiseLearner()
        learner.learn(ResponseView(200, raw=b"<p>a</p>"), ResponseView(200, raw=b"<p>b</p>"))
        self.assertEqual(learner.noise_paths(), [""])
        comparison = compare(
            ResponseView(200, raw=b"x"), ResponseView(200, raw=b"y"), noise=learner
        )
        self.assertEqual(comparison.result, "noise")


class CompareTests(SynchronousTestCase):
    """
    Tests for L{compare}.
    """

    def test_match(self) -> None:
        """
        Same status and body: a match.
        """
        comparison = compare(ResponseView(200, body={"a": 1}), ResponseView(200, body={"a": 1}))
        self.assertEqual(comparison, Comparison("match"))

    def test_price_mismatch(self) -> None:
        """
        A changed price is a mismatch with one difference at its path.
        """
        comparison = compare(
            ResponseView(200, body={"items": [{"price": 10}]}),
            ResponseView(200, body={"items": [{"price": 12}]}),
        )
        self.assertEqual(comparison.result, "mismatch")
        self.assertEqual([d.path for d in comparison.differences], ["/items/0/price"])

    def test_ignored_timestamp_matches(self) -> None:
        """
        With the timestamp ignored, bodies that differ only there match.
        """
        comparison = compare(
            ResponseView(200, body={"ts": 1, "v": 2}),
            ResponseView(200, body={"ts": 5, "v": 2}),
            ignore=compile_ignore(["/ts"]),
        )
        self.assertEqual(comparison.result, "match")

    def test_status(self) -> None:
        """
        A different status is a mismatch, unless status comparison is off.
        """
        primary, shadow = ResponseView(200, body={}), ResponseView(500, body={})
        comparison = compare(primary, shadow)
        self.assertEqual((comparison.result, comparison.status_differs), ("mismatch", True))
        self.assertEqual(compare(primary, shadow, status=False).result, "match")

    def test_headers(self) -> None:
        """
        Compared headers are looked up case-insensitively and their value lists compared; other
        headers are not compared.
        """
        primary = ResponseView(200, {"content-type": ["application/json"], "Date": ["1"]}, body={})
        shadow = ResponseView(200, {"Content-Type": ["text/html"], "date": ["2"]}, body={})
        comparison = compare(primary, shadow, headers=["Content-Type"])
        self.assertEqual(comparison.result, "mismatch")
        self.assertEqual(comparison.header_differences, ["Content-Type"])
        same = ResponseView(200, {"CONTENT-TYPE": ["application/json"]}, body={})
        self.assertEqual(compare(primary, same, headers=["content-type"]).result, "match")

    def test_header_missing(self) -> None:
        """
        A compared header present on one side only is a difference.
        """
        comparison = compare(
            ResponseView(200, {"X-A": ["1"]}, body={}),
            ResponseView(200, {}, body={}),
            headers=["x-a"],
        )
        self.assertEqual(comparison.header_differences, ["x-a"])

    def test_body_off(self) -> None:
        """
        With body comparison off, different bodies match.
        """
        comparison = compare(
            ResponseView(200, body={"a": 1}), ResponseView(200, body={"a": 2}), body=False
        )
        self.assertEqual(comparison.result, "match")

    def test_raw_bytes(self) -> None:
        """
        Non-JSON bodies are compared as bytes: one C{changed} difference at C{""}.
        """
        primary = ResponseView(200, raw=b"hello")
        self.assertEqual(compare(primary, ResponseView(200, raw=b"hello")).result, "match")
        comparison = compare(primary, ResponseView(200, raw=b"hullo"))
        self.assertEqual(comparison.result, "mismatch")
        self.assertEqual(
            comparison.differences, [Difference("", "changed", b"hello", b"hullo", "")]
        )

    def test_json_against_raw(self) -> None:
        """
        When only one side is JSON and both have bytes, the bytes decide.
        """
        primary = ResponseView(200, body={"a": 1}, raw=b'{"a": 1}')
        self.assertEqual(compare(primary, ResponseView(200, raw=b'{"a": 1}')).result, "match")
        self.assertEqual(compare(primary, ResponseView(200, raw=b"<html>")).result, "mismatch")

    def test_json_against_unknown(self) -> None:
        """
        A JSON body against a body that cannot be compared with it is a C{type} mismatch.
        """
        comparison = compare(ResponseView(200, body={"a": 1}), ResponseView(200))
        self.assertEqual([(d.path, d.kind) for d in comparison.differences], [("", "type")])

    def test_shadow_error(self) -> None:
        """
        A shadow that failed is a mismatch carrying the error text.
        """
        comparison = compare(ResponseView(200, body={}), ResponseView(error="timeout"))
        self.assertEqual(comparison.result, "mismatch")
        self.assertEqual(comparison.differences[0].shadow, "timeout")

    def test_both_errors(self) -> None:
        """
        When both sides failed there is nothing to compare.
        """
        self.assertEqual(compare(ResponseView(error="a"), ResponseView(error="b")).result, "match")

    def test_learned_noise(self) -> None:
        """
        Learned noise turns a random field into noise, while a real change stays a mismatch.
        """
        learner = NoiseLearner()
        learner.learn({"random": 0.1, "price": 3}, {"random": 0.7, "price": 3})
        primary = ResponseView(200, body={"random": 0.2, "price": 3})
        shadow = ResponseView(200, body={"random": 0.9, "price": 3})
        comparison = compare(primary, shadow, noise=learner)
        self.assertEqual(comparison.result, "noise")
        self.assertEqual([d.path for d in comparison.noise_differences], ["/random"])
        self.assertEqual(comparison.differences, [])
        shadow = ResponseView(200, body={"random": 0.9, "price": 4})
        comparison = compare(primary, shadow, noise=learner)
        self.assertEqual(comparison.result, "mismatch")
        self.assertEqual([d.path for d in comparison.differences], ["/price"])
        self.assertEqual([d.path for d in comparison.noise_differences], ["/random"])

    def test_truncated(self) -> None:
        """
        A bounded body diff marks the comparison as truncated.
        """
        comparison = compare(
            ResponseView(200, body=list(range(20))),
            ResponseView(200, body=list(range(1, 21))),
            max_differences=5,
        )
        self.assertTrue(comparison.truncated)
        self.assertEqual(len(comparison.differences), 5)

    def test_response_view_header(self) -> None:
        """
        L{ResponseView.header} is case-insensitive and returns all values.
        """
        view = ResponseView(200, {"Vary": ["Accept"], "vary": ["Origin"]})
        self.assertEqual(view.header("VARY"), ["Accept", "Origin"])
        self.assertEqual(view.header("missing"), [])

    def test_difference_as_dict(self) -> None:
        """
        L{Difference.as_dict} gives the capture shape.
        """
        self.assertEqual(
            Difference("/a", "changed", 1, 2).as_dict(),
            {"path": "/a", "kind": "changed", "primary": 1, "shadow": 2},
        )
