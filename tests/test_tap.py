"""
Tests for L{shadowtwist.tap}: options, the service tree, and start-up refusals.
"""

from __future__ import annotations

import gc
import json
import os
import tempfile

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from twisted.logger import globalLogPublisher

from shadowtwist import tap
from shadowtwist.tap import (
    YOUNG_COLLECTION_THRESHOLD, GatewayService, Options, makeService, runtime_advice, tune_collector,
)

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

    def test_collector_tuned_while_serving(self):
        """
        On CPython the service collects the young generation every
        L{YOUNG_COLLECTION_THRESHOLD} allocations while it runs, and puts Python's thresholds
        back when it stops; on PyPy (no C{gc.freeze}) it leaves the collector alone.
        """
        options = Options()
        options.parseOptions(["-c", EXAMPLE])
        service = makeService(options, MemoryReactorClock())
        if not hasattr(gc, "freeze"):
            self.assertIsNone(tune_collector())
            return
        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        self.addCleanup(gc.unfreeze)
        gc.unfreeze()
        service.startService()
        self.assertGreater(gc.get_freeze_count(), 0)  # what start-up built is frozen
        self.assertEqual(gc.get_threshold(), (YOUNG_COLLECTION_THRESHOLD,) + before[1:])
        self.successResultOf(service.stopService())
        self.assertEqual(gc.get_threshold(), before)

    def test_collector_thresholds_kept(self):
        """
        A young-generation threshold already higher is kept, a collector switched off stays
        off, and the thresholds are restored even after a second start.
        """
        if not hasattr(gc, "freeze"):
            return
        before = gc.get_threshold()
        self.addCleanup(gc.set_threshold, *before)
        self.addCleanup(gc.unfreeze)
        gc.set_threshold(50_000, 10, 10)
        self.assertEqual(tune_collector(), (50_000, 10, 10))
        self.assertEqual(gc.get_threshold(), (50_000, 10, 10))
        gc.set_threshold(0, 10, 10)
        tune_collector()
        self.assertEqual(gc.get_threshold()[0], 0)
        gc.set_threshold(700, 10, 10)
        options = Options()
        options.parseOptions(["-c", EXAMPLE])
        service = makeService(options, MemoryReactorClock())
        service.startService()
        service._flush_metrics.stop()  # a second start restarts it
        service.startService()
        self.successResultOf(service.stopService())
        self.assertEqual(gc.get_threshold(), (700, 10, 10))

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


class RuntimeAdviceTests(SynchronousTestCase):
    """
    Start-up hints about the interpreter.
    """

    def test_small_young_generation(self):
        """
        On PyPy with a young generation below the recommended one and no C{PYPY_GC_NURSERY},
        the advice names the size in use and the recommended setting.
        """
        [advice] = runtime_advice({}, 2 ** 20)
        self.assertIn("a 1 MB young generation", advice)
        self.assertIn("PYPY_GC_NURSERY=" + tap.PYPY_NURSERY, advice)

    def test_nothing_to_say(self):
        """
        No advice on CPython, when the operator named a size (even empty: PyPy's default), or
        when PyPy's own default is already as large.
        """
        self.assertEqual(runtime_advice({}, None), [])
        self.assertEqual(runtime_advice({"PYPY_GC_NURSERY": ""}, 2 ** 20), [])
        self.assertEqual(runtime_advice({"PYPY_GC_NURSERY": "4MB"}, 4 * 2 ** 20), [])
        self.assertEqual(runtime_advice({}, tap.PYPY_NURSERY_BYTES), [])
        self.assertEqual(runtime_advice({}, 32 * 2 ** 20), [])

    def test_parse_size(self):
        """
        Sizes as PyPy's C{gc.get_stats()} prints them.
        """
        self.assertEqual(tap.parse_size("1.0MB"), 2 ** 20)
        self.assertEqual(tap.parse_size("16.0MB"), tap.PYPY_NURSERY_BYTES)
        self.assertEqual(tap.parse_size("512.0kB"), 512 * 2 ** 10)
        self.assertEqual(tap.parse_size("100B"), 100)
        self.assertRaises(ValueError, tap.parse_size, "lots")

    def test_young_generation_here(self):
        """
        The running interpreter's young generation: a size on PyPy, C{None} on CPython.
        """
        size = tap.young_generation_bytes()
        if tap.platform.python_implementation() == "PyPy":
            self.assertGreater(size, 0)
        else:
            self.assertIsNone(size)

    def test_logged_at_start(self):
        """
        The service logs the advice when it starts.
        """
        self.patch(tap, "young_generation_bytes", lambda: 2 ** 20)
        self.patch(tap.os, "environ", {})
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        options = Options()
        options.parseOptions(["-c", EXAMPLE, "--listen", "tcp:0"])
        service = makeService(options, MemoryReactorClock())
        service.startService()
        self.addCleanup(service.stopService)
        advice = [e["advice"] for e in events if "advice" in e]
        self.assertTrue(advice)
        self.assertEqual(advice, runtime_advice({}, 2 ** 20))

    def test_unit_and_makefile_agree(self):
        """
        The systemd unit and C{make demo} set the recommended young generation.
        """
        with open(os.path.join(HERE, "etc", "shadowgw.service")) as f:
            unit = f.read().splitlines()
        self.assertIn("Environment=PYPY_GC_NURSERY=" + tap.PYPY_NURSERY, unit)
        with open(os.path.join(HERE, "Makefile")) as f:
            makefile = f.read().splitlines()
        self.assertIn("PYPY_GC_NURSERY ?= " + tap.PYPY_NURSERY, makefile)
        demo = makefile[makefile.index("demo: install") + 1]
        self.assertTrue(demo.strip().startswith("PYPY_GC_NURSERY=$(PYPY_GC_NURSERY) "), demo)
        self.assertIn("twistd", demo)
