"""
Backend decoders and client renderers, byte-compatible with KrakenD CE.

Decoding (backend body -> C{dict}) follows lura's C{encoding} package and krakend-xml; rendering
(C{dict} -> client body) follows lura's C{router/gin/render.go} with gin and krakend-xml's mxj
renderer.  See C{docs/krakend-behaviour.md} sections 2.7 and 3.4.

JSON numbers keep the literal text the backend sent, as Go's C{json.Decoder.UseNumber} does:
non-integer numbers become L{JSONNumber} and L{dumps} writes them back verbatim, so C{1.50} stays
C{1.50} and C{1e5} stays C{1e5}.  Plain integers stay Python C{int}, whose text round-trips.

This module is pure: no Twisted, no I/O.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple, Union
from xml.parsers import expat

import yaml

__all__ = [
    "DecodeError",
    "JSONNumber",
    "StructObject",
    "loads",
    "dumps",
    "decode",
    "render",
    "negotiate_format",
    "is_known_output_encoding",
    "is_known_backend_encoding",
    "JSON_CONTENT_TYPE",
    "TEXT_CONTENT_TYPE",
    "XML_CONTENT_TYPE",
    "YAML_CONTENT_TYPE",
]

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
TEXT_CONTENT_TYPE = "text/plain; charset=utf-8"
XML_CONTENT_TYPE = "application/xml"
YAML_CONTENT_TYPE = "application/yaml; charset=utf-8"

_OUTPUT_ENCODINGS = frozenset(
    ["json", "json-collection", "string", "xml", "yaml", "negotiate", "no-op", "fast-json"]
)
_BACKEND_ENCODINGS = frozenset(
    ["json", "safejson", "string", "xml", "no-op", "rss", "fast-json", "yaml"]
)


class DecodeError(Exception):
    """
    A backend body could not be decoded.  The message is human readable, e.g.
    C{"invalid JSON: Expecting value at offset 0"}.
    """


# ---------------------------------------------------------------------------------------------
# JSONNumber

_JSON_NUMBER_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")

# int() refuses strings longer than this on Python >= 3.11 (and huge ints are slow anyway).
_MAX_INT_DIGITS = 4000


class JSONNumber:
    """
    A JSON number that keeps the literal text it was written with (Go's C{json.Number}).

    Immutable by convention.  Equality and hashing use the exact decimal value, so
    C{JSONNumber("1.5") == JSONNumber("1.50") == Decimal("1.5") == 1.5} and C{JSONNumber("1e2") == 100}.
    Floats compare exactly too: C{JSONNumber("0.1") != 0.1}, because the float 0.1 is not 1/10.
    Booleans never compare equal to a number.

    @ivar text: the literal JSON text, e.g. C{"1.50"}, C{"1e5"} or C{"-0"}.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        """
        @param text: a valid JSON number literal.
        @raise ValueError: if C{text} is not a JSON number literal.
        """
        if not isinstance(text, str) or _JSON_NUMBER_RE.fullmatch(text) is None:
            raise ValueError(f"not a JSON number literal: {text!r}")
        self.text = text

    def _decimal(self) -> Decimal:
        return Decimal(self.text)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JSONNumber):
            return self._decimal() == other._decimal()
        if isinstance(other, bool):
            return NotImplemented
        if isinstance(other, (int, float, Decimal)):
            return self._decimal() == other
        return NotImplemented

    def __hash__(self) -> int:
        # Decimal hashes agree with int/float/Decimal equality.
        return hash(self._decimal())

    def __repr__(self) -> str:
        return f"JSONNumber({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __float__(self) -> float:
        return float(self.text)

    def __int__(self) -> int:
        value = self._decimal()
        if value.adjusted() > _MAX_INT_DIGITS:
            raise ValueError(f"JSON number too large for int(): {self.text}")
        if value != value.to_integral_value():
            raise ValueError(f"JSON number is not integral: {self.text}")
        return int(value)

    def __bool__(self) -> bool:
        return self._decimal() != 0

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        return (JSONNumber, (self.text,))


