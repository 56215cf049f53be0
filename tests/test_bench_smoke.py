"""
The benchmark's smoke mode still works: C{bench/bench.py --smoke} runs the gateway with one backend
and with a black-holed shadow under a small bounded load, writes its table and JSON, and leaves no
process behind.

It needs no nginx, wrk or apt: only this interpreter with shadowtwist installed.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List

from twisted.trial import unittest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench.py"
SMOKE_TIMEOUT = 180


def commands_mentioning(text: str) -> list:
    """The command lines of live processes that contain C{text}."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if text in command:
            found.append(command)
    return found


def is_running(pid: int) -> bool:
    """Whether C{pid} is a live, non-zombie process."""
    try:
        with open("/proc/%d/stat" % pid) as stat:
            text = stat.read()
    except OSError:
        return False
    return text[text.rfind(")") + 2:].split()[0] != "Z"


def run_politely(argv: list, timeout: float) -> subprocess.CompletedProcess:
    """Run C{argv}; past C{timeout} seconds, SIGTERM it (so that it stops its own children),
    then SIGKILL it if it is still there 15 seconds later."""
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            output, _ = process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    return subprocess.CompletedProcess(argv, process.returncode, output, b"")


@dataclass
class SmokeRun:
    """One run of the smoke benchmark: where it wrote, what it printed, what it reported."""

    results_dir: Path
    completed: subprocess.CompletedProcess
    report: dict


_SMOKE_RUNS: List[SmokeRun] = []


def smoke_run() -> SmokeRun:
    """Run C{bench.py --smoke} in a fresh results directory (removed when the test run ends),
    once for the whole module."""
    if not _SMOKE_RUNS:
        results_dir = Path(tempfile.mkdtemp(prefix="bench-smoke-"))
        atexit.register(shutil.rmtree, str(results_dir), True)
        completed = run_politely(
            [sys.executable, str(BENCH), "--smoke", "--results-dir", str(results_dir)],
            SMOKE_TIMEOUT)
        latest = results_dir / "latest.json"
        report = json.loads(latest.read_text()) if latest.exists() else {}
        _SMOKE_RUNS.append(SmokeRun(results_dir, completed, report))
    return _SMOKE_RUNS[0]


class SmokeModeTests(unittest.TestCase):
    """C{bench.py --smoke}, run once for all the tests of this class."""

    def setUp(self) -> None:
        """Get the (shared) smoke run."""
        run = smoke_run()
        self.results_dir, self.completed, self.report = run.results_dir, run.completed, run.report

    def output(self) -> str:
        """What the benchmark printed, for failure messages."""
        return self.completed.stdout.decode("utf-8", "replace")[-4000:]

    def test_exits_cleanly(self) -> None:
        """The smoke run exits with status 0 and reports no problem."""
        self.assertEqual(self.completed.returncode, 0, self.output())
        self.assertEqual(self.report.get("problems"), [], self.output())

    def test_prints_table(self) -> None:
        """The table with both gateway scenarios and the ratios are printed."""
        output = self.output()
        self.assertIn("req/s", output)
        self.assertIn("gw_one", output)
        self.assertIn("gw_shadow_blackhole", output)
        self.assertIn("ratio", output)

    def test_json_numbers_are_sane(self) -> None:
        """Both scenarios answered requests, with ordered percentiles, a measured RSS, and no
        error without a shadow."""
        medians = self.report.get("medians", {})
        self.assertEqual(sorted(medians), ["gw_one@current", "gw_shadow_blackhole@current",
                                           "gw_shadow_fast@current"], self.output())
        for key, summary in medians.items():
            self.assertEqual(summary["runs_ok"], 1, key)
            self.assertGreater(summary["rps"], 0, key)
            self.assertLessEqual(summary["p50_ms"], summary["p99_ms"], key)
            self.assertGreater(summary["rss_after_mb"], 0, key)
            self.assertGreater(summary["sockets_peak"], 0, key)
        self.assertEqual(medians["gw_one@current"]["errors"], 0)

    def test_shadow_cost_pair(self) -> None:
        """The shadow cost is measured once more in a pair: one round of both servers loaded at
        once, both answering, their ratio in the report and in the ratios table."""
        pair = self.report.get("pairs", {}).get("shadow cost@current")
        self.assertIsNotNone(pair, self.output())
        [measured] = pair["rounds"]
        self.assertGreater(measured["base_rps"], 0)
        self.assertGreater(measured["other_rps"], 0)
        self.assertAlmostEqual(pair["median"], measured["other_rps"] / measured["base_rps"], places=3)
        rows = [row for row in self.report["ratios"] if row["name"] == "shadowgw current shadow cost, paired"]
        self.assertEqual([row["value"] for row in rows], [pair["median"]])

    def test_black_hole_sockets_bounded(self) -> None:
        """With a black-holed shadow, open sockets stay within max_in_flight (64) plus the
        client and backend connections (16 each) and a small constant."""
        summary = self.report["medians"]["gw_shadow_blackhole@current"]
        self.assertLessEqual(summary["sockets_peak"], 64 + 2 * 16 + 16)

    def test_no_process_left(self) -> None:
        """Every process the benchmark started is gone, and none mentions its directory."""
        started = self.report.get("started_pids", [])
        self.assertTrue(started, self.output())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (
                any(is_running(pid) for pid in started)
                or commands_mentioning(str(self.results_dir))):
            time.sleep(0.1)
        self.assertEqual([pid for pid in started if is_running(pid)], [])
        self.assertEqual(commands_mentioning(str(self.results_dir)), [])


