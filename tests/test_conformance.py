"""
The KrakenD CE conformance suite: C{../shared/docs/krakend-behaviour.md}, sections 1 to 8, as a
table.

Each L{Case} names the section it checks, the configuration fragment, what the backends answer,
the client's request, the exact status, headers and body the client must get, and what the
backends must have received. The cases run over real loopback sockets (see
L{tests.conformance_support}). Where shadowtwist deliberately differs from KrakenD (README,
"Deliberate differences from KrakenD"), the case checks shadowtwist's documented behaviour and
says so.

Section 1.1 (what C{krakend check} validates) is a separate table run through L{parse_config}.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import tempfile

from twisted.trial.unittest import TestCase

from shadowtwist.config import ConfigError, load_config, parse_config
from tests.conformance_support import (
    ABSENT, JSON_TYPE, TEXT_TYPE, USER_AGENT, VERSION, Case, J, Reply, Request, Response, Sent,
    add_cases, backend_headers, gateway_headers,
)


# ---------------------------------------------------------------------------------------------
# Shorthands


def ep(endpoint, *backends, **keys):
    """
    An endpoint object.
    """
    entry = {"endpoint": endpoint, "backend": list(backends)}
    entry.update(keys)
    return entry


def be(url_pattern, host="$B", **keys):
    """
    A backend object on C{host} (the primary recording backend by default).
    """
    entry = {"host": [host], "url_pattern": url_pattern}
    entry.update(keys)
    return entry


def shadow(url_pattern, host="$C", **keys):
    """
    A shadow backend (on the second recording backend by default).
    """
    entry = be(url_pattern, host, **keys)
    entry.setdefault("extra_config", {})["proxy"] = {"shadow": True}
    return entry


def GET(path, *headers):
    return Request("GET", path, headers)


def req(method, path, body=None, *headers):
    return Request(method, path, headers, body)


def ok(body, completed="true", **headers):
    """
    An endpoint's 200 JSON answer.
    """
    return Response(200, gateway_headers(completed, **headers), body)


def failed(status=500, body=b"", content_type=None, **headers):
    """
    An endpoint's error answer: X-Krakend, X-Krakend-Completed false, and a body only with
    return_error_msg.
    """
    return Response(status, gateway_headers("false", content_type, **headers), body)


def router(status, body, content_type="text/plain", **headers):
    """
    The router's own 404 or 405.
    """
    expected = {"Content-Type": content_type, "X-Krakend": VERSION, "X-Krakend-Completed": "false"}
    for key, value in headers.items():
        expected[key.replace("_", "-")] = value
    return Response(status, expected, body)


NOT_FOUND = router(404, b"404 page not found")


def not_allowed(allow):
    return router(405, b"405 method not allowed", Allow=allow)


def moved(location, body=True):
    """
    gin's 301 (GET): Location, Go's redirect body, no KrakenD headers.
    """
    html = location.replace("&", "&amp;")
    return Response(301, {"Location": location, "Content-Type": "text/html; charset=utf-8"},
                    f'<a href="{html}">Moved Permanently</a>.\n\n'.encode() if body else b"")


def temporary(location):
    """
    gin's 307 (any method but GET): Location only, no body.
    """
    return Response(307, {"Location": location}, b"")


def sent(method, uri, body=b"", exact=False, **headers):
    """
    A backend request with the standard gateway headers (overridable, C{_} for C{-}).
    """
    return Sent(method, uri, backend_headers(**headers), body, exact)


def get(uri, **headers):
    return sent("GET", uri, **headers)


ROUTER = lambda **options: {"extra_config": {"router": options}}  # noqa: E731
USER = J({"id": 42, "name": "Ann"})
ERROR_MSG = ROUTER(return_error_msg=True)


def health_body(body):
    """
    C{{"agents":{},"now":"<Go time>","status":"ok"}}, keys sorted.
    """
    if not re.fullmatch(rb'\{"agents":\{\},"now":"[^"]+","status":"ok"\}', body):
        return "not the health document"
    now = json.loads(body)["now"]
    if not re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \+0000 UTC.*", now):
        return f"now is not Go's time.String(): {now!r}"
    return None


CASES = []


def case(section, name, what, config, exchanges, **keys):
    CASES.append(Case(section, name, what, config, exchanges, **keys))


# ---------------------------------------------------------------------------------------------
# 2.1 Paths, parameters and wildcards

case("2.1", "param_substituted",
     "{id} matches one segment and its value goes into the url_pattern.",
     [ep("/user/{id}", be("/users/{id}"))],
     [(GET("/user/42"), ok(b'{"id":42,"name":"Ann"}')), (GET("/user/a%20b"), ok(b'{"id":42,"name":"Ann"}'))],
     routes={"/users/42": USER, "/users/a%20b": USER},
     sent=[get("/users/42", exact=True), get("/users/a%20b", exact=True)])
case("2.1", "param_is_one_segment",
     "/user/{id} does not match /user/1/2: 404, nothing sent.",
     [ep("/user/{id}", be("/users/{id}"))],
     [(GET("/user/1/2"), NOT_FOUND)], sent=[])
case("2.1", "unknown_path",
     "An unknown path is gin's 404 with X-Krakend and X-Krakend-Completed: false.",
     [ep("/a", be("/a"))],
     [(GET("/nowhere"), NOT_FOUND), (Request("POST", "/nowhere", (), b"x"), NOT_FOUND)], sent=[])
case("2.1", "two_params_capitalised",
     "Parameters are keyed with the first letter upper-cased; both forms fill the pattern.",
     [ep("/a/{first}/{second_one}", be("/b/{second_one}/{first}"))],
     [(GET("/a/x/y"), ok(b'{"ok":true}'))],
     routes={"/b/y/x": J({"ok": True})}, sent=[get("/b/y/x")])
case("2.1", "disable_rest_params",
     "disable_rest: a parameter may stand anywhere, e.g. /file.{ext}.",
     [ep("/file.{ext}", be("/files/{ext}"))],
     [(GET("/file.json"), ok(b'{"ok":true}'))],
     top={"disable_rest": True}, routes={"/files/json": J({"ok": True})}, sent=[get("/files/json")])
case("2.1", "encoded_param_400",
     "A parameter still holding %xx after decoding: 400 'error: encoded url params', no KrakenD "
     "headers, nothing sent.",
     [ep("/user/{id}", be("/users/{id}"))],
     [(GET("/user/a%252Fb"), Response(400, {"Content-Type": TEXT_TYPE}, b"error: encoded url params")),
      (GET("/user/a%3Fb"), Response(400, {"Content-Type": TEXT_TYPE}, b"error: encoded url params")),
      (GET("/user/a%23b"), Response(400, {"Content-Type": TEXT_TYPE}, b"error: encoded url params"))],
     sent=[])
case("2.1", "invalid_escape_400",
     "A parameter that cannot be unescaped: 400 'error: invalid URL escape'.",
     [ep("/user/{id}", be("/users/{id}"))],
     [(GET("/user/a%25zz"), Response(400, {"Content-Type": TEXT_TYPE}, b'error: invalid URL escape "%zz"'))],
     sent=[])
case("2.1", "literal_brace",
     "A brace that is not extracted as a parameter stays literal in the route.",
     [ep("/a{b}", be("/d"))],
     [(GET("/a%7Bb%7D"), ok(b'{"d":1}')), (GET("/ax"), NOT_FOUND)],
     routes={"/d": J({"d": 1})}, sent=[get("/d")])
case("2.1", "encoded_slash_is_404",
     "%2F decodes to a slash, so the path has one more segment: 404.",
     [ep("/user/{id}", be("/users/{id}"))],
     [(GET("/user/a%2Fb"), NOT_FOUND)], sent=[])
case("2.1", "disable_path_decoding",
     "router.disable_path_decoding turns the 400 off; the value is percent-encoded into the "
     "backend path (deliberate difference: KrakenD places it raw).",
     [ep("/user/{id}", be("/users/{id}"))],
     [(GET("/user/a%3Fb"), ok(b'{"ok":true}'))],
     top=ROUTER(disable_path_decoding=True), routes={"/users/a%3Fb": J({"ok": True})},
     sent=[get("/users/a%3Fb")])
case("2.1", "trailing_slash_get_301",
     "GET /thing/ redirects 301 to /thing with Go's redirect body; the query is kept.",
     [ep("/thing", be("/t"))],
     [(GET("/thing/"), moved("/thing")), (GET("/thing/?a=1&b=2"), moved("/thing?a=1&b=2"))], sent=[])
case("2.1", "trailing_slash_added",
     "GET /thing when only /thing/ is declared redirects 301 to /thing/.",
     [ep("/thing/", be("/t"))],
     [(GET("/thing"), moved("/thing/"))], sent=[])
case("2.1", "trailing_slash_param",
     "GET /user/7/ redirects 301 to /user/7.",
     [ep("/user/{id}", be("/users/{id}"))],
     [(GET("/user/7/"), moved("/user/7"))], sent=[])
case("2.1", "trailing_slash_post_307",
     "POST /thing/ redirects 307 to /thing, without a body or Content-Type.",
     [ep("/thing", be("/t"), method="POST")],
     [(req("POST", "/thing/", b"{}"), temporary("/thing"))], sent=[])
case("2.1", "trailing_slash_needs_the_method",
     "The redirect is looked up in the request method's routes: POST /thing/ with only "
     "GET /thing is a 404, and GET /other/ with only POST /other too.",
     [ep("/thing", be("/t")), ep("/other", be("/o"), method="POST")],
     [(req("POST", "/thing/", b"{}"), NOT_FOUND), (GET("/other/"), NOT_FOUND)], sent=[])
case("2.1", "disable_redirect_trailing_slash",
     "router.disable_redirect_trailing_slash alone: gin's fixed-path redirect still fixes the "
     "trailing slash (it is called with fixTrailingSlash); with both disabled /thing/ is a 404.",
     [ep("/thing", be("/t"))],
     [(GET("/thing/"), moved("/thing"))], top=ROUTER(disable_redirect_trailing_slash=True), sent=[])
case("2.1", "disable_both_redirects",
     "router.disable_redirect_trailing_slash and disable_redirect_fixed_path: /thing/ and "
     "/THING are 404s.",
     [ep("/thing", be("/t"))],
     [(GET("/thing/"), NOT_FOUND), (GET("/THING"), NOT_FOUND)],
     top=ROUTER(disable_redirect_trailing_slash=True, disable_redirect_fixed_path=True), sent=[])
case("2.1", "fixed_path_case",
     "RedirectFixedPath: /THING and /User/7 redirect 301 to the declared case.",
     [ep("/thing", be("/t")), ep("/user/{id}", be("/u/{id}"))],
     [(GET("/THING"), moved("/thing")), (GET("/USER/7"), moved("/user/7")),
      (GET("/THING?x=1"), moved("/thing?x=1"))], sent=[])
case("2.1", "fixed_path_clean",
     "RedirectFixedPath: //thing and /a/../thing are cleaned and redirected.",
     [ep("/thing", be("/t"))],
     [(GET("//thing"), moved("/thing")), (GET("/x/../thing"), moved("/thing"))], sent=[])
case("2.1", "fixed_path_and_trailing_slash",
     "RedirectFixedPath also fixes a trailing slash: /THING/ redirects to /thing.",
     [ep("/thing", be("/t"))],
     [(GET("/THING/"), moved("/thing"))], sent=[])
case("2.1", "fixed_path_post_307",
     "A fixed-path redirect for POST is a 307.",
     [ep("/thing", be("/t"), method="POST")],
     [(req("POST", "/THING", b"{}"), temporary("/thing"))], sent=[])
case("2.1", "fixed_path_needs_the_method",
     "The fixed path is looked up in the request method's routes: POST /THING with only "
     "GET /thing is a 404.",
     [ep("/thing", be("/t"))],
     [(req("POST", "/THING", b"{}"), NOT_FOUND)], sent=[])
case("2.1", "disable_redirect_fixed_path",
     "router.disable_redirect_fixed_path: /THING is a 404.",
     [ep("/thing", be("/t"))],
     [(GET("/THING"), NOT_FOUND)], top=ROUTER(disable_redirect_fixed_path=True), sent=[])

# ---------------------------------------------------------------------------------------------
# 2.2 Method dispatch

case("2.2", "wrong_method_405",
     "A known path with another method: 405, text/plain, Allow, X-Krakend, completed false.",
     [ep("/thing", be("/t"))],
     [(req("POST", "/thing", b"{}"), not_allowed("GET")),
      (req("DELETE", "/thing"), not_allowed("GET"))], sent=[])
case("2.2", "allow_lists_every_method",
     "Allow lists the path's other methods, comma and space separated.",
     [ep("/thing", be("/t")), ep("/thing", be("/t"), method="PUT"),
      ep("/thing", be("/t"), method="DELETE")],
     [(req("PATCH", "/thing", b"{}"), not_allowed("GET, PUT, DELETE"))], sent=[])
case("2.2", "allow_in_router_order",
     "Allow follows gin's method trees, in the order each method was first registered "
     "(GET first, for the health endpoint), not the order on the path.",
     [ep("/b", be("/t"), method="DELETE"), ep("/a", be("/t"), method="POST"),
      ep("/a", be("/t"), method="DELETE")],
     [(req("PUT", "/a", b"{}"), not_allowed("DELETE, POST"))], sent=[])
case("2.2", "allow_order_with_debug",
     "With debug_endpoint, gin's Any() registers every method tree first (GET, POST, PUT, PATCH, "
     "HEAD, OPTIONS, DELETE...), which orders Allow.",
     {"version": 3, "debug_endpoint": True,
      "endpoints": [ep("/a", be("/t"), method="DELETE"), ep("/a", be("/t"), method="POST")]},
     [(req("PUT", "/a", b"{}"), not_allowed("POST, DELETE")),
      (Request("HEAD", "/a"), Response(405, not_allowed("POST, DELETE").headers, b""))], sent=[])
case("2.2", "head_is_405",
     "HEAD on a GET-only path is a 405 (gin does not map HEAD to GET).",
     [ep("/thing", be("/t"))],
     [(Request("HEAD", "/thing"), Response(405, not_allowed("GET").headers, b""))], sent=[])
case("2.2", "options_is_405",
     "OPTIONS is a 405 unless router.auto_options.",
     [ep("/thing", be("/t"))],
     [(Request("OPTIONS", "/thing"), not_allowed("GET"))], sent=[])
case("2.2", "unsupported_method_skipped",
     "An endpoint with method HEAD (or OPTIONS) is skipped, not fatal: its path is a 404.",
     [ep("/h", be("/h"), method="HEAD"), ep("/o", be("/o"), method="OPTIONS"), ep("/g", be("/g"))],
     [(Request("HEAD", "/h"), Response(404, NOT_FOUND.headers, b"")),
      (Request("OPTIONS", "/o"), NOT_FOUND),
      (GET("/g"), ok(b'{"g":1}'))],
     routes={"/g": J({"g": 1})}, sent=[get("/g")])
case("2.2", "same_path_several_methods",
     "The same path may be declared for several methods, each with its own backends.",
     [ep("/r", be("/read")), ep("/r", be("/write"), method="POST")],
     [(GET("/r"), ok(b'{"read":1}')), (req("POST", "/r", b'{"x":1}', ("Content-Type", "application/json")),
                                       ok(b'{"written":1}'))],
     routes={"/read": J({"read": 1}), "/write": J({"written": 1}, 201)},
     sent=[get("/read"),
           sent("POST", "/write", b'{"x":1}', Content_Type="application/json", Content_Length="7")])
case("2.2", "auto_options",
     "router.auto_options: OPTIONS answers 200 with the sorted methods and X-Krakend only.",
     [ep("/r", be("/r"), method="POST"), ep("/r", be("/r"))],
     [(Request("OPTIONS", "/r"), Response(200, {"Allow": "GET, POST", "X-Krakend": VERSION}, b""))],
     top=ROUTER(auto_options=True), sent=[])
case("2.2", "auto_options_in_allow",
     "With auto_options, OPTIONS is one of the path's methods in a 405's Allow (registered last).",
     [ep("/r", be("/r"), method="POST"), ep("/r", be("/r"))],
     [(req("PUT", "/r", b"{}"), not_allowed("GET, POST, OPTIONS"))],
     top=ROUTER(auto_options=True), sent=[])
case("2.2", "disable_handle_method_not_allowed",
     "router.disable_handle_method_not_allowed: a wrong method is a 404.",
     [ep("/thing", be("/t"))],
     [(req("POST", "/thing", b"{}"), NOT_FOUND)],
     top=ROUTER(disable_handle_method_not_allowed=True), sent=[])
case("2.2", "non_get_several_backends",
     "A POST endpoint with two backends: both get the body (read once), answers merged.",
     [ep("/m", be("/one"), be("/two"), method="POST")],
     [(req("POST", "/m", b"hello"), ok(b'{"one":1,"two":2}'))],
     routes={"/one": J({"one": 1}), "/two": J({"two": 2})},
     sent=None, after=lambda b, c: None if sorted((r.method, r.uri, r.body) for r in b.received) == [
         ("POST", "/one", b"hello"), ("POST", "/two", b"hello")] else f"received {b.received}")

# ---------------------------------------------------------------------------------------------
# 2.3 input_headers

CLIENT_HEADERS = (("Authorization", "Bearer t"), ("X-Y-Z", "1"), ("X-Y-Z", "2"), ("A-B-C", "abc"),
                  ("Cookie", "session=s"), ("User-Agent", "Go-http-client/1.1"),
                  ("Content-Type", "application/json"))

case("2.3", "default_only_content_type",
     "Without input_headers only Content-Type is forwarded, plus X-Forwarded-For, "
     "X-Forwarded-Host, User-Agent and Accept-Encoding: gzip.",
     [ep("/h", be("/h"))],
     [(GET("/h", *CLIENT_HEADERS), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[get("/h", exact=True, Content_Type="application/json")])
case("2.3", "listed_headers",
     "input_headers [Authorization, x-y-z]: those (every value, in order), not Content-Type "
     "(doc table, row 1).",
     [ep("/h", be("/h"), input_headers=["Authorization", "x-y-z"])],
     [(GET("/h", *CLIENT_HEADERS), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[get("/h", exact=True, Authorization="Bearer t", X_Y_Z=["1", "2"])])
case("2.3", "star_forwards_everything",
     "input_headers [*]: every client header, the client's User-Agent plus X-Forwarded-Via, and "
     "the client's own Accept-Encoding (doc table, row 2; hop-by-hop headers excepted, README).",
     [ep("/h", be("/h"), input_headers=["*"])],
     [(GET("/h", *(CLIENT_HEADERS + (("Accept-Encoding", "br"),))), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[get("/h", exact=True, Authorization="Bearer t", X_Y_Z=["1", "2"], A_B_C="abc",
               Cookie="session=s", User_Agent="Go-http-client/1.1", X_Forwarded_Via=USER_AGENT,
               Content_Type="application/json", Accept_Encoding="br")],)
case("2.3", "user_agent_listed",
     "A forwarded client User-Agent is kept and X-Forwarded-Via names the gateway.",
     [ep("/h", be("/h"), input_headers=["User-Agent"])],
     [(GET("/h", ("User-Agent", "curl/8")), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[get("/h", exact=True, User_Agent="curl/8", X_Forwarded_Via=USER_AGENT)])
case("2.3", "user_agent_not_listed",
     "A client User-Agent that is not listed is replaced by the gateway's.",
     [ep("/h", be("/h"))],
     [(GET("/h", ("User-Agent", "curl/8")), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[get("/h", exact=True, X_Forwarded_Via=ABSENT)])
case("2.3", "forwarded_for_left_most",
     "X-Forwarded-For is gin's ClientIP(): the left-most address of the client's "
     "X-Forwarded-For, then X-Real-IP, then the peer; it replaces the client's header.",
     [ep("/h", be("/h"), input_headers=["X-Forwarded-For"])],
     [(GET("/h", ("X-Forwarded-For", "203.0.113.7, 10.0.0.1")), ok(b'{"ok":1}')),
      (GET("/h", ("X-Real-IP", "198.51.100.2")), ok(b'{"ok":1}')),
      (GET("/h", ("X-Forwarded-For", "unknown, 10.0.0.1")), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[get("/h", X_Forwarded_For="203.0.113.7"), get("/h", X_Forwarded_For="198.51.100.2"),
           get("/h", X_Forwarded_For="127.0.0.1")])
case("2.3", "forwarded_host",
     "X-Forwarded-Host is the client's Host header, port included.",
     [ep("/h", be("/h"))],
     [(GET("/h", ("Host", "api.example.com:8443")), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[get("/h", X_Forwarded_Host="api.example.com:8443")])
case("2.3", "host_is_the_backend",
     "Host is the backend's host and port.",
     [ep("/h", be("/h"))],
     [(GET("/h", ("Host", "api.example.com")), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})}, sent=[get("/h", Host="$H", X_Forwarded_Host="api.example.com")])
case("2.3", "backend_level_filter",
     "Backend input_headers keep only the listed names of the endpoint's set: X-Forwarded-* and "
     "the gateway User-Agent go too, and the client sends Go's own User-Agent.",
     [ep("/h", be("/h", input_headers=["Authorization"]), input_headers=["*"])],
     [(GET("/h", *CLIENT_HEADERS), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[Sent("GET", "/h", {"Authorization": "Bearer t", "Accept-Encoding": "gzip",
                              "User-Agent": "Go-http-client/1.1"}, exact=True)])
case("2.3", "backend_level_filter_keeps_listed_forwarded",
     "Backend input_headers may list X-Forwarded-For and User-Agent to keep them.",
     [ep("/h", be("/h", input_headers=["X-Forwarded-For", "User-Agent"]))],
     [(GET("/h"), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1})},
     sent=[Sent("GET", "/h", {"X-Forwarded-For": "127.0.0.1", "User-Agent": USER_AGENT,
                              "Accept-Encoding": "gzip"}, exact=True)])
case("2.3", "empty_post_content_length_0",
     "POST without a body (no-op endpoint): Accept-Encoding, Content-Length: 0, User-Agent, "
     "X-Forwarded-Host and -For, nothing else (doc table, row 3).",
     [ep("/p", be("/p"), method="POST", output_encoding="no-op")],
     [(Request("POST", "/p"), Response(200, {"X-Krakend": VERSION, "X-Krakend-Completed": "false"},
                                       b"", exact=False))],
     routes={"/p": Reply(200)},
     sent=[sent("POST", "/p", exact=True, Content_Length="0")])
case("2.3", "empty_bodies_content_length_0",
     "PUT, PATCH and DELETE without a body send Content-Length: 0; GET sends none.",
     [ep("/x", be("/x"), method="PUT"), ep("/x", be("/x"), method="PATCH"),
      ep("/x", be("/x"), method="DELETE"), ep("/x", be("/x"))],
     [(Request("PUT", "/x"), ok(b'{"ok":1}')), (Request("PATCH", "/x"), ok(b'{"ok":1}')),
      (Request("DELETE", "/x"), ok(b'{"ok":1}')), (GET("/x"), ok(b'{"ok":1}'))],
     routes={"/x": J({"ok": 1})},
     sent=[sent("PUT", "/x", exact=True, Content_Length="0"),
           sent("PATCH", "/x", exact=True, Content_Length="0"),
           sent("DELETE", "/x", exact=True, Content_Length="0"),
           sent("GET", "/x", exact=True)])
case("2.3", "post_body_forwarded",
     "A POST body is forwarded as is; Content-Type only when listed (here it is not). The body "
     "is sent with Content-Length, not chunked (deliberate difference, README).",
     [ep("/p", be("/p"), method="POST", input_headers=["X-Y-Z"])],
     [(req("POST", "/p", b'{"a":1.50}', ("Content-Type", "application/json"), ("X-Y-Z", "q")),
       ok(b'{"ok":1}'))],
     routes={"/p": J({"ok": 1}, 201)},
     sent=[sent("POST", "/p", b'{"a":1.50}', exact=True, X_Y_Z="q", Content_Length="10")])
case("2.3", "backend_method",
     "The backend method (upper-cased) is used, with the client's body when it has one.",
     [ep("/p", be("/p", method="put"), method="POST")],
     [(req("POST", "/p", b"data"), ok(b'{"ok":1}'))],
     routes={"/p": J({"ok": 1})},
     sent=[sent("PUT", "/p", b"data", Content_Length="4")])
case("2.3", "no_response_headers",
     "No backend response header reaches the client (non-no-op).",
     [ep("/h", be("/h"))],
     [(GET("/h"), ok(b'{"ok":1}'))],
     routes={"/h": J({"ok": 1}, headers=(("Set-Cookie", "a=1"), ("X-Backend", "1"),
                                         ("Cache-Control", "no-store")))},
     sent=[get("/h")])

# ---------------------------------------------------------------------------------------------
# 2.4 input_query_strings

case("2.4", "nothing_by_default",
     "No client query parameter is forwarded by default.",
     [ep("/q", be("/q"))],
     [(GET("/q?a=1&b=2"), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q")])
case("2.4", "listed_sorted_repeated",
     "Listed names are forwarded, keys sorted, every repeated value kept in order.",
     [ep("/q", be("/q"), input_query_strings=["b", "a"])],
     [(GET("/q?b=3&c=9&a=1&b=2"), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q?a=1&b=3&b=2")])
case("2.4", "case_sensitive",
     "Matching is exact and case-sensitive.",
     [ep("/q", be("/q"), input_query_strings=["a"])],
     [(GET("/q?A=1&a=2"), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q?a=2")])
case("2.4", "star",
     "[*] forwards every parameter, keys sorted.",
     [ep("/q", be("/q"), input_query_strings=["*"])],
     [(GET("/q?z=1&a=2&m="), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q?a=2&m=&z=1")])
case("2.4", "go_parsing",
     "The client query is read as Go's ParseQuery does: pairs with ';' or a bad escape are "
     "dropped, + is a space.",
     [ep("/q", be("/q"), input_query_strings=["*"])],
     [(GET("/q?a=1;b=2&c=x+y&d=%zz&e=ok"), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q?c=x+y&e=ok")])
case("2.4", "go_encoding",
     "The forwarded query is re-encoded like url.Values.Encode(): space as +, everything but "
     "unreserved characters escaped.",
     [ep("/q", be("/q"), input_query_strings=["*"])],
     [(GET("/q?s=x%20y&p=a/b&u=%C3%A9&t=a+b&k=%7E-._"), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q?k=~-._&p=a%2Fb&s=x+y&t=a+b&u=%C3%A9")])
case("2.4", "combined_with_url_pattern_query",
     "A url_pattern query and the forwarded one are joined with &.",
     [ep("/f/{channel}", be("/foo?channel={channel}"), input_query_strings=["limit"])],
     [(GET("/f/iOS?limit=10"), ok(b'{"ok":1}')), (GET("/f/web"), ok(b'{"ok":1}'))],
     routes={"/foo": J({"ok": 1})},
     sent=[get("/foo?channel=iOS&limit=10"), get("/foo?channel=web")])
case("2.4", "url_pattern_ending_with_question_mark",
     "A url_pattern ending with ? takes the forwarded query right after it.",
     [ep("/q", be("/q?"), input_query_strings=["a"])],
     [(GET("/q?a=1"), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q?a=1")])
case("2.4", "backend_level_narrows",
     "A backend input_query_strings narrows the endpoint's set.",
     [ep("/q", be("/q", input_query_strings=["b"]), input_query_strings=["a", "b"])],
     [(GET("/q?a=1&b=2"), ok(b'{"ok":1}'))],
     routes={"/q": J({"ok": 1})}, sent=[get("/q?b=2")])

# ---------------------------------------------------------------------------------------------
# 2.5 Timeouts

SLOW = Reply(200, {"late": True}, delay=2.0)

case("2.5", "single_backend_500_not_504",
     "A single backend missing the endpoint timeout: 500 with an empty body, never 504.",
     [ep("/t", be("/slow"), timeout="200ms")],
     [(GET("/t"), failed())], routes={"/slow": SLOW}, within=(0.15, 0.9), sent=None)
case("2.5", "timeout_error_text",
     "With return_error_msg the body is 'context deadline exceeded'.",
     [ep("/t", be("/slow"), timeout="200ms")],
     [(GET("/t"), failed(500, b"context deadline exceeded", TEXT_TYPE))],
     routes={"/slow": SLOW}, top=ERROR_MSG, within=(0.15, 0.9), sent=None)
case("2.5", "service_timeout_inherited",
     "The service timeout applies to endpoints without one.",
     [ep("/t", be("/slow"))],
     [(GET("/t"), failed())], routes={"/slow": SLOW}, top={"timeout": "200ms"}, within=(0.15, 0.9),
     sent=None)
case("2.5", "backend_timeout_ignored",
     "A backend-level timeout key is ignored: the endpoint timeout rules.",
     [ep("/t", be("/slow", timeout="10s"), timeout="200ms")],
     [(GET("/t"), failed())], routes={"/slow": SLOW}, within=(0.15, 0.9), sent=None)
case("2.5", "partial_merge",
     "Several backends: those that answered within 85% of the timeout make a 200 with "
     "X-Krakend-Completed: false and no Cache-Control.",
     [ep("/t", be("/fast", group="first"), be("/slow", group="second"), timeout="300ms",
         cache_ttl="1h")],
     [(GET("/t"), ok(b'{"first":{"a":1}}', "false"))],
     routes={"/fast": J({"a": 1}), "/slow": SLOW}, within=(0.2, 0.9), sent=None)

# ---------------------------------------------------------------------------------------------
# 2.6 cache_ttl

case("2.6", "max_age_truncated",
     "Cache-Control: public, max-age=<int(seconds)>: 1500ms gives 1, 500ms gives 0, 1h 3600.",
     [ep("/a", be("/d"), cache_ttl="1500ms"), ep("/b", be("/d"), cache_ttl="500ms"),
      ep("/c", be("/d"), cache_ttl="1h")],
     [(GET("/a"), ok(b'{"d":1}', Cache_Control="public, max-age=1")),
      (GET("/b"), ok(b'{"d":1}', Cache_Control="public, max-age=0")),
      (GET("/c"), ok(b'{"d":1}', Cache_Control="public, max-age=3600"))],
     routes={"/d": J({"d": 1})}, sent=None)
case("2.6", "service_cache_ttl",
     "The service cache_ttl applies to endpoints whose cache_ttl is 0 or missing.",
     [ep("/a", be("/d")), ep("/b", be("/d"), cache_ttl="0s"), ep("/c", be("/d"), cache_ttl="2m")],
     [(GET("/a"), ok(b'{"d":1}', Cache_Control="public, max-age=60")),
      (GET("/b"), ok(b'{"d":1}', Cache_Control="public, max-age=60")),
      (GET("/c"), ok(b'{"d":1}', Cache_Control="public, max-age=120"))],
     routes={"/d": J({"d": 1})}, top={"cache_ttl": "1m"}, sent=None)
case("2.6", "no_cache_control_when_incomplete",
     "No Cache-Control on an empty {} body, on errors or on partial answers.",
     [ep("/empty", be("/empty"), cache_ttl="1h"), ep("/error", be("/missing"), cache_ttl="1h"),
      ep("/partial", be("/d"), be("/missing"), cache_ttl="1h")],
     [(GET("/empty"), ok(b"{}", "false")), (GET("/error"), failed()),
      (GET("/partial"), ok(b'{"d":1}', "false"))],
     routes={"/empty": J({}), "/d": J({"d": 1})}, sent=None)

# ---------------------------------------------------------------------------------------------
# 2.7 output_encoding

RICH = J('{"b":"<x>&y","a":1.50,"n":12345678901234567890,"e":1e5,"z":null,"l":[1,2],"t":true}')
RICH_JSON = b'{"a":1.50,"b":"\\u003cx\\u003e\\u0026y","e":1e5,"l":[1,2],"n":12345678901234567890,"t":true,"z":null}'

case("2.7", "json",
     "json: compact, keys sorted, <>& escaped, numbers as the backend wrote them, no newline.",
     [ep("/j", be("/rich"))],
     [(GET("/j"), ok(RICH_JSON))], routes={"/rich": RICH}, sent=None)
case("2.7", "json_unknown_and_fast_json",
     "An unknown output_encoding and fast-json render JSON.",
     [ep("/u", be("/rich"), output_encoding="nonsense"), ep("/f", be("/rich"), output_encoding="fast-json")],
     [(GET("/u"), ok(RICH_JSON)), (GET("/f"), ok(RICH_JSON))], routes={"/rich": RICH}, sent=None)
case("2.7", "service_output_encoding",
     "The service output_encoding applies to endpoints without one.",
     [ep("/s", be("/text", encoding="string"))],
     [(GET("/s"), Response(200, gateway_headers("true", TEXT_TYPE), b"hello"))],
     top={"output_encoding": "string"}, routes={"/text": Reply(200, "hello")}, sent=None)
case("2.7", "unknown_falls_back_to_backend_encoding",
     "An unknown output_encoding on a single-backend endpoint uses the renderer named by the "
     "backend encoding (string, xml), else JSON.",
     [ep("/s", be("/text", encoding="string"), output_encoding="whatever"),
      ep("/x", be("/xml", encoding="xml"), output_encoding="whatever"),
      ep("/j", be("/text", encoding="string"), be("/xml", encoding="xml"), output_encoding="whatever")],
     [(GET("/s"), Response(200, gateway_headers("true", TEXT_TYPE), b"hello")),
      (GET("/x"), Response(200, gateway_headers("true", "application/xml"), b"<a>1</a>")),
      (GET("/j"), ok(b'{"a":"1","content":"hello"}'))],
     routes={"/text": Reply(200, "hello"), "/xml": Reply(200, "<a>1</a>")}, sent=None)
case("2.7", "json_collection",
     "json-collection: Data['collection'], or [] when there is none.",
     [ep("/c", be("/list", is_collection=True), output_encoding="json-collection"),
      ep("/n", be("/obj"), output_encoding="json-collection")],
     [(GET("/c"), ok(b'[{"a":1},2.50]')), (GET("/n"), ok(b"[]"))],
     routes={"/list": J('[{"a":1},2.50]'), "/obj": J({"a": 1})}, sent=None)
case("2.7", "string",
     "string: Data['content'] as text/plain; empty when there is no string content.",
     [ep("/s", be("/text", encoding="string"), output_encoding="string"),
      ep("/n", be("/obj"), output_encoding="string")],
     [(GET("/s"), Response(200, gateway_headers("true", TEXT_TYPE), b"plain <text>\n")),
      (GET("/n"), Response(200, gateway_headers("true", TEXT_TYPE), b""))],
     routes={"/text": Reply(200, "plain <text>\n"), "/obj": J({"a": 1})}, sent=None)
case("2.7", "xml",
     "xml: one key is the root element, several are wrapped in <doc>, keys sorted, -attr keys "
     "as attributes.",
     [ep("/one", be("/one"), output_encoding="xml"), ep("/two", be("/two"), output_encoding="xml")],
     [(GET("/one"), Response(200, gateway_headers("true", "application/xml"),
                             b'<user id="7"><name>Ann</name><tags>a</tags><tags>b</tags></user>')),
      (GET("/two"), Response(200, gateway_headers("true", "application/xml"),
                             b"<doc><a>1</a><b>x &amp; y</b></doc>"))],
     routes={"/one": J({"user": {"-id": "7", "name": "Ann", "tags": ["a", "b"]}}),
             "/two": J({"b": "x & y", "a": 1})}, sent=None)
case("2.7", "xml_empty",
     "xml of an empty object is <doc/> (completed false).",
     [ep("/e", be("/e"), output_encoding="xml")],
     [(GET("/e"), Response(200, gateway_headers("false", "application/xml"), b"<doc/>"))],
     routes={"/e": J({})}, sent=None)
case("2.7", "yaml",
     "yaml: YAML of the data, application/yaml; charset=utf-8.",
     [ep("/y", be("/d"), output_encoding="yaml")],
     [(GET("/y"), Response(200, gateway_headers("true", "application/yaml; charset=utf-8"),
                           b"a: 1.50\nb:\n- x\n- y\n"))],
     routes={"/d": J('{"b":["x","y"],"a":1.50}')}, sent=None)
case("2.7", "negotiate",
     "negotiate: application/xml gives XML, text/plain and application/x-yaml give YAML, "
     "anything else (text/xml, */*, none, text/html) JSON; q-values ignored.",
     [ep("/n", be("/d"), output_encoding="negotiate")],
     [(GET("/n", ("Accept", "application/xml")),
       Response(200, gateway_headers("true", "application/xml"), b"<a>1</a>")),
      (GET("/n", ("Accept", "text/plain")),
       Response(200, gateway_headers("true", "application/yaml; charset=utf-8"), b"a: 1\n")),
      (GET("/n", ("Accept", "application/x-yaml")),
       Response(200, gateway_headers("true", "application/yaml; charset=utf-8"), b"a: 1\n")),
      (GET("/n", ("Accept", "text/xml")), ok(b'{"a":1}')),
      (GET("/n", ("Accept", "*/*")), ok(b'{"a":1}')),
      (GET("/n"), ok(b'{"a":1}')),
      (GET("/n", ("Accept", "text/html")), ok(b'{"a":1}')),
      (GET("/n", ("Accept", "application/json;q=0.1, application/xml")), ok(b'{"a":1}')),
      (GET("/n", ("Accept", "image/png, application/xml")),
       Response(200, gateway_headers("true", "application/xml"), b"<a>1</a>"))],
     routes={"/d": J({"a": 1})}, sent=None)
case("2.7", "no_op",
     "no-op: the backend's status, headers and body (section 6).",
     [ep("/r", be("/r"), output_encoding="no-op")],
     [(GET("/r"), Response(202, {"X-Krakend": VERSION, "X-Krakend-Completed": "false",
                                 "Content-Type": "text/csv", "X-Backend": "1"}, b"a,b\n"))],
     routes={"/r": Reply(202, "a,b\n", (("Content-Type", "text/csv"), ("X-Backend", "1")))},
     sent=[get("/r")])

# ---------------------------------------------------------------------------------------------
# 2.8 What the client receives

case("2.8", "all_ok",
     "All backends OK with data: 200, completed true, Cache-Control.",
     [ep("/a", be("/one", group="one"), be("/two", group="two"), cache_ttl="1m")],
     [(GET("/a"), ok(b'{"one":{"a":1},"two":{"b":2}}', Cache_Control="public, max-age=60"))],
     routes={"/one": J({"a": 1}), "/two": J({"b": 2})}, sent=None)
case("2.8", "some_failed",
     "Some backends failed: 200 with the others' data, completed false.",
     [ep("/a", be("/one"), be("/missing"), be("/broken"), cache_ttl="1m")],
     [(GET("/a"), ok(b'{"a":1}', "false"))],
     routes={"/one": J({"a": 1}), "/broken": J("{not json")}, sent=None)
case("2.8", "empty_object",
     "A backend answering {} (or everything filtered out): 200 {} with completed false.",
     [ep("/e", be("/e")), ep("/f", be("/d", allow=["nothing"]))],
     [(GET("/e"), ok(b"{}", "false")), (GET("/f"), ok(b"{}", "false"))],
     routes={"/e": J({}), "/d": J({"a": 1})}, sent=None)
case("2.8", "single_failed",
     "A single backend failing: 500, empty body, X-Krakend and completed false, no Content-Type.",
     [ep("/a", be("/missing"))],
     [(GET("/a"), failed())], sent=None)
case("2.8", "invalid_status_text",
     "With return_error_msg: 'invalid status code <code> [<METHOD> <url_pattern as converted>]: "
     "<final URL>' as text/plain.",
     [ep("/a/{id}", be("/missing/{id}"), input_query_strings=["x"])],
     [(GET("/a/7?x=1"), failed(500, b"invalid status code 404 [GET /missing/{{.Id}}]: $B/missing/7?x=1",
                               TEXT_TYPE))],
     top=ERROR_MSG, sent=None)
case("2.8", "all_failed_texts_joined",
     "All backends failed: 500, the failed parts' messages joined with a newline in arrival "
     "order.",
     [ep("/a", be("/first"), be("/second"))],
     [(GET("/a"), failed(500, b"invalid status code 503 [GET /first]: $B/first\n"
                              b"invalid status code 404 [GET /second]: $B/second", TEXT_TYPE))],
     routes={"/first": Reply(503), "/second": Reply(404, delay=0.05)}, top=ERROR_MSG, sent=None)
case("2.8", "only_200_201",
     "Only 200 and 201 are success: 201 is served, 202, 204 and 400 are errors.",
     [ep("/a", be("/created")), ep("/b", be("/accepted")), ep("/c", be("/none")), ep("/d", be("/bad"))],
     [(GET("/a"), ok(b'{"made":1}')), (GET("/b"), failed()), (GET("/c"), failed()), (GET("/d"), failed())],
     routes={"/created": J({"made": 1}, 201), "/accepted": J({"a": 1}, 202), "/none": Reply(204),
             "/bad": J({"a": 1}, 400)}, sent=None)
case("2.8", "all_shadow_500",
     "An endpoint whose backends are all shadows: the route answers 500, empty, without "
     "KrakenD headers.",
     [ep("/s", shadow("/s")), ep("/ok", be("/d"))],
     [(GET("/s"), Response(500, {}, b"")), (GET("/ok"), ok(b'{"d":1}'))],
     routes={"/d": J({"d": 1})}, other={"/s": J({"s": 1})}, sent=None, sent_other=None)

# ---------------------------------------------------------------------------------------------
# 3.1 / 3.2 Hosts

case("3.1", "host_sanitized",
     "A host with a trailing slash is sanitized; a host without scheme gets http://.",
     [ep("/a", be("/d", host="$B/"))],
     [(GET("/a"), ok(b'{"d":1}'))], routes={"/d": J({"d": 1})}, sent=[get("/d")])
case("3.1", "host_without_scheme",
     "A host without a scheme gets http://.",
     [ep("/a", be("/d", host="$H"))],
     [(GET("/a"), ok(b'{"d":1}'))], routes={"/d": J({"d": 1})}, sent=[get("/d")])
case("3.2", "every_host_used",
     "Several hosts: each call picks one; every entry gets its share.",
     {"version": 3, "host": ["$B", "$C"], "endpoints": [ep("/a", {"url_pattern": "/d"})]},
     [(GET("/a"), ok(b'{"d":1}'))] * 40,
     routes={"/d": J({"d": 1})}, other={"/d": J({"d": 1})}, sent=None, sent_other=None,
     after=lambda b, c: None if len(b.received) >= 5 and len(c.received) >= 5 else
     f"shares {len(b.received)} and {len(c.received)}")

# ---------------------------------------------------------------------------------------------
# 3.3 Backend requests: redirects

case("3.3", "redirect_followed",
     "A 302 is followed with GET; the next request carries Referer: <previous URL>.",
     [ep("/r", be("/start"))],
     [(GET("/r"), ok(b'{"final":true}'))],
     routes={"/start": Reply(302, headers=(("Location", "/final"),)), "/final": J({"final": True})},
     sent=[get("/start"), get("/final", Referer="$B/start")])
case("3.3", "redirect_303_post_to_get",
     "A POST answered 303 (or 301) is re-sent as GET without the body.",
     [ep("/p", be("/start"), method="POST"), ep("/q", be("/start301"), method="POST")],
     [(req("POST", "/p", b"payload"), ok(b'{"final":true}')),
      (req("POST", "/q", b"payload"), ok(b'{"final":true}'))],
     routes={"/start": Reply(303, headers=(("Location", "/final"),)),
             "/start301": Reply(301, headers=(("Location", "$B/final"),)),
             "/final": J({"final": True})},
     sent=[sent("POST", "/start", b"payload", Content_Length="7"),
           sent("GET", "/final", b"", Referer="$B/start", Content_Length=ABSENT),
           sent("POST", "/start301", b"payload"),
           sent("GET", "/final", b"", Referer="$B/start301")])
case("3.3", "redirect_307_keeps_get",
     "A 307 (or 308) of a GET is followed with GET.",
     [ep("/r", be("/start"))],
     [(GET("/r"), ok(b'{"final":true}'))],
     routes={"/start": Reply(307, headers=(("Location", "/final"),)), "/final": J({"final": True})},
     sent=[get("/start"), get("/final", Referer="$B/start")])
case("3.3", "redirect_307_with_body",
     "A 307 to a request with a body is not followed without send_body_on_redirect: an error.",
     [ep("/p", be("/start"), method="POST")],
     [(req("POST", "/p", b"payload"), failed())],
     routes={"/start": Reply(307, headers=(("Location", "/final"),)), "/final": J({"final": True})},
     sent=[sent("POST", "/start", b"payload")])
case("3.3", "redirect_307_empty_post",
     "A 307 to a POST without a body is followed with POST (Go has nothing to replay).",
     [ep("/p", be("/start"), method="POST")],
     [(Request("POST", "/p"), ok(b'{"final":true}'))],
     routes={"/start": Reply(307, headers=(("Location", "/final"),)), "/final": J({"final": True})},
     sent=[sent("POST", "/start", Content_Length="0"),
           sent("POST", "/final", Content_Length="0", Referer="$B/start")])
case("3.3", "redirect_error_names_final_url",
     "The error text names the URL that answered last.",
     [ep("/r", be("/start"))],
     [(GET("/r"), failed(500, b"invalid status code 404 [GET /start]: $B/gone", TEXT_TYPE))],
     routes={"/start": Reply(302, headers=(("Location", "/gone"),))}, top=ERROR_MSG, sent=None)
case("3.3", "redirect_limit",
     "At most 10 redirects are followed; an endless loop is an error.",
     [ep("/r", be("/loop"))],
     [(GET("/r"), failed())],
     routes={"/loop": Reply(302, headers=(("Location", "/loop"),))}, sent=None)
case("3.3", "missing_param_stays_literal",
     "A url_pattern placeholder without a value stays literal text.",
     [ep("/r/{id}", be("/x/{id}/{resp0_nothing}"))],
     [(GET("/r/1"), ok(b'{"ok":1}'))],
     routes={"/x/1/{resp0_nothing}": J({"ok": 1})}, sent=[get("/x/1/{resp0_nothing}")])

# ---------------------------------------------------------------------------------------------
# 3.4 Status, decoding and the entity formatter

case("3.4", "gzip_decoded",
     "A gzip body (Content-Encoding: gzip) is decoded before decoding the JSON.",
     [ep("/g", be("/gz"))],
     [(GET("/g"), ok(b'{"price":1.50}'))],
     routes={"/gz": J('{"price":1.50}', gzip=True)}, sent=[get("/gz", Accept_Encoding="gzip")])
case("3.4", "gzip_with_client_accept_encoding",
     "With the client's Accept-Encoding forwarded ([*]) a gzip answer is still decoded.",
     [ep("/g", be("/gz"), input_headers=["*"])],
     [(GET("/g", ("Accept-Encoding", "gzip, deflate")), ok(b'{"price":1.50}'))],
     routes={"/gz": J('{"price":1.50}', gzip=True)},
     sent=[get("/gz", Accept_Encoding="gzip, deflate")])
case("3.4", "json_non_object",
     "encoding json: an array without is_collection, a scalar or an empty body is an error.",
     [ep("/a", be("/array")), ep("/s", be("/scalar")), ep("/e", be("/empty"))],
     [(GET("/a"), failed()), (GET("/s"), failed()), (GET("/e"), failed())],
     routes={"/array": J("[1,2]"), "/scalar": J("3"), "/empty": J("")}, sent=None)
case("3.4", "json_collection",
     "encoding json with is_collection: {\"collection\": [...]}; a non-array is an error.",
     [ep("/c", be("/array", is_collection=True)), ep("/o", be("/obj", is_collection=True))],
     [(GET("/c"), ok(b'{"collection":[1,{"a":2.0}]}')), (GET("/o"), failed())],
     routes={"/array": J('[1,{"a":2.0}]'), "/obj": J({"a": 1})}, sent=None)
case("3.4", "safejson",
     "safejson: object as is, array under collection, scalar under content.",
     [ep("/o", be("/obj", encoding="safejson")), ep("/a", be("/array", encoding="safejson")),
      ep("/s", be("/scalar", encoding="safejson"))],
     [(GET("/o"), ok(b'{"a":1}')), (GET("/a"), ok(b'{"collection":[1,2]}')),
      (GET("/s"), ok(b'{"content":3.0}'))],
     routes={"/obj": J({"a": 1}), "/array": J("[1,2]"), "/scalar": J("3.0")}, sent=None)
case("3.4", "string_encoding",
     "encoding string: {\"content\": <raw body>}.",
     [ep("/s", be("/text", encoding="string"))],
     [(GET("/s"), ok(b'{"content":"a \\u003cb\\u003e\\n"}'))],
     routes={"/text": Reply(200, "a <b>\n")}, sent=None)
case("3.4", "xml_encoding",
     "encoding xml: attributes as -name, text values as strings.",
     [ep("/x", be("/xml", encoding="xml"))],
     [(GET("/x"), ok(b'{"user":{"-id":"7","age":"30","name":"Ann"}}'))],
     routes={"/xml": Reply(200, '<user id="7"><name>Ann</name><age>30</age></user>',
                           (("Content-Type", "application/xml"),))}, sent=None)
case("3.4", "formatter_order",
     "target, then allow, then mapping, then group.",
     [ep("/f", be("/d", target="data", allow=["a", "b"], mapping={"a": "x"}, group="g"))],
     [(GET("/f"), ok(b'{"g":{"b":2,"x":1}}'))],
     routes={"/d": J({"data": {"a": 1, "b": 2, "c": 3}, "other": 4})}, sent=None)
case("3.4", "deny",
     "deny removes dot paths through objects; missing keys are ignored.",
     [ep("/f", be("/d", deny=["a.b", "d", "nope.x"]))],
     [(GET("/f"), ok(b'{"a":{"c":2}}'))],
     routes={"/d": J({"a": {"b": 1, "c": 2}, "d": 3})}, sent=None)
case("3.4", "allow_wins",
     "allow wins over deny; a leaf keeps its subtree; arrays are not traversed.",
     [ep("/f", be("/d", allow=["a.b", "l.x"], deny=["a"]))],
     [(GET("/f"), ok(b'{"a":{"b":{"deep":1}}}'))],
     routes={"/d": J({"a": {"b": {"deep": 1}, "c": 2}, "l": [{"x": 1}]})}, sent=None)
case("3.4", "target_missing",
     "A target that is missing or not an object gives {}.",
     [ep("/f", be("/d", target="a.b"))],
     [(GET("/f"), ok(b"{}", "false"))],
     routes={"/d": J({"a": {"b": 5}})}, sent=None)
case("3.4", "group_empty",
     "group wraps even an empty object.",
     [ep("/f", be("/d", group="g"))],
     [(GET("/f"), ok(b'{"g":{}}'))],
     routes={"/d": J({})}, sent=None)

# ---------------------------------------------------------------------------------------------
# 3.5 flatmap_filter

FLATMAP = [{"type": "move", "args": ["collection", "paths"]},
           {"type": "del", "args": ["paths.*.i"]},
           {"type": "move", "args": ["paths.*.path", "paths.*.url"]}]

case("3.5", "backend_flatmap",
     "Backend flatmap_filter: move, del and move over arrays (the doc's example).",
     [ep("/f", be("/list", is_collection=True, extra_config={"proxy": {"flatmap_filter": FLATMAP}}))],
     [(GET("/f"), ok(b'{"paths":[{"url":"/a"},{"url":"/b"}]}'))],
     routes={"/list": J([{"i": 1, "path": "/a"}, {"i": 2, "path": "/b"}])}, sent=None)
case("3.5", "endpoint_flatmap_single_ignored",
     "Endpoint flatmap_filter is ignored with a single backend.",
     [ep("/f", be("/d"), extra_config={"proxy": {"flatmap_filter": [{"type": "del", "args": ["a"]}]}})],
     [(GET("/f"), ok(b'{"a":1,"b":2}'))],
     routes={"/d": J({"a": 1, "b": 2})}, sent=None)
case("3.5", "endpoint_flatmap_after_merge",
     "Endpoint flatmap_filter runs after the merge of several backends (append, then del).",
     [ep("/f", be("/one"), be("/two"),
         extra_config={"proxy": {"flatmap_filter": [{"type": "append", "args": ["more", "items"]},
                                                    {"type": "del", "args": ["x"]}]}})],
     [(GET("/f"), ok(b'{"items":[1,2,3]}'))],
     routes={"/one": J({"items": [1, 2], "x": 0}), "/two": J({"more": [3]})}, sent=None)

# ---------------------------------------------------------------------------------------------
# 3.6 concurrent_calls

case("3.6", "first_complete_wins",
     "concurrent_calls: N copies are sent, the first complete answer wins.",
     [ep("/c", be("/d"), concurrent_calls=3)],
     [(GET("/c"), ok(b'{"n":2}'))],
     routes={"/d": [Reply(200, {"n": 1}, delay=1.0), J({"n": 2}, delay=0.05), Reply(500)]},
     sent=[get("/d"), get("/d"), get("/d")], within=(0.0, 0.8))
case("3.6", "all_copies_fail",
     "When every copy fails the call fails.",
     [ep("/c", be("/d"), concurrent_calls=2)],
     [(GET("/c"), failed())], routes={"/d": Reply(500)}, sent=[get("/d"), get("/d")])
case("3.6", "deadline_75_percent",
     "concurrent_calls > 1 use 75% of the endpoint timeout.",
     [ep("/c", be("/d"), concurrent_calls=2, timeout="400ms")],
     [(GET("/c"), failed())], routes={"/d": SLOW}, within=(0.25, 0.39), sent=None)

# ---------------------------------------------------------------------------------------------
# 4 Merging

case("4", "groups_merged",
     "Every primary starts at once; their data is merged.",
     [ep("/m", be("/a", group="a"), be("/b", group="b"), be("/c"))],
     [(GET("/m"), ok(b'{"a":{"x":1},"b":{"y":2},"z":3}'))],
     routes={"/a": J({"x": 1}), "/b": J({"y": 2}), "/c": J({"z": 3})}, sent=None)
case("4", "arrival_order_wins",
     "Top-level key collisions: the later arrival overwrites (here the slower backend, "
     "whatever its index).",
     [ep("/m", be("/slow"), be("/fast")), ep("/n", be("/fast"), be("/slow"))],
     [(GET("/m"), ok(b'{"f":1,"k":"slow","s":1}')),
      (GET("/n"), ok(b'{"f":1,"k":"slow","s":1}'))],
     routes={"/slow": J({"k": "slow", "s": 1}, delay=0.1), "/fast": J({"k": "fast", "f": 1})},
     sent=None)
case("4", "null_part",
     "A part whose data is null is skipped and makes the result incomplete.",
     [ep("/m", be("/null"), be("/d"))],
     [(GET("/m"), ok(b'{"d":1}', "false"))],
     routes={"/null": J("null"), "/d": J({"d": 1})}, sent=None)
case("4", "deadline_example",
     "The doc's example: timeout 100ms, the merge deadline 85ms; the delayed backend misses "
     "it: 200 {\"first\":...}, completed false, no Cache-Control.",
     [ep("/m", be("/first", group="first"), be("/delayed/", group="second"), timeout="100ms",
         cache_ttl="1h")],
     [(GET("/m"), ok(b'{"first":{"a":1}}', "false"))],
     routes={"/first": J({"a": 1}), "/delayed/": Reply(200, {"b": 2}, delay=0.2)},
     within=(0.07, 0.5), sent=None)
case("4", "error_details_part",
     "A return_error_details part is merged as is (no group), incomplete: 200, completed false.",
     [ep("/m", be("/a", group="a"),
         be("/b", group="b", extra_config={"backend/http": {"return_error_details": "b"}}))],
     [(GET("/m"), ok(b'{"a":{"x":1},"error_b":{"http_status_code":404,"http_body":"gone",'
                     b'"http_body_encoding":"text/plain"}}', "false"))],
     routes={"/a": J({"x": 1}), "/b": Reply(404, "gone", (("Content-Type", "text/plain"),))},
     sent=None)

# ---------------------------------------------------------------------------------------------
# 5 Shadow

case("5", "shadow_untouched",
     "The client gets exactly the primary's answer; the shadow gets the same request built the "
     "same way, and its failure changes nothing.",
     [ep("/s/{id}", be("/v1/{id}"), shadow("/v2/{id}"), cache_ttl="1m", input_query_strings=["q"],
         input_headers=["X-Y-Z"])],
     [(GET("/s/5?q=1&r=2", ("X-Y-Z", "z")), ok(b'{"v":1}', Cache_Control="public, max-age=60"))],
     routes={"/v1/5": J({"v": 1})}, other={"/v2/5": Reply(500, "boom")},
     sent=[get("/v1/5?q=1", exact=True, X_Y_Z="z")],
     sent_other=[get("/v2/5?q=1", exact=True, X_Y_Z="z")])
case("5", "shadow_gets_the_body",
     "A POST is copied to the shadow with its body (read once, shared).",
     [ep("/s", be("/v1"), shadow("/v2"), method="POST")],
     [(req("POST", "/s", b'{"n":1}', ("Content-Type", "application/json")), ok(b'{"v":1}'))],
     routes={"/v1": J({"v": 1}, 201)}, other={"/v2": J({"v": 2})},
     sent=[sent("POST", "/v1", b'{"n":1}', Content_Type="application/json")],
     sent_other=[sent("POST", "/v2", b'{"n":1}', Content_Type="application/json")])
case("5", "shadow_does_not_delay",
     "The response does not wait for a slow shadow.",
     [ep("/s", be("/v1"), shadow("/v2", extra_config={"proxy": {"shadow": True, "shadow_timeout": "3s"}}))],
     [(GET("/s"), ok(b'{"v":1}'))],
     routes={"/v1": J({"v": 1})}, other={"/v2": Reply(200, {"v": 2}, delay=1.0)},
     within=(0.0, 0.5), sent=[get("/v1")], sent_other=[get("/v2")])
case("5", "shadow_only_boolean_true",
     "Only the JSON boolean true makes a shadow: \"true\" is a primary, merged.",
     [ep("/s", be("/v1"), be("/v2", host="$C", extra_config={"proxy": {"shadow": "true"}}))],
     [(GET("/s"), ok(b'{"v1":1,"v2":2}'))],
     routes={"/v1": J({"v1": 1})}, other={"/v2": J({"v2": 2})}, sent=None, sent_other=None)
case("5", "one_primary_is_single_backend",
     "One primary plus shadows is a single-backend pipeline: the whole timeout, no 85%.",
     [ep("/s", be("/v1"), shadow("/v2"), timeout="1s")],
     [(GET("/s"), ok(b'{"v":1}'))],
     routes={"/v1": J({"v": 1}, delay=0.9)}, other={"/v2": J({"v": 2})},
     sent=None, sent_other=None)

# ---------------------------------------------------------------------------------------------
# 6 no-op

NOOP_ECHO = Reply(201, '{"echo": 1.50}\n', (("Content-Type", "application/json"), ("Set-Cookie", "a=1"),
                                             ("Set-Cookie", "b=2"), ("Cache-Control", "no-store")))

case("6", "relayed",
     "POST to a no-op endpoint: backend status, body byte for byte, Content-Type without "
     "charset, every Set-Cookie, its Cache-Control only, X-Krakend-Completed false.",
     [ep("/n", be("/echo"), method="POST", output_encoding="no-op", cache_ttl="1h")],
     [(req("POST", "/n", b'{"echo": 1.50}', ("Content-Type", "application/json")),
       Response(201, {"X-Krakend": VERSION, "X-Krakend-Completed": "false",
                      "Content-Type": "application/json", "Set-Cookie": ["a=1", "b=2"],
                      "Cache-Control": "no-store"}, b'{"echo": 1.50}\n'))],
     routes={"/echo": NOOP_ECHO},
     sent=[sent("POST", "/echo", b'{"echo": 1.50}', Content_Type="application/json")])
case("6", "error_status_relayed",
     "A backend 404 comes back as that 404 with its body and Content-Type.",
     [ep("/n", be("/missing"), output_encoding="no-op")],
     [(GET("/n"), Response(404, {"X-Krakend": VERSION, "X-Krakend-Completed": "false",
                                 "Content-Type": "text/plain"}, b"404 page not found"))],
     sent=None)
case("6", "backend_noop_encoding",
     "A backend encoding no-op on a json endpoint: any status is accepted and the data is {}, "
     "which the endpoint renders.",
     [ep("/n", be("/r", encoding="no-op"))],
     [(GET("/n"), ok(b"{}", "false"))],
     routes={"/r": Reply(418, "teapot", (("Content-Type", "text/plain"),))}, sent=None)
case("6", "request_side_applies",
     "input_headers, input_query_strings and url_pattern substitution still apply.",
     [ep("/n/{id}", be("/r/{id}"), output_encoding="no-op", input_query_strings=["a"],
         input_headers=["X-Y-Z"])],
     [(GET("/n/3?a=1&b=2", ("X-Y-Z", "1"), ("Cookie", "c=1")),
       Response(200, {"X-Krakend": VERSION, "X-Krakend-Completed": "false"}, b"ok"))],
     routes={"/r/3": Reply(200, "ok")}, sent=[get("/r/3?a=1", exact=True, X_Y_Z="1")])
case("6", "duplicate_krakend_headers",
     "Backend headers are added after the gateway's: a KrakenD backend's X-Krakend and "
     "X-Krakend-Completed give two values each.",
     [ep("/n", be("/r"), output_encoding="no-op")],
     [(GET("/n"), Response(200, {"X-Krakend": [VERSION, "Version 2.13.8"],
                                 "X-Krakend-Completed": ["false", "true"]}, b"{}"))],
     routes={"/r": Reply(200, "{}", (("X-Krakend", "Version 2.13.8"), ("X-Krakend-Completed", "true")))},
     sent=None)
case("6", "gzip_decoded",
     "The gateway asked for gzip, so a gzip answer is decoded on the way (as Go's transport "
     "does): no Content-Encoding, no Content-Length.",
     [ep("/n", be("/gz"), output_encoding="no-op")],
     [(GET("/n"), Response(200, {"X-Krakend": VERSION, "X-Krakend-Completed": "false",
                                 "Content-Type": "application/json", "Content-Encoding": ABSENT,
                                 "Content-Length": ABSENT}, b'{"a": 1.50}'))],
     routes={"/gz": J('{"a": 1.50}', gzip=True)}, sent=[get("/gz", Accept_Encoding="gzip")])
case("6", "gzip_kept_for_client",
     "When the client's Accept-Encoding was forwarded, the gzip answer is relayed as is.",
     [ep("/n", be("/gz"), output_encoding="no-op", input_headers=["Accept-Encoding"])],
     [(GET("/n", ("Accept-Encoding", "gzip")),
       Response(200, {"X-Krakend": VERSION, "X-Krakend-Completed": "false",
                      "Content-Type": "application/json", "Content-Encoding": "gzip"},
                lambda body: None if gzip.decompress(body) == b'{"a": 1.50}' else "not the gzip body"))],
     routes={"/gz": J('{"a": 1.50}', gzip=True)}, sent=[get("/gz", Accept_Encoding="gzip")])
case("6", "redirect_followed",
     "Redirects are followed with no-op too.",
     [ep("/n", be("/start"), output_encoding="no-op")],
     [(GET("/n"), Response(200, {"X-Krakend": VERSION, "X-Krakend-Completed": "false"}, b"final"))],
     routes={"/start": Reply(302, headers=(("Location", "/final"),)), "/final": Reply(200, "final")},
     sent=[get("/start"), get("/final", Referer="$B/start")])
case("6", "unreachable",
     "A backend that cannot be reached: 500.",
     [ep("/n", be("/r", host="http://127.0.0.1:47"), output_encoding="no-op")],
     [(GET("/n"), failed())], sent=[])
case("6", "timeout",
     "A backend that does not answer in time: 500, 'context deadline exceeded' with "
     "return_error_msg.",
     [ep("/n", be("/slow"), output_encoding="no-op", timeout="200ms")],
     [(GET("/n"), failed(500, b"context deadline exceeded", TEXT_TYPE))],
     routes={"/slow": SLOW}, top=ERROR_MSG, within=(0.15, 0.9), sent=None)

# ---------------------------------------------------------------------------------------------
# 7 Status codes and router options

case("7.1", "error_body",
     "router.error_body replaces the 404 and 405 bodies with JSON.",
     [ep("/thing", be("/t"))],
     [(GET("/nowhere"), router(404, b'{"code":404,"error":"nope"}', JSON_TYPE)),
      (req("POST", "/thing", b"{}"), router(405, b'{"m":"no"}', JSON_TYPE, Allow="GET"))],
     top=ROUTER(error_body={"404": {"error": "nope", "code": 404}, "405": {"m": "no"}}), sent=[])
case("7.2", "return_error_details_single",
     "return_error_details: 200 with the error object (struct order), completed false, no "
     "Cache-Control.",
     [ep("/e", be("/missing", extra_config={"backend/http": {"return_error_details": "backend_a"}}),
         cache_ttl="1h")],
     [(GET("/e"), ok(b'{"error_backend_a":{"http_status_code":404,"http_body":"404 page not found",'
                     b'"http_body_encoding":"text/plain"}}', "false"))],
     sent=None)
case("7.2", "return_error_details_empty_body",
     "http_body and http_body_encoding are omitted when empty.",
     [ep("/e", be("/empty", extra_config={"backend/http": {"return_error_details": "x"}}))],
     [(GET("/e"), ok(b'{"error_x":{"http_status_code":503}}', "false"))],
     routes={"/empty": Reply(503)}, sent=None)
case("7.2", "return_error_code_single",
     "return_error_code: the backend status, empty body.",
     [ep("/e", be("/forbidden", extra_config={"backend/http": {"return_error_code": True}}))],
     [(GET("/e"), failed(403))],
     routes={"/forbidden": Reply(403, '{"why":"no"}', (("Content-Type", "application/json"),))},
     sent=None)
case("7.2", "return_error_code_with_msg",
     "return_error_code with return_error_msg: the backend status, body and Content-Type.",
     [ep("/e", be("/forbidden", extra_config={"backend/http": {"return_error_code": True}}))],
     [(GET("/e"), failed(403, b'{"why":"no"}', "application/problem+json"))],
     routes={"/forbidden": Reply(403, '{"why":"no"}', (("Content-Type", "application/problem+json"),))},
     top=ERROR_MSG, sent=None)
case("7.2", "return_error_code_multi",
     "return_error_code with several backends: 200 partial when one fails, 500 when all fail.",
     [ep("/p", be("/d"), be("/forbidden", extra_config={"backend/http": {"return_error_code": True}})),
      ep("/a", be("/forbidden", extra_config={"backend/http": {"return_error_code": True}}),
         be("/forbidden", extra_config={"backend/http": {"return_error_code": True}}))],
     [(GET("/p"), ok(b'{"d":1}', "false")), (GET("/a"), failed())],
     routes={"/d": J({"d": 1}), "/forbidden": Reply(403)}, sent=None)
case("7.2", "details_win_over_code",
     "With both options, return_error_details wins.",
     [ep("/e", be("/forbidden", extra_config={"backend/http": {"return_error_code": True,
                                                                "return_error_details": "b"}}))],
     [(GET("/e"), ok(b'{"error_b":{"http_status_code":403}}', "false"))],
     routes={"/forbidden": Reply(403)}, sent=None)
case("7.4", "health_path",
     "router.health_path renames the health endpoint.",
     [ep("/a", be("/d"))],
     [(GET("/healthz"), Response(200, {"Content-Type": JSON_TYPE}, health_body)),
      (GET("/__health"), NOT_FOUND)],
     top=ROUTER(health_path="/healthz"), sent=[])
case("7.4", "disable_health",
     "router.disable_health removes the health endpoint.",
     [ep("/a", be("/d"))],
     [(GET("/__health"), NOT_FOUND)], top=ROUTER(disable_health=True), sent=[])
case("7.4", "hide_version_header",
     "router.hide_version_header: X-Krakend: Version undefined everywhere.",
     [ep("/a", be("/d"))],
     [(GET("/a"), Response(200, {"Content-Type": JSON_TYPE, "X-Krakend": "Version undefined",
                                 "X-Krakend-Completed": "true"}, b'{"d":1}')),
      (GET("/nowhere"), router(404, b"404 page not found", X_Krakend="Version undefined"))],
     routes={"/d": J({"d": 1})}, top=ROUTER(hide_version_header=True), sent=None)

# ---------------------------------------------------------------------------------------------
# 8 Built-in endpoints and proxy modifiers


def echo_body(expected_details, expected_rest):
    """
    Check an /__echo/ answer: struct order at the top, every value.
    """

    def check(body):
        keys = re.findall(rb'"(req_[a-z_]+)":', body)
        order = [b"req_uri", b"req_uri_details", b"req_method", b"req_querystring", b"req_body",
                 b"req_headers"]
        if keys != order:
            return f"keys {keys} not in struct order"
        document = json.loads(body)
        details = dict(document["req_uri_details"])
        if re.fullmatch(r"127\.0\.0\.1:\d+", details.get("host", "")) and expected_details["host"] == "$GW":
            details["host"] = "$GW"
        if details != expected_details:
            return f"req_uri_details {document['req_uri_details']}"
        for key, value in expected_rest.items():
            if document[key] != value:
                return f"{key} is {document[key]!r}, not {value!r}"
        return None

    return check


case("8.1", "health",
     "GET /__health: 200 {agents, now, status: ok}, keys sorted, no X-Krakend headers; HEAD 405.",
     [ep("/a", be("/d"))],
     [(GET("/__health"), Response(200, {"Content-Type": JSON_TYPE}, health_body)),
      (Request("HEAD", "/__health"), Response(405, not_allowed("GET").headers, b""))], sent=[])
case("8.2", "debug",
     "debug_endpoint: any method on /__debug/* answers {\"message\":\"pong\"}; /__debug "
     "redirects; off by default.",
     {"version": 3, "debug_endpoint": True, "endpoints": [ep("/a", be("/d"))]},
     [(GET("/__debug/x?y=1"), Response(200, {"Content-Type": JSON_TYPE}, b'{"message":"pong"}')),
      (req("POST", "/__debug/", b"body"), Response(200, {"Content-Type": JSON_TYPE}, b'{"message":"pong"}')),
      (GET("/__debug"), moved("/__debug/"))], sent=[])
case("8.2", "debug_off",
     "Without debug_endpoint, /__debug/ is a 404.",
     [ep("/a", be("/d"))],
     [(GET("/__debug/x"), NOT_FOUND), (GET("/__echo/x"), NOT_FOUND)], sent=[])
case("8.3", "echo",
     "echo_endpoint: the request as JSON, fields in struct order, req_body a string, query "
     "re-encoded without '?', host the Host header, headers canonical without Host.",
     {"version": 3, "echo_endpoint": True, "endpoints": [ep("/a", be("/d"))]},
     [(GET("/__echo/a%20b?z=1&b=x%20y", ("x-test", "1")),
       Response(200, {"Content-Type": JSON_TYPE}, echo_body(
           {"fragment": "", "host": "$GW", "path": "/__echo/a b", "query": "b=x+y&z=1", "user": ""},
           {"req_uri": "/__echo/a%20b?z=1&b=x%20y", "req_method": "GET",
            "req_querystring": {"b": ["x y"], "z": ["1"]}, "req_body": "",
            "req_headers": {"Connection": ["close"], "X-Test": ["1"]}}))),
      (req("PUT", "/__echo/", b'{"a": 1}'),
       Response(200, {"Content-Type": JSON_TYPE}, echo_body(
           {"fragment": "", "host": "$GW", "path": "/__echo/", "query": "", "user": ""},
           {"req_uri": "/__echo/", "req_method": "PUT", "req_querystring": {},
            "req_body": '{"a": 1}'})))], sent=[])

STATIC = {"bar": "foobar", "foo": 42}


def static(strategy):
    return {"proxy": {"static": {"strategy": strategy, "data": STATIC}}}


case("8.4", "static_always",
     "always: the static keys are merged over the data (static wins).",
     [ep("/s", be("/d"), extra_config=static("always"))],
     [(GET("/s"), ok(b'{"bar":"foobar","foo":42,"own":1}'))],
     routes={"/d": J({"foo": 1, "own": 1})}, sent=None)
case("8.4", "static_missing_strategy",
     "A missing (or unknown) strategy means always.",
     [ep("/s", be("/d"), extra_config={"proxy": {"static": {"data": STATIC}}}),
      ep("/u", be("/d"), extra_config={"proxy": {"static": {"strategy": "sometimes", "data": STATIC}}})],
     [(GET("/s"), ok(b'{"bar":"foobar","foo":42,"own":1}')),
      (GET("/u"), ok(b'{"bar":"foobar","foo":42,"own":1}'))],
     routes={"/d": J({"own": 1})}, sent=None)
case("8.4", "static_success",
     "success: applied without an error, not with one.",
     [ep("/s", be("/d"), extra_config=static("success")),
      ep("/f", be("/missing"), extra_config=static("success"))],
     [(GET("/s"), ok(b'{"bar":"foobar","foo":42,"own":1}')), (GET("/f"), failed())],
     routes={"/d": J({"own": 1})}, sent=None)
case("8.4", "static_complete",
     "complete: applied to a complete answer, not to a partial one.",
     [ep("/s", be("/d"), extra_config=static("complete")),
      ep("/p", be("/d"), be("/missing"), extra_config=static("complete"))],
     [(GET("/s"), ok(b'{"bar":"foobar","foo":42,"own":1}')), (GET("/p"), ok(b'{"own":1}', "false"))],
     routes={"/d": J({"own": 1})}, sent=None)
case("8.4", "static_errored",
     "errored: a failed backend gives the stub, 200, completed false; a good answer is untouched; "
     "a partial answer (error plus data) gets it too.",
     [ep("/f", be("/missing"), extra_config=static("errored")),
      ep("/s", be("/d"), extra_config=static("errored")),
      ep("/p", be("/d"), be("/missing"), extra_config=static("errored"))],
     [(GET("/f"), ok(b'{"bar":"foobar","foo":42}', "false")), (GET("/s"), ok(b'{"own":1}')),
      (GET("/p"), ok(b'{"bar":"foobar","foo":42,"own":1}', "false"))],
     routes={"/d": J({"own": 1})}, sent=None)
case("8.4", "static_incomplete",
     "incomplete: applied when the response is missing or incomplete, not to a complete one.",
     [ep("/f", be("/missing"), extra_config=static("incomplete")),
      ep("/s", be("/d"), extra_config=static("incomplete")),
      ep("/p", be("/d"), be("/missing"), extra_config=static("incomplete"))],
     [(GET("/f"), ok(b'{"bar":"foobar","foo":42}', "false")), (GET("/s"), ok(b'{"own":1}')),
      (GET("/p"), ok(b'{"bar":"foobar","foo":42,"own":1}', "false"))],
     routes={"/d": J({"own": 1})}, sent=None)
case("8.4", "static_doc_example",
     "The doc's example: data denied down to {} plus static data: completed true, Cache-Control.",
     [ep("/s", be("/d", deny=["a"]), extra_config=static("always"), cache_ttl="1h")],
     [(GET("/s"), ok(b'{"bar":"foobar","foo":42}', Cache_Control="public, max-age=3600"))],
     routes={"/d": J({"a": 1})}, sent=None)

SEQUENTIAL = {"proxy": {"sequential": True}}

case("8.5", "sequential_placeholders",
     "sequential: backends in order; {respN_field} takes values from earlier formatted answers "
     "(strings, literal numbers, bools, arrays comma-joined, nested paths, group keys).",
     [ep("/q/{id}", be("/users/{id}", group="first"),
         be("/orders/{resp0_first.company.id}/{resp0_first.price}/{resp0_first.ok}/{resp0_first.tags}"),
         extra_config=SEQUENTIAL),
      ep("/r", be("/users/7"),
         be("/more/{resp0_none}/{resp0_company}/{resp0_empty}/x"), extra_config=SEQUENTIAL)],
     [(GET("/q/7"), ok(b'{"first":{"company":{"id":"c1"},"empty":[],"none":null,"ok":true,"price":1.50,'
                       b'"tags":["a","b"]},"orders":[1]}')),
      (GET("/r"), ok(b'{"company":{"id":"c1"},"empty":[],"more":1,"none":null,"ok":true,"price":1.50,'
                     b'"tags":["a","b"]}'))],
     routes={"/users/7": J('{"company":{"id":"c1"},"price":1.50,"ok":true,"tags":["a","b"],"none":null,'
                           '"empty":[]}'),
             "/orders/c1/1.50/true/a,b": J({"orders": [1]}),
             "/more/%3Cnil%3E/map%5Bid:c1%5D//x": J({"more": 1})},
     sent=[get("/users/7"), get("/orders/c1/1.50/true/a,b"), get("/users/7"),
           get("/more/%3Cnil%3E/map%5Bid:c1%5D//x")])
case("8.5", "sequential_later_wins",
     "In sequential mode the higher index wins key collisions.",
     [ep("/q", be("/slowfirst"), be("/second"), extra_config=SEQUENTIAL)],
     [(GET("/q"), ok(b'{"a":1,"k":"second"}'))],
     routes={"/slowfirst": J({"k": "first", "a": 1}, delay=0.05), "/second": J({"k": "second"})},
     sent=[get("/slowfirst"), get("/second")])
case("8.5", "sequential_first_fails",
     "Backend 0 failing fails the endpoint (500); the next is not called.",
     [ep("/q", be("/missing"), be("/second"), extra_config=SEQUENTIAL)],
     [(GET("/q"), failed())], routes={"/second": J({"b": 2})}, sent=[get("/missing")])
case("8.5", "sequential_later_fails",
     "A later backend failing stops the chain: 200 partial with completed false.",
     [ep("/q", be("/first"), be("/missing"), be("/third"), extra_config=SEQUENTIAL)],
     [(GET("/q"), ok(b'{"foo":42}', "false"))],
     routes={"/first": J({"foo": 42}), "/third": J({"c": 3})}, sent=[get("/first"), get("/missing")])
case("8.5", "sequential_non_get",
     "Non-GET methods are allowed at any position; each gets the client body.",
     [ep("/q", be("/first", method="POST"), be("/second/{resp0_id}", method="PUT"),
         method="POST", extra_config=SEQUENTIAL)],
     [(req("POST", "/q", b"data"), ok(b'{"done":true,"id":9}'))],
     routes={"/first": J({"id": 9}, 201), "/second/9": J({"done": True})},
     sent=[sent("POST", "/first", b"data"), sent("PUT", "/second/9", b"data")])


class ConformanceTestCase(TestCase):
    """
    The base of every generated conformance class.
    """

    timeout = 20


add_cases(globals(), ConformanceTestCase, CASES)


# ---------------------------------------------------------------------------------------------
# 1.1 What `krakend check` validates, through parse_config

def document(*endpoints, **top):
    doc = {"version": 3, "host": ["http://127.0.0.1:8000"], "endpoints": list(endpoints)}
    doc.update(top)
    return doc


def simple(endpoint="/a", url_pattern="/a", **keys):
    entry = {"endpoint": endpoint, "backend": [{"url_pattern": url_pattern}]}
    entry.update(keys)
    return entry


# (name, what, document, problem fragments (empty: accepted), warning fragments)
VALIDATION = [
    ("version", "Only version 3 is accepted.",
     document(simple(), version=2), ["unsupported version: 2 (want: 3)"], []),
    ("listen_ip", "listen_ip must be an IP.",
     document(simple(), listen_ip="300.1.1.1"), ["invalid ip address"], []),
    ("host_with_path", "A host with a path is fatal unless disable_host_sanitize.",
     document(simple(), host=["http://x/api"]), ["invalid host"], []),
    ("host_ipv6", "An IPv6 literal host is fatal unless disable_host_sanitize.",
     document(simple(), host=["http://[::1]:8080"]), ["invalid host"], []),
    ("host_verbatim", "disable_host_sanitize keeps the host verbatim.",
     document({"endpoint": "/a", "backend": [{"url_pattern": "/a", "host": ["http://x/api"],
                                              "disable_host_sanitize": True}]}), [], []),
    ("wildcard", "* followed by anything is refused.",
     document(simple("/a/*rest")), ["'GET /a/*rest' endpoint, since it is invalid!!!"], []),
    ("trailing_wildcard", "A trailing * (a gin panic) is refused.",
     document(simple("/a/*")), ["/a/*"], []),
    ("reserved", "The reserved /__debug, /__echo and /__health paths are refused.",
     document(simple("/__debug/x"), simple("/__echo"), simple("/__health")),
     ["'GET /__debug/x' endpoint, since it is invalid!!!", "'GET /__echo' endpoint",
      "'GET /__health' endpoint"], []),
    ("no_backends", "An endpoint needs a backend.",
     document({"endpoint": "/a", "backend": []}), ["since it has 0 backends defined!"], []),
    ("noop_several", "no-op with more than one backend is refused.",
     document({"endpoint": "/a", "output_encoding": "no-op",
               "backend": [{"url_pattern": "/a"}, {"url_pattern": "/b"}]}),
     ["can not use NoOp encoding with more than one backends"], []),
    ("noop_with_shadow", "no-op with one primary and a shadow is accepted (deliberate difference).",
     document({"endpoint": "/a", "output_encoding": "no-op",
               "backend": [{"url_pattern": "/a"},
                           {"url_pattern": "/b", "extra_config": {"proxy": {"shadow": True}}}]}),
     [], []),
    ("undefined_param", "Every {x} in url_pattern must be an endpoint parameter.",
     document(simple("/a/{id}", "/b/{other}")), ["undefined output param"], []),
    ("too_many_params", "More output than input parameters.",
     document(simple("/a/{id}", "/b/{id}/{other}")), ["input and output params do not match"], []),
    ("param_case", "Parameter names are compared exactly.",
     document(simple("/a/{id}", "/b/{Id}")), ["undefined output param"], []),
    ("special_placeholders", "{respN_x} and {JWT.sub} placeholders are allowed.",
     document(simple("/a/{id}", "/b/{id}/{resp0_x.y}/{JWT.sub}")), [], []),
    ("bad_duration", "An invalid duration is fatal.",
     document(simple(timeout="2 seconds")), ["timeout"], []),
    ("unsupported_method", "An endpoint with an unsupported method is skipped with a warning.",
     document(simple(method="HEAD"), simple("/b", "/b")), [], ["HEAD"]),
    ("duplicate_route", "The same method and path twice is refused (a gin panic).",
     document(simple(), simple()), ["already defined"], []),
    ("param_conflict", "Different parameter names at the same position are refused (a gin panic).",
     document(simple("/a/{id}", "/x"), simple("/a/{name}/b", "/y")), ["conflicts"], []),
    ("ignored_keys", "Known KrakenD settings shadowtwist does not implement are accepted, each "
     "with a warning.",
     document(simple(backend=[{"url_pattern": "/a", "encoding": "rss"}]), tls={"keys": []},
              read_timeout="1s", extra_config={"router": {"trusted_proxies": ["10.0.0.0/8"]},
                                               "backend/http/client": {"send_body_on_redirect": True}}),
     [], ["tls", "read_timeout", "trusted_proxies", "rss", "'backend/http/client'"]),
    ("unknown_namespaces", "Unimplemented namespaces are accepted, with one warning each.",
     document(simple(extra_config={"qos/ratelimit/router": {"max_rate": 1}}),
              simple("/b", "/b", extra_config={"qos/ratelimit/router": {"max_rate": 1}}),
              extra_config={"security/cors": {"allow_origins": ["*"]}}),
     [], ["'qos/ratelimit/router'", "'security/cors'"]),
]


class Section_1_1(TestCase):
    """
    KrakenD behaviour, section 1.1: what `krakend check` validates, every case through
    L{parse_config}.
    """

    def test_table(self):
        """
        Each document of the validation table is refused with its messages, or accepted with
        its warnings.
        """
        for name, what, doc, problems, warnings in VALIDATION:
            try:
                config = parse_config(doc, "check.json")
            except ConfigError as e:
                text = str(e)
                self.assertTrue(problems, f"{name} ({what}): refused: {text}")
                for fragment in problems:
                    self.assertIn(fragment, text, f"{name} ({what})")
                continue
            self.assertEqual(problems, [], f"{name} ({what}): accepted")
            joined = "\n".join(config.warnings)
            for fragment in warnings:
                self.assertIn(fragment, joined, f"{name} ({what})")
            if name == "unknown_namespaces":
                self.assertEqual(sum("qos/ratelimit/router" in w for w in config.warnings), 1)

    def test_leading_slash(self):
        """
        A leading / is added to endpoint and url_pattern when missing.
        """
        config = parse_config(document(simple("a/{id}", "b/{id}")), "check.json")
        self.assertEqual(config.endpoints[0].path, "/a/{id}")
        self.assertEqual(config.endpoints[0].backends[0].url_pattern, "/b/{id}")

    def test_defaults(self):
        """
        Defaults: port 8080, timeout 2s, GET, output json, concurrent_calls 1.
        """
        config = parse_config(document(simple()), "check.json")
        self.assertEqual((config.port, config.timeout), (8080, 2.0))
        endpoint = config.endpoints[0]
        self.assertEqual((endpoint.method, endpoint.timeout, endpoint.output_encoding,
                          endpoint.concurrent_calls, endpoint.cache_ttl), ("GET", 2.0, "json", 1, 0.0))

    def test_yaml(self):
        """
        .yml and .yaml files load like JSON.
        """
        for suffix in (".yml", ".yaml"):
            fd, path = tempfile.mkstemp(suffix=suffix)
            self.addCleanup(os.remove, path)
            with os.fdopen(fd, "w") as f:
                f.write("version: 3\nhost: ['http://127.0.0.1:8000']\nendpoints:\n"
                        "  - endpoint: /a\n    backend:\n      - url_pattern: /a\n")
            self.assertEqual(load_config(path).endpoints[0].path, "/a")

    def test_json_syntax_error(self):
        """
        A JSON syntax error is reported with its line and column.
        """
        fd, path = tempfile.mkstemp(suffix=".json")
        self.addCleanup(os.remove, path)
        with os.fdopen(fd, "w") as f:
            f.write('{"version": 3,\n "endpoints": [}\n')
        with self.assertRaises(ConfigError) as raised:
            load_config(path)
        self.assertIn("line 2, column", str(raised.exception))