_new_object = object.__new__


def _number_from_literal(text: str) -> JSONNumber:
    """
    Build a L{JSONNumber} from text the JSON scanner already validated (skips the regex).
    """
    number = _new_object(JSONNumber)
    number.text = text
    return number


def _parse_int(text: str) -> Union[int, JSONNumber]:
    # "-0" must keep its sign, and huge integers must keep their text (and not trip int()).
    if text == "-0" or len(text) > _MAX_INT_DIGITS:
        return _number_from_literal(text)
    return int(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# ---------------------------------------------------------------------------------------------
# JSON decoding

_JSON_DECODER = json.JSONDecoder(
    parse_float=_number_from_literal, parse_int=_parse_int, parse_constant=_reject_constant
)
_JSON_WHITESPACE = " \t\n\r"
_LEADING_WHITESPACE_RE = re.compile("[ \t\n\r]*")
_SURROGATES_RE = re.compile("[\ud800-\udfff]")


def _parse_json_text(text: str, whole: bool) -> Any:
    """
    Parse the first JSON value in C{text}.

    @param whole: if true, only whitespace may follow the value (C{json.loads} rules).  If false,
        follow Go's C{json.Decoder.Decode}: an object or array ends at its closing bracket and
        anything after it is ignored; a scalar must be followed by whitespace or the end.
    """
    start = _LEADING_WHITESPACE_RE.match(text).end()  # type: ignore[union-attr]
    if start == len(text):
        raise DecodeError("invalid JSON: empty body")
    try:
        value, end = _JSON_DECODER.raw_decode(text, start)
    except json.JSONDecodeError as e:
        raise DecodeError(f"invalid JSON: {e.msg} at offset {e.pos}") from None
    except ValueError as e:
        raise DecodeError(f"invalid JSON: {e}") from None
    except RecursionError:
        raise DecodeError("invalid JSON: nesting too deep") from None
    if whole:
        if text[end:].strip(_JSON_WHITESPACE):
            raise DecodeError(f"invalid JSON: extra data at offset {end}")
    elif not isinstance(value, (dict, list)) and end < len(text):
        if text[end] not in _JSON_WHITESPACE:
            raise DecodeError(f"invalid JSON: invalid character after top-level value at offset {end}")
    return value


def loads(body: Union[bytes, str]) -> Any:
    """
    Parse a whole JSON document, keeping number literals.

    Non-integer numbers (fractions, exponents) and C{-0} become L{JSONNumber}; other integers
    become C{int}.  NaN/Infinity are rejected, as is anything but whitespace after the value.

    @param body: UTF-8 bytes or text.
    @return: the decoded value (dict, list, str, int, JSONNumber, bool or None).
    @raise DecodeError: on invalid JSON, including invalid UTF-8.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as e:
            raise DecodeError(f"invalid JSON: invalid UTF-8 at offset {e.start}") from None
    return _parse_json_text(body, whole=True)


def _go_text(body: bytes) -> str:
    """
    Decode bytes as Go's JSON decoder sees them: each invalid UTF-8 byte becomes U+FFFD.
    """
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return _SURROGATES_RE.sub("\ufffd", body.decode("utf-8", "surrogateescape"))


def json_type(value: object) -> str:
    """
    Name the JSON type of a decoded value.

    Anything that is not an object, array, string, boolean or null counts as a number, so that any
    number class works.

    @param value: a decoded JSON value.
    @return: one of C{object}, C{array}, C{string}, C{boolean}, C{null}, C{number}.
    """
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, tuple):
        return "array"
    if isinstance(value, (bytes, bytearray)):
        return "string"
    return "number"


# ---------------------------------------------------------------------------------------------
# JSON encoding

# A per-process random tag makes a JSONNumber placeholder impossible to forge from backend data;
# dumps() also counts the substitutions, so even a forged one only costs the slow path.
_PLACEHOLDER_TAG = "\x00" + os.urandom(8).hex() + ":"
# How the C encoder writes the start of a placeholder string ("\x00" comes out escaped).
_PLACEHOLDER_OPEN = '"\\u0000' + _PLACEHOLDER_TAG[1:]
_encode_string = json.encoder.encode_basestring
_HTML_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def _replace_all(text: str, replacements: Tuple[Tuple[str, str], ...]) -> str:
    for char, replacement in replacements:
        if char in text:
            text = text.replace(char, replacement)
    return text


def _go_escape(text: str) -> str:
    # Only ever applied to encoder output, where these characters can only sit inside strings.
    return _replace_all(text, _HTML_ESCAPES)


def _utf8(text: str) -> bytes:
    """
    Encode as UTF-8, turning lone surrogates into U+FFFD.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES_RE.sub("\ufffd", text).encode("utf-8")


def _json_replacement(match: "re.Match[str]") -> str:
    # U+DC80..U+DCFF are raw invalid bytes kept by surrogateescape: Go's encoder writes those as
    # the escape \ufffd.  Other lone surrogates came from JSON "\udXXX" escapes, which Go's
    # decoder had already turned into a real U+FFFD.
    return "\\ufffd" if "\udc80" <= match.group() <= "\udcff" else "\ufffd"


def _utf8_json(text: str) -> bytes:
    """
    Encode JSON text as UTF-8 the way Go's encoder treats invalid strings.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return _SURROGATES_RE.sub(_json_replacement, text).encode("utf-8")


def _utf8_raw(text: str) -> bytes:
    """
    Encode as UTF-8, restoring raw bytes that were decoded with C{surrogateescape} (Go strings
    carry invalid bytes through untouched); any other lone surrogate becomes U+FFFD.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            return text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return _SURROGATES_RE.sub("\ufffd", text).encode("utf-8")


class _NumberCount(threading.local):
    """
    How many JSONNumber placeholders the shared encoder wrote during the current L{dumps} call.
    """

    value = 0


_number_count = _NumberCount()


def _encode_default(value: Any) -> str:
    if isinstance(value, JSONNumber):
        _number_count.value += 1
        return _PLACEHOLDER_TAG + value.text
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# Shared, since building a JSONEncoder per call costs more than encoding a small document.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"), default=_encode_default
)


