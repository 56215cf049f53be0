# -*- test-case-name: tests.test_routing -*-
"""
The twisted.web Resource tree built from the endpoints.

Each path segment of an endpoint template is a L{RouteNode}: literal segments are static
children, a C{{param}} segment is the node's parameter child. The node at the end of a template
holds one handler per method; the router's 404 and 405 follow KrakenD (gin) exactly, and
C{/__health} is a node like any other.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional, Sequence
from urllib.parse import parse_qsl

from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from shadowtwist import encoding
from shadowtwist.backend import IncomingRequest
from shadowtwist.config import RouterOptions, ServiceConfig
from shadowtwist.responses import GatewayResponse, router_error, version_header

_log = Logger(namespace="shadowtwist.routing")
_ENCODED = re.compile(r"%[0-9a-fA-F]{2}|[?#]")
_PARAM_SEGMENT = re.compile(r"^\{([a-zA-Z\-_0-9]+)\}$")
Handler = Callable[[server.Request], Any]


def write_response(request: server.Request, response: GatewayResponse) -> None:
    """
    Write a whole L{GatewayResponse} and finish the request.
    """
    request.setResponseCode(response.status)
    headers = request.responseHeaders
    headers.removeHeader(b"server")
    for name, value in response.headers:
        headers.addRawHeader(name, value)
    headers.setRawHeaders(b"content-length", [str(len(response.body)).encode("ascii")])
    if response.body and request.method != b"HEAD":
        request.write(response.body)
    request.finish()


def _respond_now(request: server.Request, response: GatewayResponse) -> bytes:
    request.defaultContentType = None
    write_response(request, response)
    return server.NOT_DONE_YET


class RouteNode(Resource):
    """
    One path segment of the route tree.

    @ivar handlers: method to handler, for the template that ends here (in config order).
    @ivar param_child: the node for a C{{param}} segment below this one, if any.
    """

    def __init__(self, router: RouterOptions, root: Optional["RouteNode"] = None) -> None:
        super().__init__()
        self._router = router
        self._root = root or self
        self.handlers: dict = {}
        self.param_child: Optional[RouteNode] = None

    def child_for(self, segment: str) -> "RouteNode":
        """
        The node for a template segment, created on first use.
        """
        if _PARAM_SEGMENT.match(segment):
            if self.param_child is None:
                self.param_child = RouteNode(self._router, self._root)
            return self.param_child
        key = segment.encode("utf-8")
        if key not in self.children:
            self.putChild(key, RouteNode(self._router, self._root))
        return self.children[key]

    def fixed_path(self, path: str) -> Optional[str]:
        """
        gin's C{RedirectFixedPath}: the route a cleaned, case-insensitive C{path} would match.

        @param path: the request path (decoded).
        @return: the path to redirect to, or C{None} when nothing matches.
        """
        node: Optional[RouteNode] = self
        fixed = []
        for segment in clean_path(path).split("/")[1:]:
            match = None
            for key, child in node.children.items():
                if isinstance(child, RouteNode) and key.decode("utf-8", "replace").lower() == segment.lower():
                    match, segment = child, key.decode("utf-8", "replace")
                    break
            if match is None and segment:
                match = node.param_child
            if match is None:
                return None
            node = match
            fixed.append(segment)
        if not node.handlers:
            return None
        return "/" + "/".join(fixed)

    def not_found(self) -> Resource:
        """
        The answer for a path with no route: a fixed-path redirect or KrakenD's 404.
        """
        return _NotFound(self._root, self._router)

    def getChild(self, name: bytes, request: server.Request) -> Resource:
        """
        A segment with no literal child: a parameter value, a trailing slash, or a 404.
        """
        if name == b"" and self.handlers and not self._router.disable_redirect_trailing_slash:
            return _Redirect(request.path.rstrip(b"/") or b"/")
        if self.param_child is None or name == b"":
            return self.not_found()
        value = name.decode("utf-8", "replace")  # twisted.web has already unquoted segments
        if "/" in value:
            return self.not_found()
        if _ENCODED.search(value) and not self._router.disable_path_decoding:
            return _Fixed(GatewayResponse(400, (("Content-Type", "text/plain; charset=utf-8"),),
                                          b"error: encoded url params"))
        _params(request).append(value)
        return self.param_child

    def render(self, request: server.Request) -> Any:
        """
        Dispatch on the method, or answer 404/405 as gin does.
        """
        method = request.method.decode("ascii", "replace")
        handler = self.handlers.get(method)
        if handler is not None:
            return handler(request)
        if not self.handlers:
            child = self.children.get(b"")
            if isinstance(child, RouteNode) and child.handlers \
                    and not self._router.disable_redirect_trailing_slash:
                return _Redirect(request.path + b"/").render(request)
            return self.not_found().render(request)
        if method == "OPTIONS" and self._router.auto_options:
            allow = ", ".join(sorted(self.handlers))
            return _respond_now(request, GatewayResponse(200, (
                ("Allow", allow), ("X-Krakend", version_header(self._router))), b""))
        if self._router.disable_handle_method_not_allowed:
            return self.not_found().render(request)
        return _respond_now(request, router_error(405, self._router, list(self.handlers)))


def _params(request: server.Request) -> list:
    params = getattr(request, "shadowtwist_params", None)
    if params is None:
        params = request.shadowtwist_params = []
    return params


def clean_path(path: str) -> str:
    """
    Go's C{path.Clean} for a request path: no empty, C{.} or C{..} segments.
    """
    parts: list = []
    for segment in path.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            if parts:
                parts.pop()
            continue
        parts.append(segment)
    cleaned = "/" + "/".join(parts)
    if path.endswith("/") and cleaned != "/":
        cleaned += "/"
    return cleaned


class _NotFound(Resource):
    """
    A path with no route: redirect to the fixed path when one matches, else KrakenD's 404.
    """

    isLeaf = True

    def __init__(self, root: RouteNode, router: RouterOptions) -> None:
        super().__init__()
        self._root = root
        self._router = router

    def render(self, request: server.Request) -> bytes:
        if not self._router.disable_redirect_fixed_path:
            path = request.path.decode("utf-8", "replace")
            fixed = self._root.fixed_path(path)
            if fixed is not None and fixed != path:
                return _Redirect(fixed.encode("utf-8")).render(request)
        return _respond_now(request, router_error(404, self._router))


class _Fixed(Resource):
    """
    A leaf that always gives the same answer (404s and 400s found during traversal).
    """

    isLeaf = True

    def __init__(self, response: GatewayResponse) -> None:
        super().__init__()
        self._response = response

    def render(self, request: server.Request) -> bytes:
        return _respond_now(request, self._response)


class _Redirect(Resource):
    """
    gin's trailing-slash redirect: 301 for GET, 307 for other methods.
    """

    isLeaf = True

    def __init__(self, location: bytes) -> None:
        super().__init__()
        self._location = location

    def render(self, request: server.Request) -> bytes:
        query = request.uri.partition(b"?")[2]
        location = self._location + (b"?" + query if query else b"")
        status = 301 if request.method == b"GET" else 307
        body = b""
        if request.method == b"GET":
            body = b'<a href="' + location + b'">Moved Permanently</a>.\n\n'
        response = GatewayResponse(status, (("Location", location.decode("latin-1")),
                                            ("Content-Type", "text/html; charset=utf-8")), body)
        return _respond_now(request, response)


def incoming_request(request: server.Request, param_names: Sequence[str]) -> IncomingRequest:
    """
    Read a twisted.web request into an L{IncomingRequest}: the body is read once, here.

    @param param_names: the template's parameter names, in path order.
    """
    query = request.uri.partition(b"?")[2].decode("latin-1")
    content = request.content
    content.seek(0)
    body = content.read()
    address = request.getClientAddress()
    return IncomingRequest(
        method=request.method.decode("ascii", "replace"),
        path=request.path.decode("latin-1"),
        query=tuple(parse_qsl(query, keep_blank_values=True)),
        headers={k.decode("latin-1"): [v.decode("latin-1") for v in vs]
                 for k, vs in request.requestHeaders.getAllRawHeaders()},
        params=dict(zip(param_names, _params(request))),
        body=body,
        client_ip=getattr(address, "host", "") or "",
        host=(request.getHeader(b"host") or b"").decode("latin-1"),
    )


def pipeline_handler(pipeline: Any) -> Handler:
    """
    A method handler that serves a request through an endpoint pipeline.

    The pipeline's work is cancelled when the client goes away; nothing is written after that.
    """
    params = pipeline.endpoint.params

    def handle(request: server.Request) -> bytes:
        request.defaultContentType = None
        written: Deferred = Deferred()
        if getattr(pipeline, "streams", False):
            pipeline.stream(incoming_request(request, params), request, written)
            return server.NOT_DONE_YET
        accept = request.getHeader(b"accept")
        d = pipeline.handle(incoming_request(request, params),
                            accept.decode("latin-1") if accept is not None else None, written)
        gone: list = []

        def client_left(failure: Failure) -> None:
            gone.append(True)
            d.cancel()

        request.notifyFinish().addErrback(client_left)

        def write(response: GatewayResponse) -> None:
            if not gone:
                write_response(request, response)

        def failed(failure: Failure) -> None:
            if failure.check(CancelledError) and gone:
                return
            _log.failure("serving {method} {path} failed", failure,
                         method=request.method, path=request.path)
            if not gone:
                write_response(request, GatewayResponse(500, (), b""))

        d.addCallbacks(write, failed)
        d.addBoth(lambda _: written.callback(None))
        return server.NOT_DONE_YET

    return handle


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
            return _Redirect(request.path + b"/").render(request)
        request.content.seek(0)
        body = encoding.dumps(self._answer(request, request.content.read()))
        return _respond_now(request, GatewayResponse(
            200, (("Content-Type", "application/json; charset=utf-8"),), body))


def _debug_answer(request: server.Request, body: bytes) -> dict:
    _log.debug("debug endpoint: {method} {uri} headers={headers} body={body!r}",
               method=request.method.decode("latin-1"), uri=request.uri.decode("latin-1"),
               headers=dict(request.requestHeaders.getAllRawHeaders()), body=body)
    return {"message": "pong"}


def _echo_answer(request: server.Request, body: bytes) -> dict:
    uri = request.uri.decode("latin-1")
    path, _, query = uri.partition("?")
    query, _, fragment = query.partition("#")
    querystring: dict = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        querystring.setdefault(name, []).append(value)
    headers = {k.decode("latin-1"): [v.decode("latin-1") for v in vs]
               for k, vs in request.requestHeaders.getAllRawHeaders()}
    return {
        "req_uri": uri,
        "req_uri_details": {"user": "", "host": "", "path": request.path.decode("utf-8", "replace"),
                            "query": query, "fragment": fragment},
        "req_method": request.method.decode("latin-1"),
        "req_querystring": querystring,
        "req_body": body.decode("utf-8", "replace"),
        "req_headers": headers,
    }


def health_handler(started: datetime) -> Handler:
    """
    C{GET /__health}: C{{"agents":{},"now":"<time>","status":"ok"}} (KrakenD section 8.1).
    """

    def handle(request: server.Request) -> bytes:
        now = datetime.now(timezone.utc)
        body = encoding.dumps({"agents": {}, "now": go_time(now), "status": "ok"})
        return _respond_now(request, GatewayResponse(
            200, (("Content-Type", "application/json; charset=utf-8"),), body))

    return handle


def go_time(moment: datetime) -> str:
    """
    A UTC time the way Go's C{time.String()} prints it (without the monotonic part).
    """
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f") + "000 +0000 UTC"


def build_tree(config: ServiceConfig, pipelines: Sequence[Any]) -> RouteNode:
    """
    Build the Resource tree.

    @param pipelines: one pipeline per endpoint, in config order (each knows its C{endpoint}).
    @return: the root resource.
    """
    root = RouteNode(config.router)
    for pipeline in pipelines:
        endpoint = pipeline.endpoint
        _node_for(root, endpoint.path).handlers[endpoint.method] = pipeline_handler(pipeline)
    if config.debug_endpoint:
        root.putChild(b"__debug", _Introspection(_debug_answer))
    if config.echo_endpoint:
        root.putChild(b"__echo", _Introspection(_echo_answer))
    if not config.router.disable_health:
        started = datetime.now(timezone.utc)
        _node_for(root, config.router.health_path).handlers["GET"] = health_handler(started)
    return root


def _node_for(root: RouteNode, path: str) -> RouteNode:
    node = root
    for segment in path.split("/")[1:]:
        node = node.child_for(segment)
    return node
