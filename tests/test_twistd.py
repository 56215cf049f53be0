"""
The installed gateway as users run it: C{twistd shadowgw} and C{shadowgw check} as processes,
from a directory outside the checkout (so the installed plugin is what is found), and the
built wheel's contents.

These tests need the package installed in the running interpreter's environment, which
C{make test} does.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import zipfile

from twisted.trial.unittest import TestCase

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
EXAMPLE = os.path.join(HERE, "etc", "krakend.json")


def run(*command, timeout=60):
    """
    Run a command in an empty temporary directory, outside the checkout.

    @return: (exit status, stdout and stderr together).
    """
    with tempfile.TemporaryDirectory() as elsewhere:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        process = subprocess.run(command, cwd=elsewhere, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=timeout, env=env)
    return process.returncode, process.stdout.decode("utf-8", "replace")


class InstalledPluginTests(TestCase):
    """
    After C{pip install .}, C{twistd shadowgw} works from any directory.
    """

    def test_help(self):
        """
        twistd lists the plugin and its options.
        """
        status, output = run(os.path.join(BIN, "twistd"), "shadowgw", "--help")
        self.assertEqual(status, 0, output)
        self.assertIn("--config=", output)
        self.assertIn("--listen=", output)

    def test_bad_config_refused(self):
        """
        A bad config makes twistd exit non-zero, listing every problem, with no traceback.
        """
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            f.write('{"version": 3, "port": "x", "endpoints": [{"endpoint": "/a", "backend": []}]}')
        self.addCleanup(os.remove, f.name)
        status, output = run(os.path.join(BIN, "twistd"), "-n", "--pidfile=", "shadowgw", "-c", f.name)
        self.assertNotEqual(status, 0)
        self.assertIn(f"{f.name}: port: must be a whole number", output)
        self.assertIn(f"{f.name}: endpoints[0].backend: ignoring the 'GET /a' endpoint", output)
        self.assertNotIn("Traceback", output)

    def test_busy_port(self):
        """
        A listener that cannot bind makes twistd exit non-zero instead of running deaf.
        """
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        self.addCleanup(busy.close)
        port = busy.getsockname()[1]
        status, output = run(os.path.join(BIN, "twistd"), "-n", "--pidfile=", "shadowgw", "-c", EXAMPLE,
                             "--listen", f"tcp:{port}:interface=127.0.0.1", timeout=30)
        self.assertNotEqual(status, 0, output)
        self.assertIn("Address already in use", output)

    def test_check_command(self):
        """
        shadowgw check: one OK line and exit 0 on the example config.
        """
        status, output = run(os.path.join(BIN, "shadowgw"), "check", EXAMPLE)
        self.assertEqual(status, 0, output)
        self.assertTrue(output.startswith("Syntax OK!"), output)


class WheelTests(TestCase):
    """
    The wheel ships the dropin and never a twisted/plugins/__init__.py.
    """

    def test_wheel_contents(self):
        """
        Build the wheel and look inside.
        """
        with tempfile.TemporaryDirectory() as out:
            status, output = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                                 "-q", "-w", out, HERE, timeout=300)
            self.assertEqual(status, 0, output)
            [wheel] = [n for n in os.listdir(out) if n.endswith(".whl")]
            names = zipfile.ZipFile(os.path.join(out, wheel)).namelist()
        self.assertIn("twisted/plugins/shadowgw_plugin.py", names)
        self.assertNotIn("twisted/plugins/__init__.py", names)
        self.assertNotIn("twisted/__init__.py", names)
        self.assertIn("shadowtwist/config.py", names)
        self.assertFalse([n for n in names if n.startswith("tests/")])
