"""Crons: runs on a schedule, fired by one scheduler for the whole deployment.

    crons       hash  cron id -> JSON cron (the LangGraph Server shape, plus its tenant)
    crons-due   zset  cron id -> when it fires next (ms); only enabled crons before their end_time
    scheduler   string  the replica holding the scheduler lease

Every replica runs ``CronScheduler.serve``; the one holding the lease (renewed each tick, taken over
by another replica within ``LEASE_SECONDS`` when it stops) fires what is due. A firing submits the
run under an id derived from the cron and the due time, so a scheduler that dies between firing
and moving the cron on cannot make its successor fire it twice. A cron whose ticks were all missed
while no replica ran fires once when the scheduler is back, then continues from the present
(missed ticks are not replayed one by one).

Schedules are standard 5-field cron expressions (croniter), or 6 fields with seconds last (an
extension of LangGraph Server's), evaluated in the cron's IANA timezone (UTC when unset), so
"0 9 * * *" in Europe/Paris fires at 09:00 Paris time across DST changes.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from croniter import croniter

from agent_service.api.schemas import RunCreate
from agent_service.runs.lease import Lease
from agent_service.serialization import dumps, now_iso
from agent_service.state import atomic

if TYPE_CHECKING:
    from agent_service.runs.engine import RunEngine

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
LEASE_SECONDS = 10.0
#: Namespace of the ids of runs fired by crons (uuid5 of cron id and due time).
CRON_RUN_NAMESPACE = uuid.UUID("3f1c2d9e-6b8a-4a57-9a4e-1c2b3d4e5f60")

# KEYS: crons-due. ARGV: cron id, the due time that fired, the next one (-1: none).
_ADVANCE = """
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or -1) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '-1' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
"""


class CronError(ValueError):
    """A cron field is wrong; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError("timezone", f"unknown IANA timezone {name!r}") from None


def check_schedule(schedule: str) -> str:
    if len(schedule.split()) not in (5, 6) or not croniter.is_valid(schedule):
        raise CronError(
            "schedule",
            f"{schedule!r} is not a cron expression: 5 fields (e.g. '*/5 * * * *'), or 6 with seconds last",
        )
    return schedule


def next_fire(cron: dict[str, Any], after: datetime) -> datetime | None:
    """When ``cron`` fires next after ``after``, or None (disabled, or past its end_time)."""
    if not cron.get("enabled", True):
        return None
    local = after.astimezone(zone(cron.get("timezone")))
    fire = croniter(cron["schedule"], local).get_next(datetime).astimezone(UTC)
    end = cron.get("end_time")
    if end and fire > datetime.fromisoformat(end).astimezone(UTC):
        return None
    return fire


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


class CronStore:
    def __init__(self, engine: RunEngine) -> None:
        self.client = engine.client
        self.crons = engine.keys.control("crons")
        self.due = engine.keys.control("crons-due")
        self._advance = engine.client.register_script(_ADVANCE)

    async def save(self, cron: dict[str, Any]) -> dict[str, Any]:
        fire = next_fire(cron, datetime.now(UTC))
        cron = {**cron, "next_run_date": fire.isoformat() if fire else None}
        schedule = (
            ("ZREM", self.due, cron["cron_id"])
            if fire is None
            else ("ZADD", self.due, _ms(fire), cron["cron_id"])
        )
        await atomic.execute(self.client, [("HSET", self.crons, cron["cron_id"], dumps(cron)), schedule])
        return cron

    async def get(self, cron_id: str) -> dict[str, Any] | None:
        raw = await self.client.hget(self.crons, cron_id)
        return orjson.loads(raw) if raw is not None else None

    async def all(self) -> list[dict[str, Any]]:
        return [orjson.loads(raw) for raw in (await self.client.hgetall(self.crons)).values()]

    async def delete(self, cron_id: str) -> bool:
        deleted, _ = await atomic.execute(
            self.client, [("HDEL", self.crons, cron_id), ("ZREM", self.due, cron_id)]
        )
        return bool(deleted)

    async def due_now(self, now_ms: int) -> list[tuple[str, int]]:
        found = await self.client.zrangebyscore(self.due, "-inf", now_ms, start=0, num=100, withscores=True)
        return [(cron_id.decode(), int(score)) for cron_id, score in found]

    async def advance(self, cron_id: str, fired_ms: int, fire: datetime | None) -> None:
        """Moves the cron on from the tick that fired (unless someone changed it meanwhile)."""
        await self._advance(keys=[self.due], args=[cron_id, fired_ms, _ms(fire) if fire else -1])


class CronScheduler:
    def __init__(self, engine: RunEngine, store: CronStore, holder: str) -> None:
        self.engine = engine
        self.store = store
        self.holder = holder
        self._lease = Lease(engine.client, engine.keys.control("scheduler"), holder, LEASE_SECONDS)

    async def serve(self) -> None:
        while True:
            try:
                if await self._lease.hold():
                    await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away or a bad cron: try again next tick
                log.warning("cron scheduler: %s", error)
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self) -> int:
        fired = 0
        for cron_id, due_ms in await self.store.due_now(time.time_ns() // 1_000_000):
            cron = await self.store.get(cron_id)
            if cron is None:
                await self.store.advance(cron_id, due_ms, None)
                continue
            await self._fire(cron, due_ms)
            fire = next_fire(cron, datetime.now(UTC))
            await self.store.advance(cron_id, due_ms, fire)
            await self.store.client.hset(
                self.store.crons,
                cron_id,
                dumps({**cron, "next_run_date": fire.isoformat() if fire else None, "updated_at": now_iso()}),
            )
            fired += 1
        return fired

    async def _fire(self, cron: dict[str, Any], due_ms: int) -> None:
        payload = dict(cron["payload"])
        thread_id = cron.get("thread_id")
        if thread_id is None:
            payload["on_completion"] = cron.get("on_run_completed") or "delete"
        else:
            payload.setdefault("multitask_strategy", "enqueue")
            if not await self.engine.threads.exists(thread_id):
                log.warning("cron %s: its thread %s is gone; not firing", cron["cron_id"], thread_id)
                return
        body = RunCreate.model_validate({**payload, "assistant_id": cron["assistant_id"]})
        run_id = str(uuid.uuid5(CRON_RUN_NAMESPACE, f"{cron['cron_id']}:{due_ms}"))
        assistant = await self.engine.resolve_assistant(cron["assistant_id"], cron["tenant"])
        identity = {"tenant": cron["tenant"], "user": cron.get("user_id") or "cron"}
        await self.engine.submit(thread_id, body, assistant=assistant, run_id=run_id, **identity)
        log.info("cron %s fired run %s", cron["cron_id"], run_id)
