#!/usr/bin/env python3
"""
Instructions per request of the gateway driven in memory (L{inmemory}), counted by valgrind:
the same count on every run of the same code, so changes of 1 % show, where timings on these
machines drift by 10 to 20 %.

Usage (after C{make test}, which makes C{.venv})::

    python3 bench/instructions.py                 # one backend
    python3 bench/instructions.py --shadow        # one backend and a shadow
    python3 bench/instructions.py --tree ../old   # another source tree, same venv

It installs Debian's valgrind when missing (as root), runs C{inmemory.py} twice under
C{valgrind --tool=cachegrind --cache-sim=no} (200 and 1200 requests, one run each) and prints
the difference divided by 1000: start-up and warm-up cancel out. Counts with a shadow vary by
about 2 % (log batches and comparison slices follow the wall clock); without, by about 0.5 %.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench  # noqa: E402  (ensure_system_packages)

ROOT = Path(__file__).resolve().parent.parent


def count(python: str, tree: Path, requests: int, options: list) -> int:
    """
    Instructions of one C{inmemory.py} run of C{requests} requests.
    """
    completed = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         python, str(ROOT / "bench" / "inmemory.py"), "--requests", str(requests), "--runs", "1"] + options,
        env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True, timeout=1800)
    found = re.search(r"I\s+refs:\s+([\d,]+)", completed.stderr)
    if completed.returncode != 0 or found is None:
        raise SystemExit("valgrind run failed:\n" + completed.stdout[-2000:] + completed.stderr[-2000:])
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description="instructions per request of the in-memory gateway")
    parser.add_argument("--shadow", action="store_true", help="a shadow backend as well")
    parser.add_argument("--tree", type=Path, default=ROOT, help="the source tree to measure")
    parser.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"),
                        help="the interpreter (with the dependencies installed)")
    arguments = parser.parse_args()
    if shutil.which("valgrind") is None:
        problems = bench.ensure_system_packages(["valgrind"])
        if problems:
            raise SystemExit("\n".join(problems))
    options = ["--shadow"] if arguments.shadow else []
    small = count(arguments.python, arguments.tree.resolve(), 200, options)
    large = count(arguments.python, arguments.tree.resolve(), 1200, options)
    print("%s%s: %d instructions per request" % (
        arguments.tree.resolve(), " with a shadow" if arguments.shadow else "", (large - small) // 1000))


if __name__ == "__main__":
    main()