def _dumps_fast(data: Any) -> Optional[str]:
    """
    Encode with the stdlib encoder (C on CPython), writing each JSONNumber as a tagged
    placeholder string, then splice the literal texts back in.

    @return: the JSON text, or C{None} if the placeholders cannot be trusted (a string in the
        data forged one), in which case the caller falls back to L{_dumps_pure}.
    """
    _number_count.value = 0
    text = _ENCODER.encode(data)
    written = _number_count.value
    if not written:
        return text
    pieces = text.split(_PLACEHOLDER_OPEN)
    if len(pieces) - 1 != written:
        return None
    # Each piece starts with a number's text followed by the placeholder's closing quote.
    return pieces[0] + "".join([piece.replace('"', "", 1) for piece in pieces[1:]])


def _go_float_json(value: float) -> str:
    """
    Format a float like Go's C{encoding/json}: shortest digits, plain notation unless
    C{abs < 1e-6} or C{abs >= 1e21}.
    """
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"unsupported float value: {value!r}")
    magnitude = abs(value)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        text = repr(value)  # already exponent form with shortest digits in this range
        mantissa, _, exponent = text.partition("e")
        sign, digits = exponent[0], exponent[1:]
        if sign == "-" and len(digits) == 2 and digits[0] == "0":
            digits = digits[1:]
        return f"{mantissa}e{sign}{digits}"
    return format(Decimal(repr(value)).normalize(), "f")


