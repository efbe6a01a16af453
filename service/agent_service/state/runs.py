"""Run records, with the thread's data (``ServiceKeys``): readable from any replica.

A record is written when the run is accepted (status ``pending``) and again when it ends (its final
status). While it is in flight, the run queue is the authority on whether it waits or runs
(``agent_service.runs.engine`` shows that state). Records of runs whose thread does not outlive
them (stateless runs) expire with their result; those of thread runs after RUN_RECORD_TTL_SECONDS
when it is set (``RunEngine.record_ttl``), else with their thread.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import orjson

from agent_service.serialization import dumps
from agent_service.state import atomic
from agent_service.state.connection import AsyncClient
from agent_service.state.keys import ServiceKeys
from agent_service.state.threads import mget

RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
TERMINAL_STATUSES = frozenset({"error", "success", "timeout", "interrupted"})


class RunNotFoundError(LookupError):
    pass


def _set(key: str, value: Any, ttl_seconds: int | None) -> tuple[Any, ...]:
    return ("SET", key, dumps(value), *(("EX", ttl_seconds) if ttl_seconds else ()))


class RunStore:
    def __init__(self, client: AsyncClient, keys: ServiceKeys):
        self.client = client
        self.keys = keys

    async def create(self, run: dict[str, Any], *, listed: bool = True, only_new: bool = False) -> bool:
        """Writes a new record; ``only_new``: unless one exists already (then False, and nothing is
        written). ``listed``: see ``create_commands``."""
        written, *_ = await atomic.execute(
            self.client, self.create_commands(run, listed=listed, only_new=only_new)
        )
        return bool(written)

    def create_commands(
        self, run: dict[str, Any], *, listed: bool = True, only_new: bool = False
    ) -> list[tuple[Any, ...]]:
        """``create`` as commands to send with others; ``listed``: also in the thread's run list (not
        for a stateless run's own thread)."""
        commands: list[tuple[Any, ...]] = [
            (
                "SET",
                self.keys.run_record(run["thread_id"], run["run_id"]),
                dumps(run),
                *(("NX",) if only_new else ()),
            )
        ]
        if listed:
            # On a repeated create this only refreshes the existing entry's score.
            created = time.time_ns() // 1_000_000
            commands.append(("ZADD", self.keys.thread_runs(run["thread_id"]), created, run["run_id"]))
        return commands

    async def find(self, thread_id: str, run_id: str) -> dict[str, Any] | None:
        raw = await self.client.get(self.keys.run_record(thread_id, run_id))
        return orjson.loads(raw) if raw is not None else None

    async def get(self, thread_id: str, run_id: str) -> dict[str, Any]:
        run = await self.find(thread_id, run_id)
        if run is None:
            raise RunNotFoundError(f"run {run_id} not found on thread {thread_id}")
        return run

    async def save(
        self,
        run: dict[str, Any],
        *,
        ttl_seconds: int | None = None,
        result: Any = None,
        result_ttl_seconds: int | None = None,
        listed: bool = True,
    ) -> None:
        """The record, expiring after ``ttl_seconds`` if set, and, given ``result``, the run's output;
        ``listed``: the record is in its thread's run list (a stateless run's is not)."""
        commands = self.save_commands(
            run, ttl_seconds=ttl_seconds, result=result, result_ttl_seconds=result_ttl_seconds, listed=listed
        )
        await atomic.execute(self.client, commands)

    def save_commands(
        self,
        run: dict[str, Any],
        *,
        ttl_seconds: int | None = None,
        result: Any = None,
        result_ttl_seconds: int | None = None,
        listed: bool = True,
    ) -> list[tuple[Any, ...]]:
        """``save`` as commands to send with others (they share the thread's slot)."""
        commands = [_set(self.keys.run_record(run["thread_id"], run["run_id"]), run, ttl_seconds)]
        if ttl_seconds and listed:
            # The thread's run list forgets runs created before the retention, whose records are gone.
            cutoff = time.time_ns() // 1_000_000 - ttl_seconds * 1000
            commands.append(("ZREMRANGEBYSCORE", self.keys.thread_runs(run["thread_id"]), "-inf", cutoff))
        if result is not None:
            commands.append(
                _set(self.keys.run_result(run["thread_id"], run["run_id"]), result, result_ttl_seconds)
            )
        return commands

    async def result(self, thread_id: str, run_id: str) -> Any:
        raw = await self.client.get(self.keys.run_result(thread_id, run_id))
        return orjson.loads(raw) if raw is not None else None

    async def list(self, thread_id: str, *, limit: int, offset: int) -> list[dict[str, Any]]:
        ids = await self.client.zrange(
            self.keys.thread_runs(thread_id), offset, offset + limit - 1, desc=True
        )
        return await self._fetch(thread_id, [i.decode() for i in ids])

    async def listed_since(self, thread_id: str, after_ms: int) -> list[tuple[str, int]]:
        """(run id, creation ms) of the thread's runs created at or after ``after_ms``, oldest first."""
        entries = await self.client.zrangebyscore(
            self.keys.thread_runs(thread_id), after_ms, "+inf", withscores=True
        )
        return [(run_id.decode(), int(score)) for run_id, score in entries]

    async def all(self, thread_id: str) -> list[dict[str, Any]]:
        ids = await self.client.zrange(self.keys.thread_runs(thread_id), 0, -1, desc=True)
        return await self._fetch(thread_id, [i.decode() for i in ids])

    async def _fetch(self, thread_id: str, run_ids: list[str]) -> list[dict[str, Any]]:
        raws = await mget(self.client, [self.keys.run_record(thread_id, r) for r in run_ids])
        return [orjson.loads(raw) for raw in raws if raw is not None]

    def _run_keys(self, thread_id: str, run_id: str) -> list[str]:
        return [
            self.keys.run_record(thread_id, run_id),
            self.keys.run_result(thread_id, run_id),
            self.keys.events(thread_id, run_id),
        ]

    async def delete(self, thread_id: str, run_id: str) -> None:
        await atomic.execute(
            self.client,
            [("DEL", *self._run_keys(thread_id, run_id)), ("ZREM", self.keys.thread_runs(thread_id), run_id)],
        )

    async def delete_for_thread(self, thread_id: str) -> list[str]:
        run_ids = [r.decode() for r in await self.client.zrange(self.keys.thread_runs(thread_id), 0, -1)]
        keys = [key for run_id in run_ids for key in self._run_keys(thread_id, run_id)]
        await self.client.delete(*keys, self.keys.thread_runs(thread_id))
        return run_ids
