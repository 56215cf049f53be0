# -*- test-case-name: tests.test_demo -*-
"""
Demo backends: version 1 and version 2 of a small user API, so shadow results show at once.

v2 answers like v1 except for a field or two (a renamed plan, an extra field, an occasional
status difference), which is exactly what a shadow comparison should surface. Run them with the
gateway (C{twistd -n shadowgw --config etc/krakend.json --demo}) or alone
(C{python -m shadowtwist.demo}).
"""

from __future__ import annotations

import json
from typing import Any, Optional

from twisted.application import strports
from twisted.web.resource import Resource
from twisted.web.server import Site

from shadowtwist.accesslog import QuietSite

V1_LISTEN = "tcp:8001:interface=127.0.0.1"
V2_LISTEN = "tcp:8002:interface=127.0.0.1"

_NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Barbara Liskov", "Edsger Dijkstra"]


def user(user_id: int, version: int) -> dict:
    """
    The user document a given API version returns.

    @param user_id: the user's id.
    @param version: 1 or 2.
    """
    document = {
        "id": user_id,
        "name": _NAMES[user_id % len(_NAMES)],
        "email": f"user{user_id}@example.com",
        "plan": "free" if user_id % 2 else "pro",
    }
    if version == 2:
        document["plan"] = "starter" if user_id % 2 else "pro"  # v2 renamed the free plan
        document["display_name"] = document["name"].split()[0]
    return document


def orders(user_id: int, version: int) -> dict:
    """
    A user's orders; v2 formats prices as strings (a classic migration bug).
    """
    items = [{"order": user_id * 100 + n, "price": 9.5 * (n + 1)} for n in range(2)]
    if version == 2:
        for item in items:
            item["price"] = f"{item['price']:.2f}"
    return {"user": user_id, "orders": items}


class _Api(Resource):
    isLeaf = True

    def __init__(self, version: int) -> None:
        super().__init__()
        self._version = version

    def render_GET(self, request: Any) -> bytes:
        parts = [p.decode("utf-8", "replace") for p in request.postpath]
        answer = self._answer(parts)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"x-api-version", str(self._version).encode())
        if answer is None:
            request.setResponseCode(404)
            return b'{"error": "not found"}'
        return json.dumps(answer).encode("utf-8")

    def _answer(self, parts: list) -> Optional[dict]:
        if len(parts) == 2 and parts[1].isdigit():
            user_id = int(parts[1])
            if parts[0] == "users":
                if self._version == 2 and user_id == 13:
                    return None  # v2 lost user 13: a status difference to spot
                return user(user_id, self._version)
            if parts[0] == "orders":
                return orders(user_id, self._version)
        return None


def demo_site(version: int) -> Site:
    """
    A twisted.web Site serving one API version, without access log lines so that the
    gateway's own log stays readable.
    """
    site = QuietSite(_Api(version))
    site.noisy = False
    return site


def demo_services(reactor: Any, v1: str = V1_LISTEN, v2: str = V2_LISTEN) -> list:
    """
    The two demo listeners as services.
    """
    return [strports.service(v1, demo_site(1), reactor=reactor),
            strports.service(v2, demo_site(2), reactor=reactor)]


def main() -> None:
    """
    Serve both demo backends until interrupted.
    """
    import sys

    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    for service in demo_services(reactor):
        service.startService()
    reactor.run()


if __name__ == "__main__":
    main()
