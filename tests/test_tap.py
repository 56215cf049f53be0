"""
Tests for L{shadowtwist.tap}: options, the service tree, and start-up refusals.
"""

from __future__ import annotations

import json
import os
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.tap import GatewayService, Options, makeService

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(HERE, "etc", "krakend.json")


def write_config(case, document):
    """
    Write a config document to a temporary file and return its name.
    """
    fd, name = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(document, f)
    case.addCleanup(os.remove, name)
    return name


class OptionsTests(SynchronousTestCase):
    """
    C{twistd shadowgw} options.
    """

    def test_default_listen_from_config(self):
        """
        Without --listen the config's port is used.
        """
        options = Options()
        options.parseOptions(["--config", EXAMPLE])
        self.assertEqual(options["listen"], ["tcp:8080"])
        self.assertEqual(options["gateway"].source, EXAMPLE)

    def test_listen_repeatable(self):
        """
        --listen may repeat and replaces the config's port; -c is --config.
        """
        options = Options()
        options.parseOptions(["-c", EXAMPLE, "--listen", "tcp:0", "--listen", "tcp:1234:interface=127.0.0.1"])
        self.assertEqual(options["listen"], ["tcp:0", "tcp:1234:interface=127.0.0.1"])

    def test_listen_ip(self):
        """
        The config's listen_ip becomes the listener's interface.
        """
        name = write_config(self, {"version": 3, "port": 9000, "listen_ip": "127.0.0.1", "endpoints": []})
        options = Options()
        options.parseOptions(["-c", name])
        self.assertEqual(options["listen"], ["tcp:9000:interface=127.0.0.1"])

    def test_bad_config_lists_every_problem(self):
        """
        A bad config stops option parsing (and so twistd, with exit status 1) naming each
        problem.
        """
        from shadowtwist.tap import ConfigRefused

        name = write_config(self, {"version": 2, "timeout": "soon", "endpoints": [{"endpoint": "/a"}]})
        options = Options()
        error = self.assertRaises(ConfigRefused, options.parseOptions, ["-c", name])
        self.assertIsInstance(error, SystemExit)
        text = str(error)
        self.assertIn("3 problem(s), refusing to start", text)
        self.assertIn(f"{name}: version: unsupported version: 2", text)
        self.assertIn(f"{name}: timeout: invalid duration 'soon'", text)
        self.assertIn(f"{name}: endpoints[0].backend: ignoring the 'GET /a' endpoint", text)


class ServiceTests(SynchronousTestCase):
    """
    L{makeService} wiring.
    """

    def test_listeners(self):
        """
        One strports listener per --listen, serving the gateway's Site.
        """
        options = Options()
        options.parseOptions(["-c", EXAMPLE, "--listen", "tcp:8123", "--listen", "tcp:8124"])
        reactor = MemoryReactorClock()
        service = makeService(options, reactor)
        self.assertIsInstance(service, GatewayService)
        service.startService()
        self.addCleanup(service.stopService)
        ports = [(port, factory) for port, factory, _, _ in reactor.tcpServers]
        self.assertEqual([p for p, _ in ports], [8123, 8124, 9091])  # 9091: the config's admin
        self.assertIs(ports[0][1], service.site)
        self.assertIs(ports[2][1], service.admin_site)

    def test_admin_option(self):
        """
        --admin replaces the config's admin listener.
        """
        options = Options()
        options.parseOptions(["-c", EXAMPLE, "--listen", "tcp:8123", "--admin", "tcp:9999:interface=127.0.0.1"])
        reactor = MemoryReactorClock()
        service = makeService(options, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual([(p[0], p[3]) for p in reactor.tcpServers], [(8123, ""), (9999, "127.0.0.1")])

    def test_demo(self):
        """
        --demo adds the two demo backends on 8001 and 8002.
        """
        options = Options()
        options.parseOptions(["-c", EXAMPLE, "--demo", "--listen", "tcp:8080"])
        reactor = MemoryReactorClock()
        service = makeService(options, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(sorted(p[0] for p in reactor.tcpServers), [8001, 8002, 8080, 9091])

    def test_stop_closes_pools(self):
        """
        Stopping the service closes both connection pools.
        """
        options = Options()
        options.parseOptions(["-c", EXAMPLE])
        service = makeService(options, MemoryReactorClock())
        closed = []
        service.primary_client.pool.close = lambda: closed.append("primary") or _done()
        service.shadow_client.pool.close = lambda: closed.append("shadow") or _done()
        service.startService()
        self.successResultOf(service.stopService())
        self.assertEqual(sorted(closed), ["primary", "shadow"])

    def test_access_log_switch(self):
        """
        router.disable_access_log gives a Site that writes no access log line.
        """
        from shadowtwist.accesslog import QuietSite

        name = write_config(self, {"version": 3, "extra_config": {"router": {"disable_access_log": True}},
                                   "endpoints": []})
        options = Options()
        options.parseOptions(["-c", name])
        service = makeService(options, MemoryReactorClock())
        self.assertIsInstance(service.site, QuietSite)
        options = Options()
        options.parseOptions(["-c", EXAMPLE])
        self.assertNotIsInstance(makeService(options, MemoryReactorClock()).site, QuietSite)

    def test_shadow_pool_does_not_retry(self):
        """
        Shadows have their own pool, without automatic retries and with a hold-down after a
        failed connection.
        """
        options = Options()
        options.parseOptions(["-c", EXAMPLE])
        service = makeService(options, MemoryReactorClock())
        self.assertIsNot(service.primary_client.pool, service.shadow_client.pool)
        self.assertFalse(service.shadow_client.pool.retry)
        self.assertTrue(service.primary_client.pool.retry)
        self.assertEqual(service.shadow_client.pool.hold_down, 1.0)  # a dead shadow stays cheap
        self.assertEqual(service.primary_client.pool.hold_down, 0)  # primaries try every time


def _done():
    from twisted.internet.defer import succeed

    return succeed(None)