def _write_json(value: Any, out: List[str]) -> None:
    kind = type(value)
    # Exact type checks first (fast for decoded data), isinstance() for subclasses after.
    if kind is str:
        out.append(_encode_string(value))
    elif kind is dict:
        separator = "{"
        for key in sorted(value):
            out.append(separator)
            separator = ","
            out.append(_encode_string(key))
            out.append(":")
            _write_json(value[key], out)
        out.append("}" if value else "{}")
    elif kind is int:
        out.append(int.__repr__(value))
    elif kind is JSONNumber:
        out.append(value.text)
    elif kind is list or kind is tuple:
        separator = "["
        for item in value:
            out.append(separator)
            separator = ","
            _write_json(item, out)
        out.append("]" if value else "[]")
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    else:
        _write_json_other(value, out)


def _write_json_other(value: Any, out: List[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_string(str(value)))
    elif isinstance(value, JSONNumber):
        out.append(value.text)
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float):
        out.append(_go_float_json(value))
    elif isinstance(value, StructObject):
        separator = "{"
        for key, item in value.items():
            out.append(separator)
            separator = ","
            out.append(_encode_string(key))
            out.append(":")
            _write_json(item, out)
        out.append("}" if value else "{}")
    elif isinstance(value, dict):
        _write_json(dict(value), out)
    elif isinstance(value, (list, tuple)):
        _write_json(list(value), out)
    else:
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class StructObject(dict):
    """
    A JSON object that L{dumps} writes in insertion order, as Go's C{encoding/json} writes a
    struct (its fields in declaration order) rather than a map (keys sorted).

    Only noticed at the top level or as a top-level value (where KrakenD's structs appear: the
    C{return_error_details} object and the C{/__echo/} answer); deeper ones are written sorted.
    """


def _has_struct(data: Any) -> bool:
    if type(data) is StructObject:
        return True
    if type(data) is dict:
        for value in data.values():
            if type(value) is StructObject:
                return True
    return False


def _dumps_pure(data: Any) -> str:
    out: List[str] = []
    _write_json(data, out)
    return "".join(out)


def dumps(data: Any) -> bytes:
    """
    Serialise like Go's C{encoding/json} as used by gin's C{c.JSON}.

    Compact, object keys sorted, no trailing newline, non-ASCII written as UTF-8, C{<} C{>} C{&}
    U+2028 U+2029 escaped as C{\\u003c} etc., L{JSONNumber} written as its literal text, C{None}
    as C{null}.  Decoded data never holds Python floats (see L{loads}); if some are added, they
    are written with C{repr}, which matches Go only for C{1e-4 <= abs < 1e16}.

    @param data: a JSON-compatible value.
    @return: UTF-8 JSON.
    @raise TypeError: for values JSON cannot represent.
    @raise ValueError: for NaN or infinite floats.
    """
    text = None if _has_struct(data) else _dumps_fast(data)
    if text is None:
        text = _dumps_pure(data)
    return _utf8_json(_go_escape(text))


# ---------------------------------------------------------------------------------------------
# XML decoding (krakend-xml / mxj NewMapXmlReader)

_XML_TRIM = "\t\r\b\n "


def _local_name(name: str) -> str:
    # Go's encoding/xml splits "prefix:local" and mxj keeps only the local part.
    prefix, colon, local = name.partition(":")
    if colon and prefix and local:
        return local
    return name


