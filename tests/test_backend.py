"""
Tests for L{shadowtwist.backend}: the outgoing request KrakenD would send.
"""

from __future__ import annotations

from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint
from twisted.internet.error import ConnectingCancelledError, ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.client import ResponseNeverReceived

import shadowtwist
from shadowtwist.backend import (
    BackendClient, BackendResponse, IncomingRequest, _InsecurePolicy, _LastEncoded, build_request,
    describe_failure, fill_url_pattern, forwarded_query, is_cancellation,
)
from shadowtwist.config import parse_config
from shadowtwist.httpclient import TCPEndpoints


def endpoint_with(endpoint_keys=None, backend_keys=None):
    """
    A one-backend endpoint configuration.
    """
    backend = {"host": ["http://b.test:81"], "url_pattern": "/u/{id}"}
    backend.update(backend_keys or {})
    endpoint = {"endpoint": "/user/{id}", "backend": [backend]}
    endpoint.update(endpoint_keys or {})
    config = parse_config({"version": 3, "endpoints": [endpoint]})
    return config.endpoints[0], config.endpoints[0].backends[0]


INCOMING = IncomingRequest(
    method="GET", path="/user/7",
    query=(("b", "2"), ("a", "x y"), ("b", "3"), ("secret", "s")),
    headers={"Content-Type": ["application/json"], "Authorization": ["Bearer t"],
             "User-Agent": ["curl/8"], "Cookie": ["sid=1"], "X-Y-Z": ["1", "2"]},
    params={"id": "7"}, body=b"", client_ip="10.1.2.3", host="gw.test:8080")


class BackendResponseTests(SynchronousTestCase):
    """
    A backend's answer, its headers worked out from the raw pairs when first asked for.
    """

    def test_headers_from_raw_pairs(self):
        """
        Raw header pairs become Go-canonical names with every value, in order, equal to the
        same answer built with its headers given.
        """
        raw = [(b"content-type", b"application/json"), (b"x-two", b"1"), (b"X-TWO", b"2")]
        lazy = BackendResponse(200, body=b"{}", url="http://b/x", elapsed=0.1, raw_headers=raw)
        given = BackendResponse(200, {"Content-Type": ["application/json"], "X-Two": ["1", "2"]},
                                b"{}", "http://b/x", 0.1)
        self.assertEqual(lazy.headers, given.headers)
        self.assertEqual(lazy, given)
        self.assertIs(lazy.headers, lazy.headers)


class EncodedHeadersTests(SynchronousTestCase):
    """
    Request headers as bytes, remembered for the last tuple (a request's primaries and shadows
    share it).
    """

    def test_encoded_with_gzip(self):
        """
        Headers become bytes pairs with Go's C{Accept-Encoding: gzip} added, unless the request
        names an encoding of its own (then the answer is not gunzipped).
        """
        encode = _LastEncoded()
        self.assertEqual(encode((("User-Agent", "ua"), ("X-Name", "caf\u00e9"))),
                         (((b"User-Agent", b"ua"), (b"X-Name", b"caf\xe9"),
                           (b"Accept-Encoding", b"gzip")), True))
        self.assertEqual(encode((("accept-encoding", "br"),)), (((b"accept-encoding", b"br"),), False))

    def test_same_tuple_encoded_once(self):
        """
        The same tuple again gets the same result without encoding; an equal list is encoded
        anew each time (a list may have changed meanwhile).
        """
        encode = _LastEncoded()
        headers = tuple([("User-Agent", "ua")])
        first = encode(headers)
        self.assertIs(encode(headers), first)
        self.assertIsNot(encode(tuple([("User-Agent", "ua")]))[0], first[0])
        listed = [["User-Agent", "ua"]]
        self.assertEqual(encode(listed), first)
        listed[0][1] = "other"
        self.assertEqual(encode(listed)[0][0], (b"User-Agent", b"other"))


