#!/usr/bin/env python3
"""
Paired comparison of two gateway builds (or two configurations): both run on the same core at
the same time, each under its own wrk, so the machine's noise hits both alike and the ratio of
their throughputs is the inverse ratio of their CPU cost per request.

Usage (after one C{make bench}, which installs nginx, wrk and the venvs)::

    python3 bench/paired.py --a HEAD~3                  # an older commit against the tree
    python3 bench/paired.py --a . --shadow-b            # cost of a fast shadow (the tree twice)
    python3 bench/paired.py --a . --shadow-b --shadow-options '{"percentage": 0}'
    python3 bench/paired.py --a HEAD --shadow-a --shadow-b  # a change to the shadow path
    python3 bench/paired.py --a const                   # pass-through efficiency, paired
    python3 bench/paired.py --a minimal                 # the gateway against a bare Twisted proxy
    python3 bench/paired.py --a minimal --b minimal --shadow-b   # what a bare shadow copy costs
    python3 bench/paired.py --a . --env-a PYPY_GC_NURSERY= --python bench/.venvs/pypy/bin/python
                                                        # PyPy's default young generation against 16MB

PyPy servers run with the benchmark's PYPY_GC_NURSERY (bench.PYPY_NURSERY) unless the
environment or --env-a/--env-b name one (empty: PyPy's own default).

Each build is a source tree put first on C{PYTHONPATH} of the benchmark venv's twistd (a git ref
is checked out into a worktree under C{bench/results/work}). Sequential runs on these machines
vary by 10 to 20 % from one minute to the next; paired rounds agree within a few percent.
Only 127.0.0.1 is used and every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (the benchmark's own helpers: nginx and gateway configs, ports)

WORK = bench.BENCH_DIR / "results" / "work" / "paired"
REFERENCES = ("const", "minimal")


def parse_arguments() -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description="paired A/B of two shadowgw builds on one core")
    parser.add_argument("--a", required=True, help="build A: a source directory or a git ref, or "
                        "'const' (the constant resource) or 'minimal' (bench/minimal_proxy.py)")
    parser.add_argument("--b", default=str(bench.REPO_ROOT), help="build B (default: this tree), or "
                        "'const' or 'minimal' as for A")
    parser.add_argument("--shadow-a", action="store_true", help="A's endpoint also has a fast shadow")
    parser.add_argument("--shadow-b", action="store_true", help="B's endpoint also has a fast shadow")
    parser.add_argument("--shadow-options", default="{}", help="the shadows' shadowgw/shadow block (JSON)")
    parser.add_argument("--env-a", action="append", default=[], metavar="NAME=VALUE", type=environment_item,
                        help="an environment variable for A's server only (repeatable), e.g. "
                             "PYPY_GC_NURSERY= for PyPy's default young generation")
    parser.add_argument("--env-b", action="append", default=[], metavar="NAME=VALUE", type=environment_item,
                        help="the same for B")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per round")
    parser.add_argument("--python", default=str(bench.BENCH_DIR / ".venvs" / "cpython" / "bin" / "python"))
    parser.add_argument("--warmup", type=int, default=None,
                        help="seconds of load before the rounds (default 3, or 40 with a PyPy --python: "
                             "its JIT needs them)")
    return parser.parse_args()


def environment_item(text: str) -> tuple:
    """C{NAME=VALUE} as (name, value), for C{--env-a} and C{--env-b}."""
    name, equals, value = text.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE, got %r" % text)
    return name, value


def source_tree(build: str) -> Path:
    """A directory holding the build's C{shadowtwist} package."""
    if (Path(build) / "shadowtwist").is_dir():
        return Path(build).resolve()
    tree = WORK / ("tree-" + re.sub(r"[^A-Za-z0-9_.-]", "_", build))
    # the ref is resolved on every run (HEAD moves), and a worktree whose directory was deleted
    # is forgotten before one is added again
    commit = subprocess.run(["git", "-C", str(bench.REPO_ROOT), "rev-parse", "--verify", build + "^{commit}"],
                            check=True, capture_output=True, text=True).stdout.strip()
    subprocess.run(["git", "-C", str(bench.REPO_ROOT), "worktree", "prune"], check=True, capture_output=True)
    if tree.exists() and not is_worktree_root(tree):
        shutil.rmtree(tree)  # left half-made: git run in it would act on this checkout instead
    if tree.exists():
        subprocess.run(["git", "-C", str(tree), "checkout", "--quiet", "--detach", commit],
                       check=True, capture_output=True)
    else:
        subprocess.run(["git", "-C", str(bench.REPO_ROOT), "worktree", "add", "--detach", str(tree), commit],
                       check=True, capture_output=True)
    return tree


def is_worktree_root(tree: Path) -> bool:
    """Whether C{tree} is the top of a git checkout of its own (not a directory inside this one)."""
    found = subprocess.run(["git", "-C", str(tree), "rev-parse", "--show-toplevel"],
                           capture_output=True, text=True)
    return found.returncode == 0 and Path(found.stdout.strip()).resolve() == tree.resolve()


