# -*- test-case-name: tests.test_gateway -*-
"""
The gateway's own endpoints: C{/__health} (KrakenD section 8.1), and C{/__debug/} and
C{/__echo/} (sections 8.2 and 8.3) when the config enables them.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable
from urllib.parse import quote_plus

from twisted.logger import Logger
from twisted.web import server
from twisted.web.resource import Resource

from shadowtwist import encoding
from shadowtwist.config import canonical_header
from shadowtwist.encoding import StructObject
from shadowtwist.responses import GatewayResponse
from shadowtwist.routing import Handler, Redirect, decoded_path, go_parse_query, respond_now

_log = Logger(namespace="shadowtwist.builtin")


class _Introspection(Resource):
    """
    C{/__debug/*} and C{/__echo/*}: any method, no X-Krakend headers; C{/__debug} and
    C{/__echo} without the slash redirect to it (KrakenD section 8.2 and 8.3).
    """

    isLeaf = True

    def __init__(self, answer: Callable[[server.Request, bytes], dict]) -> None:
        super().__init__()
        self._answer = answer

    def render(self, request: server.Request) -> bytes:
        if not request.postpath:
            return Redirect(decoded_path(request) + "/").render(request)
        request.content.seek(0)
        body = encoding.dumps(self._answer(request, request.content.read()))
        return respond_now(request, GatewayResponse(
            200, (("Content-Type", "application/json; charset=utf-8"),), body))


def _debug_answer(request: server.Request, body: bytes) -> dict:
    _log.debug("debug endpoint: {method} {uri} headers={headers} body={body!r}",
               method=request.method.decode("latin-1"), uri=request.uri.decode("latin-1"),
               headers=dict(request.requestHeaders.getAllRawHeaders()), body=body)
    return {"message": "pong"}


def _echo_answer(request: server.Request, body: bytes) -> dict:
    """
    lura's C{echoResponse}: a Go struct, so its fields come in declaration order; the URI
    details' C{query} is the parsed query encoded again (keys sorted), C{host} the Host header,
    and the headers are Go's (canonical names, without Host).
    """
    uri = request.uri.decode("latin-1")
    query = uri.partition("?")[2].partition("#")[0]
    querystring: dict = {}
    for name, value in go_parse_query(query):
        querystring.setdefault(name, []).append(value)
    headers: dict = {}
    for name, values in request.requestHeaders.getAllRawHeaders():
        key = canonical_header(name.decode("latin-1"))
        if key != "Host":
            headers.setdefault(key, []).extend(v.decode("latin-1") for v in values)
    encoded = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k in sorted(querystring)
                       for v in querystring[k])
    return StructObject(
        req_uri=uri,
        req_uri_details={"user": "", "host": (request.getHeader(b"host") or b"").decode("latin-1"),
                         "path": decoded_path(request), "query": encoded, "fragment": ""},
        req_method=request.method.decode("latin-1"),
        req_querystring=querystring,
        req_body=body.decode("utf-8", "replace"),
        req_headers=headers,
    )


def health_handler(started: datetime) -> Handler:
    """
    C{GET /__health}: C{{"agents":{},"now":"<time>","status":"ok"}} (KrakenD section 8.1).
    """

    def handle(request: server.Request) -> bytes:
        now = datetime.now(timezone.utc)
        body = encoding.dumps({"agents": {}, "now": go_time(now), "status": "ok"})
        return respond_now(request, GatewayResponse(
            200, (("Content-Type", "application/json; charset=utf-8"),), body))

    return handle


def go_time(moment: datetime) -> str:
    """
    A UTC time the way Go's C{time.String()} prints it (without the monotonic part).
    """
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 +0000 UTC"


def debug() -> Resource:
    """
    The C{/__debug/} resource: logs the request at debug level, answers C{{"message":"pong"}}.
    """
    return _Introspection(_debug_answer)


def echo() -> Resource:
    """
    The C{/__echo/} resource: answers with the request it received.
    """
    return _Introspection(_echo_answer)


def health() -> Handler:
    """
    The C{GET /__health} handler.
    """
    return health_handler(datetime.now(timezone.utc))