class _MxjBuilder:
    """
    Build an mxj-style map from expat events, token for token like mxj's C{xmlToMapParser}.
    """

    def __init__(self) -> None:
        self.stack: List[Tuple[str, Dict[str, Any], Dict[str, Any]]] = []
        self.pending: List[str] = []
        self.result: Optional[Dict[str, Any]] = None

    def characters(self, data: str) -> None:
        self.pending.append(data)

    def flush(self, *ignored: Any) -> None:
        """
        End the current character-data token (Go splits text at markup, comments and CDATA).
        """
        if not self.pending:
            return
        text = "".join(self.pending).strip(_XML_TRIM)
        self.pending = []
        if not text or not self.stack:
            return  # mxj drops whitespace and stray text outside the root
        name, simple, nodes = self.stack[-1]
        if nodes:
            nodes["#text"] = text
        else:
            simple[name] = text

    def start(self, name: str, attributes: Dict[str, str]) -> None:
        self.flush()
        nodes = {"-" + _local_name(key): value for key, value in attributes.items()}
        self.stack.append((_local_name(name), {}, nodes))

    def end(self, name: str) -> None:
        self.flush()
        local, simple, nodes = self.stack.pop()
        # A simple value seen earlier wins over any sub-elements, as in mxj.
        if not simple:
            simple[local] = nodes if nodes else ""
        if not self.stack:
            self.result = simple
            return
        parent = self.stack[-1][2]
        value = simple[local]
        if local in parent:
            existing = parent[local]
            if isinstance(existing, list):
                existing.append(value)
            else:
                parent[local] = [existing, value]
        else:
            parent[local] = value


def _reject_entity_declaration(*ignored: Any) -> None:
    # Go's decoder ignores DTDs, so declared entities can never be used there; refusing them
    # also shuts out entity-expansion attacks.
    raise DecodeError("invalid XML: entity declarations are not supported")


def _check_xml_declaration(version: str, encoding: Optional[str], standalone: int) -> None:
    if encoding and encoding.lower() != "utf-8":
        raise DecodeError(f"invalid XML: encoding {encoding!r} declared, only UTF-8 is supported")


def _parse_xml(body: bytes) -> Dict[str, Any]:
    """
    Decode XML into an mxj map: C{{root: value}}, attributes as C{-name}, text as C{#text}, all
    values strings, repeated elements as lists, empty elements as C{""}.
    """
    builder = _MxjBuilder()
    parser = expat.ParserCreate("UTF-8")
    parser.specified_attributes = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartElementHandler = builder.start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.characters
    parser.CommentHandler = builder.flush
    parser.ProcessingInstructionHandler = builder.flush
    parser.StartCdataSectionHandler = builder.flush
    parser.EndCdataSectionHandler = builder.flush
    parser.EntityDeclHandler = _reject_entity_declaration
    parser.XmlDeclHandler = _check_xml_declaration
    try:
        parser.Parse(body, True)
    except expat.ExpatError as e:
        # Like mxj, stop at the end of the root element and ignore whatever follows it.
        if builder.result is None:
            raise DecodeError(f"invalid XML: {expat.ErrorString(e.code)} at line {e.lineno}") from None
    if builder.result is None:
        raise DecodeError("invalid XML: no root element")
    return builder.result


# ---------------------------------------------------------------------------------------------
# Backend decoders


def _decode_json(body: bytes, is_collection: bool) -> Dict[str, Any]:
    value = _parse_json_text(_go_text(body), whole=False)
    if is_collection:
        if value is None or isinstance(value, list):
            return {"collection": value}
        raise DecodeError(f"invalid JSON: expected an array, got {json_type(value)}")
    if value is None:
        return {}  # Go decodes null into a nil map without error
    if isinstance(value, dict):
        return value
    raise DecodeError(f"invalid JSON: expected an object, got {json_type(value)}")


def _decode_safejson(body: bytes, is_collection: bool) -> Dict[str, Any]:
    value = _parse_json_text(_go_text(body), whole=False)
    if isinstance(value, dict):
        return value
    if isinstance(value, list):
        return {"collection": value}
    # The reference (krakend-behaviour.md, section 3.4) puts scalars (and null) under "content".
    return {"content": value}


def _decode_string(body: bytes, is_collection: bool) -> Dict[str, Any]:
    # surrogateescape keeps invalid bytes so a string render gives them back untouched.
    return {"content": body.decode("utf-8", "surrogateescape")}


def _decode_xml(body: bytes, is_collection: bool) -> Dict[str, Any]:
    value = _parse_xml(body)
    return {"collection": value} if is_collection else value


def _decode_noop(body: bytes, is_collection: bool) -> Dict[str, Any]:
    return {}


