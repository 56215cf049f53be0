"""
Tests for L{shadowtwist.logbatch}: many lines, few log events, none lost.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel
from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.logbatch import LogBatch
from tests.support import capture_events


class LogBatchTests(SynchronousTestCase):
    """
    One event per interval or per C{max_pending} lines, carrying every line and record.
    """

    def setUp(self):
        self.events = capture_events(self, "tests.logbatch")
        self.clock = Clock()
        self.batch = LogBatch(Logger(namespace="tests.logbatch"), self.clock, "lines",
                              interval=0.5, max_pending=3, level=LogLevel.warn)

    def test_interval(self):
        """
        Lines wait for the interval, then go out as one event with their records.
        """
        self.batch.add("one", {"n": 1})
        self.batch.add("two", {"n": 2})
        self.clock.advance(0.4)
        self.assertEqual(self.events, [])
        self.clock.advance(0.1)
        [event] = self.events
        self.assertEqual((event["lines"], event["count"]), ("one\ntwo", 2))
        self.assertEqual(event["records"], [{"n": 1}, {"n": 2}])
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["log_format"], "{lines}")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bounded(self):
        """
        At C{max_pending} lines the batch goes out at once; its timer is cancelled.
        """
        for n in range(4):
            self.batch.add(str(n))
        self.assertEqual([e["count"] for e in self.events], [3])
        self.batch.flush()
        self.assertEqual([e["lines"] for e in self.events], ["0\n1\n2", "3"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_rendered_at_flush(self):
        """
        With C{render}, entries are kept as given and made into their lines and records only
        when the batch goes out.
        """
        rendered = []

        def render(entry):
            rendered.append(entry)
            return "line %d" % entry[0], {"n": entry[0]}

        batch = LogBatch(Logger(namespace="tests.logbatch"), self.clock, "lines", interval=0.5,
                         render=render)
        batch.add((1, "a"))
        batch.add((2, "b"))
        self.assertEqual(rendered, [])
        batch.flush()
        self.assertEqual(rendered, [(1, "a"), (2, "b")])
        [event] = self.events
        self.assertEqual((event["lines"], event["count"]), ("line 1\nline 2", 2))
        self.assertEqual(event["records"], [{"n": 1}, {"n": 2}])

    def test_render_failure_costs_one_line(self):
        """
        An entry that cannot be rendered goes out as its repr (and the error is logged); the
        other entries of the batch are kept.
        """
        batch = LogBatch(Logger(namespace="tests.logbatch"), self.clock, "lines",
                         render=lambda entry: ("line %d" % entry, {"n": entry}))
        batch.add(1)
        batch.add("bad")
        batch.flush()
        [failure] = [e for e in self.events if "log_failure" in e]
        self.assertIsInstance(failure["log_failure"].value, TypeError)
        self.flushLoggedErrors(TypeError)
        [event] = [e for e in self.events if "lines" in e]
        self.assertEqual(event["lines"], "line 1\n'bad'")
        self.assertEqual(event["records"], [{"n": 1}, {}])

    def test_flush_empty(self):
        """
        Flushing with nothing pending logs nothing.
        """
        self.batch.flush()
        self.assertEqual(self.events, [])
