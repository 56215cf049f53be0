"""
Tests for L{shadowtwist.encoding}: literal JSON numbers, Go-compatible JSON output, the backend
decoders of section 3.4 and the renderers of section 2.7.
"""

from __future__ import annotations

import copy
import pickle
from decimal import Decimal

import yaml
from twisted.trial.unittest import SynchronousTestCase

from shadowtwist import encoding
from shadowtwist.encoding import (
    DecodeError,
    JSONNumber,
    decode,
    dumps,
    is_known_backend_encoding,
    is_known_output_encoding,
    loads,
    negotiate_format,
    render,
)

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
XML = "application/xml"
YAML = "application/yaml; charset=utf-8"


class JSONNumberTests(SynchronousTestCase):
    """
    L{JSONNumber} keeps its literal text but behaves like a number for comparisons.
    """

    def test_keepsText(self) -> None:
        """
        C{text}, C{str()} and C{repr()} all show the literal as written.
        """
        number = JSONNumber("1.50")
        self.assertEqual(number.text, "1.50")
        self.assertEqual(str(number), "1.50")
        self.assertIn("1.50", repr(number))

    def test_equalityIsNumeric(self) -> None:
        """
        Numbers compare by exact decimal value, against each other and against Python numbers.
        """
        equal = [
            (JSONNumber("1.5"), JSONNumber("1.50")),
            (JSONNumber("1e2"), JSONNumber("100.0")),
            (JSONNumber("1e2"), 100),
            (JSONNumber("1.5"), 1.5),
            (JSONNumber("0.1"), Decimal("0.1")),
            (JSONNumber("-0"), 0),
        ]
        for left, right in equal:
            self.assertEqual(left, right, f"{left!r} == {right!r}")
            self.assertEqual(hash(left), hash(right), f"hash {left!r} == hash {right!r}")
        unequal = [
            (JSONNumber("1.5"), JSONNumber("1.51")),
            (JSONNumber("0.1"), 0.1),  # the float is not exactly 1/10
            (JSONNumber("1"), True),
            (JSONNumber("1"), "1"),
        ]
        for left, right in unequal:
            self.assertNotEqual(left, right, f"{left!r} != {right!r}")

    def test_hashable(self) -> None:
        """
        Equal numbers collapse in a set.
        """
        self.assertEqual(len({JSONNumber("1.5"), JSONNumber("1.50"), JSONNumber("2")}), 2)

    def test_conversions(self) -> None:
        """
        C{float()} always works; C{int()} works for integral values only; C{bool()} is numeric.
        """
        self.assertEqual(float(JSONNumber("1e5")), 100000.0)
        self.assertEqual(int(JSONNumber("1e5")), 100000)
        self.assertEqual(int(JSONNumber("2.000")), 2)
        self.assertRaises(ValueError, int, JSONNumber("2.5"))
        self.assertFalse(JSONNumber("0.0"))
        self.assertTrue(JSONNumber("0.01"))

    def test_rejectsNonLiterals(self) -> None:
        """
        The constructor only accepts JSON number literals.
        """
        for text in ["", "01", "1.", ".5", "+1", "NaN", "1e", "0x10", " 1"]:
            self.assertRaises(ValueError, JSONNumber, text)

    def test_copyAndPickle(self) -> None:
        """
        Copies and pickles keep the literal text.
        """
        number = JSONNumber("1.50")
        self.assertEqual(copy.deepcopy(number).text, "1.50")
        self.assertEqual(pickle.loads(pickle.dumps(number)).text, "1.50")