class InMemoryHarnessTests(unittest.TestCase):
    """
    C{bench/inmemory.py}, which C{bench/instructions.py} counts under valgrind, still drives
    requests through the whole gateway.
    """

    def run_harness(self, *options: str) -> str:
        completed = subprocess.run(
            [sys.executable, str(BENCH.parent / "inmemory.py"), "--requests", "20", "--runs", "2"]
            + list(options), capture_output=True, text=True, timeout=SMOKE_TIMEOUT,
            env=dict(os.environ, PYTHONPATH=str(BENCH.parent.parent)))
        self.assertEqual(completed.returncode, 0, completed.stderr[-2000:])
        return completed.stdout

    def test_one_backend(self):
        self.assertIn("us per request", self.run_harness())

    def test_shadow(self):
        self.assertIn("us per request", self.run_harness("--shadow"))

    def test_refused_shadow(self):
        self.assertIn("us per request", self.run_harness("--refused"))


class PyPyGCLogTests(unittest.TestCase):
    """
    C{bench/pypy_gc.py} reads PyPy's GC log into time, counts and promoted bytes.
    """

    def test_gc_totals(self):
        """
        Each closed C{gc-minor} and C{gc-collect-step} section adds its cycles and one to its
        count; the promoted bytes are the sum of the minor collections' survivors; a nested
        section and one still open at the end of the text add nothing.
        """
        sys.path.insert(0, str(BENCH.parent))
        self.addCleanup(sys.path.remove, str(BENCH.parent))
        import pypy_gc

        log = ("[100] {gc-minor\n[110] {gc-minor-walkroots\n[120] gc-minor-walkroots}\n"
               "total size of surviving objects: 4000\n[1a0] gc-minor}\n"
               "[200] {gc-collect-step\n[250] gc-collect-step}\n"
               "[300] {gc-minor\ntotal size of surviving objects: 1000\n[310] gc-minor}\n"
               "[400] {gc-minor\n")
        totals = pypy_gc.gc_totals(log)
        self.assertEqual((totals["gc-minor"], totals["minors"]), (0xa0 + 0x10, 2))
        self.assertEqual((totals["gc-collect-step"], totals["steps"]), (0x50, 1))
        self.assertEqual(totals["promoted"], 5000)


class ServerEnvironmentTests(unittest.TestCase):
    """
    The benchmark runs PyPy servers with the young generation the systemd unit sets.
    """

    def setUp(self):
        sys.path.insert(0, str(BENCH.parent))
        self.addCleanup(sys.path.remove, str(BENCH.parent))

    def test_same_nursery_as_the_unit(self):
        """
        C{bench.py}'s default nursery is the gateway's recommended one.
        """
        import bench
        from shadowtwist import tap

        self.assertEqual(bench.PYPY_NURSERY, tap.PYPY_NURSERY)

    def test_paired_servers(self):
        """
        C{paired.py}'s servers get that nursery, unless the environment names one (empty: PyPy's
        own default).
        """
        import bench
        import paired

        self.patch(os, "environ", {"PATH": "/bin"})
        env = paired.server_environment(Path("/tree"))
        self.assertEqual((env["PYTHONPATH"], env["PYPY_GC_NURSERY"]), ("/tree", bench.PYPY_NURSERY))
        self.patch(os, "environ", {"PYPY_GC_NURSERY": ""})
        self.assertEqual(paired.server_environment(Path("/tree"))["PYPY_GC_NURSERY"], "")

    def test_bench_servers(self):
        """
        C{bench.py} always sets the variable for a PyPy server, so an inherited one never
        applies; empty is PyPy's default.
        """
        import bench

        self.assertEqual(bench.with_young_generation(["pypy3", "x.py"], "16MB"),
                         ["env", "PYPY_GC_NURSERY=16MB", "pypy3", "x.py"])
        self.assertEqual(bench.with_young_generation(["pypy3"], ""), ["env", "PYPY_GC_NURSERY=", "pypy3"])

    def test_paired_environment_items(self):
        """
        C{--env-a NAME=VALUE} splits at the first C{=}; anything without a name and a C{=} is
        refused.
        """
        import argparse

        import paired

        self.assertEqual(paired.environment_item("PYPY_GC_NURSERY="), ("PYPY_GC_NURSERY", ""))
        self.assertEqual(paired.environment_item("A=b=c"), ("A", "b=c"))
        for bad in ("FOO", "=1"):
            self.assertRaises(argparse.ArgumentTypeError, paired.environment_item, bad)


