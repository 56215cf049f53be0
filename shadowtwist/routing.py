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
from shadowtwist.responses import GatewayResponse, router_error

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

    def __init__(self, router: RouterOptions) -> None:
        super().__init__()
        self._router = router
        self.handlers: dict = {}
        self.param_child: Optional[RouteNode] = None

    def child_for(self, segment: str) -> "RouteNode":
        """
        The node for a template segment, created on first use.
        """
        if _PARAM_SEGMENT.match(segment):
            if self.param_child is None:
                self.param_child = RouteNode(self._router)
            return self.param_child
        key = segment.encode("utf-8")
        if key not in self.children:
            self.putChild(key, RouteNode(self._router))
        return self.children[key]

    def getChild(self, name: bytes, request: server.Request) -> Resource:
        """
        A segment with no literal child: a parameter value, a trailing slash, or a 404.
        """
        if name == b"" and self.handlers and not self._router.disable_redirect_trailing_slash:
            return _Redirect(request.path.rstrip(b"/") or b"/")
        if self.param_child is None or name == b"":
            return _Fixed(router_error(404, self._router))
        value = name.decode("utf-8", "replace")  # twisted.web has already unquoted segments
        if "/" in value:
            return _Fixed(router_error(404, self._router))
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
            if b"" in self.children and self.children[b""].handlers \
                    and not self._router.disable_redirect_trailing_slash:
                return _Redirect(request.path + b"/").render(request)
            return _respond_now(request, router_error(404, self._router))
        if self._router.disable_handle_method_not_allowed:
            return _respond_now(request, router_error(404, self._router))
        return _respond_now(request, router_error(405, self._router, list(self.handlers)))


def _params(request: server.Request) -> list:
    params = getattr(request, "shadowtwist_params", None)
    if params is None:
        params = request.shadowtwist_params = []
    return params


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
        accept = request.getHeader(b"accept")
        written: Deferred = Deferred()
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
    if not config.router.disable_health:
        started = datetime.now(timezone.utc)
        _node_for(root, config.router.health_path).handlers["GET"] = health_handler(started)
    return root


def _node_for(root: RouteNode, path: str) -> RouteNode:
    node = root
    for segment in path.split("/")[1:]:
        node = node.child_for(segment)
    return node
