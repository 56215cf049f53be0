# -*- test-case-name: tests.test_responses -*-
"""
From backend answers to what the client receives (KrakenD sections 2.6, 2.8, 3.4 and 7).

L{backend_part} turns one backend's answer into a L{Part} (status check, decoding, manipulation);
L{client_response} turns the merged parts into the status, headers and body the client gets;
L{router_error} builds the router's own 404 and 405 answers. Pure: no Twisted, no I/O.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

import shadowtwist
from shadowtwist import encoding, manipulate
from shadowtwist.config import BackendConfig, EndpointConfig, RouterOptions
from shadowtwist.merge import Merged, Part

SUCCESS_STATUSES = (200, 201)
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


@dataclass
class GatewayResponse:
    """
    A complete answer for the client.

    @ivar headers: (name, value) pairs, in order.
    """

    status: int
    headers: tuple
    body: bytes

    def header(self, name: str) -> Optional[str]:
        """
        The first value of a header, or C{None}.
        """
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def version_header(router: RouterOptions) -> str:
    """
    The value of C{X-Krakend}: C{Version <shadowtwist version>}, or C{Version undefined} with
    C{router.hide_version_header}.
    """
    return "Version undefined" if router.hide_version_header else f"Version {shadowtwist.__version__}"


def go_url_pattern(url_pattern: str) -> str:
    """
    The url_pattern as KrakenD shows it in error texts (C{/x/{id}} becomes C{/x/{{.Id}}}).
    """
    return _PLACEHOLDER.sub(lambda m: "{{." + m.group(1)[:1].upper() + m.group(1)[1:] + "}}", url_pattern)


def backend_part(backend: BackendConfig, status: int, headers: Mapping[str, Sequence[str]],
                 body: bytes, url: str) -> Part:
    """
    One backend's answer as a part of the response: only 200 and 201 succeed; the body is
    decoded with the backend's C{encoding} and shaped by target, allow/deny, mapping, group
    (or flatmap_filter).

    A backend C{encoding} of exactly C{no-op} accepts any status and gives C{{}} (the endpoint
    renders that; a C{no-op} endpoint streams instead, see L{shadowtwist.passthrough}). A body
    still marked C{Content-Encoding: gzip} is gunzipped first. A JSON C{null} is a part without
    data: it adds nothing and makes the response incomplete (KrakenD section 4).

    @param url: the URL that answered, for error texts.
    """
    if backend.encoding == "no-op":
        return Part(data={})
    if status not in SUCCESS_STATUSES:
        return _failed_status(backend, status, headers, body, url)
    if body and (_first(headers, "Content-Encoding") or "").lower() == "gzip":
        try:
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        except zlib.error as e:
            return Part(data=None, error=f"gzip: invalid body ({e})")
    try:
        data = encoding.decode(backend.encoding, body, is_collection=backend.is_collection)
    except encoding.DecodeError as e:
        return Part(data=None, error=str(e))
    if data is None or (not data and _is_json_null(backend, body)):
        return Part(data={}, complete=False)
    return Part(data=format_data(backend, data))


def _is_json_null(backend: BackendConfig, body: bytes) -> bool:
    """
    Whether a body that decoded to an empty object was the JSON C{null} (Go decodes it into a
    nil map, which the merge skips).
    """
    return backend.encoding.lower() not in ("string", "xml", "safejson") and body.strip() == b"null"


def format_data(backend: BackendConfig, data: dict) -> dict:
    """
    Apply a backend's entity formatter to decoded data.
    """
    if not (backend.target or backend.allow or backend.deny or backend.mapping or backend.group
            or backend.flatmap):
        return data
    return manipulate.format_backend(
        data, target=backend.target, allow=backend.allow, deny=backend.deny,
        mapping=backend.mapping, group=backend.group, flatmap=backend.flatmap)


def _failed_status(backend: BackendConfig, status: int, headers: Mapping[str, Sequence[str]],
                   body: bytes, url: str) -> Part:
    message = f"invalid status code {status} [{backend.method} {go_url_pattern(backend.url_pattern)}]: {url}"
    if backend.return_error_details:
        # a Go struct: written in field order, not sorted
        details = encoding.StructObject(http_status_code=status)
        if body:
            details["http_body"] = body.decode("utf-8", "replace")
        content_type = _first(headers, "Content-Type")
        if content_type:
            details["http_body_encoding"] = content_type
        return Part(data={f"error_{backend.return_error_details}": details}, complete=False)
    if backend.return_error_code:
        return Part(data=None, error=message, status=status, error_body=body,
                    error_content_type=_first(headers, "Content-Type"))
    return Part(data=None, error=message)


def _first(headers: Mapping[str, Sequence[str]], name: str) -> Optional[str]:
    for key, values in headers.items():
        if key.lower() == name.lower() and values:
            return values[0]
    return None


def client_response(endpoint: EndpointConfig, router: RouterOptions, merged: Merged,
                    accept: Optional[str] = None) -> GatewayResponse:
    """
    What the client receives for a merged result (section 2.8).

    @param accept: the client's C{Accept} header, for C{negotiate}.
    """
    krakend = ("X-Krakend", version_header(router))
    if merged.data is None:
        status = merged.status or 500
        headers = [krakend, ("X-Krakend-Completed", "false")]
        body = b""
        if router.return_error_msg and merged.status is not None:
            body = merged.error_body or b""
            if merged.error_content_type:
                headers.append(("Content-Type", merged.error_content_type))
        elif router.return_error_msg and merged.errors:
            body = "\n".join(merged.errors).encode("utf-8")
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        return GatewayResponse(status, tuple(headers), body)
    completed = merged.complete and len(merged.data) > 0
    body, content_type = encoding.render(endpoint.output_encoding, merged.data, accept)
    headers = [("Content-Type", content_type), krakend,
               ("X-Krakend-Completed", "true" if completed else "false")]
    if completed and endpoint.cache_ttl:
        headers.append(("Cache-Control", f"public, max-age={int(endpoint.cache_ttl)}"))
    return GatewayResponse(200, tuple(headers), body)


ROUTER_BODIES = {404: b"404 page not found", 405: b"405 method not allowed"}


def router_error(status: int, router: RouterOptions, allow: Sequence[str] = ()) -> GatewayResponse:
    """
    The router's own 404 or 405, with KrakenD's bodies and headers (or C{router.error_body}).

    @param allow: the methods the path does support, for the C{Allow} header of a 405.
    """
    custom = router.error_body.get(str(status)) if router.error_body else None
    if custom is not None:
        body, content_type = encoding.dumps(custom), "application/json; charset=utf-8"
    else:
        body, content_type = ROUTER_BODIES[status], "text/plain"
    headers = [("Content-Type", content_type)]
    if status == 405 and allow:
        headers.append(("Allow", ", ".join(allow)))
    headers += [("X-Krakend", version_header(router)), ("X-Krakend-Completed", "false")]
    return GatewayResponse(status, tuple(headers), body)
