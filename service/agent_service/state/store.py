"""`RedisStore`: LangGraph's long-term memory (``BaseStore``, sync and async) on plain Redis 7.

    from agent_service.state.store import RedisStore

    store = RedisStore.from_url("redis://localhost:6379/0")
    graph = builder.compile(checkpointer=saver, store=store)

Items are hashes indexed in lexical order, so a search by namespace prefix reads only that prefix
(``agent_service.state.store_ops``; the layout is ``StoreKeys``). Items may carry a TTL (minutes, as
in LangGraph): Redis expires the item itself, reads refresh it (``refresh_ttl``), and ``sweep`` removes
expired items from the indexes. With an ``index`` (dims, embed, fields) ``search(query=...)`` ranks
by meaning (``agent_service.state.vectors``). Each store is one tenant's (``for_tenant``): tenants
never see each other's items, and their keys carry their own hash tag.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, TypedDict

import redis
import redis.asyncio as aredis
from langchain_core.embeddings import Embeddings
from langgraph.store.base import (
    BaseStore,
    GetOp,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchOp,
    TTLConfig,
    ensure_embeddings,
    validate_op_namespace,
)

from agent_service.observability.context import DEFAULT_TENANT
from agent_service.state import atomic, connection
from agent_service.state.keys import ServiceKeys, StoreKeys
from agent_service.state.store_ops import Batch, Embed, IndexSettings, Operation, StoreOperations, member
from agent_service.state.vectors import VectorMirror, sync_mirror

log = logging.getLogger(__name__)

#: Expired items removed from the indexes per script call of ``sweep``.
SWEEP_BATCH = 500


class StoreIndex(TypedDict, total=False):
    dims: int
    embed: Any  # LangChain Embeddings, an embedding function, or a provider string
    fields: list[str]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class RedisStore(BaseStore):
    supports_ttl = True
    __slots__ = (
        "_mirrors",
        "_ops",
        "async_client",
        "client",
        "embeddings",
        "index",
        "prefix",
        "tenant",
        "ttl_config",
    )

    def __init__(
        self,
        *,
        client: redis.Redis | None = None,
        async_client: aredis.Redis | None = None,
        prefix: str = "lgstore",
        tenant: str = DEFAULT_TENANT,
        index: StoreIndex | None = None,
        ttl: TTLConfig | None = None,
    ) -> None:
        if client is None and async_client is None:
            raise ValueError("RedisStore needs a sync client, an async client, or both (see from_url)")
        self.client = client
        self.async_client = async_client
        self.prefix = prefix
        self.tenant = tenant
        self.ttl_config = ttl
        self.index = IndexSettings(index["dims"], tuple(index.get("fields") or ["$"])) if index else None
        self.embeddings: Embeddings | None = ensure_embeddings(index["embed"]) if index else None
        self._ops = StoreOperations(StoreKeys(prefix, tenant), self.index)
        self._mirrors: dict[str, VectorMirror] = {}

    @classmethod
    def from_url(cls, url: str, *, cluster: bool = False, **options: Any) -> RedisStore:
        """Both clients connect lazily; ``options`` are the constructor's (prefix, tenant, index, ttl)."""
        return cls(
            client=connection.sync_client(url, cluster=cluster),
            async_client=connection.async_client(url, cluster=cluster),
            **options,
        )

    def for_tenant(self, tenant: str) -> RedisStore:
        """The same store seen by another tenant (same clients, embeddings and vector mirrors)."""
        if tenant == self.tenant:
            return self
        view = object.__new__(RedisStore)
        for name in self.__slots__:
            setattr(view, name, getattr(self, name))
        view.tenant = tenant
        view._ops = StoreOperations(StoreKeys(self.prefix, tenant), self.index)
        return view

    @property
    def _tenants_key(self) -> str:
        """The tenants whose stores hold items with a TTL (for ``sweep``)."""
        return ServiceKeys(self.prefix).control("store-tenants")

    # -- the batch: one operation per kind of op ----------------------------------------------

    def _operation(self, ops: Iterable[Op]) -> Operation:
        ops = list(ops)
        for op in ops:
            validate_op_namespace(op)
        results: list[Result] = [None] * len(ops)
        now = _now_ms()
        gets = [i for i, op in enumerate(ops) if isinstance(op, GetOp)]
        if gets:
            refresh = True if self.ttl_config is None else self.ttl_config.get("refresh_on_read", True)
            found = yield from self._ops.get([ops[i] for i in gets], now, refresh)  # type: ignore[misc]
            for i, item in zip(gets, found, strict=True):
                results[i] = item
        for i, op in enumerate(ops):
            if isinstance(op, SearchOp):
                results[i] = yield from self._search(op, now)
            elif isinstance(op, ListNamespacesOp):
                results[i] = yield from self._ops.list_namespaces(op)
        # The last put of a (namespace, key) wins, as in LangGraph's own stores.
        puts = list({(op.namespace, op.key): op for op in ops if isinstance(op, PutOp)}.values())
        if puts:
            default_ttl = (self.ttl_config or {}).get("default_ttl")
            yield from self._ops.put(puts, now, default_ttl)
            if any(op.ttl or (default_ttl and op.value is not None) for op in puts):
                yield Batch([("SADD", self._tenants_key, self.tenant)])
        return results

    def _search(self, op: SearchOp, now: int) -> Operation:
        refresh = op.refresh_ttl
        if refresh is None:
            refresh = True if self.ttl_config is None else self.ttl_config.get("refresh_on_read", True)
        if op.query and self.index is not None:
            (query,) = yield Embed([op.query], query=True)
            mirror = self._mirrors.setdefault(self.tenant, VectorMirror(self.index.dims))
            yield from sync_mirror(self._ops, mirror)
            found = yield from self._ops.hydrate(mirror.rank(query, op.namespace_prefix), op, now)
            if len(found) < op.limit:  # items without vectors follow, unranked, as in LangGraph
                rest = op._replace(offset=0, limit=op.limit - len(found))
                found += yield from self._ops.scan(rest, now, skip=mirror.members)
        else:
            found = yield from self._ops.scan(op, now)
        if refresh:
            yield from self._ops.refresh(found, now)
        return found

    # -- maintenance --------------------------------------------------------------------------

    def _sweep(self) -> Operation:
        (tenants,) = yield Batch([("SMEMBERS", self._tenants_key)])
        removed = 0
        for tenant in sorted(t.decode() if isinstance(t, bytes) else t for t in tenants):
            ops = StoreOperations(StoreKeys(self.prefix, tenant), self.index)
            while (swept := (yield from ops.sweep(_now_ms(), SWEEP_BATCH))) > 0:
                removed += swept
        return removed

    async def asweep(self) -> int:
        """Removes expired items from every tenant's indexes; returns how many."""
        return await self._arun(self._sweep())

    def sweep(self) -> int:
        return self._run(self._sweep())

    async def sweep_forever(self, interval_seconds: float) -> None:
        """``asweep`` every interval, whatever fails (every replica sweeps; a sweep is idempotent)."""
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await self.asweep()
            except Exception:
                log.warning("the store sweep failed; trying again in %ss", interval_seconds, exc_info=True)

    # -- drivers ------------------------------------------------------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        return self._run(self._operation(ops))

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        return await self._arun(self._operation(ops))

    def _run(self, operation: Operation) -> Any:
        if self.client is None:
            raise RuntimeError("this RedisStore has no sync client; use the async methods")
        sent: Any = None
        while True:
            try:
                step = operation.send(sent)
            except StopIteration as done:
                return done.value
            if isinstance(step, Embed):
                sent = self._embed(step)
            else:
                pipe = self.client.pipeline(transaction=False)
                for command in step.commands:
                    pipe.execute_command(*command)
                sent = pipe.execute()

    async def _arun(self, operation: Operation) -> Any:
        if self.async_client is None:
            raise RuntimeError("this RedisStore has no async client; use the sync methods")
        sent: Any = None
        while True:
            try:
                step = operation.send(sent)
            except StopIteration as done:
                return done.value
            if isinstance(step, Embed):
                sent = await self._aembed(step)
            else:
                sent = await atomic.execute(self.async_client, step.commands, atomic=False)

    def _embed(self, step: Embed) -> list[list[float]]:
        assert self.embeddings is not None
        if step.query:
            return [self.embeddings.embed_query(t) for t in step.texts]
        return self.embeddings.embed_documents(step.texts)

    async def _aembed(self, step: Embed) -> list[list[float]]:
        assert self.embeddings is not None
        if step.query:
            return [await self.embeddings.aembed_query(t) for t in step.texts]
        return await self.embeddings.aembed_documents(step.texts)


__all__ = ["RedisStore", "StoreIndex", "member"]
