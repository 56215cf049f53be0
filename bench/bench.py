#!/usr/bin/env python3
"""
Side-by-side benchmark of shadowgw against nginx and Twisted's own ceiling (issue 5).

Usage (as root, with the system python3; standard library only)::

    python3 bench/bench.py                       # full run: about 35 minutes on 2 cores
    python3 bench/bench.py --duration 5 --repeats 1 --memory-duration 20
    python3 bench/bench.py --scenarios 'gw_*' --interpreters pypy
    python3 bench/bench.py --py-spy              # also profile each CPython server (py-spy)
    python3 bench/bench.py --smoke               # a few seconds; no nginx, wrk or apt needed

What a full run does:

1. Installs what is missing: Debian's C{nginx}, C{wrk} and C{pypy3} (C{apt-get update && apt-get
   install -y}), and the venvs C{bench/.venvs/cpython} (this python3) and C{bench/.venvs/pypy}
   (Debian's pypy3), each with C{pip install} of this repository (reinstalled on every run, so the
   current working tree is measured). C{--no-install} skips all of it, and warns when a venv's
   copy of shadowtwist differs from the tree (the run then measures that copy).
2. Starts the shared backends, all on 127.0.0.1: a small JSON answered by nginx (fast), a 500 ms
   one (C{bench/backend.py}), a refusing port (bound, never listening) and a black hole (listening,
   never accepting, never answering).
3. Runs every scenario C{--repeats} times, interleaved (all scenarios once, then again). Each
   scenario's server is started on its first run and warmed up until its throughput settles (at
   most C{--warmup} seconds, C{--pypy-warmup} on PyPy, whose JIT needs 20-60 s on the gateway),
   kept for its next runs and stopped after its last. A run is C{--duration} seconds measured by
   wrk (1 thread, C{--connections} connections). The server under test is pinned with taskset to
   core 0; wrk, the backends and this harness to the last core. Scenarios:

   - C{direct}: wrk straight to an nginx serving the backend's JSON (pinned like any server);
   - C{nginx_proxy}, C{nginx_mirror_fast|slow|refused|blackhole}: nginx as a keep-alive reverse
     proxy, and with C{mirror} to each kind of mirror (mirror timeouts = the gateway's
     C{shadow_timeout}, 1 s);
   - per interpreter (C{@cpython}, C{@pypy}): C{twisted_const} (a twisted.web resource answering
     a constant JSON: the interpreter's ceiling), C{gw_one}, C{gw_two} (two backends merged),
     C{gw_shadow_fast|slow|refused|blackhole} (one backend plus one shadow, C{max_in_flight} 64),
     and C{gw_workers2} when C{twistd shadowgw --help} offers C{--workers};
   - C{gw_memory_blackhole@...}: one long run (C{--memory-duration}, 60 s) on a fresh, warmed-up
     gateway with a black-holed shadow, sampling RSS and open sockets every second.

4. Measures the two ratios that compare a gateway with another server (shadow cost: C{gw_one}
   and C{gw_shadow_fast}; pass-through efficiency: C{twisted_const} and C{gw_one}) once more in
   pairs, per interpreter, and a third without a target, measured only in its pair: the floor
   under a shadow (C{twisted_minimal}, C{minimal_proxy.py}, against C{twisted_minimal_shadow},
   the same with a bare copy to the fast shadow). Each pair: fresh servers for both, on core 0
   at the same time, warmed up together (in slices until both settle, at most twice a server's
   own warm-up since they share the core) and then loaded at once by two wrk for
   C{--pair-rounds} rounds of C{--pair-duration} seconds. The machine's drift, which moves sequential runs minutes apart by 20 to 30 %, hits both servers
   alike, so the median of the rounds' ratios is the steadier reading.
5. Prints a table (medians over the repeats: requests/s, p50, p99, errors, RSS of the server's
   processes before and after the measured load, open sockets at peak and right after, the
   server's CPU use and other load on its core, which flags a noisy machine) and the
   ratios of issue 5's Targets, and writes both to C{bench/results/latest.json} (plus
   C{latest.txt}, a time-stamped copy, and every server's log under C{bench/results/work/}).

C{--py-spy} profiles one more C{--duration} of load on each CPython server after its last run
(py-spy cannot read PyPy) and adds to the report the share of the event loop spent on the request
and response paths, the client agents, logging, the access log, JSON and metrics; the hottest
functions go to the JSON and the raw stacks to C{work/KEY.py-spy.txt}. With several workers, each
run's C{process_cpu_pct} in the JSON shows how evenly they shared the load.

C{--smoke} runs only C{gw_one}, C{gw_shadow_fast} (and their pair) and C{gw_shadow_blackhole} on
the interpreter running this script (which must have shadowtwist installed), against a Python fast
backend, with a small built-in load generator (bounded in requests and seconds), and checks that
the numbers are sane (exit status 1 otherwise). The test suite runs it (C{tests/test_bench_smoke.py}).

Every process this script starts runs in its own session under C{timeout}, and is stopped (its
whole process group) when its run ends, on Ctrl-C, on SIGTERM and on any error. Only 127.0.0.1 is
ever contacted, and every load is bounded in time (and, for the built-in generator, in count).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import fnmatch
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
HOST = "127.0.0.1"
PATH = "/x"
MAX_IN_FLIGHT = 64
SHADOW_TIMEOUT = "1s"
GATEWAY_TIMEOUT = "2s"
MIRROR_KINDS = ("fast", "slow", "refused", "blackhole")
SLOW_DELAY = 0.5
MB = 1024.0 * 1024.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SOCKET_ALLOWANCE = 16
WARMUP_SLICE = 2.0
MEMORY_SCENARIO = "gw_memory_blackhole"
PROFILE_CATEGORIES = (
    ("request path", ("HTTPChannel.dataReceived",)),
    ("response path", ("HTTPClientParser.dataReceived",)),
    ("client agents", ("Agent.request (twisted/web/client.py",)),
    ("treq", ("(treq/",)),
    ("new endpoint", ("Agent._getEndpoint",)),
    ("URL+IDNA", ("(hyperlink/", "(idna/")),
    ("cookies", ("cookiejar", "CookieAgent.")),
    ("logging", ("(twisted/logger/", "HTTPFactory.log")),
    ("access log", ("HTTPFactory.log",)),
    ("JSON", ("(json/",)),
    ("metrics", ("(prometheus_client/",)),
)
WARMUP_SPREAD = 0.10
TWISTD_BOOT = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"
APT_PACKAGES = {"nginx": "nginx", "wrk": "wrk", "pypy3": "pypy3", "valgrind": "valgrind"}
INTERPRETER_BASES = {"cpython": sys.executable, "pypy": "pypy3"}
# PYPY_GC_NURSERY for servers on PyPy, as the systemd unit sets it (shadowtwist.tap.PYPY_NURSERY;
# "": PyPy's default, sized from the L2 cache). README.rst's PyPy section shows what it changes.
PYPY_NURSERY = "16MB"


# --------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------


def parse_arguments(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Read the command line; C{--smoke} changes the defaults of the others."""
    parser = argparse.ArgumentParser(
        description="Side-by-side benchmark of shadowgw, nginx and twisted.web (see the module "
        "docstring).",
    )
    parser.add_argument("--duration", type=float, default=None, help="measured seconds per run "
                        "(default 10, smoke 1.5)")
    parser.add_argument("--warmup", type=float, default=None, help="at most this many seconds "
                        "of unmeasured load on each new server, less once its throughput settles "
                        "(default 10, smoke 0.3)")
    parser.add_argument("--pypy-warmup", type=float, default=None, help="the same for servers "
                        "on PyPy, whose JIT takes far longer on the gateway (default 60)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, "
                        "smoke 1)")
    parser.add_argument("--pair-rounds", type=int, default=None, help="rounds of each paired "
                        "ratio (both servers loaded at once on the server core), 0 to skip "
                        "(default 5, smoke 1)")
    parser.add_argument("--pair-duration", type=float, default=None, help="seconds per paired "
                        "round (default 5, smoke 1.5)")
    parser.add_argument("--memory-duration", type=float, default=None, help="seconds of the "
                        "black-holed shadow memory run, 0 to skip (default 60, smoke 0)")
    parser.add_argument("--scenarios", default="*", help="comma-separated glob patterns on "
                        "scenario names or keys, e.g. 'gw_*,nginx_proxy' or '*@pypy' "
                        "(default: all)")
    parser.add_argument("--interpreters", default=None, help="comma-separated: cpython, pypy "
                        "(default both; smoke: the running one)")
    parser.add_argument("--connections", type=int, default=None, help="concurrent connections "
                        "(default 32, smoke 16)")
    parser.add_argument("--smoke", action="store_true", help="a few seconds, no apt/nginx/wrk; "
                        "checks the harness works")
    parser.add_argument("--no-install", action="store_true", help="use the installed tools and "
                        "venvs as they are (no apt-get, no pip)")
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results",
                        help="where latest.json, latest.txt and work/ go (default bench/results)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop starting new runs "
                        "after this long and report what was measured (default 120, smoke 3)")
    parser.add_argument("--pypy-nursery", default=PYPY_NURSERY, help="PYPY_GC_NURSERY (e.g. 32MB) "
                        "for every server run on PyPy, the constant resource included (default: "
                        "%s, as the systemd unit; '' for PyPy's own)" % PYPY_NURSERY)
    parser.add_argument("--py-spy", action="store_true", help="after each CPython server's last "
                        "run, profile one more --duration of load with py-spy (installed into "
                        "the cpython venv) and write the hottest functions to work/")
    parser.add_argument("--gateway-cmd", default=None, help="run another gateway build instead "
                        "of twistd shadowgw: a command template with {python} {config} {port}")
    arguments = parser.parse_args(argv)
    apply_mode_defaults(arguments)
    return arguments


def apply_mode_defaults(arguments: argparse.Namespace) -> None:
    """Fill in the options left unset, with the smoke mode's or the full run's defaults."""
    smoke = arguments.smoke
    defaults = {
        "duration": 1.5 if smoke else 10.0,
        "warmup": 0.3 if smoke else 10.0,
        "pypy_warmup": 0.3 if smoke else 60.0,
        "repeats": 1 if smoke else 3,
        "memory_duration": 0.0 if smoke else 60.0,
        "pair_rounds": 1 if smoke else 5,
        "pair_duration": 1.5 if smoke else 5.0,
        "connections": 16 if smoke else 32,
        "interpreters": "current" if smoke else "cpython,pypy",
        "max_minutes": 3.0 if smoke else 120.0,
    }
    for name, value in defaults.items():
        if getattr(arguments, name) is None:
            setattr(arguments, name, value)
    if smoke and arguments.scenarios == "*":
        arguments.scenarios = "gw_one,gw_shadow_fast,gw_shadow_blackhole"
    arguments.interpreter_names = [name.strip() for name in arguments.interpreters.split(",")
                                   if name.strip()]
    arguments.patterns = [p.strip() for p in arguments.scenarios.split(",") if p.strip()]


