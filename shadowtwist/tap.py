# -*- test-case-name: tests.test_tap -*-
"""
C{twistd shadowgw}: command-line options and the service tree.

L{Options} loads and checks the configuration in C{postOptions}, so a bad file stops twistd
with every problem listed and a non-zero exit before anything listens. L{makeService} builds a
L{GatewayService} owning the connection pools, with one C{strports} listener per C{--listen}
(a busy port makes twistd exit non-zero).
"""

from __future__ import annotations

import gc
import os
import platform
import time
from typing import Any, Callable, List, Mapping, Optional

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python import usage

from shadowtwist.accesslog import BatchedLogSite, QuietSite
from shadowtwist.admin import admin_site
from shadowtwist.backend import SHADOW_HOLD_DOWN, BackendClient
from shadowtwist.config import ConfigError, ServiceConfig, describe_endpoints, load_config
from shadowtwist.metrics import FLUSH_INTERVAL, GatewayMetrics, enable_multiprocess
from shadowtwist.passthrough import PassthroughPipeline
from shadowtwist.pipeline import EndpointPipeline
from shadowtwist import builtin
from shadowtwist.routing import build_tree
from shadowtwist.shadow import ShadowDispatcher
from shadowtwist.workers import ListenAddress, ReusePortListener, WorkerPool, new_metrics_directory

_log = Logger(namespace="shadowtwist.tap")

# The young generation recommended on PyPy (README.rst, "PyPy's young generation"); the systemd
# unit sets it. PyPy sizes its own from the cache size the CPU reports: 1 MB on the benchmark's
# machine, more on some others.
PYPY_NURSERY = "16MB"


class ConfigRefused(SystemExit):
    """
    The configuration has problems: twistd stops with every one of them on standard error and
    exit status 1 (a C{SystemExit}, because some Twisted releases exit 0 on a C{UsageError}).
    """

    def __init__(self, source: str, problems: Any) -> None:
        lines = "\n  ".join(str(p) for p in problems)
        super().__init__(f"{source}: {len(problems)} problem(s), refusing to start:\n  {lines}")