def start_gateway(python: str, tree: Path, config: Dict[str, Any], name: str,
                  extra_env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
    """twistd shadowgw on core 0 with C{tree} first on the path (and C{extra_env} set)."""
    path = WORK / (name + ".json")
    path.write_text(json.dumps(config))
    env = dict(server_environment(tree), **(extra_env or {}))
    argv = ["taskset", "-c", "0", python, "-c", bench.TWISTD_BOOT, "-n", "--pidfile=",
            "-l", str(WORK / (name + ".log")), "shadowgw", "-c", str(path)]
    return subprocess.Popen(argv, env=env, cwd=str(WORK))


def start_reference(python: str, kind: str, port: int, backend_url: str,
                    extra_env: Optional[Dict[str, str]] = None, shadow: bool = False) -> subprocess.Popen:
    """The constant resource or the minimal proxy (with a bare shadow copy if C{shadow}) on
    core 0 (with this tree's shadowtwist)."""
    env = dict(server_environment(bench.REPO_ROOT), **(extra_env or {}))
    return subprocess.Popen(reference_argv(python, kind, port, backend_url, shadow), env=env, cwd=str(WORK))


def reference_argv(python: str, kind: str, port: int, backend_url: str, shadow: bool) -> List[str]:
    """The command line of a reference server on core 0; C{shadow} gives the minimal proxy a
    bare shadow copy to the same backend (C{const} has no backend, so no shadow either)."""
    refuse_shadowed_constant(kind, shadow)
    if kind == "minimal":
        return ["taskset", "-c", "0"] + bench.minimal_argv(python, port, backend_url,
                                                           backend_url if shadow else None, None)
    return ["taskset", "-c", "0", python, str(bench.BENCH_DIR / "constant_server.py"), "--port", str(port)]


def refuse_shadowed_constant(build: str, shadow: bool) -> None:
    """Stop at once when asked to shadow the constant resource, which has no backend."""
    if build == "const" and shadow:
        raise SystemExit("the constant resource has no backend to shadow")


def server_environment(tree: Path) -> Dict[str, str]:
    """
    The environment of a server under test: C{tree} on the path, and PyPy's young generation
    as the benchmark and the systemd unit set it, unless C{PYPY_GC_NURSERY} is already set
    (empty: PyPy's own default).
    """
    env = dict(os.environ, PYTHONPATH=str(tree))
    env.setdefault("PYPY_GC_NURSERY", bench.PYPY_NURSERY)
    return env


def wait_listening(port: int, timeout: float = 60.0) -> None:
    """Wait until C{port} accepts connections (PyPy's twistd takes several seconds to start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((bench.HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("nothing listens on port %d after %.0f s" % (port, timeout))


def load_both(ports: List[int], seconds: int) -> List[float]:
    """wrk on each port at once (on core 1, where this process runs); the requests/s of each."""
    script = WORK / "report.lua"
    if not script.exists():
        script.write_text(bench.WRK_REPORT)
    return [result.rps for result in bench.run_wrk_together(ports, seconds, 32, script, WORK)]


def main() -> None:
    """Run the rounds and print each ratio and their median."""
    arguments = parse_arguments()
    for build, shadow in ((arguments.a, arguments.shadow_a), (arguments.b, arguments.shadow_b)):
        refuse_shadowed_constant(build, shadow)  # before anything is started
    if os.sep in arguments.python:
        arguments.python = os.path.abspath(arguments.python)  # the servers run in WORK
    WORK.mkdir(parents=True, exist_ok=True)
    bench.pin_self(1)  # wrk runs here; the servers are started on core 0, nginx on core 1
    references = [build if build in REFERENCES else None for build in (arguments.a, arguments.b)]
    trees = [Path(build) if reference else source_tree(build)
             for build, reference in zip((arguments.a, arguments.b), references)]
    backend_port = bench.free_port()
    nginx_config = bench.write_nginx_config(WORK / "backend", bench.nginx_backend_body(backend_port))
    processes = [subprocess.Popen(["taskset", "-c", "1"] + bench.nginx_argv(nginx_config))]
    try:
        backend_url = "http://%s:%d" % (bench.HOST, backend_port)
        ports = [bench.free_port(), bench.free_port()]
        environments = [dict(arguments.env_a), dict(arguments.env_b)]
        for index, (tree, port) in enumerate(zip(trees, ports)):
            if references[index]:
                processes.append(start_reference(arguments.python, references[index], port, backend_url,
                                                 environments[index], (arguments.shadow_a, arguments.shadow_b)[index]))
                continue
            shadow = backend_url if (arguments.shadow_a, arguments.shadow_b)[index] else None
            config = bench.gateway_config(port, backend_url, 1, shadow)
            if shadow:
                config["endpoints"][0]["backend"][-1]["extra_config"]["shadowgw/shadow"].update(
                    json.loads(arguments.shadow_options))
            processes.append(start_gateway(arguments.python, tree, config, "ab"[index], environments[index]))
        for port in ports:
            wait_listening(port)
        warmup = arguments.warmup
        if warmup is None:
            warmup = 40 if "pypy" in arguments.python else 3
        if warmup > 0:
            load_both(ports, warmup)
        ratios = []
        for round_number in range(arguments.rounds):
            a, b = load_both(ports, arguments.duration)
            ratios.append(b / a)
            print("round %d: A %.0f req/s, B %.0f req/s, B/A %.3f" % (round_number, a, b, b / a), flush=True)
        print("median B/A %.3f (A: %s%s%s, B: %s%s%s)" % (
            statistics.median(ratios), trees[0], " with a shadow" if arguments.shadow_a else "",
            "".join(" %s=%s" % item for item in arguments.env_a), trees[1],
            " with a shadow" if arguments.shadow_b else "", "".join(" %s=%s" % item for item in arguments.env_b)))
        if "pypy" in arguments.python:
            print("PyPy young generation: A %s, B %s" % tuple(
                dict(server_environment(tree), **environment)["PYPY_GC_NURSERY"] or "PyPy's default"
                for tree, environment in zip(trees, environments)))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


if __name__ == "__main__":
    main()
