# -*- test-case-name: tests.test_passthrough -*-
"""
C{no-op} endpoints: the backend's status, headers and body reach the client unchanged, streamed
as they arrive rather than held in memory (KrakenD section 6).

The client gets the backend's status and every backend header (added after C{X-Krakend} and
C{X-Krakend-Completed: false}, as KrakenD does), then the body, with the backend paused while the
client is slow. The endpoint deadline still applies: a body still streaming when it fires is cut.
Shadows of a no-op endpoint (a shadowtwist extension) get the primary's first bytes, up to
L{MAX_COMPARED_BODY}, for comparison.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import server
from twisted.web.client import PotentialDataLoss, ResponseDone

from shadowtwist.backend import BackendClient, BackendResponse, IncomingRequest, build_request, describe_failure
from shadowtwist.config import EndpointConfig, RouterOptions
from shadowtwist.merge import Merged, Part
from shadowtwist.pipeline import NO_PIPELINE, PrimaryOutcome, dispatch_shadows, tell
from shadowtwist.responses import GatewayResponse, client_response, version_header
from shadowtwist.routing import write_response

MAX_COMPARED_BODY = 1024 * 1024
# Hop-by-hop headers are the connection's, not the answer's. (A body the client decoded has
# already lost its Content-Encoding and Content-Length; see httpclient.ClientResponse.decode_gzip.)
_NOT_RELAYED = {b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
                b"proxy-connection"}


class PassthroughPipeline:
    """
    Serves one no-op endpoint: a single primary (and any shadows), streamed.
    """

    streams = True
    _log = Logger()

    def __init__(self, endpoint: EndpointConfig, router: RouterOptions, client: BackendClient,
                 shadows: Any, clock: Callable[[], float] = time.monotonic, metrics: Any = None) -> None:
        self.endpoint = endpoint
        self._router = router
        self._client = client
        self._shadows = shadows
        self._clock = clock
        self._backend = endpoint.primaries[0] if endpoint.primaries else None
        self._requests = metrics.children(metrics.requests) if metrics is not None else None

    def stream(self, incoming: IncomingRequest, request: server.Request, written: Deferred) -> None:
        """
        Relay the backend's answer to C{request} as it arrives; finish it at the end.

        @param written: fired once the client's response is finished (or the client is gone).
        """
        if self._backend is None:  # only shadows: KrakenD's route always answers 500
            write_response(request, NO_PIPELINE)
            written.callback(None)
            return
        started = self._clock()
        watchers = dispatch_shadows(self.endpoint, self._shadows, incoming, written)
        outgoing = build_request(self.endpoint, self._backend, incoming)
        d = self._client.open(outgoing, self.endpoint.timeout)
        relay = _Relay(request, self._client, self.endpoint.timeout, started, self._clock)
        request.notifyFinish().addErrback(lambda _: relay.client_gone(d))

        def headers_arrived(response: Any) -> Deferred:
            relay.start(response, self._router)
            return relay.done

        def failed(failure: Failure) -> Optional[bytes]:
            reason = describe_failure(failure)
            self._log.warn("backend {backend} of {endpoint} failed: {reason}",
                           backend=self._backend.label, endpoint=self.endpoint.name, reason=reason)
            answer = client_response(self.endpoint, self._router, Merged(None, False, (reason,)))
            relay.fail(answer)
            return None

        def finished(body: Optional[bytes]) -> None:
            status = relay.status or 500
            if self._requests is not None:
                self._requests(self.endpoint.path, self.endpoint.method, str(status)).inc()
            answer = None
            if relay.status is not None:
                answer = BackendResponse(status=relay.status, headers=relay.headers, body=body or b"",
                                         url=outgoing.url, elapsed=self._clock() - started,
                                         truncated=relay.truncated)
            response = GatewayResponse(status, tuple(relay.sent_headers), body or b"")
            part = Part(data={}, complete=False) if answer else Part(data=None, error="failed")
            tell(watchers, PrimaryOutcome(self._clock() - started, response, (part,), (answer,)))
            written.callback(None)

        d.addCallbacks(headers_arrived, failed)
        d.addCallback(finished)
        d.addErrback(lambda failure: self._log.failure("streaming {endpoint} failed", failure,
                                                       endpoint=self.endpoint.name))


class _Relay(Protocol):
    """
    Copies a backend body into a twisted.web request, keeping the first bytes for shadows.

    @ivar done: fires with the kept bytes once the body has ended (or was cut).
    """

    def __init__(self, request: server.Request, client: BackendClient, timeout: float,
                 started: float, clock: Callable[[], float]) -> None:
        self._request = request
        self._client = client
        self._timeout = timeout
        self._started = started
        self._clock = clock
        self._kept: list = []
        self._kept_size = 0
        self._gone = False
        self._deadline: Any = None
        self.truncated = False
        self.cut = False
        self.status: Optional[int] = None
        self.headers: dict = {}
        self.sent_headers: list = []
        self.done: Deferred = Deferred()

    def start(self, response: Any, router: RouterOptions) -> None:
        """
        Write the status and headers, then stream the body.
        """
        self.status = response.code
        request = self._request
        if self._gone:
            response.deliverBody(_Discard())
            self.done.callback(None)
            return
        request.setResponseCode(response.code)
        own = [("X-Krakend", version_header(router)), ("X-Krakend-Completed", "false")]
        headers = request.responseHeaders
        headers.removeHeader(b"date")
        for name, value in own:
            headers.addRawHeader(name, value)
        for name, values in response.headers.getAllRawHeaders():
            self.headers[name.decode("latin-1")] = [v.decode("latin-1") for v in values]
            if name.lower() in _NOT_RELAYED:
                continue
            for value in values:
                headers.addRawHeader(name, value)
        self.sent_headers = own + [(k, v) for k, vs in self.headers.items() for v in vs]
        remaining = max(self._timeout - (self._clock() - self._started), 0.0)
        self._deadline = self._client.call_later(remaining, self._cut)
        response.deliverBody(self)

    def connectionMade(self) -> None:
        self._request.registerProducer(self.transport, True)

    def dataReceived(self, data: bytes) -> None:
        if self._gone:
            return
        self._request.write(data)
        room = MAX_COMPARED_BODY - self._kept_size
        if room > 0:
            self._kept.append(data[:room])
            self._kept_size += min(len(data), room)
        if len(data) > room:
            self.truncated = True

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._deadline is not None and self._deadline.active():
            self._deadline.cancel()
        if not reason.check(ResponseDone, PotentialDataLoss):
            self.cut = True
        self.truncated = self.truncated or self.cut
        if not self._gone:
            self._request.unregisterProducer()
            if self.cut:
                # A cut body must not look complete (nor leave the client waiting for the rest
                # of a Content-Length): drop the connection, as Go does.
                self._request.channel.transport.abortConnection()
            else:
                self._request.finish()
        if not self.done.called:
            self.done.callback(b"".join(self._kept))

    def _cut(self) -> None:
        """
        The endpoint deadline fired while the body was still streaming: stop it there.
        """
        self.cut = True
        abort = getattr(self.transport, "abortConnection", None) or self.transport.stopProducing
        abort()

    def client_gone(self, pending: Deferred) -> None:
        """
        The client went away: stop reading the backend.
        """
        self._gone = True
        if self.transport is not None:
            self.transport.stopProducing()
        elif not pending.called:
            pending.cancel()

    def fail(self, answer: GatewayResponse) -> None:
        """
        The backend could not be reached in time: answer with KrakenD's error response.
        """
        if self._gone:
            return
        self.sent_headers = list(answer.headers)
        write_response(self._request, answer)


class _Discard(Protocol):
    def dataReceived(self, data: bytes) -> None:
        pass