class LoadsTests(SynchronousTestCase):
    """
    L{loads} parses a whole document and keeps number literals.
    """

    def test_numberTypes(self) -> None:
        """
        Fractions, exponents and C{-0} become L{JSONNumber} with their exact text; other
        integers stay C{int}.
        """
        cases = [
            ("1.50", JSONNumber, "1.50"),
            ("1e5", JSONNumber, "1e5"),
            ("-2.5E-3", JSONNumber, "-2.5E-3"),
            ("-0", JSONNumber, "-0"),
            ("-0.0", JSONNumber, "-0.0"),
            ("0", int, "0"),
            ("-17", int, "-17"),
            ("12345678901234567890123", int, "12345678901234567890123"),
        ]
        for literal, kind, text in cases:
            value = loads(f"[{literal}]")[0]
            self.assertIsInstance(value, kind, literal)
            self.assertEqual(str(value), text)

    def test_hugeIntegerKeepsText(self) -> None:
        """
        An integer too long for C{int()} is kept as a L{JSONNumber} instead of failing.
        """
        literal = "9" * 5000
        value = loads(literal)
        self.assertIsInstance(value, JSONNumber)
        self.assertEqual(dumps(value), literal.encode())

    def test_structures(self) -> None:
        """
        Objects, arrays, strings, booleans and null decode to their Python counterparts.
        """
        self.assertEqual(
            loads(b'{"a": [true, false, null, "x\\u00e9"], "b": {}}'),
            {"a": [True, False, None, "x\u00e9"], "b": {}},
        )

    def test_acceptsText(self) -> None:
        """
        A C{str} body is accepted as well as bytes.
        """
        self.assertEqual(loads(' {"a": 1} '), {"a": 1})

    def test_invalid(self) -> None:
        """
        Invalid documents raise L{DecodeError} with a readable message.
        """
        bodies = [
            b"",
            b"   ",
            b"{",
            b'{"a":1} x',
            b'{"a":1}{"b":2}',
            b"[NaN]",
            b"[Infinity]",
            b"[-Infinity]",
            b"01",
            b"\xef\xbb\xbf{}",  # Go rejects a byte order mark too
            b'{"a":"\xff"}',
            b"{'a': 1}",
            b"[" * 100000,
        ]
        for body in bodies:
            error = self.assertRaises(DecodeError, loads, body)
            self.assertTrue(str(error).startswith("invalid JSON"), str(error))


class DumpsTests(SynchronousTestCase):
    """
    L{dumps} writes what Go's C{encoding/json} (via gin's C{c.JSON}) writes.
    """

    def test_literalNumbersRoundTrip(self) -> None:
        """
        Decoding then encoding keeps number literals byte for byte.
        """
        self.assertEqual(dumps(loads(b'{"a":1.50,"b":1e5}')), b'{"a":1.50,"b":1e5}')

    def test_canonicalRoundTrip(self) -> None:
        """
        Documents already in Go's output form (compact, keys sorted, HTML escaped) round-trip
        unchanged.
        """
        bodies = [
            b"{}",
            b"[]",
            b'{"a":[1,-0,0.0,1E+2,2.5e-7,{"x":null}],"b":"\\u003cb\\u003e \\u0026","c":true}',
            b'{"collection":[{"id":1,"price":19.990},{"id":2,"price":-0.5}],"total":2}',
            b'"caf\xc3\xa9 \xe2\x82\xac"',
            b'{"n":123456789012345678901234567890,"s":"tab\\tnl\\nq\\"bs\\\\"}',
        ]
        for body in bodies:
            self.assertEqual(dumps(loads(body)), body)

    def test_sortedCompact(self) -> None:
        """
        Keys are sorted at every level, there is no whitespace and no trailing newline.
        """
        self.assertEqual(
            dumps({"b": 1, "a": {"z": None, "m": [3, 2]}, "A": True}),
            b'{"A":true,"a":{"m":[3,2],"z":null},"b":1}',
        )

    def test_goEscaping(self) -> None:
        """
        C{<}, C{>}, C{&}, U+2028 and U+2029 are escaped; other non-ASCII stays raw UTF-8;
        control characters use Go's escapes.
        """
        self.assertEqual(
            dumps({"k<>&": "<a href='x'>&</a> \u2028\u2029 \u00e9\u20ac\U0001f600 \x01\x7f\b\f"}),
            b'{"k\\u003c\\u003e\\u0026":"\\u003ca href=\'x\'\\u003e\\u0026\\u003c/a\\u003e '
            b'\\u2028\\u2029 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 \\u0001\x7f\\b\\f"}',
        )

    def test_scalarsAndNone(self) -> None:
        """
        Top-level scalars encode on their own; C{None} is C{null}.
        """
        self.assertEqual(dumps(None), b"null")
        self.assertEqual(dumps(JSONNumber("1.0")), b"1.0")
        self.assertEqual(dumps("x"), b'"x"')
        self.assertEqual(dumps([JSONNumber("2.50"), 3, (4, 5)]), b"[2.50,3,[4,5]]")

    def test_forgedPlaceholder(self) -> None:
        """
        A string that looks like the internal number placeholder is still written as a string,
        and real numbers next to it keep their text.
        """
        forged = encoding._PLACEHOLDER_TAG + "1.5"
        self.assertEqual(
            dumps({"s": forged, "n": JSONNumber("2.50")}),
            b'{"n":2.50,"s":"\\u0000' + forged[1:].encode() + b'"}',
        )

    def test_pureWriterMatchesFastPath(self) -> None:
        """
        The fallback writer produces exactly the same output as the fast path.
        """
        data = loads(
            b'{"a":[1,2.50,{"b":"<&>","c":[]}],"d":{},"e":"\xc3\xa9","f":null,"g":false,"h":-0}'
        )
        self.assertEqual(encoding._dumps_pure(data), encoding._dumps_fast(data))

    def test_invalidBytesFromStrings(self) -> None:
        """
        Invalid UTF-8 kept by the C{string} decoder is written as the escape C{\\ufffd}, one per
        byte, as Go's encoder does; a lone surrogate escape decoded from JSON becomes a real
        U+FFFD, as in Go's decoder.
        """
        content = decode("string", b"a\xff\xfeb")["content"]
        self.assertEqual(dumps({"c": content}), b'{"c":"a\\ufffd\\ufffdb"}')
        self.assertEqual(dumps(loads(b'["\\ud800"]')), b'["\xef\xbf\xbd"]')

    def test_goFloatFormat(self) -> None:
        """
        Python floats written by the pure writer use Go's C{encoding/json} float format.
        """
        cases = [
            (1.0, "1"),
            (0.1, "0.1"),
            (-0.0, "-0"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e-7, "1.5e-7"),
            (1e-6, "0.000001"),
            (123456.789, "123456.789"),
        ]
        for value, expected in cases:
            self.assertEqual(encoding._go_float_json(value), expected, repr(value))

    def test_unsupported(self) -> None:
        """
        Values JSON cannot hold raise like Go's encoder refuses them.
        """
        self.assertRaises(TypeError, dumps, {"a": object()})
        self.assertRaises(ValueError, dumps, {"a": float("nan")})


