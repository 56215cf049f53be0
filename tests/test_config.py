"""
Tests for L{shadowtwist.config} and L{shadowtwist.durations}.
"""

from __future__ import annotations

import json
import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.config import (
    ConfigError, check, load_config, parse_config, sanitize_host,
)
from shadowtwist.durations import parse_duration


def minimal(**overrides):
    """
    A valid one-endpoint document, with top-level keys replaced by C{overrides}.
    """
    document = {
        "version": 3,
        "endpoints": [{"endpoint": "/user/{id}",
                       "backend": [{"host": ["http://127.0.0.1:8001"], "url_pattern": "/users/{id}"}]}],
    }
    document.update(overrides)
    return document


def problems_of(document):
    """
    The problem strings a document is refused with.
    """
    try:
        parse_config(document, "k.json")
    except ConfigError as e:
        return [str(p) for p in e.problems]
    raise AssertionError("the document was accepted")


class DurationTests(SynchronousTestCase):
    """
    Go duration strings.
    """

    def test_units(self):
        """
        Every Go unit and compound durations parse to seconds.
        """
        self.assertEqual(parse_duration("150ms"), 0.15)
        self.assertEqual(parse_duration("1m30s"), 90.0)
        self.assertEqual(parse_duration("1h"), 3600.0)
        self.assertAlmostEqual(parse_duration("1.5s"), 1.5)
        self.assertAlmostEqual(parse_duration("300us"), 0.0003)
        self.assertAlmostEqual(parse_duration("10ns"), 1e-8)
        self.assertEqual(parse_duration("0"), 0.0)

    def test_invalid(self):
        """
        A number without a unit, an unknown unit or junk is refused with a reason.
        """
        for text in ("15", "2 s", "1d", "s", "", "1.2.3s"):
            self.assertRaises(ValueError, parse_duration, text)


class DefaultsTests(SynchronousTestCase):
    """
    KrakenD's defaults are applied.
    """

    def test_defaults(self):
        """
        Port 8080, a 2s timeout, json output, GET, only Content-Type forwarded.
        """
        config = parse_config(minimal())
        endpoint = config.endpoints[0]
        self.assertEqual(config.port, 8080)
        self.assertEqual(endpoint.timeout, 2.0)
        self.assertEqual(endpoint.method, "GET")
        self.assertEqual(endpoint.output_encoding, "json")
        self.assertEqual(endpoint.params, ("id",))
        backend = endpoint.backends[0]
        self.assertEqual(backend.method, "GET")
        self.assertEqual(backend.encoding, "json")
        self.assertFalse(backend.shadow)

    def test_inheritance(self):
        """
        Endpoints inherit the service timeout, cache_ttl, output_encoding and host.
        """
        document = minimal(timeout="3s", cache_ttl="1m", output_encoding="string",
                           host=["backend.local:9000"])
        del document["endpoints"][0]["backend"][0]["host"]
        endpoint = parse_config(document).endpoints[0]
        self.assertEqual(endpoint.timeout, 3.0)
        self.assertEqual(endpoint.cache_ttl, 60.0)
        self.assertEqual(endpoint.output_encoding, "string")
        self.assertEqual(endpoint.backends[0].hosts, ("http://backend.local:9000",))

    def test_shadow_flag(self):
        """
        Only the JSON boolean C{true} makes a shadow backend; shadow_timeout is read.
        """
        document = minimal()
        backends = document["endpoints"][0]["backend"]
        backends.append({"host": ["http://v2"], "url_pattern": "/u/{id}",
                         "extra_config": {"proxy": {"shadow": True, "shadow_timeout": "500ms"}}})
        backends.append({"host": ["http://v3"], "url_pattern": "/u/{id}",
                         "extra_config": {"proxy": {"shadow": "true"}}})
        endpoint = parse_config(document).endpoints[0]
        self.assertEqual([b.shadow for b in endpoint.backends], [False, True, False])
        self.assertEqual(endpoint.backends[1].shadow_timeout, 0.5)
        self.assertEqual(len(endpoint.primaries), 2)
        self.assertEqual(len(endpoint.shadows), 1)

    def test_unknown_namespaces_warn_once(self):
        """
        Namespaces shadowtwist does not implement are accepted and listed once, with where.
        """
        document = minimal(extra_config={"security/cors": {}, "telemetry/logging": {}})
        document["endpoints"][0]["extra_config"] = {"security/cors": {}, "qos/ratelimit/router": {}}
        config = parse_config(document)
        cors = [w for w in config.warnings if "'security/cors'" in w]
        self.assertEqual(len(cors), 1)
        self.assertIn("endpoints[0].extra_config", cors[0])
        self.assertEqual(len(config.warnings), 3)


