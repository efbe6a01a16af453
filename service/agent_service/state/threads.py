"""Thread records (the API's view of a thread: metadata, status, latest values) in Redis.

    <p>:thread:<id>                      string  JSON record
    <p>:threads:updated / :created       zset    thread id by time (ms): default listing order
    <p>:threads:status:<status>          zset    thread id by updated time
    <p>:threads:tenant:<tenant>          zset    thread id by updated time: every search is within one tenant
    <p>:threads:meta:<key>=<json value>  zset    thread id by updated time, for scalar metadata

Search intersects the index zsets of its filters, so it reads only matching threads however
many are stored. Filters no index answers (state values, nested metadata) are checked on the
records the indexes leave.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

import orjson
import redis.asyncio as aredis
from redis.exceptions import WatchError

from agent_service.observability.context import DEFAULT_TENANT
from agent_service.serialization import dumps, now_iso

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
SortBy = Literal["thread_id", "status", "created_at", "updated_at"]
_SCALARS = (str, int, float, bool, type(None))
_SEARCH_RESULT_TTL_SECONDS = 10


class ThreadNotFoundError(LookupError):
    pass


class ThreadExistsError(LookupError):
    pass


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ThreadStore:
    def __init__(self, client: aredis.Redis, prefix: str):
        self.client = client
        self.prefix = f"{prefix}:threads"
        self._record_prefix = f"{prefix}:thread"

    def _record_key(self, thread_id: str) -> str:
        return f"{self._record_prefix}:{thread_id}"

    def _status_key(self, status: str) -> str:
        return f"{self.prefix}:status:{status}"

    def _meta_key(self, key: str, value: Any) -> str:
        return f"{self.prefix}:meta:{key}={orjson.dumps(value).decode()}"

    def _tenant_key(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}"

    def _index_keys(self, thread: dict[str, Any]) -> list[str]:
        keys = [
            f"{self.prefix}:updated",
            self._status_key(thread["status"]),
            self._tenant_key(thread["tenant"]),
        ]
        keys += [self._meta_key(k, v) for k, v in thread["metadata"].items() if isinstance(v, _SCALARS)]
        return keys

    async def get(self, thread_id: str) -> dict[str, Any]:
        raw = await self.client.get(self._record_key(thread_id))
        if raw is None:
            raise ThreadNotFoundError(f"thread {thread_id} not found")
        return orjson.loads(raw)

    async def create(
        self,
        thread_id: str | None,
        metadata: dict[str, Any],
        *,
        tenant: str = DEFAULT_TENANT,
        if_exists: str = "raise",
    ) -> dict[str, Any]:
        thread_id = thread_id or str(uuid.uuid4())
        now = now_iso()
        thread = {
            "thread_id": thread_id,
            "created_at": now,
            "updated_at": now,
            "metadata": metadata,
            "status": "idle",
            "values": None,
            "interrupts": {},
            "tenant": tenant,
        }
        created = await self.client.set(self._record_key(thread_id), dumps(thread), nx=True)
        if not created:
            existing = await self.get(thread_id)
            if if_exists == "do_nothing" and existing["tenant"] == tenant:
                return existing
            raise ThreadExistsError(f"thread {thread_id} already exists")
        score = _now_ms()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(f"{self.prefix}:created", {thread_id: score})
            for key in self._index_keys(thread):
                pipe.zadd(key, {thread_id: score})
            await pipe.execute()
        return thread

    async def save(self, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """Stores `after` (a changed copy of `before`) and moves it in every index."""
        async with self.client.pipeline(transaction=True) as pipe:
            return await self._write(pipe, before, after)

    async def _write(self, pipe: Any, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        after = {**after, "updated_at": now_iso()}
        score = _now_ms()
        pipe.multi()
        pipe.set(self._record_key(after["thread_id"]), dumps(after))
        for key in set(self._index_keys(before)) - set(self._index_keys(after)):
            pipe.zrem(key, after["thread_id"])
        for key in self._index_keys(after):
            pipe.zadd(key, {after["thread_id"]: score})
        await pipe.execute()
        return after

    async def modify(
        self, thread_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read-change-write under WATCH: a concurrent writer makes us retry, never lose its change."""
        key = self._record_key(thread_id)
        async with self.client.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(key)
                    raw = await pipe.get(key)
                    if raw is None:
                        raise ThreadNotFoundError(f"thread {thread_id} not found")
                    before = orjson.loads(raw)
                    return await self._write(pipe, before, change(before))
                except WatchError:
                    continue

    async def update(self, thread_id: str, **changes: Any) -> dict[str, Any]:
        return await self.modify(thread_id, lambda thread: {**thread, **changes})

    async def merge_metadata(self, thread_id: str, metadata: dict[str, Any]) -> dict[str, Any]:
        return await self.modify(
            thread_id, lambda thread: {**thread, "metadata": {**thread["metadata"], **metadata}}
        )

    async def delete(self, thread_id: str) -> None:
        thread = await self.get(thread_id)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._record_key(thread_id))
            pipe.zrem(f"{self.prefix}:created", thread_id)
            for key in self._index_keys(thread):
                pipe.zrem(key, thread_id)
            await pipe.execute()

    async def search(
        self,
        *,
        metadata: dict[str, Any] | None = None,
        values: dict[str, Any] | None = None,
        ids: Sequence[str] | None = None,
        status: ThreadStatus | None = None,
        limit: int = 10,
        offset: int = 0,
        sort_by: SortBy = "updated_at",
        sort_order: Literal["asc", "desc"] = "desc",
        tenant: str | None = None,
    ) -> list[dict[str, Any]]:
        """Threads matching every filter; `tenant` confines the search to one tenant's threads."""
        metadata = metadata or {}
        if ids:
            # Named threads are read directly, whatever else is stored.
            found = [
                t
                for t in await self._fetch(list(ids))
                if _matches(t, metadata, values, status) and tenant in (None, t["tenant"])
            ]
            found.sort(key=lambda t: t[sort_by], reverse=sort_order == "desc")
            return found[offset : offset + limit]
        order_key = f"{self.prefix}:created" if sort_by == "created_at" else f"{self.prefix}:updated"
        filter_keys = [self._meta_key(k, v) for k, v in metadata.items() if isinstance(v, _SCALARS)]
        # Conditions no index answers are checked on the records themselves.
        needs_check = bool(values) or len(filter_keys) < len(metadata)
        if status:
            filter_keys.append(self._status_key(status))
        if tenant is not None:
            filter_keys.append(self._tenant_key(tenant))
        in_python_order = sort_by in ("thread_id", "status")

        source = order_key
        if filter_keys:
            source = f"{self.prefix}:search:{uuid.uuid4().hex}"
            async with self.client.pipeline(transaction=True) as pipe:
                # Weight 0 on the filters keeps the order index's score as the sort key.
                pipe.zinterstore(source, {order_key: 1, **dict.fromkeys(filter_keys, 0)})
                pipe.expire(source, _SEARCH_RESULT_TTL_SECONDS)
                await pipe.execute()
        try:
            if not needs_check and not in_python_order:
                page = await self._range(source, offset, limit, sort_order)
                return await self._fetch(page)
            candidates = await self._fetch(await self._range(source, 0, -1, sort_order))
            matches = [t for t in candidates if _matches(t, metadata, values, status)]
            if in_python_order:
                matches.sort(key=lambda t: t[sort_by], reverse=sort_order == "desc")
            return matches[offset : offset + limit]
        finally:
            if source != order_key:
                await self.client.delete(source)

    async def count(self, *, tenant: str | None = None, **filters: Any) -> int:
        if not any(filters.values()):
            key = self._tenant_key(tenant) if tenant is not None else f"{self.prefix}:updated"
            return await self.client.zcard(key)
        return len(await self.search(**filters, tenant=tenant, limit=1_000_000_000, offset=0))

    async def _range(self, key: str, offset: int, limit: int, order: str) -> list[str]:
        """`limit` < 0 means all from `offset`; 0 means none (ZRANGE's -1 stop would mean all)."""
        if limit == 0:
            return []
        stop = -1 if limit < 0 else offset + limit - 1
        ids = await self.client.zrange(key, offset, stop, desc=order == "desc")
        return [i.decode() for i in ids]

    async def _fetch(self, thread_ids: list[str]) -> list[dict[str, Any]]:
        if not thread_ids:
            return []
        raws = await self.client.mget([self._record_key(t) for t in thread_ids])
        return [orjson.loads(raw) for raw in raws if raw is not None]


def _matches(
    thread: dict[str, Any], metadata: dict[str, Any], values: dict[str, Any] | None, status: str | None
) -> bool:
    if status and thread["status"] != status:
        return False
    if any(thread["metadata"].get(k) != v for k, v in metadata.items()):
        return False
    current = thread.get("values") or {}
    return not values or (isinstance(current, dict) and all(current.get(k) == v for k, v in values.items()))
