"""Lanes: event-driven work goes ahead of resync work for the operator's shared capacity.

A restart (or newly elected leader) resumes every resource at once: at 2,000 that is minutes of
LISTs and GETs, and on one FIFO queue a resource created meanwhile waited behind all of them, for
its reconcile slot and then for each of its requests. client-go keeps the two apart (a controller's
resync and its events are separate work, the apiserver's priority and fairness separates writes);
here one bounded pool is shared by lanes served in order:

* ``WRITE``: any write (a no-op resync sends none): it finishes work already done;
* ``EVENT``: a create, a spec update, a child's or a Secret's event, the budget watcher;
* ``RESYNC``: a resume of a resource already reconciled at its generation, the periodic resync.

A free slot goes to the oldest waiter of the first lane that has one, and ``RESYNC`` holds at most
``background_share`` of the slots, so an event never waits for a resync's request to return. The
lane is a context variable: set around a handler's work (``use``), it reaches every request that
work sends, including those of tasks it starts (a task copies the context it was created in).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextvars import ContextVar
from typing import Any


class Lane(enum.IntEnum):
    """Served in this order (lower first)."""

    WRITE = 0
    EVENT = 1
    RESYNC = 2


_CURRENT: ContextVar[Lane] = ContextVar("shepherd_lane", default=Lane.EVENT)


def current() -> Lane:
    """The lane of the work under way (``EVENT`` unless set otherwise)."""
    return _CURRENT.get()


@contextlib.contextmanager
def use(lane: Lane) -> Iterator[None]:
    """Run the enclosed work (and the tasks it starts) in ``lane``."""
    token = _CURRENT.set(lane)
    try:
        yield
    finally:
        _CURRENT.reset(token)


def for_cause(reason: str, body: Mapping[str, Any]) -> Lane:
    """The lane of kopf's reconcile handler for ``reason`` (create, update, resume): ``RESYNC`` for
    a create or resume of a resource whose status already reports its generation (after a restart
    kopf, its bookkeeping in memory, calls every resource "created": a check that usually finds
    nothing to do), else ``EVENT`` (an update, a new resource, a spec changed while no operator
    ran)."""
    if reason == "update":
        return Lane.EVENT
    generation = (body.get("metadata") or {}).get("generation")
    observed = (body.get("status") or {}).get("observedGeneration")
    return Lane.RESYNC if observed is not None and observed == generation else Lane.EVENT


def background_share(size: int) -> int:
    """Slots ``RESYNC`` may hold out of ``size``: three quarters (at least one), the rest kept free
    for events and writes."""
    return max(1, size * 3 // 4)


class Slots:
    """At most ``size`` holders at once; waiters served by lane, then first come first served;
    ``RESYNC`` holds at most ``background_share(size)``."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self.size = size
        self._limits = {Lane.WRITE: size, Lane.EVENT: size, Lane.RESYNC: background_share(size)}
        self._held = dict.fromkeys(Lane, 0)
        self._waiting: dict[Lane, deque[asyncio.Future[None]]] = {lane: deque() for lane in Lane}

    def held(self, lane: Lane) -> int:
        return self._held[lane]

    def waiting(self, lane: Lane) -> int:
        return len(self._waiting[lane])  # a cancelled waiter leaves its queue as it goes

    def _free(self, lane: Lane) -> bool:
        return sum(self._held.values()) < self.size and self._held[lane] < self._limits[lane]

    async def acquire(self, lane: Lane) -> None:
        if self._free(lane) and not any(self.waiting(ahead) for ahead in Lane if ahead <= lane):
            self._held[lane] += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[lane].append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # granted as it was cancelled: hand it on
                self.release(lane)
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._waiting[lane].remove(waiter)

    def release(self, lane: Lane) -> None:
        if self._held[lane] <= 0:
            raise RuntimeError(f"release of a {lane.name} slot not held")
        self._held[lane] -= 1
        self._grant()

    def _grant(self) -> None:
        for lane in Lane:
            queue = self._waiting[lane]
            while queue and self._free(lane):
                waiter = queue.popleft()
                if not waiter.done():
                    self._held[lane] += 1
                    waiter.set_result(None)

    @contextlib.asynccontextmanager
    async def hold(self, lane: Lane) -> AsyncIterator[None]:
        await self.acquire(lane)
        try:
            yield
        finally:
            self.release(lane)
