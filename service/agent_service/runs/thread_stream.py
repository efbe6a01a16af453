"""A thread's stream: the events of every run of the thread, one run after the other, live.

It is built on the runs' own event logs (``agent_service.runs.events``), so it works from any
replica. An event's SSE id is ``<run id>:<number in that run's log>``: a client reconnecting with
that ``Last-Event-ID`` gets the rest of that run, then every run created after it. Without one, the
stream starts with what the thread's active run does from now on, then the runs that follow.

Between runs the thread's run list is polled (backing off to ``IDLE_POLL_SECONDS``): a thread
stream is for a UI following a conversation, and a new run is noticed within that time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from agent_service.runs import events
from agent_service.runs.engine import FOLLOW_IDLE_SECONDS, RunEngine
from agent_service.state.runs import TERMINAL_STATUSES
from agent_service.state.threads import ThreadNotFoundError

IDLE_POLL_SECONDS = 1.0
FIRST_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Position:
    """Where a thread stream is: a run and the last event number of it already sent."""

    run_id: str
    seq: int

    @classmethod
    def parse(cls, last_event_id: str) -> Position:
        run_id, sep, seq = last_event_id.rpartition(":")
        if not sep or not run_id or not seq.isdigit():
            raise ValueError(f"Last-Event-ID must be '<run id>:<event number>', got {last_event_id!r}")
        return cls(run_id, int(seq))

    def __str__(self) -> str:
        return f"{self.run_id}:{self.seq}"


async def follow_thread(
    engine: RunEngine, thread_id: str, resume: Position | None
) -> AsyncIterator[tuple[Position, events.Event] | None]:
    """(position, event) of the thread's runs in order; None when quiet (for SSE heartbeats). Ends
    when the thread is deleted."""
    streamed: set[str] = set()
    current: tuple[str, int | None] | None = None  # (run id, after) to follow next
    since_ms = time.time_ns() // 1_000_000
    if resume is not None:
        record = await engine.runs.find(thread_id, resume.run_id)
        if record is None:
            raise LookupError(f"run {resume.run_id} of Last-Event-ID is not a run of thread {thread_id}")
        current = (resume.run_id, resume.seq)
        since_ms = _created_ms(await engine.runs.listed_since(thread_id, 0), resume.run_id)
    else:
        active = [
            r
            for r in await engine.list(thread_id, limit=20, offset=0)
            if r["status"] not in TERMINAL_STATUSES
        ]
        if active:
            oldest = active[-1]["run_id"]
            current = (oldest, None)
            since_ms = _created_ms(await engine.runs.listed_since(thread_id, 0), oldest)
    poll = FIRST_POLL_SECONDS
    quiet = 0.0
    while True:
        if current is not None:
            run_id, after = current
            streamed.add(run_id)
            async for item in engine.follow(thread_id, run_id, after):
                if isinstance(item, events.End):
                    break
                yield None if item is None else (Position(run_id, item.seq), item)
            current, poll, quiet = None, FIRST_POLL_SECONDS, 0.0
        upcoming = [
            (r, ms) for r, ms in await engine.runs.listed_since(thread_id, since_ms) if r not in streamed
        ]
        if upcoming:
            run_id, since_ms = upcoming[0]
            current = (run_id, 0)
            continue
        try:
            await engine.threads.get(thread_id)
        except ThreadNotFoundError:
            return
        await asyncio.sleep(poll)
        quiet += poll
        poll = min(poll * 2, IDLE_POLL_SECONDS)
        if quiet >= FOLLOW_IDLE_SECONDS:
            quiet = 0.0
            yield None


def _created_ms(listed: list[tuple[str, int]], run_id: str) -> int:
    return next((ms for r, ms in listed if r == run_id), 0)
