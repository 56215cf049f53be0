# -*- test-case-name: tests.test_workers -*-
"""
C{--workers N}: N processes serving the same ports, each with its own event loop.

Every process, the twistd one and the N - 1 workers it starts (C{python -m shadowtwist.workers}),
binds each listening address with C{SO_REUSEPORT}, so that the kernel spreads new connections
evenly over them. (Sharing one inherited socket instead lets whichever process wakes first take a
whole burst of connections.) The twistd process binds first, so a busy port still makes it exit
non-zero. Prometheus
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
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

_log = Logger(namespace="shadowtwist.workers")
RESTART_DELAY = 1.0


def reuse_port_socket(address: "ListenAddress") -> socket.socket:
    """
    A listening socket on C{address} with C{SO_REUSEPORT}, for the processes serving it.

    @raise OSError: when the address cannot be bound (for example, it is busy).
    """
    family = socket.AF_INET6 if ":" in address.interface else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind((address.interface or ("::" if family == socket.AF_INET6 else ""), address.port))
        listener.listen(address.backlog)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


class ListenAddress:
    """
    Where a C{tcp:} listener listens: port, interface and backlog.
    """

    def __init__(self, port: int, interface: str = "", backlog: int = 50) -> None:
        self.port = port
        self.interface = interface
        self.backlog = backlog

    @classmethod
    def from_description(cls, description: str, reactor: Any) -> "ListenAddress":
        """
        Read a C{tcp:PORT[:interface=...][:backlog=...]} endpoint description.
        """
        from twisted.internet.endpoints import serverFromString

        endpoint = serverFromString(reactor, description)
        # TCP4/6ServerEndpoint keep what they were given in these attributes.
        return cls(endpoint._port, endpoint._interface, endpoint._backlog)

    def as_argument(self) -> str:
        """
        The address as one command-line argument for a worker.
        """
        return f"{self.port},{self.interface},{self.backlog}"

    @classmethod
    def from_argument(cls, text: str) -> "ListenAddress":
        """
        The inverse of L{as_argument}.
        """
        port, interface, backlog = text.split(",")
        return cls(int(port), interface, int(backlog))


class ReusePortListener(Service):
    """
    The twistd process's own listener in C{--workers} mode: like C{strports.service}, but bound
    with C{SO_REUSEPORT}. A bind failure stops the start.
    """

    def __init__(self, address: ListenAddress, factory: Any, reactor: Any) -> None:
        self.address = address
        self._factory = factory
        self._reactor = reactor
        self.port: Any = None

    def privilegedStartService(self) -> None:
        """
        Bind now, so that a busy port fails the start.
        """
        super().privilegedStartService()
        listener = reuse_port_socket(self.address)
        self.port = self._reactor.adoptStreamPort(listener.fileno(), listener.family, self._factory)
        listener.close()

    def stopService(self) -> Any:
        """
        Stop listening.
        """
        super().stopService()
        if self.port is not None:
            return self.port.stopListening()
        return None


class WorkerPool(Service):
    """
    Starts and supervises the extra worker processes.

    @ivar addresses: the listening addresses every worker serves too.
    """

    def __init__(self, reactor: Any, config_path: str, count: int, addresses: List[ListenAddress],
                 metrics_dir: str) -> None:
        """
        @param count: the number of extra processes (N - 1 for C{--workers N}).
        @param metrics_dir: the shared Prometheus directory (removed at stop).
        """
        self._reactor = reactor
        self._config_path = config_path
        self._count = count
        self.addresses = addresses
        self._metrics_dir = metrics_dir
        self._workers: dict = {}
        self._stopping = False

    def startService(self) -> None:
        """
        Start the workers (the twistd process's own listeners are bound by now).
        """
        super().startService()
        for number in range(1, self._count + 1):
            self._spawn(number)

    def _spawn(self, number: int) -> None:
        if self._stopping:
            return
        args = [sys.executable, "-m", "shadowtwist.workers", "--config", self._config_path,
                "--number", str(number)]
        child_fds: dict = {1: 1, 2: 2}
        for address in self.addresses:
            args += ["--listen", address.as_argument()]
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
    parser.add_argument("--listen", action="append", default=[],
                        help="port,interface,backlog (from the twistd process)")
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
    for text in options.listen:
        listener = reuse_port_socket(ListenAddress.from_argument(text))
        reactor.adoptStreamPort(listener.fileno(), listener.family, gateway.site)
        listener.close()

    parent = os.getppid()

    def orphaned() -> None:
        if os.getppid() != parent and reactor.running:
            reactor.stop()

    LoopingCall(orphaned).start(1.0, now=False)
    reactor.addSystemEventTrigger("before", "shutdown", gateway.stopService)
    _log.info("worker {number} serving {count} address(es)", number=options.number, count=len(options.listen))
    reactor.run()


if __name__ == "__main__":
    main()