# --------------------------------------------------------------------------------------------
# Processes: every child in its own session under `timeout`, stopped as a whole group
# --------------------------------------------------------------------------------------------


@dataclass
class Child:
    """A process this harness started, with its log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pgid(self) -> int:
        """The child's process group (its own pid: it leads a new session)."""
        return self.popen.pid

    def log_tail(self, size: int = 3000) -> str:
        """Return the end of the child's log."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        return data[-size:].decode("utf-8", "replace")


class Children:
    """Starts processes and guarantees that every one of them is stopped."""

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime
        self.running: List[Child] = []
        self.started_pids: List[int] = []

    def start(self, name: str, argv: Sequence[str], log_path: Path,
              cpus: Optional[str] = None) -> Child:
        """Start C{argv} pinned to C{cpus} (a taskset list) if given, logging to C{log_path}."""
        command = ["timeout", "-k", "5", str(int(self.lifetime))]
        if cpus is not None:
            command += ["taskset", "-c", cpus]
        command += list(argv)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     cwd=str(log_path.parent))
        child = Child(name, popen, log_path)
        self.running.append(child)
        self.started_pids.append(popen.pid)
        return child

    def members(self, child: Child) -> List[int]:
        """The pids in C{child}'s process group, other than the C{timeout} wrapper."""
        return [pid for pid in group_pids(child.pgid) if pid != child.pgid]

    def stop(self, child: Child, grace: float = 5.0) -> None:
        """Stop C{child}'s whole process group: SIGTERM to the C{timeout} wrapper (which passes
        it on to the command, once), then SIGKILL to the group after C{grace} seconds."""
        self.started_pids.extend(pid for pid in group_pids(child.pgid)
                                 if pid not in self.started_pids)
        try:
            child.popen.send_signal(signal.SIGTERM)
        except OSError:
            pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_pids(child.pgid):
            child.popen.poll()
            time.sleep(0.05)
        signal_group(child.pgid, signal.SIGKILL)
        try:
            child.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        wait_group_gone(child.pgid, grace)
        if child in self.running:
            self.running.remove(child)

    def stop_all(self) -> None:
        """Stop every child still running, newest first."""
        for child in list(reversed(self.running)):
            self.stop(child)


def signal_group(pgid: int, signum: int) -> None:
    """Send C{signum} to the process group C{pgid}, if it still exists."""
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def wait_group_gone(pgid: int, timeout: float) -> None:
    """Wait until no process of group C{pgid} is left (zombies of others' children aside)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and group_pids(pgid):
        time.sleep(0.05)


def install_signal_handlers() -> None:
    """Turn SIGTERM and SIGHUP into SystemExit and SIGINT into KeyboardInterrupt (even where it
    was inherited as ignored), so that the cleanup in C{main} runs."""

    def leave(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, leave)
    signal.signal(signal.SIGHUP, leave)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_command(argv: Sequence[str], timeout: float, **kwargs: Any) -> subprocess.CompletedProcess:
    """Run a short command to completion (its own session, killed whole on time-out)."""
    process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
    try:
        output, _ = process.communicate(timeout=timeout)
    except BaseException:
        signal_group(process.pid, signal.SIGKILL)
        process.wait()
        raise
    return subprocess.CompletedProcess(argv, process.returncode,
                                       output.decode("utf-8", "replace"), "")


# --------------------------------------------------------------------------------------------
# /proc: process groups, RSS and open sockets
# --------------------------------------------------------------------------------------------


def read_stat(pid: str) -> Optional[List[str]]:
    """Return the fields of /proc/PID/stat after the command name, or None if it is gone."""
    try:
        with open("/proc/%s/stat" % pid) as stat:
            text = stat.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def group_pids(pgid: int) -> List[int]:
    """The live (non-zombie) processes of process group C{pgid}."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = read_stat(entry)
        if fields and fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry))
    return found


def rss_bytes(pids: Sequence[int]) -> int:
    """The summed resident set size of C{pids}, in bytes."""
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/status" % pid) as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    return total


def socket_count(pids: Sequence[int]) -> int:
    """The number of distinct sockets open in C{pids}."""
    inodes = set()
    for pid in pids:
        fd_dir = "/proc/%d/fd" % pid
        try:
            names = os.listdir(fd_dir)
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(os.path.join(fd_dir, name))
            except OSError:
                continue
            if target.startswith("socket:"):
                inodes.add(target)
    return len(inodes)


def cpu_seconds(pids: Sequence[int]) -> Dict[int, float]:
    """The CPU time (user + system) used so far by each of C{pids}, in seconds."""
    used = {}
    for pid in pids:
        fields = read_stat(str(pid))
        if fields:
            used[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return used


def busy_seconds(cpus: Optional[str]) -> float:
    """The time the processors C{cpus} (a taskset list, None for all) have been busy running
    processes (interrupt and softirq time, much of it loopback networking, left out), in
    seconds, from /proc/stat."""
    wanted = {"cpu%s" % c for c in cpus.split(",")} if cpus else {"cpu"}
    busy = 0
    with open("/proc/stat") as stat:
        for line in stat:
            fields = line.split()
            if fields and fields[0] in wanted:
                user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[1:9])
                busy += user + nice + system + steal
    return busy / CLOCK_TICKS


@dataclass
class Usage:
    """RSS, open sockets and CPU time of a server, and its processors' busy time, at one
    moment."""

    rss_mb: float
    sockets: int
    cpu_s: Dict[int, float]
    core_busy_s: float
    at: float


def measure(children: Children, child: Child, cpus: Optional[str]) -> Usage:
    """Measure C{child}'s processes (pinned to C{cpus}) now."""
    pids = children.members(child)
    return Usage(rss_bytes(pids) / MB, socket_count(pids), cpu_seconds(pids), busy_seconds(cpus),
                 time.monotonic())


def cpu_shares(before: Usage, after: Usage) -> tuple:
    """(server CPU %, other CPU % on the server's processors) between two measures; the second
    is load from outside the server on its own core(s): noise, when it is more than a few %."""
    wall = after.at - before.at
    if wall <= 0:
        return 0.0, 0.0
    server = sum(process_cpu_shares(before, after))
    other = (after.core_busy_s - before.core_busy_s) / wall * 100 - server
    return server, max(0.0, other)


def process_cpu_shares(before: Usage, after: Usage) -> List[float]:
    """Each server process's CPU use (%) between two measures, busiest first: with several
    workers, it shows how evenly the load was spread."""
    wall = after.at - before.at
    if wall <= 0:
        return []
    shares = [(used - before.cpu_s.get(pid, 0.0)) / wall * 100
              for pid, used in after.cpu_s.items()]
    return sorted((round(share, 1) for share in shares), reverse=True)


class Sampler(threading.Thread):
    """Samples a server's RSS and sockets every C{interval} seconds while a load runs."""

    def __init__(self, children: Children, child: Child, interval: float) -> None:
        super().__init__(daemon=True)
        self.children = children
        self.child = child
        self.cpus: Optional[str] = None
        self.interval = interval
        self.samples: List[Dict[str, float]] = []
        self.finished = threading.Event()
        self.started_at = time.monotonic()

    def run(self) -> None:
        """Sample until told to stop."""
        while not self.finished.wait(self.interval):
            usage = measure(self.children, self.child, self.cpus)
            self.samples.append({"t": round(time.monotonic() - self.started_at, 2),
                                 "rss_mb": round(usage.rss_mb, 2), "sockets": usage.sockets})

    def stop(self) -> None:
        """Stop sampling and wait for the thread."""
        self.finished.set()
        self.join(timeout=5)

    def peak_sockets(self) -> int:
        """The most sockets seen open at once."""
        return max((int(s["sockets"]) for s in self.samples), default=0)

    def peak_rss_mb(self) -> float:
        """The largest RSS seen."""
        return max((s["rss_mb"] for s in self.samples), default=0.0)


# --------------------------------------------------------------------------------------------
# Ports, the refusing port and the black hole
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def refusing_socket() -> socket.socket:
    """A socket bound to a port but not listening: connections to it are refused (RST)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    return sock


def black_hole_socket() -> socket.socket:
    """A listening socket that is never accepted from: once its tiny backlog is full, connection
    attempts hang unanswered, and those in the backlog never get a byte back."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((HOST, 0))
    sock.listen(0)
    return sock


def wait_until_listening(child: Child, port: int, timeout: float) -> None:
    """Wait until C{port} accepts connections, failing early if C{child} exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            raise RuntimeError("%s exited with status %s:\n%s"
                               % (child.name, child.popen.returncode, child.log_tail()))
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("%s did not listen on %d within %.0f s:\n%s"
                       % (child.name, port, timeout, child.log_tail()))


def probe(port: int, timeout: float = 5.0) -> Dict[str, Any]:
    """GET C{PATH} once and return the status and the start of the body."""
    connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", PATH)
        response = connection.getresponse()
        body = response.read()
        return {"status": response.status, "body": body[:300].decode("utf-8", "replace")}
    except (OSError, http.client.HTTPException) as error:
        return {"status": None, "body": "", "error": repr(error)}
    finally:
        connection.close()


# --------------------------------------------------------------------------------------------
# Configurations: nginx, the gateway, wrk's report script
# --------------------------------------------------------------------------------------------


NGINX_MAIN = """\
user root;
worker_processes 1;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
{body}
}}
"""

NGINX_BACKEND = """\
    server {{
        listen {host}:{port} backlog=1024;
        location / {{
            default_type application/json;
            return 200 '{{"hello":"world","n":1}}';
        }}
    }}
