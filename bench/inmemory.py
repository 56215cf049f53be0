"""
Requests driven through the whole gateway in memory: the client connection, routing, the
pipeline, the backend client and its response parser, the access log and the metrics, with
in-memory transports instead of sockets and no reactor loop. What it measures is the gateway's
own CPU per request, without the kernel's part and without the machine's noise.

Usage::

    .venv/bin/python bench/inmemory.py [--shadow] [--requests N] [--profile]
    python3 bench/instructions.py [--shadow] [--tree PATH]   # the same, counted by valgrind

It prints microseconds per request (the best of five runs); C{--profile} adds the functions
that take the most time (cProfile), C{--shadow} gives the endpoint a shadow backend answering
like the primary, C{--refused} makes that shadow refuse connections.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from typing import Any, List

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import fail, succeed
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import StringTransport

from shadowtwist.backend import SHADOW_HOLD_DOWN, BackendClient
from shadowtwist.config import parse_config
from shadowtwist.tap import GatewayService

REQUEST = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n"
ANSWER = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Fri, 27 Nov 2026 02:00:00 GMT\r\n"
          b"Content-Type: application/json\r\nContent-Length: 23\r\nConnection: keep-alive\r\n\r\n"
          b'{"hello":"world","n":1}')


class MemoryEndpoints:
    """
    Connection endpoints whose connections write into C{StringTransport}s.
    """

    def __init__(self, refuse: bool = False) -> None:
        self.connections: List[Any] = []
        self._refuse = refuse

    def __call__(self, scheme: bytes, host: bytes, port: int) -> "MemoryEndpoints":
        return self

    def connect(self, factory: Any) -> Any:
        if self._refuse:
            return fail(ConnectionRefusedError("refused"))
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(StringTransport())
        self.connections.append(protocol)
        return succeed(protocol)

    def answer_all(self) -> None:
        """
        Answer every connection that has a request waiting.
        """
        for connection in self.connections:
            if connection.transport.value():
                connection.transport.clear()
                connection.dataReceived(ANSWER)


class InMemoryGateway:
    """
    A gateway on one endpoint C{/x}, one backend and maybe a shadow, and one client connection.
    """

    def __init__(self, shadow: bool = False, refused: bool = False, concurrency: int = 1) -> None:
        backends = [{"host": ["http://127.0.0.1:9001"], "url_pattern": "/x"}]
        if shadow:
            backends.append({"host": ["http://127.0.0.1:9002"], "url_pattern": "/x",
                             "extra_config": {"proxy": {"shadow": True}}})
        config = parse_config({"version": 3, "port": 8080, "timeout": "3s", "endpoints": [
            {"endpoint": "/x", "method": "GET", "backend": backends}]}, "inmemory.json")
        self.primaries, self.shadows = MemoryEndpoints(), MemoryEndpoints(refuse=refused)
        primary = BackendClient(reactor, config.client, endpoint_for=self.primaries)
        shadow_client = BackendClient(reactor, config.client, retry=False, endpoint_for=self.shadows,
                                      hold_down=SHADOW_HOLD_DOWN)
        site = GatewayService(config, reactor, primary, shadow_client).site
        site.startFactory()
        self.clients, self.channels = [], []
        for number in range(concurrency):
            peer = IPv4Address("TCP", "127.0.0.1", 5555 + number)
            client = StringTransport(peerAddress=peer, hostAddress=IPv4Address("TCP", "127.0.0.1", 8080))
            channel = site.buildProtocol(peer)
            channel.makeConnection(client)
            self.clients.append(client)
            self.channels.append(channel)

    def one(self) -> None:
        """
        One request on every client connection, all in flight together, then answered by the
        backend (and the shadow), and the timers now due.
        """
        for channel in self.channels:
            channel.dataReceived(REQUEST)
        self.primaries.answer_all()
        self.shadows.answer_all()
        reactor.runUntilCurrent()

    def run(self, requests: int) -> float:
        """
        @return: seconds per request over C{requests} requests.
        """
        rounds = max(1, requests // len(self.channels))
        started = time.perf_counter()
        for _ in range(rounds):
            self.one()
        elapsed = time.perf_counter() - started
        for client in self.clients:
            answered = client.value()
            assert answered.count(b"HTTP/1.1 200 OK") == rounds, answered[-300:]
            client.clear()
        return elapsed / (rounds * len(self.channels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--shadow", action="store_true", help="a shadow backend as well")
    parser.add_argument("--refused", action="store_true", help="the shadow refuses connections")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="client connections with a request in flight at once")
    parser.add_argument("--requests", type=int, default=5000, help="requests per run")
    parser.add_argument("--runs", type=int, default=5, help="runs (the best one is printed)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one more run")
    arguments = parser.parse_args()
    gateway = InMemoryGateway(arguments.shadow or arguments.refused, arguments.refused,
                              arguments.concurrency)
    gateway.run(200)  # connections made, caches filled
    best = min(gateway.run(arguments.requests) for _ in range(arguments.runs))
    print("%.1f us per request (best of %d runs of %d)" % (best * 1e6, arguments.runs, arguments.requests))
    if arguments.profile:
        profile = cProfile.Profile()
        profile.runcall(gateway.run, arguments.requests)
        pstats.Stats(profile).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
