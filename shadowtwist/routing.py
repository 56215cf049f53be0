# -*- test-case-name: tests.test_routing -*-
"""
The twisted.web Resource tree built from the endpoints.

Each path segment of an endpoint template is a L{RouteNode}: literal segments are static
children, a C{{param}} segment is the node's parameter child. The node at the end of a template
holds one handler per method; C{/__health} is a node like any other. A request with no route
for its method goes to L{_Miss}, which answers as gin does: trailing-slash and fixed-path
redirects looked up among that method's routes, then a 405 with C{Allow} in gin's tree order,
then KrakenD's 404.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Optional, Sequence
from urllib.parse import quote, unquote, unquote_plus

from twisted.internet.defer import CancelledError, Deferred, passthru
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.resource import Resource

from shadowtwist.backend import IncomingRequest
from shadowtwist.channel import respond
from shadowtwist.config import RouterOptions, ServiceConfig
from shadowtwist.responses import GatewayResponse, router_error, version_header

_log = Logger(namespace="shadowtwist.routing")
_ENCODED = re.compile(r"%[0-9a-fA-F]{2}|[?#]")
_INVALID_ESCAPE = re.compile(r"%(?![0-9a-fA-F]{2})")
_PARAM_SEGMENT = re.compile(r"^\{([a-zA-Z\-_0-9]+)\}$")
Handler = Callable[[server.Request], Any]
# The methods gin's Any() registers, in its order (the debug and echo routes).
_ANY_METHODS = ("GET", "POST", "PUT", "PATCH", "HEAD", "OPTIONS", "DELETE", "CONNECT", "TRACE")


def write_response(request: server.Request, response: GatewayResponse) -> None:
    """
    Write a whole L{GatewayResponse} and finish the request.
    """
    respond(request, response.status, response.headers, response.body)


def respond_now(request: server.Request, response: GatewayResponse) -> bytes:
    request.defaultContentType = None
    write_response(request, response)
    return server.NOT_DONE_YET


class RouteNode(Resource):
    """
    One path segment of the route tree.

    @ivar handlers: method to handler, for the template that ends here (in config order).
    @ivar param_child: the node for a C{{param}} segment below this one, if any.
    @ivar patterns: (regex, node) for segments with a parameter inside, such as C{file.{ext}}
        (C{disable_rest}).
    @ivar options_allow: with C{router.auto_options}, the C{Allow} of this path's OPTIONS route.
    @ivar method_order: (root only) each method's position among gin's method trees, the order
        of C{Allow} in a 405.
    """

    def __init__(self, router: RouterOptions, root: Optional["RouteNode"] = None) -> None:
        super().__init__()
        self._router = router
        self._root = root or self
        self.handlers: dict = {}
        self.param_child: Optional[RouteNode] = None
        self.patterns: list = []
        self.options_allow: Optional[str] = None
        self.method_order: dict = {}

    def child_for(self, segment: str, params: Sequence[str] = ()) -> "RouteNode":
        """
        The node for a template segment, created on first use.

        @param params: the endpoint's parameter names (a segment holding one inside it, as
            C{disable_rest} allows, matches by pattern).
        """
        if _PARAM_SEGMENT.match(segment):
            if self.param_child is None:
                self.param_child = RouteNode(self._router, self._root)
            return self.param_child
        inner = [p for p in params if "{" + p + "}" in segment]
        if len(inner) == 1:
            prefix, _, suffix = segment.partition("{" + inner[0] + "}")
            regex = re.compile(re.escape(prefix) + "(.+)" + re.escape(suffix))
            for known, node in self.patterns:
                if known.pattern == regex.pattern:
                    return node
            node = RouteNode(self._router, self._root)
            self.patterns.append((regex, node))
            return node
        key = segment.encode("utf-8")
        if key not in self.children:
            self.putChild(key, RouteNode(self._router, self._root))
        return self.children[key]

    def serves(self, method: str) -> bool:
        """
        Whether this node's path has a route for C{method}.
        """
        return method in self.handlers or (method == "OPTIONS" and self.options_allow is not None)

    def allowed(self, method: str) -> list:
        """
        The methods this path has a route for, but C{method}, in gin's tree order (a 405's Allow).
        """
        methods = list(self.handlers) + (["OPTIONS"] if self.options_allow is not None else [])
        order = self._root.method_order
        return sorted((m for m in methods if m != method), key=lambda m: order.get(m, len(order)))

    def _step(self, segment: str, exact: bool = True) -> Optional[tuple]:
        """
        The child matching one decoded segment (a literal first, then a pattern, then a
        parameter), as (node, the segment as the route spells it); case-insensitive literals
        when not C{exact}.
        """
        child = self.children.get(segment.encode("utf-8"))
        if isinstance(child, RouteNode):
            return child, segment
        if not exact:
            for key, child in self.children.items():
                name = key.decode("utf-8", "replace")
                if isinstance(child, RouteNode) and name.lower() == segment.lower():
                    return child, name
        for regex, node in self.patterns:
            if regex.fullmatch(segment):
                return node, segment
        if self.param_child is not None and segment:
            return self.param_child, segment
        return None

    def lookup(self, path: str) -> Optional["RouteNode"]:
        """
        The node a decoded path leads to, or C{None}.
        """
        node: RouteNode = self
        for segment in path.split("/")[1:]:
            found = node._step(segment)
            if found is None:
                return None
            node = found[0]
        return node

    def fixed_path(self, path: str, method: str) -> Optional[str]:
        """
        gin's C{RedirectFixedPath}: the route for C{method} that the cleaned path matches
        case-insensitively (a missing or extra trailing slash fixed too).

        @param path: the request path (decoded).
        @return: the path to redirect to, or C{None} when nothing matches.
        """
        cleaned = clean_path(path)
        segments = cleaned.split("/")[1:]
        if segments and segments[-1] == "" and len(segments) > 1:
            candidates = [segments, segments[:-1]]
        else:
            candidates = [segments, segments + [""]]
        for candidate in candidates:
            node: Optional[RouteNode] = self
            fixed = []
            for segment in candidate:
                found = node._step(segment, exact=False)
                if found is None:
                    node = None
                    break
                node, spelled = found
                fixed.append(spelled)
            if node is not None and node.serves(method):
                result = "/" + "/".join(fixed)
                return result if result != path else None
        return None

    def getChild(self, name: bytes, request: server.Request) -> Resource:
        """
        A segment with no literal child: a parameter value, or a miss (redirect, 405 or 404).
        """
        found = self._step(name.decode("utf-8", "replace"))  # twisted.web has unquoted it
        if found is None or "/" in found[1]:
            return _Miss(self._root)
        node, value = found
        if node is self.param_child:
            _params(request).append(value)
        else:
            for regex, pattern_node in self.patterns:
                if pattern_node is node:
                    _params(request).append(regex.fullmatch(value).group(1))
                    break
        return node

    def render(self, request: server.Request) -> Any:
        """
        Dispatch on the method; without a route for it, answer as gin does (redirects, 405, 404).
        """
        method = request.method.decode("ascii", "replace")
        if not self.serves(method):
            return _Miss(self._root).render(request)
        if not self._router.disable_path_decoding:
            bad = _bad_param(_params(request))
            if bad is not None:
                return respond_now(request, GatewayResponse(
                    400, (("Content-Type", "text/plain; charset=utf-8"),), bad.encode("utf-8")))
        handler = self.handlers.get(method)
        if handler is not None:
            return handler(request)
        return respond_now(request, GatewayResponse(200, (
            ("Allow", self.options_allow), ("X-Krakend", version_header(self._router))), b""))


def _bad_param(values: Sequence[str]) -> Optional[str]:
    """
    lura's C{paramChecker}: the 400 body for a parameter value that is still encoded (or holds
    C{?} or C{#}) after decoding, or C{None} when every value is clean.
    """
    for value in values:
        invalid = _INVALID_ESCAPE.search(value)
        if invalid is not None:
            return f'error: invalid URL escape "{value[invalid.start():invalid.start() + 3]}"'
        if _ENCODED.search(value):
            return "error: encoded url params"
    return None


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


class _Miss(Resource):
    """
    A request with no route for its method, answered as gin does: a trailing-slash redirect,
    then a fixed-path redirect (both looked up among the routes for that method), then a 405
    when the path has routes for other methods, then KrakenD's 404.
    """

    isLeaf = True

    def __init__(self, root: RouteNode) -> None:
        super().__init__()
        self._root = root

    def render(self, request: server.Request) -> bytes:
        root, router = self._root, self._root._router
        method = request.method.decode("ascii", "replace")
        path = decoded_path(request)
        if path != "/":
            if not router.disable_redirect_trailing_slash:
                other = path[:-1] if path.endswith("/") else path + "/"
                node = root.lookup(other)
                if node is not None and node.serves(method):
                    return Redirect(other).render(request)
            if not router.disable_redirect_fixed_path:
                fixed = root.fixed_path(path, method)
                if fixed is not None:
                    return Redirect(fixed).render(request)
        node = root.lookup(path)
        allowed = node.allowed(method) if node is not None else []
        if allowed and not router.disable_handle_method_not_allowed:
            return respond_now(request, router_error(405, router, allowed))
        return respond_now(request, router_error(404, router))


def decoded_path(request: server.Request) -> str:
    """
    The request path decoded, as Go's C{URL.Path}.
    """
    return unquote(request.path.decode("utf-8", "replace"))


class Redirect(Resource):
    """
    gin's redirects: 301 for GET, 307 for other methods, made by Go's C{http.Redirect} (the
    path escaped, the query kept, an HTML body for GET, a Content-Type for GET and HEAD).
    """

    isLeaf = True

    def __init__(self, path: str) -> None:
        """
        @param path: the decoded path to redirect to.
        """
        super().__init__()
        self._path = path

    def render(self, request: server.Request) -> bytes:
        query = request.uri.partition(b"?")[2].decode("latin-1")
        location = quote(self._path, safe="/$&+,:;=@") + ("?" + query if query else "")
        status = 301 if request.method == b"GET" else 307
        headers: tuple = (("Location", location),)
        if request.method in (b"GET", b"HEAD"):
            headers += (("Content-Type", "text/html; charset=utf-8"),)
        body = b""
        if request.method == b"GET":
            body = f'<a href="{_html_escape(location)}">Moved Permanently</a>.\n\n'.encode("utf-8")
        return respond_now(request, GatewayResponse(status, headers, body))


def _html_escape(text: str) -> str:
    """
    Go's C{htmlEscape}, as C{http.Redirect} uses it.
    """
    for char, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&#34;"), ("'", "&#39;")):
        text = text.replace(char, entity)
    return text


def go_parse_query(query: str) -> list:
    """
    Go's C{url.ParseQuery}, as KrakenD reads a client query: pairs split on C{&}, C{+} as a
    space; a pair holding C{;} or an invalid escape is dropped.

    @param query: the raw query, without C{?}.
    @return: (name, value) pairs in order.
    """
    pairs = []
    for pair in query.split("&"):
        if not pair or ";" in pair or _INVALID_ESCAPE.search(pair):
            continue
        name, _, value = pair.partition("=")
        pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


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
        query=tuple(go_parse_query(query)),
        headers={k.decode("latin-1"): [v.decode("latin-1") for v in vs]
                 for k, vs in request.requestHeaders.getAllRawHeaders()},
        params=dict(zip(param_names, _params(request))),
        body=body,
        client_ip=getattr(address, "host", "") or "",
        host=(request.getHeader(b"host") or b"").decode("latin-1"),
    )


class _Answer:
    """
    Where a pipeline's response for one client request goes: to the client, unless it went
    away meanwhile (then the pipeline's work is cancelled and nothing is written). C{written}
    fires once the response is written, or will never be, for the shadows.
    """

    __slots__ = ("_request", "_work", "_written", "_gone")

    def __init__(self, request: server.Request, work: Deferred, written: Optional[Deferred]) -> None:
        self._request = request
        self._work = work
        self._written = written
        self._gone = False

    def client_left(self, failure: Failure) -> None:
        self._gone = True
        self._work.cancel()

    def write(self, response: GatewayResponse) -> None:
        try:
            if not self._gone:
                write_response(self._request, response)
        finally:
            self._done()

    def failed(self, failure: Failure) -> None:
        try:
            if failure.check(CancelledError) and self._gone:
                return
            request = self._request
            _log.failure("serving {method} {path} failed", failure, method=request.method, path=request.path)
            if not self._gone:
                write_response(request, GatewayResponse(500, (), b""))
        finally:
            self._done()

    def _done(self) -> None:
        if self._written is not None:
            self._written.callback(None)


def pipeline_handler(pipeline: Any) -> Handler:
    """
    A method handler that serves a request through an endpoint pipeline.

    The pipeline's work is cancelled when the client goes away; nothing is written after that.
    """
    params = pipeline.endpoint.params
    # Only shadows wait for the client's response to be written.
    wait_for_written = bool(pipeline.endpoint.shadows)

    def handle(request: server.Request) -> bytes:
        request.defaultContentType = None
        if getattr(pipeline, "streams", False):
            pipeline.stream(incoming_request(request, params), request, Deferred())
            return server.NOT_DONE_YET
        written: Optional[Deferred] = Deferred() if wait_for_written else None
        accept = request.getHeader(b"accept")
        d = pipeline.handle(incoming_request(request, params),
                            accept.decode("latin-1") if accept is not None else None, written)
        answer = _Answer(request, d, written)
        # addCallbacks: addErrback would make two keyword dicts, kept while the request waits
        request.notifyFinish().addCallbacks(passthru, answer.client_left)
        d.addCallbacks(answer.write, answer.failed)
        return server.NOT_DONE_YET

    return handle


def build_tree(config: ServiceConfig, pipelines: Sequence[Any], builtins: Any) -> RouteNode:
    """
    Build the Resource tree.

    @param pipelines: one pipeline per endpoint, in config order (each knows its C{endpoint}).
    @param builtins: the gateway's own endpoints (L{shadowtwist.builtin}), with C{debug()},
        C{echo()} and C{health()}.
    @return: the root resource.
    """
    root = RouteNode(config.router)
    order = ["GET"] if not config.router.disable_health else []  # the health route comes first
    if config.debug_endpoint or config.echo_endpoint:
        order += list(_ANY_METHODS)
    options: dict = {}
    for pipeline in pipelines:
        endpoint = pipeline.endpoint
        node = _node_for(root, endpoint.path, endpoint.params)
        node.handlers[endpoint.method] = pipeline_handler(pipeline)
        options.setdefault(node, []).append(endpoint.method)
        order.append(endpoint.method)
    if config.router.auto_options:
        order.append("OPTIONS")
        for node, methods in options.items():
            node.options_allow = ", ".join(sorted(methods))
    for method in order:
        root.method_order.setdefault(method, len(root.method_order))
    if config.debug_endpoint:
        root.putChild(b"__debug", builtins.debug())
    if config.echo_endpoint:
        root.putChild(b"__echo", builtins.echo())
    if not config.router.disable_health:
        _node_for(root, config.router.health_path).handlers["GET"] = builtins.health()
    return root


def _node_for(root: RouteNode, path: str, params: Sequence[str] = ()) -> RouteNode:
    node = root
    for segment in path.split("/")[1:]:
        node = node.child_for(segment, params)
    return node
