"""A run's event log: every event of the run, in order, numbered, readable from any replica.

The log is a Redis stream per run (``ServiceKeys.events``). Events are numbered 1, 2, 3... across
attempts (a run resumed elsewhere continues the numbering), and that number is the SSE ``id:``, so a
client that reconnects with ``Last-Event-ID: n`` gets exactly the events after n, wherever it lands.

To keep Redis traffic low, events written while the previous write is in flight are batched into
one stream entry: the entry's id is ``0-<number of its last event>`` and it holds ``n`` (the number of
its first event) and ``e`` (the events, packed). The log ends with an entry holding ``end`` (the run's
final status); it then expires after the retention time. At most ``max_entries`` entries are kept
(oldest dropped first), so a runaway stream cannot fill Redis.

The replica executing a run also keeps its events in memory (``LocalLog``): followers on that
replica read them there, with no round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import ormsgpack
from redis.exceptions import RedisError

from agent_service.state import atomic
from agent_service.state.connection import AsyncClient

log = logging.getLogger(__name__)

#: Read page size and idle wait of a follower on another replica.
READ_COUNT = 200
RETRY_SECONDS = (0.05, 0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class Event:
    seq: int
    name: str
    data: bytes  # JSON


@dataclass(frozen=True)
class End:
    status: str


def entry_id(seq: int) -> str:
    return f"0-{seq}"


def _seq(entry: bytes | str) -> int:
    text = entry.decode() if isinstance(entry, bytes) else entry
    return int(text.partition("-")[2])


def decode(entry_fields: dict[bytes, bytes]) -> list[Event] | End:
    if b"end" in entry_fields:
        return End(entry_fields[b"end"].decode())
    first = int(entry_fields[b"n"])
    flat = ormsgpack.unpackb(entry_fields[b"e"])
    return [Event(first + i, flat[2 * i], flat[2 * i + 1]) for i in range(len(flat) // 2)]


@dataclass
class LocalLog:
    """The events of the attempt running on this replica, for followers on this replica."""

    first_seq: int = 1
    events: list[Event] = field(default_factory=list)
    ended: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def covers(self, after: int) -> bool:
        return after >= self.first_seq - 1

    async def follow(self, after: int, idle_seconds: float) -> AsyncIterator[Event | End | None]:
        """Events numbered above ``after``, then ``End``; ``None`` after each idle period."""
        index = max(0, after - self.first_seq + 1)
        while True:
            while index < len(self.events):
                yield self.events[index]
                index += 1
            if self.ended is not None:
                yield End(self.ended)
                return
            self.changed.clear()
            try:
                async with asyncio.timeout(idle_seconds):
                    await self.changed.wait()
            except TimeoutError:
                yield None


class EventWriter:
    """Numbers and publishes a run's events: to the local log at once, to Redis in batches."""

    def __init__(self, client: AsyncClient, key: str, *, last_seq: int, max_entries: int) -> None:
        self.client = client
        self.key = key
        self.max_entries = max_entries
        self.local = LocalLog(first_seq=last_seq + 1)
        self._seq = last_seq
        self._unsent: list[Event] = []
        self._flusher: asyncio.Task | None = None
        self._ending = False  # the events still unsent go with the end marker

    @property
    def last_seq(self) -> int:
        return self._seq

    def publish(self, name: str, data: bytes) -> Event:
        self._seq += 1
        event = Event(self._seq, name, data)
        self.local.events.append(event)
        self.local.changed.set()
        self._unsent.append(event)
        if not self._ending and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.create_task(self._flush())
        return event

    async def _flush(self) -> None:
        while self._unsent and not self._ending:
            batch, self._unsent = self._unsent, []
            for delay in (*RETRY_SECONDS, None):
                try:
                    await self.client.execute_command(*self._xadd(batch))
                    break
                except RedisError as error:
                    if delay is None:
                        log.error(
                            "events %d-%d of %s were not stored: %s",
                            batch[0].seq,
                            batch[-1].seq,
                            self.key,
                            error,
                        )
                        break
                    await asyncio.sleep(delay)

    def _xadd(self, batch: list[Event]) -> tuple[Any, ...]:
        """One stream entry holding ``batch``, named by its last event."""
        flat: list[str | bytes] = []
        for event in batch:
            flat += [event.name, event.data]
        return self._entry(batch[-1].seq, "n", batch[0].seq, "e", ormsgpack.packb(flat))

    def _entry(self, seq: int, *fields: Any) -> tuple[Any, ...]:
        return ("XADD", self.key, "MAXLEN", "~", self.max_entries, entry_id(seq), *fields)

    async def drain(self) -> None:
        """Waits until every event published so far is in Redis (or given up on)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def end(self, status: str, ttl_seconds: int) -> None:
        """The final marker, then the log expires after ``ttl_seconds``."""
        commands = await self.end_commands(status, ttl_seconds)
        try:
            await atomic.execute(self.client, commands)
        finally:
            self.ended(status)

    async def end_commands(self, status: str, ttl_seconds: int) -> list[tuple[Any, ...]]:
        """``end`` as commands to send with others (they share the run's slot): the events not stored
        yet, the final marker, the expiry. Waits for the batch in flight, which must land first. Call
        ``ended`` once they are sent (or failed: local followers end either way)."""
        self._ending = True
        await self.drain()
        commands = [self._xadd(self._unsent)] if self._unsent else []
        self._unsent = []
        return [*commands, self._entry(self._seq + 1, "end", status), ("EXPIRE", self.key, ttl_seconds)]

    def ended(self, status: str) -> None:
        """The log's end is stored: local followers get it too."""
        self.local.ended = status
        self.local.changed.set()

    def abandon(self) -> None:
        """The attempt stopped without an end (hand-off, lost lease): local followers stop."""
        self.local.ended = self.local.ended or "handed_off"
        self.local.changed.set()


async def last_seq(client: AsyncClient, key: str) -> tuple[int, str | None]:
    """(number of the last event stored, final status if the log has ended)."""
    entries = await client.xrevrange(key, count=1)
    if not entries:
        return 0, None
    entry, fields = entries[0]
    ended = decode(fields)
    return (_seq(entry) - 1, ended.status) if isinstance(ended, End) else (_seq(entry), None)


async def read(
    client: AsyncClient, key: str, after: int, *, block_seconds: float
) -> AsyncIterator[Event | End | None]:
    """The stored events numbered above ``after`` and then new ones as they come, until ``End``;
    ``None`` after each ``block_seconds`` without news (the caller checks the run is still alive)."""
    cursor = entry_id(after)
    caught_up = False  # XRANGE pages until the log's end, then XREAD BLOCK for what comes next
    while True:
        if not caught_up:
            # Entries are named by their last event: the first one past `after` may begin at or below it.
            entries = await client.xrange(key, min="(" + cursor, count=READ_COUNT)
            caught_up = len(entries) < READ_COUNT
        else:
            reply = await client.xread({key: cursor}, count=READ_COUNT, block=int(block_seconds * 1000))
            if not reply:
                yield None
                continue
            entries = reply[0][1]
        for entry, fields in entries:
            decoded = decode(fields)
            if isinstance(decoded, End):
                yield decoded
                return
            for event in decoded:
                if event.seq > after:
                    yield event
                    after = event.seq
            cursor = _text(entry)


async def stored(client: AsyncClient, key: str) -> AsyncIterator[Event | End]:
    """The log as stored now, page by page, without waiting for more (an export)."""
    cursor = "-"
    while True:
        entries = await client.xrange(key, min=cursor, count=READ_COUNT)
        for _, fields in entries:
            decoded = decode(fields)
            for item in [decoded] if isinstance(decoded, End) else decoded:
                yield item
        if len(entries) < READ_COUNT:
            return
        cursor = "(" + _text(entries[-1][0])


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