class DecodeJSONTests(SynchronousTestCase):
    """
    The C{json} and C{safejson} backend decoders.
    """

    def test_object(self) -> None:
        """
        An object decodes to a dict with literal numbers.
        """
        data = decode("json", b'{"a":1.50,"b":[1e5]}')
        self.assertEqual(data, {"a": JSONNumber("1.50"), "b": [JSONNumber("1e5")]})
        self.assertEqual(dumps(data), b'{"a":1.50,"b":[1e5]}')

    def test_collection(self) -> None:
        """
        With C{is_collection} an array is wrapped as C{collection}.
        """
        self.assertEqual(
            decode("json", b'[{"id":1},{"id":2}]', is_collection=True),
            {"collection": [{"id": 1}, {"id": 2}]},
        )

    def test_errors(self) -> None:
        """
        Non-objects (arrays without C{is_collection}), non-arrays with C{is_collection}, empty
        and invalid bodies are errors.
        """
        cases = [
            (b"[1,2]", False),
            (b'"text"', False),
            (b"42", False),
            (b"", False),
            (b" \n", False),
            (b"{", False),
            (b'{"a":1}', True),
            (b"1", True),
            (b"", True),
            (b"42x", False),
        ]
        for body, is_collection in cases:
            self.assertRaises(DecodeError, decode, "json", body, is_collection=is_collection)

    def test_goDecoderLeniency(self) -> None:
        """
        Like Go's C{json.Decoder}, data after the first object is ignored, C{null} gives an
        empty map (a nil slice for a collection), and an invalid UTF-8 byte in a string
        becomes U+FFFD.
        """
        self.assertEqual(decode("json", b'{"a":1} trailing'), {"a": 1})
        self.assertEqual(decode("json", b'{"a":1}{"b":2}'), {"a": 1})
        self.assertEqual(decode("json", b"null"), {})
        self.assertEqual(decode("json", b"null", is_collection=True), {"collection": None})
        self.assertEqual(decode("json", b'{"a":"x\xffy"}'), {"a": "x\ufffdy"})

    def test_nameIsCaseInsensitiveAndDefaultsToJSON(self) -> None:
        """
        The encoding name is lower-cased; unknown names (and EE-only ones) use JSON.
        """
        for name in ["JSON", "Json", "", "unknown", "fast-json", "yaml", "rss"]:
            self.assertEqual(decode(name, b'{"a":1}'), {"a": 1}, name)
            self.assertRaises(DecodeError, decode, name, b"[1]")

    def test_safejson(self) -> None:
        """
        C{safejson} accepts any JSON: objects as they are, arrays as C{collection}, and scalars
        under C{content} (the reference, krakend-behaviour.md section 3.4).
        """
        cases = [
            (b'{"a":1}', {"a": 1}),
            (b"[1,2.0]", {"collection": [1, JSONNumber("2.0")]}),
            (b'"hi"', {"content": "hi"}),
            (b"1.50", {"content": JSONNumber("1.50")}),
            (b"true", {"content": True}),
            (b"null", {"content": None}),
        ]
        for body, expected in cases:
            self.assertEqual(decode("safejson", body), expected, body)
            self.assertEqual(decode("safejson", body, is_collection=True), expected, body)
        self.assertRaises(DecodeError, decode, "safejson", b"")
        self.assertRaises(DecodeError, decode, "safejson", b"{x}")


