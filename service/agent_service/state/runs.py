"""Run records and the per-thread run lock, in Redis so that any replica can answer for any run.

<p>:run:<id>                string  JSON record
<p>:thread_runs:<thread>    zset    run ids of a thread by creation time (ms)
<p>:thread_lock:<thread>    string  id of the run holding the thread (expires with the run timeout)
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson
import redis.asyncio as aredis

from agent_service.serialization import dumps, now_iso

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
TERMINAL_STATUSES = frozenset({"error", "success", "timeout", "interrupted"})

# Release only our own lock: a lock that expired and was retaken belongs to someone else.
_RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_REFRESH_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class RunNotFoundError(LookupError):
    pass


class RunStore:
    def __init__(self, client: aredis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix

    def _record_key(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}"

    def _thread_runs_key(self, thread_id: str) -> str:
        return f"{self.prefix}:thread_runs:{thread_id}"

    def _lock_key(self, thread_id: str) -> str:
        return f"{self.prefix}:thread_lock:{thread_id}"

    async def create(self, run: dict[str, Any]) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(self._record_key(run["run_id"]), dumps(run))
            pipe.zadd(self._thread_runs_key(run["thread_id"]), {run["run_id"]: time.time_ns() // 1_000_000})
            await pipe.execute()

    async def get(self, run_id: str, thread_id: str | None = None) -> dict[str, Any]:
        raw = await self.client.get(self._record_key(run_id))
        run = orjson.loads(raw) if raw is not None else None
        if run is None or (thread_id is not None and run["thread_id"] != thread_id):
            raise RunNotFoundError(
                f"run {run_id} not found" + (f" on thread {thread_id}" if thread_id else "")
            )
        return run

    async def set_status(self, run_id: str, status: RunStatus) -> None:
        run = await self.get(run_id)
        await self.client.set(
            self._record_key(run_id), dumps({**run, "status": status, "updated_at": now_iso()})
        )

    async def list(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None = None
    ) -> list[dict[str, Any]]:
        key = self._thread_runs_key(thread_id)
        if status is None:
            ids = await self.client.zrange(key, offset, offset + limit - 1, desc=True)
            return await self._fetch(ids)
        runs = [
            r
            for r in await self._fetch(await self.client.zrange(key, 0, -1, desc=True))
            if r["status"] == status
        ]
        return runs[offset : offset + limit]

    async def _fetch(self, run_ids: list[bytes]) -> list[dict[str, Any]]:
        if not run_ids:
            return []
        raws = await self.client.mget([self._record_key(r.decode()) for r in run_ids])
        return [orjson.loads(raw) for raw in raws if raw is not None]

    async def delete(self, run_id: str) -> None:
        run = await self.get(run_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._record_key(run_id))
            pipe.zrem(self._thread_runs_key(run["thread_id"]), run_id)
            await pipe.execute()

    async def delete_for_thread(self, thread_id: str) -> list[str]:
        run_ids = [r.decode() for r in await self.client.zrange(self._thread_runs_key(thread_id), 0, -1)]
        async with self.client.pipeline(transaction=True) as pipe:
            for run_id in run_ids:
                pipe.delete(self._record_key(run_id))
            pipe.delete(self._thread_runs_key(thread_id), self._lock_key(thread_id))
            await pipe.execute()
        return run_ids

    async def try_lock_thread(self, thread_id: str, run_id: str, ttl_seconds: float) -> bool:
        return bool(
            await self.client.set(self._lock_key(thread_id), run_id, nx=True, px=int(ttl_seconds * 1000))
        )

    async def thread_lock_holder(self, thread_id: str) -> str | None:
        holder = await self.client.get(self._lock_key(thread_id))
        return holder.decode() if holder else None

    async def refresh_lock(self, thread_id: str, run_id: str, ttl_seconds: float) -> bool:
        return bool(
            await self.client.eval(
                _REFRESH_IF_OWNER, 1, self._lock_key(thread_id), run_id, int(ttl_seconds * 1000)
            )
        )

    async def unlock_thread(self, thread_id: str, run_id: str) -> None:
        await self.client.eval(_RELEASE_IF_OWNER, 1, self._lock_key(thread_id), run_id)
