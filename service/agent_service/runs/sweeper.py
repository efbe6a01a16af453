"""The sweeper: threads whose TTL ran out go, with everything of theirs, by one replica at a time.

Threads with a TTL sit in the expiry index (``threads:expiry``, see ``agent_service.state.threads``)
by when they expire, so a sweep reads only what is due, however many threads are stored: no scan of
the keyspace. Every replica runs ``Sweeper.serve``; the one holding the sweeper lease sweeps every
RETENTION_SWEEP_INTERVAL_SECONDS, in batches (renewing the lease between them), deleting a few
threads at a time.

An expired thread is checked against its record first (the index is moved on after the record,
so a stale entry is only rescheduled). A thread busy with a run is left until the run ends (its end
moves the expiry on). Strategy ``delete`` removes the thread as ``DELETE /threads/{id}`` does: its
checkpoints, pending writes, runs, results, event logs, values and record; ``keep_latest`` prunes
its checkpoints to the latest and keeps the thread, out of the index until it changes again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent_service.runs.lease import Lease
from agent_service.state.threads import expires_ms

if TYPE_CHECKING:
    from agent_service.runs.engine import RunEngine

log = logging.getLogger(__name__)

BATCH = 100
CONCURRENCY = 8
#: Held across a batch; renewed before each one.
LEASE_SECONDS = 30.0


@dataclass
class Swept:
    deleted: int = 0
    pruned: int = 0
    postponed: int = 0


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Sweeper:
    def __init__(self, engine: RunEngine, holder: str) -> None:
        self.engine = engine
        self.interval = engine.settings.retention_sweep_interval_seconds
        self._lease = Lease(engine.client, engine.keys.control("sweeper"), holder, LEASE_SECONDS)

    async def serve(self) -> None:
        while True:
            try:
                if await self._lease.hold():
                    swept = await self.sweep()
                    if swept.deleted or swept.pruned:
                        log.info("sweeper: %d threads deleted, %d pruned", swept.deleted, swept.pruned)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: try again next interval
                log.warning("sweeper: %s", error)
            await asyncio.sleep(self.interval)

    async def sweep(self) -> Swept:
        """Every thread expired by now (``hold`` the lease before, as ``serve`` does)."""
        swept, now = Swept(), _now_ms()
        while True:
            due = await self.engine.threads.expired(now, BATCH)
            # A few at a time: a deletion is round trips, not work, but the API shares this Redis.
            for start in range(0, len(due), CONCURRENCY):
                chunk = due[start : start + CONCURRENCY]
                await asyncio.gather(*(self._expire(thread_id, now, swept) for thread_id in chunk))
            if len(due) < BATCH or not await self._lease.hold():
                return swept

    async def _expire(self, thread_id: str, now: int, swept: Swept) -> None:
        threads = self.engine.threads
        record = await threads.record(thread_id)
        expires = expires_ms(record) if record is not None else None
        if expires is None:  # deleted, or its TTL removed, since it was indexed
            await threads.schedule_expiry(thread_id, None)
        elif expires > now:  # changed since: the index lagged behind the record
            await threads.schedule_expiry(thread_id, expires)
        elif await self.engine.busy(thread_id):
            await threads.schedule_expiry(thread_id, now + int(self.interval * 1000))
            swept.postponed += 1
        elif record is not None and record["ttl"]["strategy"] == "keep_latest":
            await self.engine.saver.aprune([thread_id], strategy="keep_latest")
            await threads.schedule_expiry(thread_id, None)
            swept.pruned += 1
        else:
            await self.engine.delete_thread(thread_id)
            swept.deleted += 1