_DECODERS: Dict[str, Callable[[bytes, bool], Dict[str, Any]]] = {
    "json": _decode_json,
    "safejson": _decode_safejson,
    "string": _decode_string,
    "xml": _decode_xml,
    "no-op": _decode_noop,
}


def decode(encoding: str, body: bytes, *, is_collection: bool = False) -> Dict[str, Any]:
    """
    Decode a backend response body as KrakenD's backend C{encoding} does (§3.4).

      - C{json}: an object gives a dict; with C{is_collection} an array gives
        C{{"collection": [...]}}.  Anything else, or an empty body, is an error.  As with Go's
        C{json.Decoder}, data after the closing bracket is ignored and each invalid UTF-8 byte
        inside a string becomes U+FFFD; C{null} gives C{{}} (C{{"collection": None}} for a
        collection).
      - C{safejson}: object -> dict, array -> C{{"collection": [...]}}, anything else ->
        C{{"content": value}}.
      - C{string}: C{{"content": text}}; invalid UTF-8 bytes are kept as surrogate escapes.
      - C{xml}: the mxj map (see L{_parse_xml}); C{is_collection} gives C{{"collection": map}}.
      - C{no-op}: C{{}}; the caller streams the body itself.

    The name is lower-cased first; unknown names (including C{rss}, C{fast-json} and C{yaml},
    which CE does not decode here) fall back to C{json}.

    @param encoding: the backend C{encoding} value.
    @param body: the (already gunzipped) body.
    @param is_collection: the backend C{is_collection} flag.
    @return: a new dict.
    @raise DecodeError: if the body cannot be decoded.
    """
    decoder = _DECODERS.get(encoding.lower(), _decode_json)
    return decoder(bytes(body), is_collection)


# ---------------------------------------------------------------------------------------------
# XML rendering (krakend-xml gin renderer: mxj Map.XmlWriter with XMLEscapeChars(true))

_XML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&apos;"))


class _XmlRenderError(Exception):
    """
    mxj refused the map; like krakend-xml the response body is then empty.
    """


def _xml_escape(text: str) -> str:
    return _replace_all(text, _XML_ESCAPES)


def _go_float_v(value: float) -> str:
    """
    Format a float like Go's C{%v} (strconv C{'g'}, shortest): exponent form when the decimal
    exponent is below -4 or at least 6, so 1e6 prints as C{1e+06}.
    """
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    number = Decimal(repr(value)).normalize()
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    decimal_exponent = len(digits) - 1 + exponent
    if value != 0 and (decimal_exponent < -4 or decimal_exponent >= 6):
        text = "".join(map(str, digits))
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        exponent_sign = "-" if decimal_exponent < 0 else "+"
        return f"{'-' if sign else ''}{mantissa}e{exponent_sign}{abs(decimal_exponent):02d}"
    return format(number, "f")