class DecodeOtherTests(SynchronousTestCase):
    """
    The C{string}, C{no-op} and C{xml} backend decoders.
    """

    def test_string(self) -> None:
        """
        C{string} wraps the whole body as C{content}, whatever it is.
        """
        self.assertEqual(decode("string", b'{"a": 1}\n'), {"content": '{"a": 1}\n'})
        self.assertEqual(decode("string", b""), {"content": ""})
        self.assertEqual(decode("STRING", "\u00e9".encode()), {"content": "\u00e9"})

    def test_noop(self) -> None:
        """
        C{no-op} decodes nothing.
        """
        self.assertEqual(decode("no-op", b"anything at all"), {})

    def test_xmlMap(self) -> None:
        """
        krakend-xml's own example: attributes become C{-name}, repeated elements a list, and
        every value a string.
        """
        body = b"""
            <Person id="1">
                <FullName>Alice</FullName>
                <Company>Acme</Company>
                <Email where="home"><Addr>gre@example.com</Addr></Email>
                <Email where='work'><Addr>gre@work.com</Addr></Email>
                <Group><Value>Friends</Value><Value>Squash</Value></Group>
                <Age>42</Age>
            </Person>"""
        self.assertEqual(
            decode("xml", body),
            {
                "Person": {
                    "-id": "1",
                    "FullName": "Alice",
                    "Company": "Acme",
                    "Email": [
                        {"-where": "home", "Addr": "gre@example.com"},
                        {"-where": "work", "Addr": "gre@work.com"},
                    ],
                    "Group": {"Value": ["Friends", "Squash"]},
                    "Age": "42",
                }
            },
        )

    def test_xmlCollection(self) -> None:
        """
        With C{is_collection} the map is wrapped as C{collection}.
        """
        body = b"<People><Person><Name>A</Name></Person><Person><Name>B</Name></Person></People>"
        self.assertEqual(
            decode("xml", body, is_collection=True),
            {"collection": {"People": {"Person": [{"Name": "A"}, {"Name": "B"}]}}},
        )

    def test_xmlTextAndEmpty(self) -> None:
        """
        Text next to attributes is C{#text}; text is trimmed; empty elements are C{""};
        entities and CDATA are decoded; namespace prefixes are dropped.
        """
        cases = [
            (b'<a x="1">  hi  </a>', {"a": {"-x": "1", "#text": "hi"}}),
            (b"<a><b/><c></c></a>", {"a": {"b": "", "c": ""}}),
            (b"<a/>", {"a": ""}),
            (b"<a>x &amp; y &#233;</a>", {"a": "x & y \u00e9"}),
            (b"<a><![CDATA[<raw>]]></a>", {"a": "<raw>"}),
            (b'<ns:a xmlns:ns="urn:x"><ns:b>1</ns:b></ns:a>', {"a": {"-ns": "urn:x", "b": "1"}}),
            (b"<?xml version='1.0' encoding='UTF-8'?><!-- c --><a>1</a>", {"a": "1"}),
        ]
        for body, expected in cases:
            self.assertEqual(decode("xml", body), expected, body)

    def test_xmlMixedContentQuirk(self) -> None:
        """
        As in mxj, text seen before any child element makes the element a simple value and its
        children are dropped.
        """
        self.assertEqual(decode("xml", b"<a>text<b>1</b></a>"), {"a": "text"})
        self.assertEqual(decode("xml", b"<a><b>1</b>text</a>"), {"a": {"b": "1", "#text": "text"}})

    def test_xmlTrailingDataIgnored(self) -> None:
        """
        Decoding stops at the end of the root element, so trailing junk is ignored.
        """
        self.assertEqual(decode("xml", b"<a>1</a><b>2</b> junk"), {"a": "1"})

    def test_xmlErrors(self) -> None:
        """
        Non-XML, empty bodies, broken markup, entity declarations and non-UTF-8 declarations
        are errors.
        """
        bodies = [
            b"",
            b"3",
            b"<a>",
            b"<a></b>",
            b"<a>&nbsp;</a>",
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>',
            b'<?xml version="1.0" encoding="ISO-8859-1"?><a>1</a>',
            b"<a>\xff</a>",
        ]
        for body in bodies:
            error = self.assertRaises(DecodeError, decode, "xml", body)
            self.assertTrue(str(error).startswith("invalid XML"), str(error))