class MinimalShadowTests(unittest.TestCase):
    """
    The floor under a shadow: C{minimal_proxy.py --shadow} copies each GET to the shadow, reads
    its answer and throws it away; C{paired.py} runs it on either side.
    """

    def setUp(self):
        sys.path.insert(0, str(BENCH.parent))
        self.addCleanup(sys.path.remove, str(BENCH.parent))

    def test_copies_each_get(self):
        """
        The client gets the primary's body; the shadow gets the same path, and its failure
        changes nothing.
        """
        from twisted.internet.defer import fail, succeed
        from twisted.web.test.requesthelper import DummyRequest

        import minimal_proxy

        sent = []

        class Answer:
            def __init__(self, body):
                self.body = body

            def read(self):
                return succeed((self.body, False))

        class Pool:
            def __init__(self, answer):
                self.answer = answer

            def request(self, method, url, headers):
                sent.append(url)
                return self.answer()

        read = []

        class ShadowAnswer(Answer):
            def read(self):
                read.append(self.body)
                return super().read()

        primary = Pool(lambda: succeed(Answer(b'{"v":1}')))
        for answer, shadow_read in ((lambda: fail(ConnectionError("refused")), []),
                                    (lambda: succeed(ShadowAnswer(b'{"v":2}')), [b'{"v":2}'])):
            del sent[:]
            request = DummyRequest([b"x"])
            request.path = b"/x"
            request._disconnected = False
            minimal_proxy.Forward(primary, b"http://p", Pool(answer), b"http://s").render_GET(request)
            self.assertEqual(sent, [b"http://s/x", b"http://p/x"])
            self.assertEqual(read, shadow_read)  # the shadow's answer is read, then thrown away
            self.assertEqual((b"".join(request.written), request.finished), (b'{"v":1}', 1))

    def test_benchmark_argv(self):
        """
        The benchmark starts the bare proxy with a copy to the shadow when the scenario
        has one.
        """
        import bench

        plain = bench.minimal_argv("py", 9100, "http://127.0.0.1:9200", None, 60)
        self.assertEqual(plain[1:], [str(bench.BENCH_DIR / "minimal_proxy.py"), "--port", "9100",
                                     "--backend", "http://127.0.0.1:9200", "--max-seconds", "60"])
        shadowed = bench.minimal_argv("py", 9100, "http://127.0.0.1:9200", "http://127.0.0.1:9300", 60)
        self.assertEqual(shadowed[-2:],
                         ["--shadow", "http://127.0.0.1:9300"])

    def test_paired_reference_argv(self):
        """
        C{--shadow-a}/C{--shadow-b} on a C{minimal} side add C{--shadow} to the same backend; the
        constant resource has none to shadow.
        """
        import paired

        argv = paired.reference_argv("py", "minimal", 9100, "http://127.0.0.1:9200", True)
        self.assertEqual(argv[-4:], ["--backend", "http://127.0.0.1:9200", "--shadow", "http://127.0.0.1:9200"])
        self.assertNotIn("--shadow", paired.reference_argv("py", "minimal", 9100, "http://b", False))
        self.assertRaises(SystemExit, paired.reference_argv, "py", "const", 9100, "http://b", True)


