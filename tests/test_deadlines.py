"""
Tests for L{shadowtwist.deadlines}: call deadlines on one reactor timer per timeout.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.deadlines import Deadlines, _Queue


class DeadlinesTests(SynchronousTestCase):
    """
    Each deadline expires at its own time unless its call ended first.
    """

    def setUp(self):
        self.clock = Clock()
        self.deadlines = Deadlines(self.clock)
        self.expired = []

    def start(self, name, timeout=2.0):
        return self.deadlines.start(timeout, lambda: self.expired.append((name, self.clock.seconds())))

    def test_expires_at_its_time(self):
        """
        A deadline that is not ended expires exactly C{timeout} seconds after its start.
        """
        deadline = self.start("a")
        self.clock.advance(1.999)
        self.assertEqual(self.expired, [])
        self.clock.advance(0.001)
        self.assertEqual(self.expired, [("a", 2.0)])
        self.assertTrue(deadline.expired)
        deadline.end()  # the call ends afterwards: nothing more happens
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_ended_never_expire(self):
        """
        Ended deadlines never expire, and once none is running no timer is left.
        """
        first, second = self.start("a"), self.start("b")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        first.end()
        second.end()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(10)
        self.assertEqual(self.expired, [])
        self.assertFalse(first.expired)

    def test_each_at_its_own_time(self):
        """
        Deadlines started at different times expire in turn, each on time, the ended ones
        skipped, on one timer at a time.
        """
        self.start("a")
        self.clock.advance(0.5)
        ended = self.start("b")
        self.clock.advance(0.5)
        self.start("c")
        ended.end()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.pump([1.0, 0.5, 0.5, 0.5, 0.5])
        self.assertEqual(self.expired, [("a", 2.0), ("c", 3.0)])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_timeouts_apart(self):
        """
        Deadlines of different timeouts do not wait for one another.
        """
        self.start("long", timeout=5.0)
        self.start("short", timeout=1.0)
        self.clock.pump([1.0, 4.0])
        self.assertEqual(self.expired, [("short", 1.0), ("long", 5.0)])

    def test_stuck_call_keeps_the_queue_small(self):
        """
        Behind one call that never ends, thousands of ended ones do not pile up.
        """
        self.start("stuck", timeout=60.0)
        for _ in range(10 * _Queue.COMPACT_AT):
            self.start("quick", timeout=60.0).end()
        self.assertLessEqual(self.deadlines.pending(), 2 * _Queue.COMPACT_AT + 2)
        self.clock.advance(60)
        self.assertEqual(self.expired, [("stuck", 60.0)])

    def test_stop(self):
        """
        Stopping forgets every deadline and leaves no timer.
        """
        self.start("a")
        self.deadlines.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(5)
        self.assertEqual(self.expired, [])

    def test_empty_queues_go(self):
        """
        A timeout whose deadlines have all ended or expired leaves nothing behind: sequential
        calls each have a timeout of their own.
        """
        for index in range(100):
            self.start("step", timeout=1.0 + index / 1000).end()
        expiring = self.start("late", timeout=0.5)
        self.assertEqual(self.deadlines.queues(), 1)
        self.clock.advance(0.5)
        self.assertEqual(self.expired, [("late", 0.5)])
        self.assertTrue(expiring.expired)
        self.assertEqual(self.deadlines.queues(), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_ended_let_their_call_go(self):
        """
        An ended deadline waiting behind a running one no longer holds its call's canceller.
        """
        self.start("stuck")
        ended = self.start("quick")
        ended.end()
        self.assertIsNone(ended.on_expiry)