"""

NGINX_PROXY = """\
    upstream primary {{ server {host}:{backend_port}; keepalive 64; }}
    server {{
        listen {host}:{port} backlog=1024;
        location / {{
            {mirror_line}
            proxy_pass http://primary;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
{mirror_location}
    }}
"""

NGINX_MIRROR = """\
    upstream shadow {{ server {host}:{mirror_port}; keepalive 64; }}
"""

NGINX_MIRROR_LOCATION = """\
        location = /__mirror {{
            internal;
            proxy_pass http://shadow$request_uri;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_connect_timeout {timeout};
            proxy_send_timeout {timeout};
            proxy_read_timeout {timeout};
        }}
"""

WRK_REPORT = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def write_nginx_config(directory: Path, body: str) -> Path:
    """Write an nginx configuration with C{body} in its http block, in C{directory}."""
    directory.mkdir(parents=True, exist_ok=True)
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / temp).mkdir(exist_ok=True)
    path = directory / "nginx.conf"
    path.write_text(NGINX_MAIN.format(work=directory, body=body))
    return path


def nginx_backend_body(port: int) -> str:
    """The http block of the fast JSON backend."""
    return NGINX_BACKEND.format(host=HOST, port=port)


def nginx_proxy_body(port: int, backend_port: int, mirror_port: Optional[int]) -> str:
    """The http block of nginx as a reverse proxy, mirroring to C{mirror_port} if given."""
    mirror_line = "mirror /__mirror;" if mirror_port else ""
    mirror_location = ""
    upstreams = ""
    if mirror_port:
        upstreams = NGINX_MIRROR.format(host=HOST, mirror_port=mirror_port)
        mirror_location = NGINX_MIRROR_LOCATION.format(timeout=SHADOW_TIMEOUT)
    return upstreams + NGINX_PROXY.format(host=HOST, port=port, backend_port=backend_port,
                                          mirror_line=mirror_line, mirror_location=mirror_location)


def minimal_argv(python: str, port: int, backend_url: str, shadow_url: Optional[str],
                 lifetime: Optional[float]) -> List[str]:
    """The command line of the bare Twisted proxy (C{minimal_proxy.py}), stopping by itself
    after C{lifetime} seconds if given, with a bare copy of each request to C{shadow_url} if
    given."""
    argv = [python, str(BENCH_DIR / "minimal_proxy.py"), "--port", str(port), "--backend", backend_url]
    if lifetime is not None:
        argv += ["--max-seconds", str(int(lifetime))]
    if shadow_url is not None:
        argv += ["--shadow", shadow_url]
    return argv


def nginx_argv(config: Path) -> List[str]:
    """The command line running nginx in the foreground on C{config}."""
    return ["nginx", "-c", str(config), "-p", str(config.parent), "-e", str(config.parent
                                                                             / "error.log")]


def gateway_config(port: int, backend_url: str, backends: int,
                   shadow_url: Optional[str]) -> Dict[str, Any]:
    """A KrakenD v3 configuration: one endpoint, C{backends} merged backends, maybe a shadow."""
    backend_list: List[Dict[str, Any]] = []
    for index in range(backends):
        backend: Dict[str, Any] = {"host": [backend_url], "url_pattern": PATH}
        if backends > 1:
            backend["group"] = "b%d" % (index + 1)
        backend_list.append(backend)
    if shadow_url:
        backend_list.append({
            "host": [shadow_url],
            "url_pattern": PATH,
            "extra_config": {
                "proxy": {"shadow": True, "shadow_timeout": SHADOW_TIMEOUT},
                "shadowgw/shadow": {"max_in_flight": MAX_IN_FLIGHT},
            },
        })
    return {
        "version": 3,
        "port": port,
        "timeout": GATEWAY_TIMEOUT,
        "endpoints": [{"endpoint": PATH, "method": "GET", "backend": backend_list}],
    }


# --------------------------------------------------------------------------------------------
# Load: wrk, or the built-in generator
# --------------------------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What one measured load gave."""

    requests: int
    seconds: float
    errors: Dict[str, int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    tool: str

    @property
    def rps(self) -> float:
        """Requests answered per second."""
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def error_count(self) -> int:
        """All errors: connection, read, write, non-2xx/3xx status and time-outs."""
        return sum(self.errors.values())


def wrk_argv(port: int, seconds: float, connections: int, script: Path) -> List[str]:
    """wrk's command line: one thread, C{connections} connections, C{seconds} (whole) seconds."""
    return ["wrk", "-t1", "-c%d" % connections, "-d%ds" % max(1, int(round(seconds))),
            "--timeout", "3s", "-s", str(script), "http://%s:%d%s" % (HOST, port, PATH)]


def run_wrk(port: int, seconds: float, connections: int, script: Path,
            work: Path) -> LoadResult:
    """Run wrk (one thread, this process's core) against C{port} for C{seconds}."""
    completed = run_command(wrk_argv(port, seconds, connections, script),
                            timeout=max(1, round(seconds)) + 30, cwd=str(work))
    return wrk_result(completed)


def run_wrk_together(ports: Sequence[int], seconds: float, connections: int, script: Path,
                     work: Path) -> List[LoadResult]:
    """Run one wrk per port, all at once (each in its own session, all killed on any error,
    Ctrl-C or SIGTERM)."""
    processes: List[subprocess.Popen] = []
    try:
        for port in ports:
            processes.append(subprocess.Popen(
                wrk_argv(port, seconds, connections, script), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=str(work)))
        outputs = [process.communicate(timeout=max(1, round(seconds)) + 30)[0]
                   for process in processes]
    except BaseException:
        for process in processes:
            signal_group(process.pid, signal.SIGKILL)
            process.wait()
        raise
    return [wrk_result(subprocess.CompletedProcess(process.args, process.returncode,
                                                   output.decode("utf-8", "replace"), ""))
            for process, output in zip(processes, outputs)]


def wrk_result(completed: subprocess.CompletedProcess) -> LoadResult:
    """The L{LoadResult} in a finished wrk's output (its report script's BENCHJSON line)."""
    for line in completed.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            data = json.loads(line[len("BENCHJSON "):])
            errors = {k: int(data[k]) for k in ("connect", "read", "write", "status", "timeout")}
            return LoadResult(
                requests=int(data["requests"]), seconds=data["duration_us"] / 1e6, errors=errors,
                p50_ms=data["p50_us"] / 1000.0, p90_ms=data["p90_us"] / 1000.0,
                p99_ms=data["p99_us"] / 1000.0, max_ms=data["max_us"] / 1000.0, tool="wrk")
    raise RuntimeError("wrk gave no report (status %s):\n%s"
                       % (completed.returncode, completed.stdout[-2000:]))


class RequestBudget:
    """A shared cap on the number of requests the built-in generator may send."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self) -> bool:
        """Take one request from the budget; False once it is spent."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


async def read_response(reader: asyncio.StreamReader) -> tuple:
    """Read one HTTP/1.1 response; return (status, whether the server will close)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    if headers.get("transfer-encoding") == "chunked":
        await read_chunked(reader)
    elif "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    else:
        await reader.read()
        return status, True
    return status, headers.get("connection") == "close"


async def read_chunked(reader: asyncio.StreamReader) -> None:
    """Read a chunked body to its end."""
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass
            return
        await reader.readexactly(size + 2)


async def load_connection(port: int, deadline: float, budget: RequestBudget, timeout: float,
                          latencies: List[float], errors: Dict[str, int]) -> None:
    """One keep-alive client: send GETs one after another until the deadline or the budget."""
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (PATH, HOST, port)).encode("ascii")
    reader = writer = None
    while time.monotonic() < deadline and budget.take():
        started = time.monotonic()
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port),
                                                        timeout)
            writer.write(request)
            status, closing = await asyncio.wait_for(read_response(reader), timeout)
        except asyncio.TimeoutError:
            errors["timeout"] += 1
            writer = close_writer(writer)
            continue
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            errors["read"] += 1
            writer = close_writer(writer)
            await asyncio.sleep(0.01)
            continue
        latencies.append(time.monotonic() - started)
        if not 200 <= status < 400:
            errors["status"] += 1
        if closing:
            writer = close_writer(writer)
    close_writer(writer)


def close_writer(writer: Optional[asyncio.StreamWriter]) -> None:
    """Close a connection if there is one; always returns None."""
    if writer is not None:
        writer.close()
    return None


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The C{fraction} percentile of the sorted C{ordered} (nearest rank), 0 if empty."""
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, int(round(fraction * len(ordered))) - 1))
    return ordered[index]


def run_python_load(port: int, seconds: float, connections: int,
                    max_requests: int = 200000, timeout: float = 3.0) -> LoadResult:
    """The built-in load generator: C{connections} keep-alive clients for C{seconds} at most and
    C{max_requests} requests at most, each request timing out after C{timeout} seconds."""
    latencies: List[float] = []
    errors = {"connect": 0, "read": 0, "write": 0, "status": 0, "timeout": 0}
    budget = RequestBudget(max_requests)

    async def drive() -> float:
        started = time.monotonic()
        deadline = started + seconds
        clients = [asyncio.ensure_future(load_connection(port, deadline, budget, timeout,
                                                         latencies, errors))
                   for _ in range(connections)]
        try:
            await asyncio.wait(clients, timeout=seconds + timeout + 2)
        finally:
            for client in clients:
                client.cancel()
            await asyncio.gather(*clients, return_exceptions=True)
        return time.monotonic() - started

    elapsed = asyncio.run(drive())
    ordered = sorted(latencies)
    return LoadResult(
        requests=len(ordered), seconds=elapsed, errors=errors,
        p50_ms=percentile(ordered, 0.50) * 1000, p90_ms=percentile(ordered, 0.90) * 1000,
        p99_ms=percentile(ordered, 0.99) * 1000, max_ms=(ordered[-1] * 1000 if ordered else 0.0),
        tool="python")


# --------------------------------------------------------------------------------------------
# Interpreters and their venvs
# --------------------------------------------------------------------------------------------


@dataclass
class Interpreter:
    """An interpreter the gateway runs on: its python, and how to start twistd with it."""

    name: str
    python: str
    twistd: List[str]
    version: str = ""
    gateway_ok: bool = False
    gateway_note: str = ""
    workers: bool = False
    packages: Dict[str, str] = field(default_factory=dict)


def ensure_system_packages(wanted: Sequence[str]) -> List[str]:
    """Install the Debian packages among C{wanted} whose commands are missing; return notes."""
    missing = [APT_PACKAGES[name] for name in wanted if shutil.which(name) is None]
    if not missing:
        return []
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return ["cannot install %s (needs root and apt-get)" % ", ".join(missing)]
    print("installing %s with apt-get ..." % " ".join(missing), flush=True)
    environment = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run_command(["apt-get", "update"], timeout=600, env=environment)
    completed = run_command(["apt-get", "install", "-y", "--no-install-recommends"] + missing,
                            timeout=1200, env=environment)
    if completed.returncode != 0:
        return ["apt-get install %s failed:\n%s" % (" ".join(missing), completed.stdout[-1500:])]
    return []


def ensure_venv(name: str, base_python: str, install: bool) -> Path:
    """Create C{bench/.venvs/NAME} from C{base_python} if needed, and install this repository
    into it (deps when missing, the project itself every time); return the venv's directory."""
    venv = BENCH_DIR / ".venvs" / name
    python = venv / "bin" / "python"
    if not python.exists():
        print("creating %s ..." % venv, flush=True)
        checked(run_command([base_python, "-m", "venv", str(venv)], timeout=300))
    if install:
        print("installing %s into %s ..." % (REPO_ROOT, venv), flush=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        checked(run_command(pip + [str(REPO_ROOT)], timeout=1800))
        checked(run_command(pip + ["--no-deps", "--force-reinstall", str(REPO_ROOT)],
                            timeout=600))
    return venv


def checked(completed: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """Raise if a command failed, with its output."""
    if completed.returncode != 0:
        raise RuntimeError("%s failed (%s):\n%s" % (" ".join(completed.args),
                                                    completed.returncode,
                                                    completed.stdout[-3000:]))
    return completed


def describe_interpreter(interpreter: Interpreter, arguments: argparse.Namespace) -> None:
    """Fill in the version, the package versions and whether shadowgw runs (and has --workers)."""
    script = ("import sys, platform; from importlib import metadata as m\n"
              "print(platform.python_implementation(), platform.python_version())\n"
              "for n in ('shadowtwist','twisted','treq','cryptography','pyopenssl',"
              "'service-identity'):\n"
              "    try: print(n, m.version(n))\n"
              "    except Exception: print(n, '-')\n")
    completed = run_command([interpreter.python, "-c", script], timeout=120)
    lines = completed.stdout.splitlines()
    interpreter.version = lines[0] if lines else "?"
    interpreter.packages = dict(line.split(" ", 1) for line in lines[1:] if " " in line)
    if arguments.gateway_cmd:
        interpreter.gateway_ok, interpreter.gateway_note = True, "custom --gateway-cmd"
        return
    help_run = run_command(interpreter.twistd + ["shadowgw", "--help"], timeout=120,
                           cwd=str(BENCH_DIR))
    interpreter.gateway_ok = help_run.returncode == 0 and "--config" in help_run.stdout
    interpreter.workers = interpreter.gateway_ok and "--workers" in help_run.stdout
    if not interpreter.gateway_ok:
        interpreter.gateway_note = "twistd shadowgw --help failed: " + help_run.stdout[-400:]


def prepare_interpreters(arguments: argparse.Namespace, notes: List[str]) -> List[Interpreter]:
    """Make the venvs of the interpreters asked for and describe them; skip those that fail."""
    prepared = []
    for name in arguments.interpreter_names:
        try:
            interpreter = make_interpreter(name, arguments)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            notes.append("interpreter %s skipped: %s" % (name, str(error)[-600:]))
            continue
        describe_interpreter(interpreter, arguments)
        stale = stale_installed_files(Path(interpreter.python).parent.parent) if (
            arguments.no_install and name != "current") else []
        if stale:
            notes.append("--no-install: the %s venv's shadowtwist differs from this tree in %s; "
                         "this run measures that copy, not the tree" % (name, ", ".join(stale)))
            print("warning: " + notes[-1], flush=True)
        if not interpreter.gateway_ok:
            notes.append("gateway scenarios on %s skipped: %s"
                         % (name, interpreter.gateway_note))
        prepared.append(interpreter)
    return prepared


def with_young_generation(argv: List[str], nursery: str) -> List[str]:
    """C{argv} run with C{PYPY_GC_NURSERY} set to C{nursery}, always, so an inherited value
    never applies (empty: PyPy's own default)."""
    return ["env", "PYPY_GC_NURSERY=" + nursery] + argv


def stale_installed_files(venv: Path) -> List[str]:
    """The modules of this tree's C{shadowtwist} that differ from (or are missing in) the copy
    installed in C{venv}: what C{--no-install} would not measure."""
    installed = [path / "shadowtwist" for path in venv.glob("lib/*/site-packages")]
    stale = []
    for source in sorted((REPO_ROOT / "shadowtwist").glob("*.py")):
        copies = [package / source.name for package in installed if (package / source.name).exists()]
        if not copies or copies[0].read_bytes() != source.read_bytes():
            stale.append(source.name)
    return stale


def is_pypy(interpreter: Interpreter) -> bool:
    """Whether C{interpreter} is PyPy."""
    return interpreter.name == "pypy" or "PyPy" in interpreter.version


def make_interpreter(name: str, arguments: argparse.Namespace) -> Interpreter:
    """The interpreter C{name}: the running one for 'current', else a venv under bench/.venvs."""
    if name == "current":
        return Interpreter(name, sys.executable, [sys.executable, "-c", TWISTD_BOOT])
    if name not in INTERPRETER_BASES:
        raise RuntimeError("unknown interpreter %r (use cpython, pypy or current)" % name)
    base = INTERPRETER_BASES[name]
    if shutil.which(base) is None:
        raise RuntimeError("%s is not installed" % base)
    venv = ensure_venv(name, base, install=not arguments.no_install)
    if arguments.py_spy and name == "cpython" and not (venv / "bin" / "py-spy").exists():
        checked(run_command([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                             "py-spy"], timeout=600))
    return Interpreter(name, str(venv / "bin" / "python"), [str(venv / "bin" / "twistd")])


# --------------------------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------------------------


@dataclass
class Scenario:
    """One server under test with one configuration."""

    name: str
    kind: str  # direct, nginx, const, minimal, gateway
    description: str
    interpreter: Optional[Interpreter] = None
    mirror: Optional[str] = None
    backends: int = 1
    workers: int = 1
    paired_only: bool = False  # measured only in its pair (L{PAIRS}), not in the sequential runs

    @property
    def key(self) -> str:
        """The scenario's unique name: C{name@interpreter} for interpreter-bound ones."""
        return "%s@%s" % (self.name, self.interpreter.name) if self.interpreter else self.name


def all_scenarios(interpreters: Sequence[Interpreter]) -> List[Scenario]:
    """Every scenario of a full run, in the order they are run."""
    scenarios = [
        Scenario("direct", "direct", "wrk straight to the backend (nginx, constant JSON)"),
        Scenario("nginx_proxy", "nginx", "nginx reverse proxy, keep-alive upstream"),
    ]
    for kind in MIRROR_KINDS:
        scenarios.append(Scenario("nginx_mirror_" + kind, "nginx",
                                  "nginx proxy + mirror to a %s mirror" % kind, mirror=kind))
    for interpreter in interpreters:
        scenarios.append(Scenario("twisted_const", "const", "twisted.web constant JSON resource",
                                  interpreter))
        scenarios.append(Scenario("twisted_minimal", "minimal", "bare Twisted proxy (minimal_proxy.py)",
                                  interpreter, paired_only=True))
        scenarios.append(Scenario("twisted_minimal_shadow", "minimal", "bare Twisted proxy + bare "
                                  "copy to a fast shadow", interpreter, mirror="fast", paired_only=True))
        if not interpreter.gateway_ok:
            continue
        scenarios.append(Scenario("gw_one", "gateway", "shadowgw, one backend", interpreter))
        scenarios.append(Scenario("gw_two", "gateway", "shadowgw, two backends merged",
                                  interpreter, backends=2))
        for kind in MIRROR_KINDS:
            scenarios.append(Scenario("gw_shadow_" + kind, "gateway",
                                      "shadowgw, one backend + %s shadow" % kind, interpreter,
                                      mirror=kind))
        if interpreter.workers:
            scenarios.append(Scenario("gw_workers2", "gateway", "shadowgw --workers 2, one "
                                      "backend", interpreter, workers=2))
    return scenarios


def selected(scenario_key: str, patterns: Sequence[str]) -> bool:
    """Whether a scenario (name or key) matches one of the C{--scenarios} patterns."""
    name = scenario_key.split("@")[0]
    return any(fnmatch.fnmatch(scenario_key, p) or fnmatch.fnmatch(name, p) for p in patterns)


@dataclass
class Fixtures:
    """The shared backends and the machine layout, started once per benchmark."""

    backend_port: int
    mirror_ports: Dict[str, int]
    server_cpus: Optional[str]
    all_cpus: Optional[str]
    work: Path
    holders: List[socket.socket]


def settled(slices: Sequence[float], least: int = 3) -> bool:
    """Whether a warm-up's throughput has settled: at least C{least} slices, the last three
    within C{WARMUP_SPREAD} of each other, and (given six) on average no more than half of that
    above the three before, so that a JIT still slowly speeding up is not taken as settled."""
    last, before = slices[-3:], slices[-6:-3]
    if len(slices) < max(3, least) or min(last) <= 0:
        return False
    if max(last) / min(last) > 1 + WARMUP_SPREAD:
        return False
    return len(before) < 3 or sum(last) <= sum(before) * (1 + WARMUP_SPREAD / 2)


@dataclass
class LiveServer:
    """A server under test kept running across the repeats of its scenario."""

    child: Child
    port: int
    cpus: Optional[str]
    probe: Dict[str, Any]
    warmup_slices: List[float]
    measured: bool = False


class Bench:
    """Runs scenarios against the shared fixtures, keeping each server warm across repeats."""

    def __init__(self, arguments: argparse.Namespace, children: Children, fixtures: Fixtures):
        self.arguments = arguments
        self.children = children
        self.fixtures = fixtures
        self.live: Dict[str, LiveServer] = {}
        self.profiles: Dict[str, Dict[str, Any]] = {}
        self.wrk_script = fixtures.work / "report.lua"
        self.wrk_script.write_text(WRK_REPORT)

    def load(self, port: int, seconds: float) -> LoadResult:
        """Put C{seconds} of load on C{port} with wrk, or the built-in generator in smoke mode."""
        if self.arguments.smoke:
            return run_python_load(port, seconds, self.arguments.connections)
        return run_wrk(port, seconds, self.arguments.connections, self.wrk_script,
                       self.fixtures.work)

    def start_server(self, scenario: Scenario, port: int, run_dir: Path) -> tuple:
        """Start the server under test for C{scenario} on C{port}, pinned to the server core;
        return it and the processors it is pinned to."""
        cpus = self.fixtures.server_cpus
        if scenario.kind == "direct":
            argv = nginx_argv(write_nginx_config(run_dir, nginx_backend_body(port)))
        elif scenario.kind == "nginx":
            mirror_port = self.fixtures.mirror_ports[scenario.mirror] if scenario.mirror else None
            body = nginx_proxy_body(port, self.fixtures.backend_port, mirror_port)
            argv = nginx_argv(write_nginx_config(run_dir, body))
        elif scenario.kind == "const":
            argv = [scenario.interpreter.python, str(BENCH_DIR / "constant_server.py"),
                    "--port", str(port), "--max-seconds", str(int(self.children.lifetime))]
        elif scenario.kind == "minimal":
            mirror_url = None
            if scenario.mirror:
                mirror_url = "http://%s:%d" % (HOST, self.fixtures.mirror_ports[scenario.mirror])
            argv = minimal_argv(scenario.interpreter.python, port,
                                "http://%s:%d" % (HOST, self.fixtures.backend_port), mirror_url,
                                self.children.lifetime)
        else:
            argv = self.gateway_argv(scenario, port, run_dir)
            if scenario.workers > 1:
                cpus = self.fixtures.all_cpus
        if scenario.interpreter and is_pypy(scenario.interpreter):
            argv = with_young_generation(argv, self.arguments.pypy_nursery)
        return self.children.start(scenario.key, argv, run_dir / "server.log", cpus), cpus

    def gateway_argv(self, scenario: Scenario, port: int, run_dir: Path) -> List[str]:
        """Write the gateway's configuration for C{scenario} and return its command line."""
        mirror_url = None
        if scenario.mirror:
            mirror_url = "http://%s:%d" % (HOST, self.fixtures.mirror_ports[scenario.mirror])
        config = gateway_config(port, "http://%s:%d" % (HOST, self.fixtures.backend_port),
                                scenario.backends, mirror_url)
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / "gateway.json"
        config_path.write_text(json.dumps(config, indent=2))
        if self.arguments.gateway_cmd:
            return self.arguments.gateway_cmd.format(
                python=scenario.interpreter.python, config=config_path, port=port).split()
        argv = scenario.interpreter.twistd + [
            "-n", "--pidfile=", "shadowgw", "--config", str(config_path),
            "--listen", "tcp:%d:interface=%s" % (port, HOST)]
        if scenario.workers > 1:
            argv += ["--workers", str(scenario.workers)]
        return argv

    def warmup_limit(self, scenario: Scenario) -> float:
        """The longest warm-up for C{scenario}'s server: PyPy's JIT needs far longer."""
        if scenario.interpreter and scenario.interpreter.name == "pypy":
            return self.arguments.pypy_warmup
        return self.arguments.warmup

    def warm_up(self, port: int, limit: float, least: int = 3) -> List[float]:
        """Load C{port} in slices of C{WARMUP_SLICE} seconds until its throughput has settled
        (see L{settled}; at least C{least} slices) or C{limit} seconds have passed; return the
        requests/s of each slice."""
        if limit <= 0:
            return []
        if limit < 3 * WARMUP_SLICE:
            return [round(self.load(port, limit).rps, 1)]
        slices: List[float] = []
        started = time.monotonic()
        while time.monotonic() - started + WARMUP_SLICE <= limit + 0.5:
            slices.append(round(self.load(port, WARMUP_SLICE).rps, 1))
            if settled(slices, least):
                break
        return slices

    def server_for(self, scenario: Scenario, key: str) -> LiveServer:
        """The running, warmed-up server of C{scenario} (started on first use, kept for the next
        repeats); fails if it died since."""
        live = self.live.get(key)
        if live is not None:
            if live.child.popen.poll() is not None:
                raise RuntimeError("%s died (status %s):\n%s" % (
                    key, live.child.popen.returncode, live.child.log_tail()))
            return live
        port = free_port()
        run_dir = self.fixtures.work / key.replace("@", "-")
        child, cpus = self.start_server(scenario, port, run_dir)
        try:
            wait_until_listening(child, port, 20 if self.arguments.smoke else 60)
            answer = probe(port)
            pypy = scenario.interpreter is not None and scenario.interpreter.name == "pypy"
            slices = self.warm_up(port, self.warmup_limit(scenario), 10 if pypy else 3)
        except BaseException:
            self.children.stop(child)
            raise
        live = LiveServer(child, port, cpus, answer, slices)
        self.live[key] = live
        return live

    def profilable(self, scenario: Scenario) -> bool:
        """Whether py-spy can profile C{scenario}'s server: a Python one on CPython."""
        return (scenario.interpreter is not None and scenario.interpreter.name != "pypy"
                and scenario.kind in ("const", "gateway") and scenario.name != MEMORY_SCENARIO)

    def profile(self, scenario: Scenario, live: LiveServer, seconds: float) -> Dict[str, Any]:
        """Profile C{seconds} of load on C{live} with py-spy; return the hottest functions."""
        py_spy = Path(scenario.interpreter.python).parent / "py-spy"
        if not py_spy.exists():
            return {"error": "py-spy is not installed in %s" % py_spy.parent}
        pids = self.children.members(live.child)
        raw = self.fixtures.work / ("%s.py-spy.txt" % scenario.key.replace("@", "-"))
        argv = [str(py_spy), "record", "--pid", str(max(pids)), "--rate", "250", "--duration",
                str(max(1, int(seconds))), "--format", "raw", "-o", str(raw)]
        recorder = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            self.load(live.port, seconds)
            recorder.wait(timeout=seconds + 30)
        finally:
            signal_group(recorder.pid, signal.SIGKILL)
            recorder.wait()
        if not raw.exists():
            return {"error": "py-spy wrote nothing (status %s)" % recorder.returncode}
        return hottest_functions(raw.read_text())

    def load_together(self, ports: Sequence[int], seconds: float) -> List[LoadResult]:
        """Load every port at once (one load generator each) for C{seconds}."""
        if not self.arguments.smoke:
            return run_wrk_together(ports, seconds, self.arguments.connections, self.wrk_script,
                                    self.fixtures.work)
        # the built-in generator runs in this process: one thread each, bounded in time
        results: List[Optional[LoadResult]] = [None] * len(ports)
        failures: List[BaseException] = []

        def drive(index: int) -> None:
            try:
                results[index] = self.load(ports[index], seconds)
            except Exception as error:  # re-raised below, in this thread
                failures.append(error)

        threads = [threading.Thread(target=drive, args=(index,), daemon=True)
                   for index in range(len(ports))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        return results  # type: ignore[return-value]

    def warm_up_together(self, ports: Sequence[int], limit: float, least: int) -> List[List[float]]:
        """L{warm_up} for servers sharing the server core: slices of load on all at once until
        every one has settled or C{limit} seconds have passed; each one's requests/s per slice."""
        if limit <= 0:
            return [[] for _ in ports]
        if limit < 3 * WARMUP_SLICE:
            return [[round(result.rps, 1)] for result in self.load_together(ports, limit)]
        slices: List[List[float]] = [[] for _ in ports]
        started = time.monotonic()
        while time.monotonic() - started + WARMUP_SLICE <= limit + 0.5:
            for series, result in zip(slices, self.load_together(ports, WARMUP_SLICE)):
                series.append(round(result.rps, 1))
            if all(settled(series, least) for series in slices):
                break
        return slices

    def run_pair(self, base: Scenario, other: Scenario, rounds: int, seconds: float) -> Dict[str, Any]:
        """Start fresh servers for C{base} and C{other} on the server core, warm both up at
        once, then load both at once for C{rounds} rounds of C{seconds}; each round's ratio is
        C{other}'s requests/s over C{base}'s. Both are stopped at the end."""
        servers: List[tuple] = []
        try:
            for scenario in (base, other):
                port = free_port()
                run_dir = self.fixtures.work / ("pair-" + scenario.key.replace("@", "-"))
                servers.append((self.start_server(scenario, port, run_dir)[0], port))
            for (child, port), scenario in zip(servers, (base, other)):
                wait_until_listening(child, port, 20 if self.arguments.smoke else 60)
                answer = probe(port)
                if answer["status"] != 200:
                    raise RuntimeError("%s answered %s: %s" % (scenario.key, answer["status"],
                                                             answer.get("error") or answer["body"]))
            ports = [port for _, port in servers]
            warmup = self.pair_warmup_limit(base, other)
            pypy = any(s.interpreter is not None and s.interpreter.name == "pypy" for s in (base, other))
            slices = self.warm_up_together(ports, warmup, 10 if pypy else 3)
            measured = [self.load_together(ports, seconds) for _ in range(rounds)]
        finally:
            for child, _ in servers:
                self.children.stop(child)
        record = pair_record(base, other, [(a.rps, b.rps, sum(a.errors.values()), sum(b.errors.values()))
                                           for a, b in measured])
        record["warmup_rps"] = slices
        return record

    def pair_warmup_limit(self, base: Scenario, other: Scenario) -> float:
        """The longest warm-up of a pair: twice a server's own, since the two share the core."""
        return 2 * max(self.warmup_limit(base), self.warmup_limit(other))

    def retire(self, key: str) -> None:
        """Stop the server kept for C{key}, if any."""
        live = self.live.pop(key, None)
        if live is not None:
            self.children.stop(live.child)

    def run(self, scenario: Scenario, repeat: int, seconds: float,
            sample_interval: float = 0.5, last: bool = False) -> Dict[str, Any]:
        """Measure C{scenario} once on its (kept) server; stop the server if C{last}."""
        key = scenario.key
        try:
            live = self.server_for(scenario, key)
            warmup = live.warmup_slices if not live.measured else []
            before = measure(self.children, live.child, live.cpus)
            sampler = Sampler(self.children, live.child, sample_interval)
            sampler.start()
            try:
                result = self.load(live.port, seconds)
            finally:
                sampler.stop()
            after = measure(self.children, live.child, live.cpus)
            live.measured = True
        except BaseException:
            self.retire(key)
            raise
        if last:
            if self.arguments.py_spy and self.profilable(scenario):
                self.profiles[key] = self.profile(scenario, live, seconds)
            self.retire(key)
        record = run_record(scenario, repeat, live.probe, result, before, after, sampler)
        record["warmup_rps"] = warmup
        return record


def hottest_functions(raw: str, count: int = 100) -> Dict[str, Any]:
    """The functions with the most samples (inclusive, in % of the event loop thread's samples)
    in py-spy's raw (collapsed stacks) output; idle pool threads are left out."""
    inclusive: Dict[str, int] = {}
    own: Dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit() or "mainLoop" not in stack:
            continue
        samples = int(number)
        total += samples
        frames = [frame.rsplit(":", 1)[0] + ")" if frame.endswith(")") else frame
                  for frame in stack.split(";")]
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + samples
        own[frames[-1]] = own.get(frames[-1], 0) + samples

    def top(counts: Dict[str, int]) -> List[List[Any]]:
        ordered = sorted(counts.items(), key=lambda item: -item[1])[:count]
        return [[round(100.0 * n / total, 1), name] for name, n in ordered]

    return {"samples": total, "categories_pct": category_shares(raw, total),
            "inclusive_pct": top(inclusive) if total else [],
            "self_pct": top(own) if total else []}


def category_shares(raw: str, total: int) -> Dict[str, float]:
    """The share (%) of the event loop's samples whose stack passes through each of
    L{PROFILE_CATEGORIES}."""
    counts = {name: 0 for name, _ in PROFILE_CATEGORIES}
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit() or "mainLoop" not in stack:
            continue
        for name, markers in PROFILE_CATEGORIES:
            if any(marker in stack for marker in markers):
                counts[name] += int(number)
    return {name: round(100.0 * n / total, 1) if total else 0.0 for name, n in counts.items()}


def run_record(scenario: Scenario, repeat: int, answer: Dict[str, Any], result: LoadResult,
               before: Usage, after: Usage, sampler: Sampler) -> Dict[str, Any]:
    """The JSON record of one run."""
    return {
        "scenario": scenario.key,
        "repeat": repeat,
        "probe": answer,
        "tool": result.tool,
        "requests": result.requests,
        "seconds": round(result.seconds, 3),
        "rps": round(result.rps, 1),
        "p50_ms": round(result.p50_ms, 3),
        "p90_ms": round(result.p90_ms, 3),
        "p99_ms": round(result.p99_ms, 3),
        "max_ms": round(result.max_ms, 3),
        "errors": result.error_count,
        "server_cpu_pct": round(cpu_shares(before, after)[0], 1),
        "other_cpu_pct": round(cpu_shares(before, after)[1], 1),
        "process_cpu_pct": process_cpu_shares(before, after),
        "error_kinds": result.errors,
        "rss_before_mb": round(before.rss_mb, 2),
        "rss_after_mb": round(after.rss_mb, 2),
        "rss_peak_mb": round(max(sampler.peak_rss_mb(), after.rss_mb), 2),
        "sockets_before": before.sockets,
        "sockets_peak": max(sampler.peak_sockets(), after.sockets),
        "sockets_after": after.sockets,
        "samples": sampler.samples,
    }


# --------------------------------------------------------------------------------------------
# Shared fixtures
# --------------------------------------------------------------------------------------------


def usable_cpus() -> List[int]:
    """The processors this process may run on (PyPy's os has no sched_getaffinity)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def pin_self(cpu: int) -> None:
    """Pin this process (and so the children it starts without taskset) to C{cpu}."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    else:
        run_command(["taskset", "-p", "-c", str(cpu), str(os.getpid())], timeout=20)


def cpu_layout(smoke: bool) -> tuple:
    """(server cpus, all cpus, load cpu) as taskset lists; no pinning in smoke mode."""
    if smoke:
        return None, None, None
    cpus = usable_cpus()
    if len(cpus) < 2:
        return None, None, None
    load = cpus[-1]
    server = cpus[0]
    spare = [c for c in cpus if c != load]
    workers = spare if len(spare) >= 2 else cpus
    return str(server), ",".join(str(c) for c in workers), load


def start_fixtures(arguments: argparse.Namespace, children: Children, work: Path) -> Fixtures:
    """Start the fast and slow backends and open the refusing and black-hole ports."""
    server_cpus, all_cpus, load_cpu = cpu_layout(arguments.smoke)
    if load_cpu is not None:
        pin_self(load_cpu)
    backend_port = free_port()
    if arguments.smoke:
        fast = children.start("backend-fast", backend_argv(backend_port, 0.0, children.lifetime),
                              work / "backend-fast" / "backend.log")
    else:
        config = write_nginx_config(work / "backend-fast", nginx_backend_body(backend_port))
        fast = children.start("backend-fast", nginx_argv(config), work / "backend-fast" / "log")
    wait_until_listening(fast, backend_port, 20)
    slow_port = free_port()
    slow = children.start("backend-slow", backend_argv(slow_port, SLOW_DELAY, children.lifetime),
                          work / "backend-slow" / "backend.log")
    wait_until_listening(slow, slow_port, 20)
    refused, hole = refusing_socket(), black_hole_socket()
    mirror_ports = {"fast": backend_port, "slow": slow_port,
                    "refused": refused.getsockname()[1], "blackhole": hole.getsockname()[1]}
    return Fixtures(backend_port, mirror_ports, server_cpus, all_cpus, work, [refused, hole])


def backend_argv(port: int, delay: float, lifetime: float) -> List[str]:
    """The command line of the Python backend."""
    return [sys.executable, str(BENCH_DIR / "backend.py"), "--port", str(port), "--delay",
            str(delay), "--max-seconds", str(int(lifetime))]


# --------------------------------------------------------------------------------------------
# Aggregation and ratios
# --------------------------------------------------------------------------------------------

MEDIAN_FIELDS = ("rps", "p50_ms", "p99_ms", "errors", "rss_before_mb", "rss_after_mb",
                 "rss_peak_mb", "sockets_peak", "sockets_after", "server_cpu_pct",
                 "other_cpu_pct")


def summarize(runs: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Medians over the successful runs of one scenario, with the spread of requests/s."""
    good = [run for run in runs if "error" not in run]
    if not good:
        return {"runs_ok": 0}
    summary: Dict[str, Any] = {"runs_ok": len(good)}
    for name in MEDIAN_FIELDS:
        summary[name] = round(statistics.median(run[name] for run in good), 3)
    summary["rps_min"] = min(run["rps"] for run in good)
    summary["rps_max"] = max(run["rps"] for run in good)
    return summary


class Ratios:
    """Builds the list of ratios of issue 5's Targets from the medians."""

    def __init__(self, medians: Dict[str, Dict[str, Any]]) -> None:
        self.medians = medians
        self.rows: List[Dict[str, Any]] = []

    def value(self, key: str, metric: str) -> Optional[float]:
        """A median, or None if that scenario was not measured."""
        summary = self.medians.get(key)
        if not summary or not summary.get("runs_ok"):
            return None
        return summary[metric]

    def add(self, name: str, top: str, bottom: str, metric: str, target: Optional[str],
            note: str = "") -> None:
        """Add C{metric} of C{top} over C{metric} of C{bottom}, checked against C{target}
        (">=0.9", "<=1.2" or None for information only)."""
        numerator, denominator = self.value(top, metric), self.value(bottom, metric)
        if numerator is None or denominator is None:
            return
        ratio = numerator / denominator if denominator else None
        self.rows.append({"name": name, "value": round(ratio, 3) if ratio is not None else None,
                          "target": target, "ok": meets(ratio, target), "of": "%s %s / %s %s"
                          % (top, metric, bottom, metric), "note": note})

    def add_row(self, row: Dict[str, Any]) -> None:
        """Add a ratio computed elsewhere (the memory run)."""
        self.rows.append(row)


def meets(value: Optional[float], target: Optional[str]) -> Optional[bool]:
    """Whether C{value} meets C{target} (">=X" or "<=X"); None when there is no target."""
    if target is None or value is None:
        return None
    bound = float(target[2:])
    return value >= bound if target.startswith(">=") else value <= bound


def isolation_ratios(ratios: Ratios, prefix: str, suffix: str, label: str, note: str) -> None:
    """Throughput with a slow, refusing or black-holed shadow (or mirror) over a fast one, and
    p99 with a slow one over a fast one."""
    fast = prefix + "fast" + suffix
    for kind in ("slow", "refused", "blackhole"):
        ratios.add("%s isolation: rps %s/fast" % (label, kind), prefix + kind + suffix, fast,
                   "rps", ">=0.9", note)
    ratios.add("%s isolation: p99 slow/fast" % label, prefix + "slow" + suffix, fast, "p99_ms",
               "<=1.2", note)


def compute_ratios(medians: Dict[str, Dict[str, Any]], interpreters: Sequence[Interpreter],
                   memory: Dict[str, Dict[str, Any]], cores: int) -> List[Dict[str, Any]]:
    """Every ratio of the Targets section that the measured scenarios allow."""
    ratios = Ratios(medians)
    for interpreter in interpreters:
        suffix = "@" + interpreter.name
        label = "shadowgw " + interpreter.name
        isolation_ratios(ratios, "gw_shadow_", suffix, label, "")
        ratios.add("%s pass-through efficiency" % label, "gw_one" + suffix,
                   "twisted_const" + suffix, "rps", ">=0.3", "practical ceiling about 0.5")
        ratios.add("%s shadow cost" % label, "gw_shadow_fast" + suffix, "gw_one" + suffix, "rps",
                   ">=0.65")
        ratios.add("%s two merged backends / one" % label, "gw_two" + suffix, "gw_one" + suffix,
                   "rps", None)
        workers_note = ("%d cores: wrk and the backends share the cores with the workers, so "
                        "there are none to spare" % cores) if cores < 4 else "%d cores" % cores
        ratios.add("%s 2 workers / 1" % label, "gw_workers2" + suffix, "gw_one" + suffix, "rps",
                   ">=1.6" if cores >= 4 else None, workers_note)
        if not interpreter.workers and ratios.value("gw_one" + suffix, "rps") is not None:
            ratios.add_row({"name": "%s 2 workers / 1" % label, "value": None, "target": ">=1.6",
                            "ok": None, "of": "", "note": "skipped: twistd shadowgw has no "
                            "--workers option yet"})
        if interpreter.name in memory:
            for row in memory_rows(memory[interpreter.name], medians.get("gw_one" + suffix), label):
                ratios.add_row(row)
    isolation_ratios(ratios, "nginx_mirror_", "", "nginx (reference)",
                     "nginx's own, for comparison")
    ratios.add("nginx proxy / direct (reference)", "nginx_proxy", "direct", "rps", None)
    for scenario in ("gw_one", "twisted_const"):
        ratios.add("PyPy / CPython %s" % scenario, scenario + "@pypy", scenario + "@cpython",
                   "rps", ">=2" if scenario == "gw_one" else None)
    return ratios.rows


def late_growth(samples: Sequence[Dict[str, float]]) -> Optional[float]:
    """RSS growth between the middle and the end of a sampled run (None if too few samples)."""
    if len(samples) < 4:
        return None
    middle = samples[len(samples) // 2]
    return samples[-1]["rss_mb"] - middle["rss_mb"]


def memory_rows(run: Dict[str, Any], baseline: Optional[Dict[str, Any]],
                label: str) -> List[Dict[str, Any]]:
    """The memory target's two checks, from the long black-holed shadow run."""
    if "error" in run:
        return [{"name": "%s memory" % label, "value": None, "target": None, "ok": False,
                 "of": "", "note": run["error"][:300]}]
    growth = run["rss_after_mb"] - run["rss_before_mb"]
    base_sockets = baseline["sockets_peak"] if baseline and baseline.get("runs_ok") else None
    rows = [{"name": "%s memory: RSS growth over %.0f s black hole (MB)" % (label, run["seconds"]),
             "value": round(growth, 2), "target": "<=10", "ok": meets(growth, "<=10"),
             "of": "rss after %.1f - before %.1f MB (peak %.1f)"
             % (run["rss_after_mb"], run["rss_before_mb"], run["rss_peak_mb"]), "note": ""}]
    late = late_growth(run.get("samples", []))
    if late is not None:
        rows.append({"name": "%s memory: RSS growth over the second half (MB)" % label,
                     "value": round(late, 2), "target": None, "ok": None,
                     "of": "tells a leak (still growing) from warm-up (flat by then)", "note": ""})
    if base_sockets is None:
        return rows
    extra = run["sockets_peak"] - base_sockets
    limit = MAX_IN_FLIGHT + SOCKET_ALLOWANCE
    rows.append({"name": "%s memory: extra sockets at peak" % label, "value": extra,
                 "target": "<=%d" % limit, "ok": meets(extra, "<=%d" % limit),
                 "of": "peak %d in the black-hole run - peak %d of gw_one"
                 % (run["sockets_peak"], base_sockets),
                 "note": "max_in_flight %d + %d" % (MAX_IN_FLIGHT, SOCKET_ALLOWANCE)})
    return rows


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def format_table(scenarios: Sequence[Scenario], medians: Dict[str, Dict[str, Any]]) -> str:
    """The main table, one line per scenario, medians over the repeats."""
    header = ("%-22s %-7s %8s %8s %8s %6s %13s %11s %5s %5s  %s"
              % ("scenario", "interp", "req/s", "p50 ms", "p99 ms", "errors", "RSS MB bef/aft",
                 "socks pk/aft", "cpu%", "oth%", "description"))
    lines = [header, "-" * len(header)]
    for scenario in scenarios:
        summary = medians.get(scenario.key, {})
        interp = scenario.interpreter.name if scenario.interpreter else "-"
        if not summary.get("runs_ok"):
            lines.append("%-22s %-7s %8s  (failed: see the JSON)" % (scenario.name, interp, "-"))
            continue
        lines.append("%-22s %-7s %8.0f %8.2f %8.2f %6d %6.1f/%6.1f %5d/%5d %5.0f %5.0f  %s" % (
            scenario.name, interp, summary["rps"], summary["p50_ms"], summary["p99_ms"],
            summary["errors"], summary["rss_before_mb"], summary["rss_after_mb"],
            summary["sockets_peak"], summary["sockets_after"], summary["server_cpu_pct"],
            summary["other_cpu_pct"], scenario.description))
    lines.append("cpu% = the server's CPU use (100 = one core saturated); oth% = other load on the "
                 "server's core (noise from outside the benchmark when above a few %)")
    return "\n".join(lines)


def format_ratios(rows: Sequence[Dict[str, Any]]) -> str:
    """The ratios table."""
    lines = ["%-58s %8s %8s %5s  %s" % ("ratio", "value", "target", "ok", "of / note"),
             "-" * 100]
    for row in rows:
        value = "-" if row["value"] is None else ("%.3g" % row["value"])
        ok = {True: "yes", False: "NO", None: ""}[row["ok"]]
        detail = "; ".join(part for part in (row["of"], row["note"]) if part)
        lines.append("%-58s %8s %8s %5s  %s" % (row["name"], value, row["target"] or "info", ok,
                                                detail))
    return "\n".join(lines)


def format_memory(memory: Dict[str, Dict[str, Any]]) -> str:
    """One line per interpreter for the long black-holed shadow run."""
    lines = []
    for name, run in memory.items():
        if "error" in run:
            lines.append("memory run @%s failed: %s" % (name, run["error"][:300]))
            continue
        lines.append("memory run @%s: %.0f s, %.0f req/s, %d errors, RSS %.1f -> %.1f MB (peak "
                     "%.1f), sockets peak %d, after %d" % (
                         name, run["seconds"], run["rps"], run["errors"], run["rss_before_mb"],
                         run["rss_after_mb"], run["rss_peak_mb"], run["sockets_peak"],
                         run["sockets_after"]))
    return "\n".join(lines)


def format_profiles(profiles: Dict[str, Dict[str, Any]]) -> str:
    """For each profiled server, the share of the event loop spent in each cost category.
    They overlap: the request path (a client request parsed, up to the backend calls sent) and
    the response path (a backend answer parsed, up to the client's response written and logged)
    hold the others; the access log is part of logging."""
    lines = ["py-spy, % of the event loop thread's samples (hottest functions in the JSON):"]
    for key, profile in profiles.items():
        if "error" in profile:
            lines.append("  %-28s %s" % (key, profile["error"]))
            continue
        shares = ", ".join("%s %.0f" % (name, pct)
                           for name, pct in profile["categories_pct"].items())
        lines.append("  %-28s %s" % (key, shares))
    return "\n".join(lines)


def machine_info(arguments: argparse.Namespace, fixtures: Optional[Fixtures]) -> Dict[str, Any]:
    """What the run ran on, and with what settings."""
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cores": os.cpu_count(), "cpu": model, "kernel": platform.release(),
        "harness_python": platform.python_version(),
        "nginx": tool_version(["nginx", "-v"]), "wrk": tool_version(["wrk", "--version"]),
        "git": tool_version(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"]),
        "smoke": arguments.smoke, "duration_s": arguments.duration, "warmup_s": arguments.warmup,
        "pypy_warmup_s": arguments.pypy_warmup,
        "repeats": arguments.repeats, "connections": arguments.connections,
        "pair_rounds": arguments.pair_rounds, "pair_duration_s": arguments.pair_duration,
        "memory_duration_s": arguments.memory_duration,
        "server_cpus": fixtures.server_cpus if fixtures else None,
        "load": "wrk -t1" if not arguments.smoke else "built-in python generator",
        "mirror_and_shadow_timeout": SHADOW_TIMEOUT, "max_in_flight": MAX_IN_FLIGHT,
    }


def tool_version(argv: Sequence[str]) -> str:
    """The first line a tool prints about its version, or '' if it is not there."""
    if shutil.which(argv[0]) is None:
        return ""
    try:
        completed = run_command(argv, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return completed.stdout.strip().splitlines()[0] if completed.stdout.strip() else ""


def write_results(results_dir: Path, report: Dict[str, Any], text: str) -> Path:
    """Write latest.json, latest.txt and a time-stamped copy of the JSON; return latest.json."""
    results_dir.mkdir(parents=True, exist_ok=True)
    latest = results_dir / "latest.json"
    latest.write_text(json.dumps(report, indent=2))
    (results_dir / "latest.txt").write_text(text + "\n")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    if not report["machine"]["smoke"]:
        (results_dir / ("run-%s.json" % stamp)).write_text(json.dumps(report, indent=2))
    return latest


# --------------------------------------------------------------------------------------------
# Smoke checks
# --------------------------------------------------------------------------------------------


def smoke_problems(report: Dict[str, Any]) -> List[str]:
    """What is not sane in a smoke run's report (an empty list when all is well)."""
    problems = []
    expected = [s for s in report["scenario_order"]]
    if not expected:
        problems.append("no scenario ran")
    allowed_sockets = MAX_IN_FLIGHT + 2 * report["machine"]["connections"] + SOCKET_ALLOWANCE
    for key in expected:
        summary = report["medians"].get(key, {})
        if not summary.get("runs_ok"):
            problems.append("%s: no successful run" % key)
            continue
        if summary["rps"] <= 0:
            problems.append("%s: no request answered" % key)
        if summary["p50_ms"] > summary["p99_ms"]:
            problems.append("%s: p50 above p99" % key)
        if summary["rss_after_mb"] <= 0:
            problems.append("%s: no RSS measured" % key)
        if summary["sockets_peak"] > allowed_sockets:
            problems.append("%s: %d sockets open (more than %d)"
                            % (key, summary["sockets_peak"], allowed_sockets))
        if key.startswith("gw_one") and summary["errors"]:
            problems.append("%s: %d errors" % (key, summary["errors"]))
    pairs = report.get("pairs", {})
    ran = expected + report.get("paired_only", [])
    for _, label, base, other, _ in PAIRS:
        if base + "@current" in ran and other + "@current" in ran and (
                label + "@current") not in pairs:
            problems.append("pair %s@current: not run" % label)
    for key, pair in pairs.items():
        if "error" in pair or not pair["median"]:
            problems.append("pair %s: %s" % (key, pair.get("error", "no ratio")[:200]))
        elif pair["errors"] or pair["unanswered_rounds"]:
            problems.append("pair %s: %d errors, %d rounds without an answer"
                            % (key, pair["errors"], pair["unanswered_rounds"]))
    return problems


# --------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------


class Deadline:
    """The run's overall time limit (C{--max-minutes})."""

    def __init__(self, minutes: float) -> None:
        self.end = time.monotonic() + minutes * 60

    def left(self) -> float:
        """Seconds left."""
        return self.end - time.monotonic()


def run_scenarios(bench: Bench, scenarios: Sequence[Scenario], arguments: argparse.Namespace,
                  deadline: Deadline, notes: List[str]) -> Dict[str, List[Dict[str, Any]]]:
    """Run every scenario C{--repeats} times, interleaved; return the runs by scenario key."""
    runs: Dict[str, List[Dict[str, Any]]] = {s.key: [] for s in scenarios}
    budget = arguments.duration + 5
    for repeat in range(1, arguments.repeats + 1):
        for scenario in scenarios:
            if deadline.left() < budget + (0 if scenario.key in bench.live
                                           else bench.warmup_limit(scenario)):
                notes.append("--max-minutes reached: %s repeat %d and later not run"
                             % (scenario.key, repeat))
                return runs
            print("[%d/%d] %-32s" % (repeat, arguments.repeats, scenario.key), end=" ",
                  flush=True)
            last = repeat == arguments.repeats
            runs[scenario.key].append(run_once(bench, scenario, repeat, arguments.duration,
                                               last=last))
            print(short_result(runs[scenario.key][-1]), flush=True)
    return runs


def run_once(bench: Bench, scenario: Scenario, repeat: int, seconds: float,
             sample_interval: float = 0.5, last: bool = True) -> Dict[str, Any]:
    """One run, its failure recorded rather than raised."""
    try:
        return bench.run(scenario, repeat, seconds, sample_interval, last)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as error:
        return {"scenario": scenario.key, "repeat": repeat, "error": str(error)[-2000:]}


def short_result(run: Dict[str, Any]) -> str:
    """One line about a run, for the progress output."""
    if "error" in run:
        return "FAILED: " + run["error"].strip().splitlines()[0][:200]
    return "%8.0f req/s  p99 %7.2f ms  errors %d  sockets %d" % (
        run["rps"], run["p99_ms"], run["errors"], run["sockets_peak"])


def run_memory(bench: Bench, interpreters: Sequence[Interpreter], arguments: argparse.Namespace,
               deadline: Deadline, notes: List[str]) -> Dict[str, Dict[str, Any]]:
    """The long black-holed shadow run, once per interpreter whose gateway runs."""
    memory: Dict[str, Dict[str, Any]] = {}
    if arguments.memory_duration <= 0:
        return memory
    for interpreter in interpreters:
        scenario = Scenario(MEMORY_SCENARIO, "gateway", "shadowgw, black-holed shadow, "
                            "long run", interpreter, mirror="blackhole")
        if not interpreter.gateway_ok or not selected(scenario.key, arguments.patterns):
            continue
        if deadline.left() < arguments.memory_duration + bench.warmup_limit(scenario) + 10:
            notes.append("--max-minutes reached: %s not run" % scenario.key)
            continue
        print("[memory] %-32s" % scenario.key, end=" ", flush=True)
        memory[interpreter.name] = run_once(bench, scenario, 1, arguments.memory_duration, 1.0)
        print(short_result(memory[interpreter.name]), flush=True)
    return memory


# The target ratios measured once more in pairs: both servers on the server core at once, each
# under its own wrk, so the machine's drift (20 to 30 % from one minute to the next here) hits
# both alike. (bench/paired.py does the same for two builds.) Each: the row's subject, label,
# base scenario, other scenario, target. The pairs with a target run first (on every
# interpreter), so a tight --max-minutes drops an informational one rather than a target.
PAIRS = (("shadowgw", "shadow cost", "gw_one", "gw_shadow_fast", ">=0.65"),
         ("shadowgw", "pass-through efficiency", "twisted_const", "gw_one", ">=0.3"),
         # the floor beside the shadow cost: what a bare copy to a shadow, read and thrown away
         # (no deadline, bound, record, comparison or log), costs a bare Twisted proxy
         ("twisted", "bare shadow cost", "twisted_minimal", "twisted_minimal_shadow", None))


def pair_record(base: Scenario, other: Scenario, rounds: Sequence[tuple]) -> Dict[str, Any]:
    """A paired measurement from each round's (base requests/s, other requests/s, base errors,
    other errors): the ratios of the rounds both sides answered, their median and range, and
    the errors."""
    ratios = [other_rps / base_rps for base_rps, other_rps, _, _ in rounds if base_rps > 0]
    return {"base": base.key, "other": other.key,
            "rounds": [{"base_rps": round(a, 1), "other_rps": round(b, 1), "base_errors": ea,
                        "other_errors": eb} for a, b, ea, eb in rounds],
            "errors": sum(ea + eb for _, _, ea, eb in rounds),
            "unanswered_rounds": sum(1 for a, _, _, _ in rounds if a <= 0),
            "ratios": [round(r, 4) for r in ratios],
            "median": round(statistics.median(ratios), 4) if ratios else None,
            "low": round(min(ratios), 4) if ratios else None,
            "high": round(max(ratios), 4) if ratios else None}


def run_pairs(bench: Bench, scenarios: Sequence[Scenario], arguments: argparse.Namespace,
              deadline: Deadline, notes: List[str]) -> Dict[str, Dict[str, Any]]:
    """Every pair of L{PAIRS} whose two scenarios were selected, per interpreter; by C{name@interp}."""
    pairs: Dict[str, Dict[str, Any]] = {}
    if arguments.pair_rounds <= 0:
        return pairs
    by_key = {scenario.key: scenario for scenario in scenarios}
    names = []
    for scenario in scenarios:
        if scenario.interpreter and scenario.interpreter.name not in names:
            names.append(scenario.interpreter.name)
    ordered = sorted(PAIRS, key=lambda pair: pair[4] is None)  # stable: targets first
    for _, label, base_name, other_name, _ in ordered:
        for name in names:
            base, other = by_key.get(base_name + "@" + name), by_key.get(other_name + "@" + name)
            if base is None or other is None:
                continue
            key = "%s@%s" % (label, name)
            needed = (bench.pair_warmup_limit(base, other)
                      + arguments.pair_rounds * (arguments.pair_duration + 3) + 60)
            if deadline.left() < needed:
                notes.append("--max-minutes reached: pair %s not run" % key)
                continue
            print("[pair] %-33s" % key, end=" ", flush=True)
            try:
                pairs[key] = bench.run_pair(base, other, arguments.pair_rounds, arguments.pair_duration)
            except (RuntimeError, OSError, subprocess.TimeoutExpired, ValueError) as error:
                pairs[key] = {"base": base.key, "other": other.key, "error": str(error)[-2000:]}
                print("FAILED: " + str(error).strip().splitlines()[0][:200], flush=True)
                continue
            pair = pairs[key]
            print("ratios %s, %s%s" % (
                " ".join("%.3f" % r for r in pair["ratios"]) or "none",
                "median %.3f" % pair["median"] if pair["median"] is not None else "no ratio",
                ", %d errors" % pair["errors"] if pair["errors"] else ""), flush=True)
    return pairs


def pair_rows(pairs: Dict[str, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """The ratio rows of the paired measurements."""
    targets = {label: target for _, label, _, _, target in PAIRS}
    subjects = {label: subject for subject, label, _, _, _ in PAIRS}
    rows = []
    for key, pair in pairs.items():
        label, name = key.split("@", 1)
        row_name = "%s %s %s, paired" % (subjects[label], name, label)
        if "error" in pair or pair["median"] is None:
            rows.append({"name": row_name, "value": None, "target": targets[label], "ok": False,
                         "of": "", "note": pair.get("error", "no round measured")[:300]})
            continue
        faults = []
        if pair["errors"]:
            faults.append("%d errors" % pair["errors"])
        if pair["unanswered_rounds"]:
            faults.append("%d rounds without an answer" % pair["unanswered_rounds"])
        rows.append({"name": row_name, "value": pair["median"], "target": targets[label],
                     "ok": meets(pair["median"], targets[label]) and not faults,
                     "of": "%s rps / %s rps, both at once" % (pair["other"], pair["base"]),
                     "note": "; ".join(["median of %d rounds (%.3f to %.3f)" % (
                         len(pair["ratios"]), pair["low"], pair["high"])] + faults)})
    return rows


def benchmark(arguments: argparse.Namespace, children: Children) -> int:
    """Set up, run and report; return the exit status."""
    deadline = Deadline(arguments.max_minutes)
    notes: List[str] = []
    work = arguments.results_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    if not arguments.smoke and not arguments.no_install:
        wanted = ["nginx", "wrk"] + (["pypy3"] if "pypy" in arguments.interpreter_names else [])
        notes += ensure_system_packages(wanted)
    interpreters = prepare_interpreters(arguments, notes)
    fixtures = start_fixtures(arguments, children, work)
    scenarios = [s for s in all_scenarios(interpreters) if selected(s.key, arguments.patterns)]
    bench = Bench(arguments, children, fixtures)
    sequential = [s for s in scenarios if not s.paired_only]  # the others run only in their pair
    runs = run_scenarios(bench, sequential, arguments, deadline, notes)
    memory = run_memory(bench, interpreters, arguments, deadline, notes)
    pairs = run_pairs(bench, scenarios, arguments, deadline, notes)
    medians = {key: summarize(key_runs) for key, key_runs in runs.items()}
    cores = os.cpu_count() or 1
    ratios = compute_ratios(medians, interpreters, memory, cores) + pair_rows(pairs)
    report = {
        "machine": machine_info(arguments, fixtures),
        "interpreters": {i.name: {"python": i.python, "version": i.version + (
                                      (" (PYPY_GC_NURSERY=%s)" % arguments.pypy_nursery
                                       if arguments.pypy_nursery else " (PyPy's default young generation)")
                                      if is_pypy(i) else ""),
                                  "packages": i.packages, "gateway_ok": i.gateway_ok,
                                  "workers_option": i.workers, "note": i.gateway_note}
                         for i in interpreters},
        "scenario_order": [s.key for s in sequential],
        "paired_only": [s.key for s in scenarios if s.paired_only],
        "descriptions": {s.key: s.description for s in scenarios},
        "medians": medians,
        "ratios": ratios,
        "memory": memory,
        "pairs": pairs,
        "profiles": bench.profiles,
        "runs": runs,
        "notes": notes,
        "started_pids": sorted(set(children.started_pids)),
    }
    text = render(report, sequential, medians, ratios, memory, notes)
    if bench.profiles:
        text += "\n\n" + format_profiles(bench.profiles)
    print("\n" + text, flush=True)
    problems = smoke_problems(report) if arguments.smoke else []
    report["problems"] = problems
    children.stop_all()
    report["started_pids"] = sorted(set(children.started_pids))
    latest = write_results(arguments.results_dir, report, text)
    print("\nwrote %s" % latest)
    for problem in problems:
        print("SMOKE PROBLEM: " + problem, file=sys.stderr)
    return 1 if problems else 0


def render(report: Dict[str, Any], scenarios: Sequence[Scenario],
           medians: Dict[str, Dict[str, Any]], ratios: Sequence[Dict[str, Any]],
           memory: Dict[str, Dict[str, Any]], notes: Sequence[str]) -> str:
    """The whole text report."""
    machine = report["machine"]
    head = ("shadowtwist benchmark, %s: %s cores (%s), %s; %s, %d connections, %g s x %d "
            "(medians), warm-up up to %g s (PyPy %g s); server on cpu %s, load and backends on "
            "the other"
            % (machine["date"], machine["cores"], machine["cpu"], machine["kernel"],
               machine["load"], machine["connections"], machine["duration_s"],
               machine["repeats"], machine["warmup_s"], machine["pypy_warmup_s"],
               machine["server_cpus"]))
    versions = "; ".join("%s: %s" % (name, info["version"])
                         for name, info in report["interpreters"].items())
    parts = [head, versions, "", format_table(scenarios, medians)]
    if memory:
        parts += ["", format_memory(memory)]
    parts += ["", format_ratios(ratios)]
    if notes:
        parts += [""] + ["note: " + note for note in notes]
    return "\n".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: run the benchmark, and stop every child whatever happens."""
    arguments = parse_arguments(argv)
    install_signal_handlers()
    lifetime = arguments.max_minutes * 60 + (60 if arguments.smoke else 600)
    children = Children(lifetime)
    try:
        return benchmark(arguments, children)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        children.stop_all()


if __name__ == "__main__":
    sys.exit(main())