class ValidationTests(SynchronousTestCase):
    """
    Every rule of KrakenD's C{check}, each problem reported with file, JSON path and reason.
    """

    def test_several_problems_at_once(self):
        """
        All problems of a file are listed, not just the first.
        """
        document = {
            "version": 2,
            "timeout": "two seconds",
            "endpoints": [
                {"endpoint": "/a", "backend": []},
                {"endpoint": "/b/{id}", "backend": [{"host": ["http://x/api"], "url_pattern": "/x/{other}"}]},
                {"endpoint": "/__health", "backend": [{"host": ["h"], "url_pattern": "/"}]},
            ],
        }
        found = problems_of(document)
        self.assertEqual(len(found), 6, found)
        joined = "\n".join(found)
        self.assertIn("k.json: version: unsupported version: 2 (want: 3)", joined)
        self.assertIn("k.json: timeout: invalid duration", joined)
        self.assertIn("k.json: endpoints[0].backend: ignoring the 'GET /a' endpoint, since it has 0 backends", joined)
        self.assertIn("k.json: endpoints[1].backend[0].host[0]: invalid host 'http://x/api'", joined)
        self.assertIn("k.json: endpoints[1].backend[0].url_pattern: undefined output param 'other'", joined)
        self.assertIn("k.json: endpoints[2].endpoint: ignoring the 'GET /__health' endpoint", joined)

    def test_wildcards_refused(self):
        """
        C{*} followed by anything is refused (CE has no wildcards).
        """
        document = minimal()
        document["endpoints"][0]["endpoint"] = "/files/*path"
        self.assertIn("since it is invalid", problems_of(document)[0])

    def test_noop_with_several_backends(self):
        """
        no-op with more than one primary backend is refused; a shadow may be added (unlike
        KrakenD), and every backend of a no-op endpoint uses no-op encoding.
        """
        document = minimal()
        endpoint = document["endpoints"][0]
        endpoint["output_encoding"] = "no-op"
        endpoint["backend"].append({"host": ["h"], "url_pattern": "/", "extra_config": {"proxy": {"shadow": True}}})
        config = parse_config(document)
        self.assertEqual([b.encoding for b in config.endpoints[0].backends], ["no-op", "no-op"])
        endpoint["backend"].append({"host": ["h"], "url_pattern": "/"})
        self.assertIn("can not use NoOp encoding with more than one backends", problems_of(document)[0])

    def test_duplicate_route_and_param_conflict(self):
        """
        The same method and path twice, and two parameter names at one position, are refused.
        """
        backend = [{"host": ["h"], "url_pattern": "/"}]
        document = minimal(endpoints=[
            {"endpoint": "/a/{id}", "backend": backend},
            {"endpoint": "/a/{id}", "backend": backend},
            {"endpoint": "/a/{name}/x", "method": "POST", "backend": backend},
        ])
        found = problems_of(document)
        self.assertIn("already defined at endpoints[0]", found[0])
        self.assertIn("parameter {name} conflicts with {id}", found[1])

    def test_wrong_types(self):
        """
        A value of the wrong JSON type names the path and the type found.
        """
        document = minimal(port="8080")
        document["endpoints"][0]["backend"][0]["allow"] = "name"
        found = problems_of(document)
        self.assertIn("k.json: port: must be a whole number, got the string '8080'", found)
        self.assertIn("k.json: endpoints[0].backend[0].allow: must be a list, got the string 'name'", found)

    def test_special_placeholders(self):
        """
        Sequential C{{resp0_x}} and C{{JWT.sub}} placeholders are not endpoint params.
        """
        document = minimal()
        document["endpoints"][0]["backend"][0]["url_pattern"] = "/u/{id}/{resp0_a.b}/{JWT.sub}"
        parse_config(document)

    def test_all_shadow(self):
        """
        An endpoint whose backends are all shadows is accepted with a warning, as KrakenD runs
        it (its route always answers 500, see the conformance suite).
        """
        document = minimal()
        document["endpoints"][0]["backend"][0]["extra_config"] = {"proxy": {"shadow": True}}
        config = parse_config(document)
        self.assertEqual(len(config.endpoints), 1)
        self.assertTrue(any("all backends are shadow backends" in w for w in config.warnings))

    def test_listen_ip(self):
        """
        listen_ip must be an IP address.
        """
        self.assertIn("invalid ip address", problems_of(minimal(listen_ip="localhost"))[0])
        self.assertEqual(parse_config(minimal(listen_ip="127.0.0.1")).listen_ip, "127.0.0.1")

    def test_unsupported_method_is_skipped(self):
        """
        A HEAD endpoint is skipped with a warning, as KrakenD does.
        """
        document = minimal()
        document["endpoints"].append({"endpoint": "/h", "method": "HEAD",
                                      "backend": [{"host": ["h"], "url_pattern": "/"}]})
        config = parse_config(document)
        self.assertEqual(len(config.endpoints), 1)
        self.assertIn("'HEAD' is not supported", config.warnings[0])