class HeaderTests(SynchronousTestCase):
    """
    Section 2.3: nothing is forwarded that is not declared.
    """

    def names(self, outgoing):
        return [name for name, _ in outgoing.headers]

    def test_default_only_content_type(self):
        """
        With no input_headers only Content-Type goes, plus X-Forwarded-* and User-Agent.
        """
        endpoint, backend = endpoint_with()
        outgoing = build_request(endpoint, backend, INCOMING)
        headers = dict(outgoing.headers)
        self.assertEqual(sorted(headers), ["Content-Type", "User-Agent", "X-Forwarded-For", "X-Forwarded-Host"])
        self.assertEqual(headers["User-Agent"], f"shadowtwist Version {shadowtwist.__version__}")
        self.assertEqual(headers["X-Forwarded-For"], "10.1.2.3")
        self.assertEqual(headers["X-Forwarded-Host"], "gw.test:8080")

    def test_worked_out_once_per_allow_lists(self):
        """
        Backends of one request with the same header allow-lists (a primary and its shadow)
        share one computation; a backend with its own input_headers gets its own headers.
        """
        import shadowtwist.backend as backend_module
        calls = []
        real = backend_module.forwarded_headers
        self.patch(backend_module, "forwarded_headers", lambda *a: calls.append(a) or real(*a))
        endpoint, backend = endpoint_with({"input_headers": ["Authorization"]})
        _, narrow = endpoint_with({"input_headers": ["Authorization"]}, {"input_headers": ["X-Other"]})
        incoming = IncomingRequest(**{k: getattr(INCOMING, k) for k in (
            "method", "path", "query", "headers", "params", "body", "client_ip", "host")})
        first = build_request(endpoint, backend, incoming)
        second = build_request(endpoint, backend, incoming)
        self.assertEqual(first.headers, second.headers)
        self.assertIn(("Authorization", "Bearer t"), first.headers)
        self.assertEqual(len(calls), 1)
        self.assertNotIn(("Authorization", "Bearer t"), build_request(endpoint, narrow, incoming).headers)
        self.assertEqual(len(calls), 2)

    def test_listed_headers(self):
        """
        Listed headers replace the default, keep every value, and a forwarded User-Agent adds
        X-Forwarded-Via.
        """
        endpoint, backend = endpoint_with({"input_headers": ["authorization", "x-y-z", "User-Agent"]})
        outgoing = build_request(endpoint, backend, INCOMING)
        self.assertNotIn("Content-Type", self.names(outgoing))
        self.assertIn(("Authorization", "Bearer t"), outgoing.headers)
        self.assertEqual([v for k, v in outgoing.headers if k == "X-Y-Z"], ["1", "2"])
        self.assertIn(("User-Agent", "curl/8"), outgoing.headers)
        self.assertIn(("X-Forwarded-Via", f"shadowtwist Version {shadowtwist.__version__}"), outgoing.headers)

    def test_star(self):
        """
        C{*} forwards every client header (but never hop-by-hop ones).
        """
        endpoint, backend = endpoint_with({"input_headers": ["*"]})
        names = self.names(build_request(endpoint, backend, INCOMING))
        self.assertIn("Cookie", names)
        self.assertIn("Authorization", names)

    def test_client_forwarded_for(self):
        """
        The left-most address of an incoming X-Forwarded-For wins.
        """
        endpoint, backend = endpoint_with()
        incoming = IncomingRequest("GET", "/user/1", headers={"x-forwarded-for": ["1.1.1.1, 2.2.2.2"]},
                                   client_ip="10.0.0.1", params={"id": "1"})
        self.assertIn(("X-Forwarded-For", "1.1.1.1"), build_request(endpoint, backend, incoming).headers)

    def test_backend_filter(self):
        """
        A backend-level input_headers keeps only the listed names, dropping X-Forwarded-* and
        the gateway's User-Agent: Go's client then sends its own.
        """
        endpoint, backend = endpoint_with({"input_headers": ["Authorization", "X-Y-Z"]},
                                          {"input_headers": ["X-Y-Z"]})
        outgoing = build_request(endpoint, backend, INCOMING)
        self.assertEqual(set(self.names(outgoing)), {"X-Y-Z", "User-Agent"})
        self.assertIn(("User-Agent", "Go-http-client/1.1"), outgoing.headers)


class QueryTests(SynchronousTestCase):
    """
    Section 2.4: query strings.
    """

    def test_nothing_by_default(self):
        """
        No client query parameter is forwarded unless listed.
        """
        endpoint, backend = endpoint_with()
        self.assertEqual(build_request(endpoint, backend, INCOMING).url, "http://b.test:81/u/7")

    def test_listed_sorted_and_repeated(self):
        """
        Listed names are forwarded case-sensitively, keys sorted, repeats kept, space as +.
        """
        endpoint, backend = endpoint_with({"input_query_strings": ["a", "b", "B"]})
        self.assertEqual(forwarded_query(endpoint, backend, INCOMING), "a=x+y&b=2&b=3")

    def test_combined_with_pattern_query(self):
        """
        A url_pattern query and the forwarded one are joined with &.
        """
        endpoint, backend = endpoint_with({"input_query_strings": ["*"]}, {"url_pattern": "/u/{id}?channel=web"})
        self.assertEqual(build_request(endpoint, backend, INCOMING).url,
                         "http://b.test:81/u/7?channel=web&a=x+y&b=2&b=3&secret=s")


