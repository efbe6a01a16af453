"""Thread records (the API's view of a thread: metadata, status, latest values) in Redis.

Control keys (the deployment's hash tag, so the indexes and records change in one transaction):

    thread:<id>                     string  JSON record (everything but the values)
    threads:updated / :created      zset    thread id by time (ms): default listing order
    threads:status:<status>         zset    thread id by updated time
    threads:tenant:<tenant>         zset    thread id by updated time: every search is within one tenant
    threads:user:<sub>              zset    thread id by updated time, for the user who created it (erasure)
    threads:expiry                  zset    thread id by when its TTL runs out (ms): what the sweeper reads
    threads:meta:<key>=<json value> zset    thread id by updated time, for scalar metadata

The latest values, which can be large, live with the thread's own data (``thread_values``), so on a
Redis Cluster they spread over the shards with the checkpoints.

A thread with a TTL (``{"strategy", "ttl_minutes"}``, the LangGraph API's option, or the deployment's
default) expires ``ttl_minutes`` after its last change: every change of the record (a run, a state
update, a patch) moves ``expires_at`` on, so only idle threads expire (``agent_service.runs.sweeper``).

Search intersects the index zsets of its filters, so it reads only matching threads however
many are stored. Filters no index answers (state values, nested metadata) are checked on the
records the indexes leave.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import orjson

from agent_service.observability.context import DEFAULT_TENANT
from agent_service.serialization import dumps, now_iso
from agent_service.state import atomic
from agent_service.state.connection import AsyncClient, is_cluster
from agent_service.state.keys import ServiceKeys

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
TTLStrategy = Literal["delete", "keep_latest"]
SortBy = Literal["thread_id", "status", "created_at", "updated_at"]
_SCALARS = (str, int, float, bool, type(None))
_SEARCH_RESULT_TTL_SECONDS = 10
_KNOWN_RECORDS = 4096


class ThreadNotFoundError(LookupError):
    pass


class ThreadExistsError(LookupError):
    pass


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def ttl_policy(minutes: float, strategy: TTLStrategy = "delete") -> dict[str, Any]:
    return {"strategy": strategy, "ttl_minutes": minutes}


def stamp_ttl(ttl: dict[str, Any] | None) -> dict[str, Any] | None:
    """The policy with ``expires_at`` counted from now."""
    if ttl is None:
        return None
    expires = datetime.now(UTC) + timedelta(minutes=ttl["ttl_minutes"])
    return {"strategy": ttl["strategy"], "ttl_minutes": ttl["ttl_minutes"], "expires_at": expires.isoformat()}


def expires_ms(thread: dict[str, Any]) -> int | None:
    ttl = thread.get("ttl")
    return int(datetime.fromisoformat(ttl["expires_at"]).timestamp() * 1000) if ttl else None


async def mget(client: AsyncClient, keys: Sequence[str]) -> list[bytes | None]:
    """MGET of keys that may sit in different slots of a Cluster."""
    if not keys:
        return []
    if is_cluster(client):
        return await client.mget_nonatomic(list(keys))
    return await client.mget(list(keys))


# KEYS: record, the n index zsets to leave, the index zsets to be in. ARGV: the record as read,
# the new record, n, score, thread id. Writes only if the record is still what was read; otherwise
# answers the record as it is (-1: there is none), so a retry needs no GET of its own.
_SWAP = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if current ~= ARGV[1] then return current end
redis.call('SET', KEYS[1], ARGV[2])
local dropped = tonumber(ARGV[3])
for i = 2, dropped + 1 do redis.call('ZREM', KEYS[i], ARGV[5]) end
for i = dropped + 2, #KEYS do redis.call('ZADD', KEYS[i], ARGV[4], ARGV[5]) end
return 1
"""