class ShadowOptionTests(SynchronousTestCase):
    """
    The C{shadowgw/shadow} namespace is validated with the rest.
    """

    def shadow_document(self, options):
        document = minimal()
        document["endpoints"][0]["backend"].append({
            "host": ["http://v2"], "url_pattern": "/u/{id}",
            "extra_config": {"proxy": {"shadow": True}, "shadowgw/shadow": options}})
        return document

    def test_values(self):
        """
        Every documented key is read.
        """
        options = parse_config(self.shadow_document({
            "percentage": 12.5, "sticky_key": "header:X-User-Id", "start": "after_response",
            "max_in_flight": 8, "compare": {"ignore": ["/meta/id"], "learn_noise": 0.01},
            "auto_pause": {"error_rate": 0.5, "window": "30s", "min_requests": 50},
        })).endpoints[0].shadows[0].shadow_options
        self.assertEqual(options.percentage, 12.5)
        self.assertEqual(options.start, "after_response")
        self.assertEqual(options.max_in_flight, 8)
        self.assertEqual(options.compare.ignore, ("/meta/id",))
        self.assertEqual(options.auto_pause.window, 30.0)
        self.assertEqual(options.methods, ("GET", "HEAD", "OPTIONS"))

    def test_bad_values(self):
        """
        Unsafe methods without allow_unsafe, bad ranges, choices and keys are all reported.
        """
        found = problems_of(self.shadow_document({
            "percentage": 120, "methods": ["GET", "POST"], "start": "later",
            "sticky_key": "ip", "compare": {"ignore": ["meta"]}, "colour": "red",
        }))
        base = "k.json: endpoints[0].backend[1].extra_config.shadowgw/shadow"
        self.assertIn(f"{base}.percentage: must be between 0 and 100, got 120", found)
        self.assertIn(f"{base}.methods[1]: POST is an unsafe method: set \"allow_unsafe\": true to shadow it", found)
        self.assertIn(f"{base}.start: must be one of parallel, after_response, on_primary_success, got 'later'", found)
        self.assertTrue(any(p.startswith(f"{base}.sticky_key:") for p in found))
        self.assertTrue(any(p.startswith(f"{base}.compare.ignore[0]:") for p in found))
        self.assertTrue(any(p.startswith(f"{base}.colour: unknown setting") for p in found))
        self.assertEqual(len(found), 6)


class HostTests(SynchronousTestCase):
    """
    KrakenD's host sanitization.
    """

    def test_sanitize(self):
        """
        A scheme is added when missing, a trailing slash dropped, paths and IPv6 refused.
        """
        self.assertEqual(sanitize_host("example.com"), "http://example.com")
        self.assertEqual(sanitize_host("https://example.com:8443/"), "https://example.com:8443")
        self.assertIsNone(sanitize_host("http://x/api"))
        self.assertIsNone(sanitize_host("http://[::1]:80"))


class FileTests(SynchronousTestCase):
    """
    Reading files, JSON and YAML, and the check command.
    """

    def write(self, text, suffix=".json"):
        fd, name = tempfile.mkstemp(suffix=suffix)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.remove, name)
        return name

    def test_json_syntax_error(self):
        """
        A JSON syntax error gives the file, line and column.
        """
        name = self.write('{\n  "version": 3,\n  "port": ,\n}')
        error = self.assertRaises(ConfigError, load_config, name)
        # the reason's wording differs between CPython and PyPy; the place does not
        self.assertTrue(str(error.problems[0]).startswith(f"{name}: line 3, column 11: invalid JSON: "),
                        str(error.problems[0]))

    def test_yaml(self):
        """
        A .yaml file loads like JSON.
        """
        name = self.write("version: 3\nendpoints:\n  - endpoint: /a\n    backend:\n"
                          "      - host: [h]\n        url_pattern: /b\n", ".yaml")
        self.assertEqual(load_config(name).endpoints[0].path, "/a")

    def test_missing_file(self):
        """
        A missing file is one problem, not a traceback.
        """
        error = self.assertRaises(ConfigError, load_config, "/nonexistent/k.json")
        self.assertIn("cannot read the file", str(error))

    def test_check_command(self):
        """
        check prints one OK line and returns 0 for a good file, every problem and 1 otherwise.
        """
        good = self.write(json.dumps(minimal()))
        lines = []
        self.assertEqual(check(good, lines.append), 0)
        self.assertEqual(len(lines), 1)
        self.assertTrue(lines[0].startswith("Syntax OK!"))
        bad = self.write(json.dumps(minimal(version=1, port=-1)))
        lines = []
        self.assertEqual(check(bad, lines.append), 1)
        self.assertEqual(len(lines), 3)

    def test_example_config(self):
        """
        The shipped etc/krakend.json is valid.
        """
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        config = load_config(os.path.join(here, "etc", "krakend.json"))
        self.assertIn("/user/{id}", [e.path for e in config.endpoints])