def _go_sprint(value: Any) -> str:
    """
    Format a value like Go's C{fmt.Sprintf("%v", v)} for JSON-shaped data.
    """
    if value is None:
        return "<nil>"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, JSONNumber):
        return value.text
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _go_float_v(value)
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{_go_sprint(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_go_sprint(item) for item in value) + "]"
    return str(value)


def _xml_attribute_value(key: str, value: Any) -> str:
    if isinstance(value, str):
        return _xml_escape(value)
    if isinstance(value, (bool, int, float, JSONNumber)):
        return _go_sprint(value)
    raise _XmlRenderError(f"invalid attribute value for: {key}")


def _xml_map(key: str, value: Dict[str, Any], out: List[str]) -> None:
    attributes = []
    children = []
    for name, item in value.items():
        if len(name) > 1 and name[0] == "-":
            attributes.append((name[1:], _xml_attribute_value(name, item)))
        elif name != "#text":
            children.append((name, item))
    out.append("<" + key)
    for name, text in sorted(attributes):
        out.append(f' {name}="{text}"')
    if len(attributes) == len(value):
        out.append("/>")
        return
    out.append(">")
    if "#text" in value:
        text = value["#text"]
        out.append(_xml_escape(text) if isinstance(text, str) else _go_sprint(text))
    for name, item in sorted(children, key=lambda pair: pair[0]):
        _xml_element(name, item, out)
    out.append(f"</{key}>")


def _xml_element(key: str, value: Any, out: List[str]) -> None:
    if isinstance(value, dict):
        _xml_map(key, value, out)
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append(f"<{key}/>")
        for item in value:
            _xml_element(key, item, out)
    elif value is None or value == "":
        out.append(f"<{key}/>")
    elif isinstance(value, str):
        out.append(f"<{key}>{_xml_escape(value)}</{key}>")
    else:
        out.append(f"<{key}>{_go_sprint(value)}</{key}>")


def _render_xml(data: Optional[Dict[str, Any]]) -> bytes:
    """
    Render like mxj's C{Map.Xml()}: one key is the root element (unless its value is a list
    holding non-objects); otherwise the map is wrapped in C{<doc>}.
    """
    data = data or {}
    out: List[str] = []
    try:
        if len(data) == 1:
            (key, value), = data.items()
            if isinstance(value, (list, tuple)) and not all(isinstance(v, dict) for v in value):
                _xml_element("doc", data, out)
            else:
                _xml_element(key, value, out)
        else:
            _xml_element("doc", data, out)
    except _XmlRenderError:
        return b""
    return _utf8_raw("".join(out))


# ---------------------------------------------------------------------------------------------
# YAML rendering

_YamlBase: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _YamlDumper(_YamlBase):  # type: ignore[misc, valid-type]
    """
    Safe YAML dumper that writes L{JSONNumber} as a plain (unquoted, untagged) number.
    """


def _represent_json_number(dumper: Any, number: JSONNumber) -> Any:
    # Tag the literal with whatever YAML 1.1 resolves it to, so it is emitted plain: "1.50" is a
    # float there, "1e5" a string, but both come out as bare numbers for YAML 1.2 readers.
    tag = dumper.resolve(yaml.ScalarNode, number.text, (True, False))
    return dumper.represent_scalar(tag, number.text)


_YamlDumper.add_representer(JSONNumber, _represent_json_number)
_YamlDumper.add_representer(StructObject, yaml.representer.SafeRepresenter.represent_dict)


def _render_yaml(data: Optional[Dict[str, Any]]) -> bytes:
    text = yaml.dump(
        data or {},
        Dumper=_YamlDumper,
        default_flow_style=False,
        sort_keys=True,
        allow_unicode=True,
        width=1 << 30,
    )
    return _utf8(text)


# ---------------------------------------------------------------------------------------------
# Renderers

# What gin's NegotiateFormat is offered, in order, mapped to the renderer used: lura offers
# exactly these four, so text/xml or application/yaml match nothing and get JSON.
_NEGOTIATE_OFFERS = (
    ("application/json", "json"),
    ("text/plain", "yaml"),
    ("application/xml", "xml"),
    ("application/x-yaml", "yaml"),
)


def _parse_accept(header: str) -> List[str]:
    # gin's parseAccept: split on commas, drop parameters, trim, skip empties.
    accepted = []
    for part in header.split(","):
        semicolon = part.find(";")
        if semicolon > 0:
            part = part[:semicolon]
        part = part.strip()
        if part:
            accepted.append(part)
    return accepted


def _offer_matches(accepted: str, offer: str) -> bool:
    # gin compares byte by byte: a '*' on either side matches the rest, and an Accept entry that
    # is a prefix of the offer matches too (so "text/" picks text/plain).
    length = min(len(accepted), len(offer))
    for i in range(length):
        if accepted[i] == "*" or offer[i] == "*":
            return True
        if accepted[i] != offer[i]:
            return False
    return length == len(accepted)


def negotiate_format(accept: Optional[str]) -> str:
    """
    Pick the renderer for C{output_encoding: negotiate} as gin's C{NegotiateFormat} would.

    Q-values are ignored and the first Accept entry matching any offer wins.  No Accept header
    gives JSON, as does an Accept header that matches nothing.

    @param accept: the request's C{Accept} header, or C{None}.
    @return: C{"json"}, C{"xml"} or C{"yaml"}.
    """
    accepted = _parse_accept(accept or "")
    if not accepted:
        return "json"
    for entry in accepted:
        for offer, renderer in _NEGOTIATE_OFFERS:
            if _offer_matches(entry, offer):
                return renderer
    return "json"


def _render_json(data: Optional[Dict[str, Any]]) -> Tuple[bytes, str]:
    return (b"{}" if data is None else dumps(data)), JSON_CONTENT_TYPE


def _render_json_collection(data: Optional[Dict[str, Any]]) -> Tuple[bytes, str]:
    if data is None or "collection" not in data:
        return b"[]", JSON_CONTENT_TYPE
    return dumps(data["collection"]), JSON_CONTENT_TYPE


def _render_string(data: Optional[Dict[str, Any]]) -> Tuple[bytes, str]:
    content = (data or {}).get("content")
    body = _utf8_raw(content) if isinstance(content, str) else b""
    return body, TEXT_CONTENT_TYPE


def _render_xml_response(data: Optional[Dict[str, Any]]) -> Tuple[bytes, str]:
    return _render_xml(data), XML_CONTENT_TYPE


def _render_yaml_response(data: Optional[Dict[str, Any]]) -> Tuple[bytes, str]:
    return _render_yaml(data), YAML_CONTENT_TYPE


_RENDERERS: Dict[str, Callable[[Optional[Dict[str, Any]]], Tuple[bytes, str]]] = {
    "json": _render_json,
    "json-collection": _render_json_collection,
    "string": _render_string,
    "xml": _render_xml_response,
    "yaml": _render_yaml_response,
}


def render(
    output_encoding: str, data: Optional[Dict[str, Any]], accept: Optional[str] = None
) -> Tuple[bytes, str]:
    """
    Render response data for the client as the endpoint C{output_encoding} does (§2.7).

      - C{json} (and any unknown value, C{fast-json} and C{no-op}): L{dumps}; C{None} gives C{{}}.
      - C{json-collection}: C{data["collection"]}, or C{[]} when missing.
      - C{string}: C{data["content"]} when it is a str, else an empty body.
      - C{xml}: the mxj rendering (see L{_render_xml}); C{None} or C{{}} gives C{<doc/>}.
      - C{yaml}: block-style YAML with sorted keys; numbers keep their literal text.
      - C{negotiate}: JSON, XML or YAML picked by L{negotiate_format} from C{accept}.

    The name is matched exactly (lura's render registry is case-sensitive).  C{no-op} responses
    are streamed by the caller, not rendered here.

    @param output_encoding: the endpoint C{output_encoding}.
    @param data: the response data, or C{None} when there is no response.
    @param accept: the request's C{Accept} header (only used by C{negotiate}).
    @return: C{(body, content_type)}.
    """
    if output_encoding == "negotiate":
        output_encoding = negotiate_format(accept)
    renderer = _RENDERERS.get(output_encoding, _render_json)
    return renderer(data)


def is_known_output_encoding(name: str) -> bool:
    """
    Whether C{name} is an C{output_encoding} KrakenD CE knows (matched exactly, like lura).

    @param name: the configured value.
    @return: C{True} for json, json-collection, string, xml, yaml, negotiate, no-op, fast-json.
    """
    return name in _OUTPUT_ENCODINGS


def is_known_backend_encoding(name: str) -> bool:
    """
    Whether C{name} is a backend C{encoding} KrakenD CE knows (case-insensitive, like L{decode}).

    @param name: the configured value.
    @return: C{True} for json, safejson, string, xml, no-op, rss, fast-json, yaml.
    """
    return name.lower() in _BACKEND_ENCODINGS
