# -*- test-case-name: tests.test_workers -*-
"""
C{--workers N}: N processes sharing the listening sockets, each with its own event loop.

The twistd process binds every listener itself (so a busy port still makes twistd exit
non-zero), serves on them, and starts N - 1 worker processes (C{python -m shadowtwist.workers})
that adopt the same sockets; the kernel spreads new connections over all of them. Prometheus
metrics are written to a shared directory and summed by the admin listener, which runs in the
twistd process only. A worker that dies is started again; workers stop with the twistd process
(they also stop by themselves when its pipe to them closes).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
from typing import Any, List, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList, gatherResults
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

_log = Logger(namespace="shadowtwist.workers")
RESTART_DELAY = 1.0


class WorkerPool(Service):
    """
    Starts and supervises the extra worker processes.

    @ivar listeners: the C{strports} services whose sockets the workers share.
    """

    def __init__(self, reactor: Any, config_path: str, count: int, listeners: List[Any],
                 metrics_dir: str) -> None:
        """
        @param count: the number of extra processes (N - 1 for C{--workers N}).
        @param metrics_dir: the shared Prometheus directory (removed at stop).
        """
        self._reactor = reactor
        self._config_path = config_path
        self._count = count
        self.listeners = listeners
        self._metrics_dir = metrics_dir
        self._fds: List[int] = []
        self._workers: dict = {}
        self._stopping = False

    def startService(self) -> None:
        """
        Once every listener is bound, start the workers on their sockets.
        """
        super().startService()
        ports = gatherResults([listener._waitingForPort for listener in self.listeners])

        def spawn_all(bound: list) -> None:
            self._fds = [port.fileno() for port in bound]
            for number in range(1, self._count + 1):
                self._spawn(number)

        ports.addCallback(spawn_all)
        ports.addErrback(lambda failure: _log.failure("cannot start workers", failure))

    def _spawn(self, number: int) -> None:
        if self._stopping:
            return
        args = [sys.executable, "-m", "shadowtwist.workers", "--config", self._config_path,
                "--number", str(number)]
        child_fds: dict = {1: 1, 2: 2}
        for fd in self._fds:
            args += ["--fd", str(fd)]
            child_fds[fd] = fd
        protocol = _WorkerProtocol(self, number)
        self._workers[number] = protocol
        self._reactor.spawnProcess(protocol, sys.executable, args, env=dict(os.environ),
                                   childFDs=child_fds)
        _log.info("started worker {number}", number=number)

    def worker_exited(self, number: int, reason: Any) -> None:
        """
        A worker process ended: start it again unless we are stopping.
        """
        protocol = self._workers.pop(number, None)
        if protocol is not None and protocol.pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(protocol.pid, self._metrics_dir)
        if not self._stopping:
            _log.warn("worker {number} exited ({reason}); starting it again", number=number,
                      reason=reason.getErrorMessage())
            self._reactor.callLater(RESTART_DELAY, self._spawn, number)

    def stopService(self) -> Deferred:
        """
        Ask every worker to stop and wait for them.
        """
        self._stopping = True
        waits = []
        for protocol in list(self._workers.values()):
            waits.append(protocol.ended)
            protocol.stop()
        d = DeferredList(waits)
        d.addBoth(lambda _: shutil.rmtree(self._metrics_dir, ignore_errors=True))
        d.addBoth(lambda _: Service.stopService(self))
        return d


class _WorkerProtocol(ProcessProtocol):
    def __init__(self, pool: WorkerPool, number: int) -> None:
        self._pool = pool
        self.number = number
        self.pid: Optional[int] = None
        self.ended: Deferred = Deferred()

    def connectionMade(self) -> None:
        self.pid = self.transport.pid

    def stop(self) -> None:
        try:
            self.transport.signalProcess("TERM")
        except Exception:
            pass

    def processEnded(self, reason: Any) -> None:
        self._pool.worker_exited(self.number, reason)
        self.ended.callback(None)


def new_metrics_directory() -> str:
    """
    A fresh directory for the workers' shared metrics.
    """
    return tempfile.mkdtemp(prefix="shadowgw-metrics-")


def main(argv: Optional[List[str]] = None) -> None:
    """
    A worker process: serve the gateway on inherited listening sockets until told to stop.
    """
    parser = argparse.ArgumentParser(description="shadowtwist worker (started by twistd shadowgw --workers)")
    parser.add_argument("--config", required=True)
    parser.add_argument("--fd", type=int, action="append", default=[])
    parser.add_argument("--number", type=int, default=0)
    options = parser.parse_args(argv)

    from shadowtwist.metrics import MULTIPROCESS_ENV, enable_multiprocess

    if os.environ.get(MULTIPROCESS_ENV):
        enable_multiprocess(os.environ[MULTIPROCESS_ENV])

    from twisted.internet import reactor
    from twisted.internet.task import LoopingCall
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from shadowtwist.config import load_config
    from shadowtwist.tap import GatewayService

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    gateway = GatewayService(load_config(options.config), reactor)
    gateway.startService()
    for fd in options.fd:
        probe = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
        family = probe.family
        probe.close()
        reactor.adoptStreamPort(fd, family, gateway.site)
        os.close(fd)

    parent = os.getppid()

    def orphaned() -> None:
        if os.getppid() != parent and reactor.running:
            reactor.stop()

    LoopingCall(orphaned).start(1.0, now=False)
    reactor.addSystemEventTrigger("before", "shutdown", gateway.stopService)
    _log.info("worker {number} serving {count} socket(s)", number=options.number, count=len(options.fd))
    reactor.run()


if __name__ == "__main__":
    main()
