"""
Tests for L{shadowtwist.pipeline}: what the shadows learn of the primary, and when.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.backend import BackendResponse, IncomingRequest
from shadowtwist.config import parse_config
from shadowtwist.pipeline import EndpointPipeline, PrimaryOutcome


class PendingClient:
    """
    A backend client whose calls wait for the test: C{calls} holds each one's Deferred.
    """

    def __init__(self):
        self.calls = []

    def send(self, outgoing, timeout):
        d = Deferred()
        self.calls.append(d)
        return d


class WatchingShadows:
    """
    A shadow dispatcher that only keeps what each shadow is told of the primary.
    """

    def __init__(self):
        self.told = []

    def dispatch(self, endpoint, backend, incoming, written):
        return self

    def primary_known(self, outcome):
        self.told.append(outcome)


def pipeline_with_a_shadow():
    config = parse_config({"version": 3, "endpoints": [{"endpoint": "/x", "backend": [
        {"host": ["http://p.test"], "url_pattern": "/x"},
        {"host": ["http://s.test"], "url_pattern": "/x", "extra_config": {"proxy": {"shadow": True}}},
    ]}]})
    client, shadows = PendingClient(), WatchingShadows()
    pipeline = EndpointPipeline(config.endpoints[0], config.router, client, shadows, clock=lambda: 0.0)
    return pipeline, client, shadows


ANSWER = BackendResponse(status=200, headers={"Content-Type": ["application/json"]}, body=b'{"a":1}',
                         url="http://p.test/x", elapsed=0.0)


class PrimaryOutcomeTests(SynchronousTestCase):
    """
    Shadows learn the primary's outcome once the client's response is written.
    """

    def test_after_the_write(self):
        """
        With a C{written} Deferred, the response is ready before any shadow is told; the
        shadows hear of it when the response has been written.
        """
        pipeline, client, shadows = pipeline_with_a_shadow()
        written = Deferred()
        d = pipeline.handle(IncomingRequest(method="GET", path="/x"), None, written)
        client.calls[0].callback(ANSWER)
        response = self.successResultOf(d)
        self.assertEqual((response.status, response.body), (200, b'{"a":1}'))
        self.assertEqual(shadows.told, [])
        written.callback(None)
        [outcome] = shadows.told
        self.assertIsInstance(outcome, PrimaryOutcome)
        self.assertIs(outcome.response, response)
        self.assertEqual(outcome.answers, (ANSWER,))

    def test_without_written(self):
        """
        Called without C{written} (nothing to wait for), the shadows are told at once.
        """
        pipeline, client, shadows = pipeline_with_a_shadow()
        d = pipeline.handle(IncomingRequest(method="GET", path="/x"))
        client.calls[0].callback(ANSWER)
        self.successResultOf(d)
        self.assertEqual(len(shadows.told), 1)