class StaleInstallTests(unittest.TestCase):
    """
    C{bench.py --no-install} names the modules its venv's copy of shadowtwist lacks or differs in.
    """

    def test_stale_installed_files(self):
        sys.path.insert(0, str(BENCH.parent))
        self.addCleanup(sys.path.remove, str(BENCH.parent))
        import bench

        venv = Path(tempfile.mkdtemp(prefix="bench-venv-"))
        self.addCleanup(shutil.rmtree, str(venv))
        package = venv / "lib" / "python3.x" / "site-packages" / "shadowtwist"
        package.mkdir(parents=True)
        sources = sorted((bench.REPO_ROOT / "shadowtwist").glob("*.py"))
        for source in sources:
            shutil.copyfile(str(source), str(package / source.name))
        self.assertEqual(bench.stale_installed_files(venv), [])
        (package / sources[0].name).write_bytes(b"# older\n")
        (package / sources[1].name).unlink()
        self.assertEqual(bench.stale_installed_files(venv), [sources[0].name, sources[1].name])


class PairRecordTests(unittest.TestCase):
    """
    A paired measurement's ratios, median and range, and its row in the ratios table.
    """

    def test_pair_record_and_row(self):
        sys.path.insert(0, str(BENCH.parent))
        self.addCleanup(sys.path.remove, str(BENCH.parent))
        import bench

        base = bench.Scenario("gw_one", "gateway", "", None)
        other = bench.Scenario("gw_shadow_fast", "gateway", "", None)
        record = bench.pair_record(base, other, [(100.0, 60.0, 0, 0), (200.0, 140.0, 0, 0),
                                                 (100.0, 65.0, 0, 0)])
        self.assertEqual(record["ratios"], [0.6, 0.7, 0.65])
        self.assertEqual((record["median"], record["low"], record["high"]), (0.65, 0.6, 0.7))
        [row] = bench.pair_rows({"shadow cost@pypy": record})
        self.assertEqual((row["name"], row["value"], row["target"], row["ok"]),
                         ("shadowgw pypy shadow cost, paired", 0.65, ">=0.65", True))
        # errors, or a round the base side did not answer, make the row fail whatever the ratio
        faulty = bench.pair_record(base, other, [(100.0, 70.0, 0, 3), (0.0, 5.0, 0, 0)])
        self.assertEqual((faulty["ratios"], faulty["errors"], faulty["unanswered_rounds"]), ([0.7], 3, 1))
        [row] = bench.pair_rows({"shadow cost@pypy": faulty})
        self.assertEqual((row["value"], row["ok"]), (0.7, False))
        self.assertIn("3 errors", row["note"])
        self.assertIn("1 rounds without an answer", row["note"])
        [failed] = bench.pair_rows({"pass-through efficiency@pypy": {"error": "boom"}})
        self.assertEqual((failed["value"], failed["ok"], failed["note"]), (None, False, "boom"))

    def test_bare_shadow_floor(self):
        """
        The bare Twisted proxy and its copy to the fast shadow are measured only in their pair,
        whose row has no target: it is the floor shown beside the gateway's shadow cost.
        """
        sys.path.insert(0, str(BENCH.parent))
        self.addCleanup(sys.path.remove, str(BENCH.parent))
        import bench

        interpreter = bench.Interpreter("pypy", "pypy3", ["pypy3"], gateway_ok=True)
        by_name = {s.name: s for s in bench.all_scenarios([interpreter])}
        floor = (by_name["twisted_minimal"], by_name["twisted_minimal_shadow"])
        self.assertEqual([(s.kind, s.mirror, s.paired_only) for s in floor],
                         [("minimal", None, True), ("minimal", "fast", True)])
        self.assertFalse(by_name["gw_shadow_fast"].paired_only)
        record = bench.pair_record(floor[0], floor[1], [(100.0, 75.0, 0, 0)])
        [row] = bench.pair_rows({"bare shadow cost@pypy": record})
        self.assertEqual((row["name"], row["value"], row["target"], row["ok"]),
                         ("twisted pypy bare shadow cost, paired", 0.75, None, None))
        # a smoke run expects the pair of its selected paired-only scenarios, not their own runs
        report = {"scenario_order": [], "paired_only": ["twisted_minimal@current",
                                                        "twisted_minimal_shadow@current"],
                  "medians": {}, "machine": {"connections": 16}, "pairs": {}, "runs": {}}
        self.assertIn("pair bare shadow cost@current: not run", bench.smoke_problems(report))
        report["pairs"]["bare shadow cost@current"] = record
        self.assertNotIn("pair bare shadow cost@current: not run", bench.smoke_problems(report))
        self.assertFalse([p for p in bench.smoke_problems(report) if "twisted_minimal" in p])
