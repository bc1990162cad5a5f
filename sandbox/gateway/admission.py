"""Admission control: a budget of in-flight tokens and sequences, and a bounded FIFO queue.

A request costs ``prompt_tokens + max_tokens`` (what it may hold in the engine's KV cache) and
one sequence. It is admitted at once when both fit and nobody waits before it; otherwise it
waits in the queue (first come, first served, so a big request is not starved by small ones)
until room frees up or ``queue_timeout_s`` passes. A full queue, a timeout, or a request larger
than the whole budget is refused with a reason that names it.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass

from sandbox.exceptions import SandboxError
from sandbox.gateway.config import AdmissionOptions

__all__ = ["Admission", "Rejected", "Ticket"]


class Rejected(SandboxError):
    """Refused by admission control; ``reason`` is a value of the rejections metric's label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class Ticket:
    tokens: int


@dataclass
class _Waiter:
    tokens: int
    future: asyncio.Future[None]


class Admission:
    def __init__(
        self, options: AdmissionOptions, on_change: Callable[[], None] = lambda: None
    ) -> None:
        self.options = options
        self._on_change = on_change
        self.tokens = 0
        self.sequences = 0
        self._queue: collections.deque[_Waiter] = collections.deque()

    @property
    def queued(self) -> int:
        return len(self._queue)

    def configure(self, options: AdmissionOptions) -> None:
        self.options = options
        self._wake()

    def _fits(self, tokens: int) -> bool:
        o = self.options
        return (
            self.tokens + tokens <= o.max_in_flight_tokens and self.sequences + 1 <= o.max_sequences
        )

    def _take(self, tokens: int) -> Ticket:
        self.tokens += tokens
        self.sequences += 1
        self._on_change()
        return Ticket(tokens)

    async def acquire(self, tokens: int) -> Ticket:
        o = self.options
        if not o.enabled:
            # Still counted, so the in-flight gauges mean the same thing either way.
            return self._take(tokens)
        if tokens > o.max_in_flight_tokens:
            raise Rejected(
                "tokens",
                f"request needs {tokens} tokens (prompt + max_tokens); the budget is {o.max_in_flight_tokens}",
            )
        if not self._queue and self._fits(tokens):
            return self._take(tokens)
        if len(self._queue) >= o.max_queue:
            if o.max_queue == 0:
                reason = "sequences" if self.sequences + 1 > o.max_sequences else "tokens"
                raise Rejected(reason, f"over the in-flight {reason} limit and queueing is off")
            raise Rejected("queue_full", f"admission queue is full ({o.max_queue} waiting)")
        waiter = _Waiter(tokens, asyncio.get_running_loop().create_future())
        self._queue.append(waiter)
        self._on_change()
        try:
            await asyncio.wait_for(asyncio.shield(waiter.future), timeout=o.queue_timeout_s)
        except TimeoutError:
            if waiter.future.done():  # admitted at the very moment the wait ended
                return Ticket(tokens)
            self._queue.remove(waiter)
            self._wake()
            self._on_change()
            raise Rejected(
                "queue_timeout", f"waited {o.queue_timeout_s:g} s for room without getting it"
            ) from None
        except asyncio.CancelledError:
            # The client left while waiting: give back the room if it had just been granted.
            if waiter.future.done():
                self.release(Ticket(tokens))
            elif waiter in self._queue:
                self._queue.remove(waiter)
                self._wake()
                self._on_change()
            raise
        return Ticket(tokens)

    def release(self, ticket: Ticket) -> None:
        self.tokens -= ticket.tokens
        self.sequences -= 1
        self._wake()
        self._on_change()

    def _wake(self) -> None:
        # Strict FIFO: only the head may go, then the next, while they fit.
        while self._queue and (self._fits(self._queue[0].tokens) or not self.options.enabled):
            waiter = self._queue.popleft()
            if waiter.future.done():
                continue
            self._take(waiter.tokens)
            waiter.future.set_result(None)
