"""
C{--workers N}: several processes sharing the gateway's listening socket, with metrics summed
over all of them. Runs the installed C{twistd} as a subprocess on loopback ports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from twisted.trial.unittest import TestCase

from shadowtwist.metrics import FLUSH_INTERVAL
from shadowtwist.tap import Options

BIN = os.path.dirname(sys.executable)


def free_port():
    """
    A loopback port that was free a moment ago.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url, timeout=5.0):
    """
    GET a URL on loopback, returning (status, body).
    """
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


class WorkerOptionTests(TestCase):
    """
    Option checks.
    """

    def test_needs_tcp(self):
        """
        --workers above 1 needs tcp: listeners.
        """
        from twisted.python import usage

        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        options = Options()
        self.assertRaises(usage.UsageError, options.parseOptions,
                          ["-c", os.path.join(here, "etc", "krakend.json"), "--workers", "2",
                           "--listen", "unix:/tmp/gw.sock"])


class WorkersTests(TestCase):
    """
    Two processes serve one port; the admin listener counts both.
    """

    def test_two_workers(self):
        """
        With --workers 2 a second process serves the same port, /metrics sums the requests of
        both, and stopping twistd stops the worker too.
        """
        port, admin = free_port(), free_port()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump({"version": 3, "endpoints": [{"endpoint": "/h", "backend": [
                {"host": [f"http://127.0.0.1:{port}"], "url_pattern": "/__health"}]}]}, f)
        self.addCleanup(os.remove, f.name)
        process = subprocess.Popen(
            [os.path.join(BIN, "twistd"), "-n", "--pidfile=", "shadowgw", "-c", f.name, "--workers", "2",
             "--listen", f"tcp:{port}:interface=127.0.0.1", "--admin", f"tcp:{admin}:interface=127.0.0.1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.addCleanup(_reap, process)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                get(f"http://127.0.0.1:{port}/__health", 1)
                break
            except OSError:
                time.sleep(0.2)
        workers = _children(process.pid)
        deadline = time.time() + 20
        while not workers and time.time() < deadline:
            time.sleep(0.2)
            workers = _children(process.pid)
        self.assertEqual(len(workers), 1, "one extra worker process")
        for _ in range(40):
            self.assertEqual(get(f"http://127.0.0.1:{port}/h")[0], 200)
        # each process hands its counts to the shared files at most FLUSH_INTERVAL later
        deadline = time.monotonic() + FLUSH_INTERVAL + 5
        while True:
            _, text = get(f"http://127.0.0.1:{admin}/metrics")
            line = [l for l in text.decode().splitlines() if l.startswith("shadowgw_requests_total{")]
            if line and float(line[0].rsplit(" ", 1)[1]) == 40.0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(len(line), 1, line)
        self.assertEqual(float(line[0].rsplit(" ", 1)[1]), 40.0)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        time.sleep(0.5)
        self.assertFalse([pid for pid in workers if _alive(pid)], "the worker stopped too")


def _children(pid):
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                children.append(int(entry))
    return children


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def _reap(process):
    if process.poll() is None:
        process.kill()
        process.wait()
    process.stdout.close()