class Options(usage.Options):
    """
    C{twistd shadowgw} options.
    """

    synopsis = "[options]"
    longdesc = ("Run the shadowtwist gateway on a KrakenD v3 configuration. Shadow backends "
                "(extra_config.proxy.shadow) get a copy of the live traffic; their answers are "
                "compared and logged, never returned.")
    optParameters = [
        ["config", "c", "etc/krakend.json", "The KrakenD configuration file (JSON or YAML)."],
        ["admin", None, None, "Endpoint description for the admin listener (/metrics, /__shadow), "
                              "e.g. tcp:9091:interface=127.0.0.1."],
        ["workers", "w", 1, "Processes sharing the listening sockets, each with its own event loop "
                              "(tcp listeners only).", int],
    ]
    optFlags = [
        ["demo", None, "Also run the demo v1 and v2 backends (127.0.0.1:8001 and :8002)."],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """
        Listen on this endpoint description (repeatable); overrides the config's port, e.g.
        tcp:8080, tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem.
        """
        self["listen"].append(description)

    def postOptions(self) -> None:
        """
        Load and check the configuration now, so that twistd refuses a bad one at start.
        """
        try:
            self["gateway"] = load_config(self["config"])
        except ConfigError as e:
            raise ConfigRefused(self["config"], e.problems)
        if not self["listen"]:
            self["listen"] = [default_listen(self["gateway"])]
        if self["workers"] < 1:
            raise usage.UsageError("--workers must be at least 1")
        if self["workers"] > 1 and not all(d.startswith("tcp:") for d in self["listen"]):
            raise usage.UsageError("--workers needs tcp: listeners (the workers share their sockets)")


def default_listen(config: ServiceConfig) -> str:
    """
    The listener from the config's C{port} and C{listen_ip}.
    """
    description = f"tcp:{config.port}"
    if config.listen_ip:
        description += ":interface=" + config.listen_ip.replace(":", "\\:")
    return description


class GatewayService(MultiService):
    """
    The gateway: owns the primary and shadow clients (and so their pools) and the Site.

    @ivar site: the twisted.web Site serving the route tree.
    """

    def __init__(self, config: ServiceConfig, reactor: Any, primary_client: Optional[BackendClient] = None,
                 shadow_client: Optional[BackendClient] = None,
                 clock: Callable[[], float] = time.monotonic, rng: Any = None) -> None:
        """
        @param primary_client: the client for primary calls (a new one on its own pool by default).
        @param shadow_client: the client for shadow calls (a new one on a separate pool without
            automatic retries by default).
        @param clock: a monotonic clock for latencies and shadow windows.
        @param rng: randomness for shadow sampling (C{random.Random}-like).
        """
        super().__init__()
        self.config = config
        self.primary_client = primary_client or BackendClient(reactor, config.client)
        self.shadow_client = shadow_client or BackendClient(
            reactor, config.client, retry=False, hold_down=SHADOW_HOLD_DOWN)
        self.metrics = GatewayMetrics()
        self._flush_metrics = LoopingCall(self.metrics.flush)
        self._flush_metrics.clock = reactor
        self.shadows = ShadowDispatcher(self.shadow_client, reactor, self.metrics, clock=clock,
                                        max_in_flight=config.shadowgw.max_shadow_in_flight, rng=rng)
        pipelines = [self._pipeline(endpoint, clock) for endpoint in config.endpoints]
        for endpoint in config.endpoints:
            for backend in endpoint.shadows:
                self.shadows.shadow_for(endpoint, backend)
        site_class = QuietSite if config.router.disable_access_log else BatchedLogSite
        self.site = site_class(build_tree(config, pipelines, builtin), reactor=reactor)
        self.site.displayTracebacks = False
        self.admin_site = admin_site(self.metrics, self.shadows.registry, self.shadows.now, reactor)
        self._collector_thresholds: Optional[tuple] = None

    def _pipeline(self, endpoint: Any, clock: Callable[[], float]) -> Any:
        if endpoint.output_encoding == "no-op":
            return PassthroughPipeline(endpoint, self.config.router, self.primary_client, self.shadows,
                                       clock=clock, metrics=self.metrics)
        return EndpointPipeline(endpoint, self.config.router, self.primary_client, self.shadows,
                                clock=clock, metrics=self.metrics)

    def startService(self) -> None:
        """
        Say what is served and what is ignored.
        """
        for warning in self.config.warnings:
            # not "warning=": legacy log observers read that key as a Python warning
            _log.warn("{source}: {text}", source=self.config.source, text=warning)
        for line in describe_endpoints(self.config):
            _log.info("serving {route}", route=line)
        for advice in runtime_advice(os.environ, young_generation_bytes()):
            _log.info("{advice}", advice=advice)
        if self._collector_thresholds is None:  # not twice: the second would keep ours as Python's
            self._collector_thresholds = tune_collector()
        self._flush_metrics.start(FLUSH_INTERVAL, now=False)
        super().startService()

    def stopService(self) -> Any:
        """
        Stop listening, cancel the shadow calls in flight, then close the pools' idle
        connections.
        """
        d = super().stopService()
        if self._collector_thresholds is not None:
            gc.set_threshold(*self._collector_thresholds)
            self._collector_thresholds = None
        self.shadows.stop()
        if self._flush_metrics.running:
            self._flush_metrics.stop()
        self.metrics.flush()

        def close(_: Any) -> Any:
            from twisted.internet.defer import gatherResults

            return gatherResults([self.primary_client.close(), self.shadow_client.close()])

        return d.addBoth(close) if d is not None else close(None)


# CPython's cyclic collector, once the gateway runs: a young-generation collection every this
# many net allocations of container objects instead of every 700.
YOUNG_COLLECTION_THRESHOLD = 10_000


def tune_collector() -> Optional[tuple]:
    """
    Tune CPython's cyclic garbage collector for serving (PyPy's collector is tuned by
    C{PYPY_GC_NURSERY} instead): what start-up built is frozen, never scanned again, and the
    young generation is collected every L{YOUNG_COLLECTION_THRESHOLD} allocations.

    The request path frees its objects by reference counting (it makes no cycles), so every
    collection is pure cost, and with 700 (Python's default) one came every 17 shadowed
    requests and scanned every request in flight: 4 % of the instructions of a shadowed
    request (C{bench/instructions.py}). Cycles still made (a L{Failure} keeps its frames) are
    found by a young-generation pass, or by the older generations' later ones. A threshold
    already higher is kept, and a collector switched off (threshold 0) stays off.

    @return: the thresholds replaced (for L{GatewayService.stopService}), or C{None} when the
        interpreter has no C{gc.freeze} (PyPy).
    """
    if not hasattr(gc, "freeze"):
        return None
    previous = gc.get_threshold()
    gc.collect()
    gc.freeze()
    if previous[0]:
        gc.set_threshold(max(previous[0], YOUNG_COLLECTION_THRESHOLD), *previous[1:])
    return previous


def runtime_advice(environ: Mapping[str, str], young_generation: Optional[int]) -> List[str]:
    """
    Start-up hints about how the interpreter runs the gateway.

    @param environ: the process environment.
    @param young_generation: PyPy's nursery size in bytes (L{young_generation_bytes}), C{None}
        on CPython.
    """
    if young_generation is None or "PYPY_GC_NURSERY" in environ:
        return []  # not PyPy, or the operator chose a size
    if young_generation >= PYPY_NURSERY_BYTES:
        return []
    # PyPy reads the variable only when it starts, so the gateway cannot set it for itself
    return [f"PyPy runs with a {young_generation / 2 ** 20:g} MB young generation: "
            f"PYPY_GC_NURSERY={PYPY_NURSERY} in the environment gave, against 1 MB, a third more "
            "requests/s per core and half as much again with a shadow, for about 60 MB more "
            "memory per process (README.rst, \"PyPy's young generation\")"]


def young_generation_bytes() -> Optional[int]:
    """
    The size of PyPy's young generation (its nursery), or C{None} on another interpreter or
    when PyPy does not tell it.
    """
    if platform.python_implementation() != "PyPy":
        return None
    try:
        return parse_size(gc.get_stats().nursery_size)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError):
        return None


