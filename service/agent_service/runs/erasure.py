"""Erasure and export of every thread of a user (the ``sub`` that created it) or of a tenant.

The threads are found by the owner indexes of ``agent_service.state.threads`` (no scan of the
keyspace). An export is a JSON array produced one thread at a time (``export``), so a big tenant is
streamed, never held in memory whole; each thread carries its record and values, every checkpoint
with its pending writes, and every run with its event log. Erasure deletes thread by thread as
``DELETE /threads/{id}`` does (runs in flight are stopped first), at most ``limit`` per call.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

import orjson
from langgraph.checkpoint.base import CheckpointTuple

from agent_service.runs import events
from agent_service.serialization import dumps, to_jsonable
from agent_service.state.threads import ThreadNotFoundError

if TYPE_CHECKING:
    from agent_service.runs.engine import RunEngine

Owner = Literal["user", "tenant"]
PAGE = 100


def _checkpoint(found: CheckpointTuple) -> dict[str, Any]:
    configurable = found.config["configurable"]
    parent = (found.parent_config or {}).get("configurable", {})
    return {
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable["checkpoint_id"],
        "parent_checkpoint_id": parent.get("checkpoint_id"),
        "checkpoint": found.checkpoint,
        "metadata": found.metadata,
        "pending_writes": [
            {"task_id": task_id, "channel": channel, "value": value}
            for task_id, channel, value in found.pending_writes or []
        ],
    }


async def _event_log(engine: RunEngine, thread_id: str, run_id: str) -> dict[str, Any]:
    log: dict[str, Any] = {"events": [], "ended": None}
    async for item in events.stored(engine.client, engine.keys.events(thread_id, run_id)):
        if isinstance(item, events.End):
            log["ended"] = item.status
        else:
            log["events"].append({"id": item.seq, "event": item.name, "data": orjson.loads(item.data)})
    return log


async def thread_document(engine: RunEngine, thread_id: str) -> dict[str, Any] | None:
    """Everything stored of one thread, as JSON types (None: it is gone)."""
    try:
        thread = await engine.threads.get(thread_id)
    except ThreadNotFoundError:
        return None
    config = {"configurable": {"thread_id": thread_id}}
    checkpoints = [_checkpoint(found) async for found in engine.saver.alist(config)]
    runs = [
        {**run, "event_log": await _event_log(engine, thread_id, run["run_id"])}
        for run in await engine.runs.all(thread_id)
    ]
    return to_jsonable({"thread": thread, "checkpoints": checkpoints, "runs": runs})


async def thread_ids(engine: RunEngine, owner: Owner, name: str) -> AsyncIterator[str]:
    """Each thread of the owner once (ZSCAN: a thread present throughout is never missed)."""
    seen: set[str] = set()
    index = engine.threads.owner_index(owner, name)
    async for member, _ in engine.client.zscan_iter(index, count=PAGE):
        thread_id = member.decode()
        if thread_id not in seen:
            seen.add(thread_id)
            yield thread_id


async def export(engine: RunEngine, owner: Owner, name: str) -> AsyncIterator[bytes]:
    """The owner's threads as one JSON array, a thread per chunk."""
    yield b"["
    first = True
    async for thread_id in thread_ids(engine, owner, name):
        document = await thread_document(engine, thread_id)
        if document is None:  # deleted meanwhile
            continue
        yield (b"" if first else b",") + dumps(document)
        first = False
    yield b"]"


async def erase(engine: RunEngine, owner: Owner, name: str, limit: int) -> dict[str, int]:
    """Deletes up to ``limit`` threads of the owner; ``remaining``: how many are left to delete."""
    index = engine.threads.owner_index(owner, name)
    deleted = 0
    while deleted < limit:
        page = [m.decode() for m in await engine.client.zrange(index, 0, min(PAGE, limit - deleted) - 1)]
        if not page:
            break
        for thread_id in page:
            await engine.delete_thread(thread_id)
            await engine.client.zrem(index, thread_id)  # in case its record was gone already
        deleted += len(page)
    return {"deleted": deleted, "remaining": await engine.client.zcard(index)}