class ThreadStore:
    def __init__(
        self, client: AsyncClient, prefix: str | ServiceKeys, *, default_ttl: dict[str, Any] | None = None
    ):
        """``default_ttl``: the policy of threads created without one (``ttl_policy``); None: none."""
        self.client = client
        self.keys = prefix if isinstance(prefix, ServiceKeys) else ServiceKeys(prefix)
        self.default_ttl = default_ttl
        self.expiry = self._index("expiry")
        self._swap = client.register_script(_SWAP)
        # The record this process last read or wrote, per thread: the expected value of the next
        # compare-and-set, so a change (a run's busy, idle) sends no GET first. A stale guess costs
        # one retry, never a lost write.
        self._known: OrderedDict[str, bytes] = OrderedDict()

    def _remember(self, thread_id: str, raw: bytes) -> None:
        self._known[thread_id] = raw
        self._known.move_to_end(thread_id)
        if len(self._known) > _KNOWN_RECORDS:
            self._known.popitem(last=False)

    def _record_key(self, thread_id: str) -> str:
        return self.keys.control("thread", thread_id)

    def _index(self, *parts: str) -> str:
        return self.keys.control("threads", *parts)

    def _meta_key(self, key: str, value: Any) -> str:
        return self._index("meta", f"{key}={orjson.dumps(value).decode()}")

    def owner_index(self, kind: Literal["user", "tenant"], owner: str) -> str:
        """The zset of the thread ids a user created, or of a tenant's threads."""
        return self._index(kind, owner)

    def _index_keys(self, thread: dict[str, Any]) -> list[str]:
        keys = [
            self._index("updated"),
            self._index("status", thread["status"]),
            self.owner_index("tenant", thread["tenant"]),
        ]
        if thread.get("user"):
            keys.append(self.owner_index("user", thread["user"]))
        keys += [self._meta_key(k, v) for k, v in thread["metadata"].items() if isinstance(v, _SCALARS)]
        return keys

    async def get(self, thread_id: str) -> dict[str, Any]:
        raw, values = await mget(
            self.client, [self._record_key(thread_id), self.keys.thread_values(thread_id)]
        )
        if raw is None:
            raise ThreadNotFoundError(f"thread {thread_id} not found")
        self._remember(thread_id, raw)
        return {**orjson.loads(raw), "values": orjson.loads(values) if values is not None else None}

    async def exists(self, thread_id: str) -> bool:
        return bool(await self.client.exists(self._record_key(thread_id)))

    async def record(self, thread_id: str) -> dict[str, Any] | None:
        """The record without its values, or None."""
        raw = await self.client.get(self._record_key(thread_id))
        return orjson.loads(raw) if raw is not None else None

    async def create(
        self,
        thread_id: str | None,
        metadata: dict[str, Any],
        *,
        tenant: str = DEFAULT_TENANT,
        user: str | None = None,
        ttl: dict[str, Any] | None = None,
        if_exists: str = "raise",
        **fields: Any,
    ) -> dict[str, Any]:
        """``user``: the ``sub`` who creates it (erasure finds it by that); ``ttl``: its policy
        (``ttl_policy``), else the store's default."""
        thread_id = thread_id or str(uuid.uuid4())
        now = now_iso()
        thread = {
            "thread_id": thread_id,
            "created_at": now,
            "updated_at": now,
            "metadata": metadata,
            "status": "idle",
            "interrupts": {},
            "tenant": tenant,
            **({"user": user} if user else {}),
            **fields,
        }
        if stamped := stamp_ttl(ttl or self.default_ttl):
            thread["ttl"] = stamped
        raw = dumps(thread)
        created = await self.client.set(self._record_key(thread_id), raw, nx=True)
        if not created:
            existing = await self.get(thread_id)
            if if_exists == "do_nothing" and existing["tenant"] == tenant:
                return existing
            raise ThreadExistsError(f"thread {thread_id} already exists")
        score = _now_ms()
        indexes = [self._index("created"), *self._index_keys(thread)]
        commands = [("ZADD", key, score, thread_id) for key in indexes]
        if (expires := expires_ms(thread)) is not None:
            commands.append(("ZADD", self.expiry, expires, thread_id))
        await atomic.execute(self.client, commands)
        self._remember(thread_id, raw)
        return {**thread, "values": None}

    async def modify(
        self, thread_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read-change-write, retried if another writer got in between (compare-and-set in a script,
        so a concurrent change is never lost, on one Redis or a Cluster).

        ``change`` sees and returns the record without its values (set those with ``set_values``).
        A TTL starts again from now."""
        key = self._record_key(thread_id)
        raw = self._known.get(thread_id) or await self.client.get(key)
        while True:
            if raw is None or raw == -1:
                self._known.pop(thread_id, None)
                raise ThreadNotFoundError(f"thread {thread_id} not found")
            before = orjson.loads(raw)
            after = {**change(orjson.loads(raw)), "updated_at": now_iso()}
            if after.get("ttl") is not None:
                after["ttl"] = stamp_ttl(after["ttl"])
            else:
                after.pop("ttl", None)
            dropped = sorted(set(self._index_keys(before)) - set(self._index_keys(after)))
            keys = [key, *dropped, *self._index_keys(after)]
            written = dumps(after)
            raw = await self._swap(keys=keys, args=[raw, written, len(dropped), _now_ms(), thread_id])
            if raw == 1:
                self._remember(thread_id, written)
                break
        # Outside the swap (its score is not the others'); the sweeper checks the record anyway.
        if (expires := expires_ms(after)) is not None or "ttl" in before:
            await self.schedule_expiry(thread_id, expires)
        return after

    async def update(self, thread_id: str, **changes: Any) -> dict[str, Any]:
        """Changes record fields; ``values=`` is stored beside the record (see the module docstring)."""
        if "values" not in changes:
            return await self.modify(thread_id, lambda thread: {**thread, **changes})
        values = changes.pop("values")
        # Two keys in two slots: written side by side, one round trip instead of two.
        _, thread = await asyncio.gather(
            self.set_values(thread_id, values),
            self.modify(thread_id, lambda thread: {**thread, **changes}),
        )
        return thread

    async def set_values(self, thread_id: str, values: Any) -> None:
        await self.client.set(self.keys.thread_values(thread_id), dumps(values))

    async def merge_metadata(
        self, thread_id: str, metadata: dict[str, Any], *, ttl: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Merges ``metadata`` in; ``ttl`` given: the thread's new TTL policy."""
        policy = {"ttl": ttl} if ttl is not None else {}
        return await self.modify(
            thread_id, lambda thread: {**thread, "metadata": {**thread["metadata"], **metadata}, **policy}
        )

    async def expired(self, now_ms: int, count: int) -> list[str]:
        """Up to ``count`` thread ids whose TTL ran out by ``now_ms``, the longest expired first."""
        found = await self.client.zrangebyscore(self.expiry, "-inf", now_ms, start=0, num=count)
        return [thread_id.decode() for thread_id in found]

    async def schedule_expiry(self, thread_id: str, at_ms: int | None) -> None:
        """Moves the thread's place in the expiry index (None: out of it)."""
        if at_ms is None:
            await self.client.zrem(self.expiry, thread_id)
        else:
            await self.client.zadd(self.expiry, {thread_id: at_ms})

    async def delete(self, thread_id: str) -> None:
        thread = await self.get(thread_id)
        indexes = [self._index("created"), self.expiry, *self._index_keys(thread)]
        await atomic.execute(
            self.client, [("DEL", self._record_key(thread_id)), *(("ZREM", k, thread_id) for k in indexes)]
        )
        await self.client.delete(self.keys.thread_values(thread_id))
        self._known.pop(thread_id, None)

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
        order_key = self._index("created") if sort_by == "created_at" else self._index("updated")
        filter_keys = [self._meta_key(k, v) for k, v in metadata.items() if isinstance(v, _SCALARS)]
        # Conditions no index answers are checked on the records themselves.
        needs_check = bool(values) or len(filter_keys) < len(metadata)
        if status:
            filter_keys.append(self._index("status", status))
        if tenant is not None:
            filter_keys.append(self._index("tenant", tenant))
        in_python_order = sort_by in ("thread_id", "status")

        source = order_key
        if filter_keys:
            source = self._index("search", uuid.uuid4().hex)
            # Weight 0 on the filters keeps the order index's score as the sort key.
            weights = [1] + [0] * len(filter_keys)
            keys = [order_key, *filter_keys]
            await atomic.execute(
                self.client,
                [
                    ("ZINTERSTORE", source, len(keys), *keys, "WEIGHTS", *weights),
                    ("EXPIRE", source, _SEARCH_RESULT_TTL_SECONDS),
                ],
                atomic=False,  # the result expires anyway
            )
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
            key = self._index("tenant", tenant) if tenant is not None else self._index("updated")
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
        raws = await mget(self.client, [self._record_key(t) for t in thread_ids])
        found = [(t, orjson.loads(raw)) for t, raw in zip(thread_ids, raws, strict=True) if raw is not None]
        values = await mget(self.client, [self.keys.thread_values(t) for t, _ in found])
        return [
            {**record, "values": orjson.loads(raw) if raw is not None else None}
            for (_, record), raw in zip(found, values, strict=True)
        ]


def _matches(
    thread: dict[str, Any], metadata: dict[str, Any], values: dict[str, Any] | None, status: str | None
) -> bool:
    if status and thread["status"] != status:
        return False
    if any(thread["metadata"].get(k) != v for k, v in metadata.items()):
        return False
    current = thread.get("values") or {}
    return not values or (isinstance(current, dict) and all(current.get(k) == v for k, v in values.items()))
