# -*- test-case-name: tests.test_deadlines -*-
"""
Deadlines for backend calls, without a reactor timer each.

Every backend call has a deadline, and nearly all of them end well before it. A Twisted
C{callLater} per call costs a C{DelayedCall}, a push onto the reactor's heap (each comparison
a Python method call) and a cancellation. Calls with the same timeout end their deadlines in
the order they started, so L{Deadlines} keeps them in one queue per timeout with one reactor
timer for the queue's head: starting a deadline appends to a deque, ending one sets a flag, and
the timer, when it fires, drops the ended entries, expires the due ones and waits for the next.
Ended entries behind a long-running call are compacted away once they are the larger part of a
queue, so a stuck call cannot make the queue grow with the request rate.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, Dict, List


class Deadline:
    """
    One call's deadline, from L{Deadlines.start}.

    @ivar expired: whether the deadline passed while the call was running (its C{on_expiry}
        was called).
    """

    __slots__ = ("at", "on_expiry", "running", "expired", "_queue")

    def __init__(self, at: float, on_expiry: Callable[[], Any], queue: "_Queue") -> None:
        self.at = at
        self.on_expiry = on_expiry
        self.running = True
        self.expired = False
        self._queue = queue

    def end(self) -> None:
        """
        The call ended: its deadline no longer matters.
        """
        if self.running:
            self.running = False
            self.on_expiry = None  # let the call's Deferred go while the entry waits to be dropped
            self._queue.ended_one()


class _Queue:
    """
    The running deadlines of one timeout, oldest first, and the timer for the oldest.
    """

    COMPACT_AT = 1024  # ended entries queued before compacting is considered

    def __init__(self, reactor: Any, timeout: float, emptied: Callable[["_Queue"], None]) -> None:
        self._reactor = reactor
        self.timeout = timeout
        self._emptied = emptied
        self.entries: Deque[Deadline] = deque()
        self.ended = 0  # ended entries still queued
        self.running = 0  # running entries
        self._timer: Any = None

    def ended_one(self) -> None:
        self.running -= 1
        if self.running:
            self.ended += 1
        else:  # nothing left to time: no timer stays behind, nor the queue itself
            self.stop()
            self._emptied(self)

    def add(self, deadline: Deadline) -> None:
        entries = self.entries
        while entries and not entries[0].running:
            entries.popleft()
            self.ended -= 1
        if self.ended > self.COMPACT_AT and self.ended * 2 > len(entries):
            self.entries = entries = deque(entry for entry in entries if entry.running)
            self.ended = 0
        entries.append(deadline)
        self.running += 1
        if self._timer is None:
            self._timer = self._reactor.callLater(max(deadline.at - self._reactor.seconds(), 0), self._due)

    def _due(self) -> None:
        self._timer = None
        entries = self.entries
        now = self._reactor.seconds()
        due: List[Deadline] = []
        while entries:
            head = entries[0]
            if not head.running:
                entries.popleft()
                self.ended -= 1
            elif head.at <= now:
                entries.popleft()
                self.running -= 1
                head.running = False
                head.expired = True
                due.append(head)
            else:
                self._timer = self._reactor.callLater(head.at - now, self._due)
                break
        if not self.running:
            self.stop()
            self._emptied(self)
        for deadline in due:
            deadline.on_expiry()

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self.entries.clear()
        self.ended = 0
        self.running = 0


class Deadlines:
    """
    The deadlines of one client's calls, grouped by timeout (see the module's docstring).
    """

    def __init__(self, reactor: Any) -> None:
        """
        @param reactor: provides C{seconds} and C{callLater}.
        """
        self._reactor = reactor
        self._queues: Dict[float, _Queue] = {}

    def start(self, timeout: float, on_expiry: Callable[[], Any]) -> Deadline:
        """
        Start a deadline C{timeout} seconds from now.

        @param on_expiry: called once when the deadline passes before L{Deadline.end}.
        """
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = _Queue(self._reactor, timeout, self._forget)
        deadline = Deadline(self._reactor.seconds() + timeout, on_expiry, queue)
        queue.add(deadline)
        return deadline

    def _forget(self, queue: _Queue) -> None:
        # An empty queue goes: sequential calls each have a timeout of their own.
        if self._queues.get(queue.timeout) is queue:
            del self._queues[queue.timeout]

    def pending(self) -> int:
        """
        How many deadlines are still queued (running, or ended but not yet dropped).
        """
        return sum(len(queue.entries) for queue in self._queues.values())

    def queues(self) -> int:
        """
        How many timeouts have deadlines running.
        """
        return len(self._queues)

    def stop(self) -> None:
        """
        Forget every deadline and cancel the timers (the client is closing).
        """
        for queue in self._queues.values():
            queue.stop()
        self._queues.clear()