class RenderTests(SynchronousTestCase):
    """
    The C{output_encoding} renderers.
    """

    def test_json(self) -> None:
        """
        C{json} is L{dumps}; no data gives C{{}}.
        """
        self.assertEqual(
            render("json", {"b": JSONNumber("1.50"), "a": "<"}), (b'{"a":"\\u003c","b":1.50}', JSON)
        )
        self.assertEqual(render("json", None), (b"{}", JSON))
        self.assertEqual(render("json", {}), (b"{}", JSON))

    def test_jsonFallbacks(self) -> None:
        """
        Unknown values, EE-only C{fast-json}, C{no-op} and differently-cased names render JSON.
        """
        for name in ["", "fast-json", "no-op", "bogus", "XML", "JSON"]:
            self.assertEqual(render(name, {"a": 1}), (b'{"a":1}', JSON), name)

    def test_jsonCollection(self) -> None:
        """
        C{json-collection} renders the C{collection} value, or C{[]} when there is none.
        """
        cases = [
            ({"collection": [1, JSONNumber("2.0")]}, b"[1,2.0]"),
            ({"collection": []}, b"[]"),
            ({"collection": None}, b"null"),
            ({"other": 1}, b"[]"),
            (None, b"[]"),
        ]
        for data, body in cases:
            self.assertEqual(render("json-collection", data), (body, JSON), data)

    def test_string(self) -> None:
        """
        C{string} renders C{content} when it is a string, else nothing; invalid bytes from the
        string decoder come back untouched.
        """
        cases = [
            ({"content": "h\u00e9llo"}, "h\u00e9llo".encode()),
            ({"content": 42}, b""),
            ({"other": "x"}, b""),
            (None, b""),
            (decode("string", b"raw\xffbytes"), b"raw\xffbytes"),
        ]
        for data, body in cases:
            self.assertEqual(render("string", data), (body, TEXT), data)

    def test_xml(self) -> None:
        """
        krakend-xml's own renderer example: several keys are wrapped in C{<doc>}, keys sorted,
        text escaped.
        """
        data = {"a": {"content": "supu & tupu"}, "content": "tupu", "foo": 42}
        self.assertEqual(
            render("xml", data),
            (
                b"<doc><a><content>supu &amp; tupu</content></a>"
                b"<content>tupu</content><foo>42</foo></doc>",
                XML,
            ),
        )

    def test_xmlShapes(self) -> None:
        """
        One key is the root; C{-attr} keys are sorted attributes; C{#text} is text; arrays repeat
        the element; empty maps, empty strings, nulls and empty arrays self-close; numbers keep
        their literal text.
        """
        cases = [
            ({"a": {"-z": "2", "-b": "1", "#text": "t"}}, b'<a b="1" z="2">t</a>'),
            ({"a": {"-id": "1"}}, b'<a id="1"/>'),
            ({"a": {"-id": "1", "b": "x", "#text": "t"}}, b'<a id="1">t<b>x</b></a>'),
            ({"r": {"i": [1, "x", True]}}, b"<r><i>1</i><i>x</i><i>true</i></r>"),
            ({"r": {"e": {}, "n": None, "s": "", "l": []}}, b"<r><e/><l/><n/><s/></r>"),
            ({"r": {"n": JSONNumber("1.50"), "f": 1e6}}, b"<r><f>1e+06</f><n>1.50</n></r>"),
            ({"r": {"q": "'\"<>&"}}, b"<r><q>&apos;&quot;&lt;&gt;&amp;</q></r>"),
            ({"items": [{"a": "1"}, {"a": "2"}]}, b"<items><a>1</a></items><items><a>2</a></items>"),
            ({"items": [1, 2]}, b"<doc><items>1</items><items>2</items></doc>"),
            ({}, b"<doc/>"),
            (None, b"<doc/>"),
            ({"a": {}}, b"<a/>"),
        ]
        for data, body in cases:
            self.assertEqual(render("xml", data), (body, XML), data)

    def test_xmlInvalidAttribute(self) -> None:
        """
        An attribute holding an object cannot be rendered; like krakend-xml the body is empty.
        """
        self.assertEqual(render("xml", {"a": {"-x": {"y": 1}}}), (b"", XML))

    def test_xmlRoundTrip(self) -> None:
        """
        Decoded XML renders back to equivalent XML.
        """
        body = (
            b'<Person id="1"><Email where="home">a</Email><Email where="work">b</Email>'
            b"<Name>Al &amp; Bo</Name></Person>"
        )
        data = decode("xml", body)
        self.assertEqual(render("xml", data)[0], body)

    def test_yaml(self) -> None:
        """
        C{yaml} writes block-style YAML with sorted keys; literal numbers stay unquoted and
        keep their text.
        """
        data = loads(b'{"b":{"y":[1,2.50]},"a":1.50,"c":1e5,"d":"123","e":null}')
        body, content_type = render("yaml", data)
        self.assertEqual(content_type, YAML)
        self.assertEqual(body, b"a: 1.50\nb:\n  y:\n  - 1\n  - 2.50\nc: 1e5\nd: '123'\ne: null\n")
        self.assertEqual(yaml.safe_load(body)["b"], {"y": [1, 2.5]})

    def test_yamlEmpty(self) -> None:
        """
        No data renders as an empty YAML map.
        """
        self.assertEqual(render("yaml", None), (b"{}\n", YAML))