_SIZE_UNITS = {"B": 1, "kB": 2 ** 10, "KB": 2 ** 10, "MB": 2 ** 20, "GB": 2 ** 30}


def parse_size(text: str) -> int:
    """
    A size as PyPy's C{gc.get_stats()} formats it (C{"1.0MB"}, C{"512.0kB"}) in bytes.

    @raise ValueError: for anything else.
    """
    text = text.strip()
    for unit in ("kB", "KB", "MB", "GB", "B"):
        if text.endswith(unit):
            return int(float(text[:-len(unit)]) * _SIZE_UNITS[unit])
    raise ValueError(f"not a size: {text!r}")


PYPY_NURSERY_BYTES = parse_size(PYPY_NURSERY)


def makeService(options: Options, reactor: Any = None) -> GatewayService:
    """
    Build the service tree for C{twistd shadowgw}.

    @param options: parsed L{Options}.
    @param reactor: the reactor; the global one when C{None}.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        reactor = global_reactor
    metrics_dir = None
    if options["workers"] > 1:
        metrics_dir = new_metrics_directory()
        enable_multiprocess(metrics_dir)
    gateway = GatewayService(options["gateway"], reactor)
    if metrics_dir is None:
        for description in options["listen"]:
            strports.service(description, gateway.site, reactor=reactor).setServiceParent(gateway)
    else:
        addresses = [ListenAddress.from_description(d, reactor) for d in options["listen"]]
        for address in addresses:
            ReusePortListener(address, gateway.site, reactor).setServiceParent(gateway)
        WorkerPool(reactor, options["config"], options["workers"] - 1, addresses,
                   metrics_dir).setServiceParent(gateway)
    admin = options["admin"] or options["gateway"].shadowgw.admin
    if admin:
        strports.service(admin, gateway.admin_site, reactor=reactor).setServiceParent(gateway)
    if options["demo"]:
        from shadowtwist.demo import demo_services

        for service in demo_services(reactor):
            service.setServiceParent(gateway)
    return gateway
