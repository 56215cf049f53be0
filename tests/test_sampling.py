"""
Tests for L{shadowtwist.sampling}.
"""

from __future__ import annotations

import random

from twisted.trial.unittest import SynchronousTestCase

from shadowtwist.sampling import BUCKETS, Sampler, StickyKey, parse_sticky_key, sticky_bucket


class ParseStickyKeyTests(SynchronousTestCase):
    """
    Tests for L{parse_sticky_key}.
    """

    def test_forms(self) -> None:
        """
        The four accepted forms parse into source and name.
        """
        self.assertEqual(parse_sticky_key("header:X-User-Id"), StickyKey("header", "X-User-Id"))
        self.assertEqual(parse_sticky_key("cookie:session"), StickyKey("cookie", "session"))
        self.assertEqual(parse_sticky_key("query:user"), StickyKey("query", "user"))
        self.assertEqual(parse_sticky_key("client_ip"), StickyKey("client_ip"))

    def test_str_round_trip(self) -> None:
        """
        A key prints as the spec it came from.
        """
        for spec in ("header:X-User-Id", "cookie:s", "query:u", "client_ip"):
            self.assertEqual(str(parse_sticky_key(spec)), spec)

    def test_errors(self) -> None:
        """
        Unknown sources, missing or blank names and non-strings are refused with the accepted
        forms in the message.
        """
        for spec in ("jwt:sub", "header", "client_ip:1", "ip", 5, None):
            error = self.assertRaises(ValueError, parse_sticky_key, spec)
            self.assertIn("header:NAME, cookie:NAME, query:NAME or client_ip", str(error))
        for spec in ("header:", "cookie: x", "query:a b"):
            error = self.assertRaises(ValueError, parse_sticky_key, spec)
            self.assertIn("name without spaces", str(error))


class ExtractTests(SynchronousTestCase):
    """
    Tests for L{StickyKey.extract}.
    """

    def extract(self, spec: str, **request: object) -> object:
        """
        Extract a key from a request given by keyword arguments.

        @param spec: the sticky key spec.
        @param request: C{headers}, C{cookies}, C{query}, C{client_ip}; missing ones are empty.
        @return: the extracted value.
        """
        return parse_sticky_key(spec).extract(
            request.get("headers", {}),
            request.get("cookies", {}),
            request.get("query", {}),
            request.get("client_ip", "10.0.0.1"),
        )

    def test_header_case_insensitive(self) -> None:
        """
        Header names match in any case; the first value is used.
        """
        headers = {"x-user-id": ["u1", "u2"]}
        self.assertEqual(self.extract("header:X-User-Id", headers=headers), "u1")

    def test_cookie_and_query(self) -> None:
        """
        Cookies and query parameters are read by exact name.
        """
        self.assertEqual(self.extract("cookie:sid", cookies={"sid": "abc"}), "abc")
        self.assertIsNone(self.extract("cookie:SID", cookies={"sid": "abc"}))
        self.assertEqual(self.extract("query:user", query={"user": ["7", "8"]}), "7")

    def test_client_ip(self) -> None:
        """
        C{client_ip} takes the client's address.
        """
        self.assertEqual(self.extract("client_ip", client_ip="192.0.2.7"), "192.0.2.7")

    def test_missing_and_empty(self) -> None:
        """
        An absent key, or an empty value, gives C{None}.
        """
        self.assertIsNone(self.extract("header:X-User-Id"))
        self.assertIsNone(self.extract("header:X-User-Id", headers={"X-User-Id": [""]}))
        self.assertIsNone(self.extract("query:user", query={"user": []}))


class SamplerTests(SynchronousTestCase):
    """
    Tests for L{Sampler}.
    """

    def test_ten_percent_random(self) -> None:
        """
        At 10 %, 20,000 random decisions shadow between 9 % and 11 % of the requests.
        """
        sampler = Sampler(10, rng=random.Random(1234))
        taken = sum(sampler.decide() for _ in range(20000))
        self.assertTrue(1800 <= taken <= 2200, taken)

    def test_decimal_percentage(self) -> None:
        """
        Decimal percentages are honoured: 2.5 % of 40,000 lands within half a point.
        """
        sampler = Sampler(2.5, rng=random.Random(99))
        taken = sum(sampler.decide() for _ in range(40000))
        self.assertTrue(800 <= taken <= 1200, taken)

    def test_all_and_nothing(self) -> None:
        """
        100 % always shadows and 0 % never does, with or without a key.
        """
        key = parse_sticky_key("header:X-User-Id")
        always, never = Sampler(100, key), Sampler(0, key)
        for value in ("a", "b", None):
            self.assertTrue(always.decide(value))
            self.assertFalse(never.decide(value))

    def test_sticky_same_decision(self) -> None:
        """
        A sticky key always gets the same decision, whatever the random generator says and in
        every new sampler (as after a restart).
        """
        key = parse_sticky_key("header:X-User-Id")
        for user in ("alice", "bob", "carol", "dave", "erin"):
            decisions = {
                Sampler(10, key, rng=random.Random(seed)).decide(user) for seed in range(20)
            }
            self.assertEqual(len(decisions), 1, user)
            self.assertEqual(decisions, {sticky_bucket(user) < 1000})

    def test_sticky_share(self) -> None:
        """
        Over many distinct keys the sticky share is within a point of the percentage.
        """
        sampler = Sampler(10, parse_sticky_key("client_ip"), rng=random.Random(0))
        taken = sum(sampler.decide(f"user-{i}") for i in range(20000))
        self.assertTrue(1800 <= taken <= 2200, taken)

    def test_sticky_ramp_up_keeps_users(self) -> None:
        """
        Raising the percentage only adds keys: every key in at 5 % is still in at 20 %.
        """
        key = parse_sticky_key("cookie:sid")
        low, high = Sampler(5, key), Sampler(20, key)
        users = [f"u{i}" for i in range(2000)]
        self.assertTrue(all(high.decide(u) for u in users if low.decide(u)))

    def test_missing_key_falls_back_to_random(self) -> None:
        """
        Without a key value the decision is random at the configured share.
        """
        sampler = Sampler(10, parse_sticky_key("header:X-User-Id"), rng=random.Random(7))
        taken = sum(sampler.decide(None) for _ in range(20000))
        self.assertTrue(1800 <= taken <= 2200, taken)

    def test_without_sticky_key_value_is_ignored(self) -> None:
        """
        Without a sticky key, passing a value does not pin the decision.
        """
        sampler = Sampler(50, rng=random.Random(3))
        self.assertEqual({sampler.decide("same") for _ in range(100)}, {True, False})

    def test_stable_hash(self) -> None:
        """
        The bucket is a fixed function of the value (BLAKE2b), not Python's salted C{hash()}, so
        it is the same in every process.
        """
        self.assertEqual(sticky_bucket("alice"), 4729)
        self.assertEqual(sticky_bucket("user-42"), 598)
        self.assertTrue(all(0 <= sticky_bucket(str(i)) < BUCKETS for i in range(1000)))

    def test_invalid_percentage(self) -> None:
        """
        Percentages outside 0..100, strings, booleans and NaN are refused.
        """
        for value in (-1, 100.5, "10", True, float("nan"), None):
            self.assertRaises(ValueError, Sampler, value)
