"""
Tests for L{shadowtwist.memo}: results remembered by argument, within a bound.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.memo import BoundedMemo


class BoundedMemoTests(SynchronousTestCase):
    """
    Each distinct argument is built once while remembered; memory stays bounded.
    """

    def setUp(self):
        self.built = []

    def build(self, key):
        self.built.append(key)
        return len(key)

    def test_built_once(self):
        """
        A second call with an equal argument returns the first result without building.
        """
        memo = BoundedMemo(self.build, 10)
        self.assertEqual([memo(b"abc"), memo(b"abc"), memo(b"de")], [3, 3, 2])
        self.assertEqual(self.built, [b"abc", b"de"])

    def test_bounded(self):
        """
        When full, everything is forgotten before the next result is kept.
        """
        memo = BoundedMemo(self.build, 2)
        for key in (b"a", b"b", b"c"):
            memo(key)
        self.assertEqual(len(memo), 1)
        memo(b"a")
        self.assertEqual(self.built, [b"a", b"b", b"c", b"a"])

    def test_not_kept(self):
        """
        Results C{keep} refuses are built every time.
        """
        memo = BoundedMemo(self.build, 10, keep=lambda key, value: value < 3)
        memo(b"abc")
        memo(b"abc")
        memo(b"ab")
        memo(b"ab")
        self.assertEqual(self.built, [b"abc", b"abc", b"ab"])

    def test_unhashable(self):
        """
        An unhashable argument is built every time, never kept.
        """
        memo = BoundedMemo(self.build, 10)
        self.assertEqual(memo([1, 2]), 2)
        self.assertEqual(memo([1, 2]), 2)
        self.assertEqual(len(memo), 0)
        self.assertEqual(len(self.built), 2)
