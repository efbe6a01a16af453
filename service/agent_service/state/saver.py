"""`RedisSaver`: a LangGraph checkpointer on plain Redis commands (no modules needed)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import redis
import redis.asyncio as aredis
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
)

from agent_service.state import atomic, connection
from agent_service.state.connection import slot_groups
from agent_service.state.keys import KeyLayout
from agent_service.state.operations import Batch, Operation, Operations, next_version


class RedisSaver(BaseCheckpointSaver[str]):
    """Checkpointer storing threads in Redis 6.2+ (or a Redis Cluster) with sync and async methods.

    >>> saver = RedisSaver.from_url("redis://localhost:6379/0")
    >>> graph = builder.compile(checkpointer=saver)
    """

    def __init__(
        self,
        *,
        client: redis.Redis | None = None,
        async_client: aredis.Redis | None = None,
        prefix: str = "lgcp",
        serde: SerializerProtocol | None = None,
    ) -> None:
        super().__init__(serde=serde)
        if client is None and async_client is None:
            raise ValueError("RedisSaver needs a sync client, an async client, or both (see from_url)")
        self.client = client
        self.async_client = async_client
        self._ops = Operations(KeyLayout(prefix), self.serde)

    @classmethod
    def from_url(
        cls, url: str, *, prefix: str = "lgcp", cluster: bool = False, **client_options: Any
    ) -> RedisSaver:
        """Both clients connect lazily, so an unused one costs nothing. Options go to redis-py;
        ``cluster=True`` for a Redis Cluster (``url`` names any of its nodes)."""
        return cls(
            client=connection.sync_client(url, cluster=cluster, **client_options),
            async_client=connection.async_client(url, cluster=cluster, **client_options),
            prefix=prefix,
        )

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    async def aclose(self) -> None:
        if self.async_client is not None:
            await self.async_client.aclose()
        self.close()

    # -- drivers: run an operation generator against one of the clients ----------------------

    def _execute(self, batch: Batch) -> list[Any]:
        if self.client is None:
            raise RuntimeError("this RedisSaver has no sync client; use the async methods")
        results: list[Any] = [None] * len(batch.commands)
        for group in slot_groups(self.client, batch):
            pipe = self.client.pipeline(transaction=batch.atomic)
            for index in group:
                pipe.execute_command(*batch.commands[index])
            for index, result in zip(group, pipe.execute(), strict=True):
                results[index] = result
        return results

    async def _aexecute(self, batch: Batch) -> list[Any]:
        if self.async_client is None:
            raise RuntimeError("this RedisSaver has no async client; use the sync methods")
        return await atomic.execute(self.async_client, batch.commands, atomic=batch.atomic)

    def _iterate(self, operation: Operation) -> Iterator[CheckpointTuple]:
        sent: Any = None
        while True:
            try:
                step = operation.send(sent)
            except StopIteration:
                return
            if isinstance(step, Batch):
                sent = self._execute(step)
            else:
                sent = None
                yield step

    async def _aiterate(self, operation: Operation) -> AsyncIterator[CheckpointTuple]:
        sent: Any = None
        while True:
            try:
                step = operation.send(sent)
            except StopIteration:
                return
            if isinstance(step, Batch):
                sent = await self._aexecute(step)
            else:
                sent = None
                yield step

    def _run(self, operation: Operation) -> Any:
        sent: Any = None
        while True:
            try:
                step = operation.send(sent)
            except StopIteration as done:
                return done.value
            sent = self._execute(step)

    async def _arun(self, operation: Operation) -> Any:
        sent: Any = None
        while True:
            try:
                step = operation.send(sent)
            except StopIteration as done:
                return done.value
            sent = await self._aexecute(step)

    # -- sync API -------------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._run(self._ops.get_tuple(config))

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        yield from self._iterate(self._ops.list(config, filter=filter, before=before, limit=limit))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return self._run(self._ops.put(config, checkpoint, metadata, new_versions))

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self._run(self._ops.put_writes(config, writes, task_id, task_path))

    def delete_thread(self, thread_id: str) -> None:
        self._run(self._ops.delete_thread(thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._run(self._ops.delete_for_runs(run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._run(self._ops.copy_thread(source_thread_id, target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._run(self._ops.prune(thread_ids, strategy))

    # -- async API ------------------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._arun(self._ops.get_tuple(config))

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for item in self._aiterate(self._ops.list(config, filter=filter, before=before, limit=limit)):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self._arun(self._ops.put(config, checkpoint, metadata, new_versions))

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self._arun(self._ops.put_writes(config, writes, task_id, task_path))

    async def adelete_thread(self, thread_id: str) -> None:
        await self._arun(self._ops.delete_thread(thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._arun(self._ops.delete_for_runs(run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._arun(self._ops.copy_thread(source_thread_id, target_thread_id))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._arun(self._ops.prune(thread_ids, strategy))

    def get_next_version(self, current: str | None, channel: None) -> str:
        return next_version(current)
