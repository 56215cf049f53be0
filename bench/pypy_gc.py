#!/usr/bin/env python3
"""
What PyPy's garbage collector costs a real gateway under load: one PyPy gateway on core 0 with
C{PYPYLOG=gc-minor,gc-collect-step}, wrk (32 connections) and an nginx backend on core 1, a
warm-up, then ten seconds measured. It prints, per request: the gateway's CPU, the minor
collections, the bytes they promote (what survives the young generation: mostly the state of
the requests in flight, which the major collector then marks and sweeps), and the time spent in
minor collections and in major steps.

Usage (after one C{make bench}, which installs nginx, wrk and the PyPy venv)::

    python3 bench/pypy_gc.py                 # one backend
    python3 bench/pypy_gc.py --shadow        # one backend and a fast shadow
    python3 bench/pypy_gc.py --tree PATH     # another source tree (e.g. a git worktree)
    python3 bench/pypy_gc.py --nursery 16MB  # with the young generation the systemd unit sets

The gateway runs with PyPy's own young generation (or PYPY_GC_NURSERY from the environment):
there collections are frequent enough for the promoted bytes to show what a request keeps
alive while in flight.

Promoted bytes per request move little from run to run, unlike requests/s on these machines,
so they show whether a change makes a request keep less alive. Only 127.0.0.1 is used and every
process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402
import paired  # noqa: E402

# PYPYLOG timestamps are CPU cycles; this machine's TSC rate (from /proc/cpuinfo, else 2.445 GHz).
_MHZ = re.compile(r"^cpu MHz\s*:\s*([\d.]+)", re.M)


def cycles_per_second() -> float:
    """The TSC rate, as the first CPU's nominal MHz."""
    try:
        return float(_MHZ.search(Path("/proc/cpuinfo").read_text()).group(1)) * 1e6
    except (OSError, AttributeError):
        return 2.445e9


def gc_totals(log: str) -> Dict[str, float]:
    """
    Sum the sections of a PYPYLOG text.

    @return: cycles in C{gc-minor} and C{gc-collect-step}, their counts, and the bytes the minor
        collections promoted.
    """
    totals = {"gc-minor": 0.0, "gc-collect-step": 0.0, "minors": 0, "steps": 0,
              "promoted": sum(int(n) for n in re.findall(r"total size of surviving objects: (\d+)", log))}
    opened: Dict[str, int] = {}
    for match in re.finditer(r"\[([0-9a-f]+)\] (\{)?(gc-minor|gc-collect-step)(\})?\n", log):
        at, section = int(match.group(1), 16), match.group(3)
        if match.group(2):
            opened[section] = at
        elif section in opened:
            totals[section] += at - opened.pop(section)
            totals["minors" if section == "gc-minor" else "steps"] += 1
    return totals


def main() -> None:
    """Run one gateway under load and print its GC costs per request."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--shadow", action="store_true", help="the endpoint also has a fast shadow")
    parser.add_argument("--tree", default=str(bench.REPO_ROOT), help="the source tree to run")
    parser.add_argument("--python", default=str(bench.BENCH_DIR / ".venvs" / "pypy" / "bin" / "python"))
    parser.add_argument("--warmup", type=int, default=40, help="seconds of load before measuring")
    parser.add_argument("--duration", type=int, default=10, help="seconds measured")
    parser.add_argument("--nursery", default=os.environ.get("PYPY_GC_NURSERY", ""),
                        help="PYPY_GC_NURSERY for the gateway (default: the environment's, else "
                             "PyPy's own, where collections are frequent enough to show what a "
                             "request keeps alive)")
    arguments = parser.parse_args()
    paired.WORK.mkdir(parents=True, exist_ok=True)
    log = paired.WORK / "pypy_gc.gclog"  # (the gateway's own log is pypy_gc.log)
    backend_port, port = bench.free_port(), bench.free_port()
    nginx_config = bench.write_nginx_config(paired.WORK / "backend", bench.nginx_backend_body(backend_port))
    processes = [subprocess.Popen(["taskset", "-c", "1"] + bench.nginx_argv(nginx_config))]
    try:
        backend_url = "http://%s:%d" % (bench.HOST, backend_port)
        config = bench.gateway_config(port, backend_url, 1, backend_url if arguments.shadow else None)
        gateway = paired.start_gateway(os.path.abspath(arguments.python), Path(arguments.tree).resolve(),
                                       config, "pypy_gc",
                                       {"PYPYLOG": "gc-minor,gc-collect-step:%s" % log,
                                        "PYPY_GC_NURSERY": arguments.nursery})
        processes.append(gateway)
        paired.wait_listening(port)
        url = "http://%s:%d%s" % (bench.HOST, port, bench.PATH)
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c32", "-d%ds" % arguments.warmup, url],
                       capture_output=True, check=True)
        time.sleep(0.5)
        skip, cpu = log.stat().st_size, bench.cpu_seconds([gateway.pid])[gateway.pid]
        output = subprocess.run(["taskset", "-c", "1", "wrk", "-t1", "-c32", "-d%ds" % arguments.duration, url],
                                capture_output=True, text=True, check=True).stdout
        cpu = bench.cpu_seconds([gateway.pid])[gateway.pid] - cpu
        with open(log, errors="replace") as f:
            f.seek(skip)
            totals = gc_totals(f.read())
        requests = int(re.search(r"(\d+) requests in", output).group(1))
        per_second = cycles_per_second()
        print("%s%s, young generation %s: %.0f requests/s; per request: CPU %.1f us, %.3f minor collections promoting %.0f bytes "
              "(%.1f us), %.4f major steps (%.1f us)" % (
                  arguments.tree, " with a shadow" if arguments.shadow else "",
                  arguments.nursery or "PyPy's default", requests / arguments.duration,
                  cpu / requests * 1e6, totals["minors"] / requests,
                  totals["promoted"] / requests, totals["gc-minor"] / per_second / requests * 1e6,
                  totals["steps"] / requests, totals["gc-collect-step"] / per_second / requests * 1e6))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        if log.exists():
            log.unlink()


if __name__ == "__main__":
    main()