class NegotiateTests(SynchronousTestCase):
    """
    C{negotiate} follows gin's C{NegotiateFormat}: first acceptable Accept entry wins,
    q-values are ignored.
    """

    def test_choice(self) -> None:
        """
        Each Accept header picks the expected renderer.
        """
        cases = [
            (None, "json"),
            ("", "json"),
            ("application/json", "json"),
            ("application/xml", "xml"),
            ("text/xml", "json"),
            ("text/plain", "yaml"),
            ("application/x-yaml", "yaml"),
            ("application/yaml", "json"),
            ("*/*", "json"),
            ("*", "json"),
            ("text/*", "yaml"),
            ("application/*", "json"),
            ("text/html", "json"),
            ("image/png, application/xml", "xml"),
            ("application/json;q=0.1, application/xml;q=1", "json"),
            ("application/xml;q=0.1, application/json", "xml"),
            (" ,  , application/xml ", "xml"),
            ("APPLICATION/XML", "json"),
        ]
        for accept, expected in cases:
            self.assertEqual(negotiate_format(accept), expected, accept)

    def test_render(self) -> None:
        """
        C{render("negotiate", ...)} uses the chosen renderer and its content type.
        """
        data = {"a": {"b": "1"}}
        self.assertEqual(render("negotiate", data, "application/xml"), (b"<a><b>1</b></a>", XML))
        self.assertEqual(render("negotiate", data, "text/plain"), (b"a:\n  b: '1'\n", YAML))
        self.assertEqual(render("negotiate", data, "text/html"), (b'{"a":{"b":"1"}}', JSON))
        self.assertEqual(render("negotiate", data), (b'{"a":{"b":"1"}}', JSON))


class KnownEncodingTests(SynchronousTestCase):
    """
    Encoding names for configuration validation.
    """

    def test_output(self) -> None:
        """
        Output encodings are matched exactly.
        """
        for name in ["json", "json-collection", "string", "xml", "yaml", "negotiate", "no-op", "fast-json"]:
            self.assertTrue(is_known_output_encoding(name), name)
        for name in ["", "JSON", "safejson", "rss", "jsonx"]:
            self.assertFalse(is_known_output_encoding(name), name)

    def test_backend(self) -> None:
        """
        Backend encodings are matched case-insensitively, as L{decode} treats them.
        """
        for name in ["json", "safejson", "string", "xml", "no-op", "rss", "fast-json", "yaml", "XML"]:
            self.assertTrue(is_known_backend_encoding(name), name)
        for name in ["", "json-collection", "negotiate", "noop"]:
            self.assertFalse(is_known_backend_encoding(name), name)