class UrlPatternTests(SynchronousTestCase):
    """
    Parameter substitution can never change the backend path or query.
    """

    def test_plain(self):
        """
        Ordinary values are placed as they are; KrakenD's first-letter-upper matching applies.
        """
        self.assertEqual(fill_url_pattern("/u/{id}/{Id}", {"id": "42"}), "/u/42/42")

    def test_hostile_values(self):
        """
        Slashes, dots, query and fragment characters are percent-encoded.
        """
        self.assertEqual(fill_url_pattern("/u/{id}", {"id": "../admin"}), "/u/..%2Fadmin")
        self.assertEqual(fill_url_pattern("/u/{id}", {"id": ".."}), "/u/%2E%2E")
        self.assertEqual(fill_url_pattern("/u/{id}", {"id": "1?admin=1#x"}), "/u/1%3Fadmin=1%23x")
        self.assertEqual(fill_url_pattern("/u?q={id}", {"id": "1&admin=1"}), "/u?q=1%26admin%3D1")

    def test_missing_value_stays_literal(self):
        """
        A placeholder without a value stays as text, as in KrakenD.
        """
        self.assertEqual(fill_url_pattern("/u/{resp0_x}", {}), "/u/{resp0_x}")


class HostChoiceTests(SynchronousTestCase):
    """
    Each host entry is an equal share.
    """

    def test_choice(self):
        """
        The chooser picks among the hosts; repeated entries weigh more.
        """
        endpoint, backend = endpoint_with(backend_keys={"host": ["a.test", "a.test", "b.test"]})
        picked = build_request(endpoint, backend, INCOMING, choose=lambda hosts: hosts[-1])
        self.assertTrue(picked.url.startswith("http://b.test/"))
        self.assertEqual(backend.hosts, ("http://a.test", "http://a.test", "http://b.test"))

    def test_body_only_when_method_has_one(self):
        """
        GET sends no body; POST sends the client body.
        """
        endpoint, backend = endpoint_with({"method": "POST"})
        incoming = IncomingRequest("POST", "/user/1", params={"id": "1"}, body=b"{}")
        self.assertEqual(build_request(endpoint, backend, incoming).body, b"{}")
        endpoint, backend = endpoint_with()
        self.assertIsNone(build_request(endpoint, backend, incoming).body)


class ClientSettingsTests(SynchronousTestCase):
    """
    KrakenD's service-level HTTP client keys map onto the connection pool and its endpoints.
    """

    def test_pool_settings(self):
        """
        max_idle_connections_per_host, idle_connection_timeout and disable_keep_alives shape the
        pool; dialer_timeout bounds connecting; IP literals connect without name resolution.
        """
        config = parse_config({"version": 3, "max_idle_connections_per_host": 12,
                               "idle_connection_timeout": "30s", "dialer_timeout": "3s",
                               "endpoints": []})
        reactor = MemoryReactorClock()
        pool = BackendClient(reactor, config.client).pool
        self.assertEqual(pool.max_idle_per_host, 12)
        self.assertEqual(pool.idle_timeout, 30)
        self.assertTrue(pool.persistent)
        self.assertTrue(pool.retry)
        self.assertFalse(BackendClient(reactor, parse_config(
            {"version": 3, "disable_keep_alives": True, "endpoints": []}).client).pool.persistent)
        endpoints = TCPEndpoints(reactor, None, config.client.dialer_timeout)
        endpoint = endpoints(b"http", b"127.0.0.1", 8001)
        self.assertIsInstance(endpoint, TCP4ClientEndpoint)
        self.assertEqual(endpoint._timeout, 3)
        self.assertIs(endpoints(b"http", b"127.0.0.1", 8001), endpoint)
        self.assertIsInstance(endpoints(b"http", b"backend.test", 8001), HostnameEndpoint)

    def test_insecure_connections(self):
        """
        allow_insecure_connections gives a TLS policy that does not verify certificates.
        """
        creator = _InsecurePolicy().creatorForNetloc(b"backend.test", 443)
        connection = creator.clientConnectionForTLS(None)
        self.assertEqual(connection.get_context().get_verify_mode(), SSL.VERIFY_NONE)
        client_options = parse_config({"version": 3, "allow_insecure_connections": True,
                                       "endpoints": []}).client
        self.assertTrue(client_options.allow_insecure_connections)
        BackendClient(MemoryReactorClock(), client_options)


class FailureTests(SynchronousTestCase):
    """
    How a failed backend call is classified and described.
    """

    def test_cancelled_while_connecting(self):
        """
        A call cancelled while its connection was being made (the client went away) is a
        cancellation, described as Go's C{context canceled} rather than by the address that
        Twisted's error carries as its only text.
        """
        failure = Failure(ConnectingCancelledError(IPv4Address("TCP", "127.0.0.1", 8001)))
        self.assertTrue(is_cancellation(failure))
        self.assertEqual(describe_failure(failure), "context canceled")

    def test_cancelled_inside_reasons(self):
        """
        A cancellation wrapped in C{ResponseNeverReceived} is one; a refused connection is not.
        """
        self.assertTrue(is_cancellation(Failure(ResponseNeverReceived([Failure(CancelledError())]))))
        refused = Failure(ConnectionRefusedError("refused"))
        self.assertFalse(is_cancellation(refused))
        self.assertIn("refused", describe_failure(refused))
