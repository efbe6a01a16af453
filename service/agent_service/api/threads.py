"""Threads: records, state (read, update, history), copy and delete."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Request, Response
from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from langgraph.types import StateSnapshot

from agent_service.api.deps import RuntimeDep, ThreadDep, authorize, current_tenant
from agent_service.api.schemas import (
    CheckpointRef,
    HistoryQuery,
    StateAtCheckpoint,
    StateUpdate,
    ThreadCount,
    ThreadCreate,
    ThreadPatch,
    ThreadPrune,
    ThreadSearch,
)
from agent_service.extensions.auth import plain
from agent_service.observability.context import current_request
from agent_service.runtime import Runtime
from agent_service.serialization import to_jsonable
from agent_service.state.threads import ThreadExistsError

router = APIRouter(prefix="/threads", tags=["threads"])


def _checkpoint(config: RunnableConfig | None) -> dict[str, Any] | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    return {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
        "checkpoint_map": configurable.get("checkpoint_map", {}),
    }


def thread_state(snapshot: StateSnapshot) -> dict[str, Any]:
    """A StateSnapshot in the ThreadState shape of the SDK."""
    tasks = []
    for task in snapshot.tasks:
        tasks.append(
            {
                "id": task.id,
                "name": task.name,
                "error": repr(task.error) if task.error else None,
                "interrupts": list(task.interrupts),
                "checkpoint": _checkpoint(task.state) if isinstance(task.state, dict) else None,
                "state": thread_state(task.state) if isinstance(task.state, StateSnapshot) else None,
                "result": task.result,
            }
        )
    return to_jsonable(
        {
            "values": snapshot.values,
            "next": list(snapshot.next),
            "checkpoint": _checkpoint(snapshot.config),
            "metadata": snapshot.metadata,
            "created_at": snapshot.created_at,
            "parent_checkpoint": _checkpoint(snapshot.parent_config),
            "tasks": tasks,
            "interrupts": list(snapshot.interrupts),
        }
    )


def _config(
    thread_id: str, ref: CheckpointRef | None = None, checkpoint_id: str | None = None
) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ref.checkpoint_ns if ref else ""}
    if checkpoint_id := (ref.checkpoint_id if ref else None) or checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


async def _state(runtime: Runtime, thread: dict, config: RunnableConfig, subgraphs: bool) -> dict[str, Any]:
    return thread_state(await runtime.graph_of(thread).aget_state(config, subgraphs=subgraphs))


@router.post("")
async def create_thread(body: ThreadCreate, runtime: RuntimeDep, request: Request) -> dict[str, Any]:
    value = {"thread_id": body.thread_id, "metadata": body.metadata or {}}
    metadata = {**(body.metadata or {}), **plain(await authorize(request, "threads", "create", value))}
    try:
        return await runtime.threads.create(
            body.thread_id,
            metadata,
            tenant=current_tenant(),
            user=current_request().user,
            ttl=body.ttl.policy() if body.ttl else None,
            if_exists=body.if_exists,
        )
    except ThreadExistsError as error:
        raise HTTPException(status_code=409, detail=str(error)) from None


@router.post("/search")
async def search_threads(query: ThreadSearch, runtime: RuntimeDep, request: Request) -> list[dict[str, Any]]:
    search = query.model_dump()
    filters = plain(await authorize(request, "threads", "search", {"metadata": search.get("metadata") or {}}))
    search["metadata"] = {**(search.get("metadata") or {}), **filters}
    return await runtime.threads.search(**search, tenant=current_tenant())


@router.post("/count")
async def count_threads(query: ThreadCount, runtime: RuntimeDep) -> int:
    return await runtime.threads.count(**query.model_dump(), tenant=current_tenant())


@router.post("/prune")
async def prune_threads(body: ThreadPrune, runtime: RuntimeDep) -> dict[str, int]:
    if not body.thread_ids:
        return {"pruned_count": 0}
    existing = [
        t["thread_id"]
        for t in await runtime.threads.search(
            ids=body.thread_ids, limit=len(body.thread_ids), tenant=current_tenant()
        )
    ]
    if body.strategy == "delete":
        for thread_id in existing:
            await runtime.engine.delete_thread(thread_id)
    else:
        await runtime.saver.aprune(existing, strategy="keep_latest")
    return {"pruned_count": len(existing)}


@router.get("/{thread_id}")
async def get_thread(thread: ThreadDep) -> dict[str, Any]:
    return thread


@router.patch("/{thread_id}", response_model=None)
async def patch_thread(
    thread: ThreadDep,
    body: ThreadPatch,
    runtime: RuntimeDep,
    prefer: Annotated[str | None, Header()] = None,
) -> dict[str, Any] | Response:
    ttl = body.ttl.policy() if body.ttl else None
    updated = await runtime.threads.merge_metadata(thread["thread_id"], body.metadata, ttl=ttl)
    if prefer == "return=minimal":
        return Response(status_code=204)
    return {**updated, "values": thread["values"]}


@router.delete("/{thread_id}", status_code=204)
async def delete_thread(thread: ThreadDep, runtime: RuntimeDep) -> None:
    await runtime.engine.delete_thread(thread["thread_id"])


@router.post("/{thread_id}/copy")
async def copy_thread(thread: ThreadDep, runtime: RuntimeDep) -> dict[str, Any]:
    copy_id = str(uuid.uuid4())
    await runtime.saver.acopy_thread(thread["thread_id"], copy_id)
    await runtime.threads.set_values(copy_id, thread["values"])
    created = await runtime.threads.create(
        copy_id,
        thread["metadata"],
        tenant=thread["tenant"],
        user=current_request().user,
        ttl=thread.get("ttl"),
        interrupts=thread["interrupts"],
    )
    return {**created, "values": thread["values"]}


@router.get("/{thread_id}/state")
async def get_thread_state(thread: ThreadDep, runtime: RuntimeDep, subgraphs: bool = False) -> dict[str, Any]:
    return await _state(runtime, thread, _config(thread["thread_id"]), subgraphs)


@router.get("/{thread_id}/state/{checkpoint_id}")
async def get_thread_state_at_checkpoint_id(
    thread: ThreadDep, checkpoint_id: str, runtime: RuntimeDep, subgraphs: bool = False
) -> dict[str, Any]:
    return await _state(runtime, thread, _config(thread["thread_id"], checkpoint_id=checkpoint_id), subgraphs)


@router.post("/{thread_id}/state/checkpoint")
async def get_thread_state_at_checkpoint(
    thread: ThreadDep, body: StateAtCheckpoint, runtime: RuntimeDep
) -> dict[str, Any]:
    return await _state(runtime, thread, _config(thread["thread_id"], body.checkpoint), body.subgraphs)


@router.post("/{thread_id}/state")
async def update_thread_state(thread: ThreadDep, body: StateUpdate, runtime: RuntimeDep) -> dict[str, Any]:
    thread_id = thread["thread_id"]
    if await runtime.engine.busy(thread_id):
        raise HTTPException(status_code=409, detail=f"thread {thread_id} is busy with a run")
    config = _config(thread_id, body.checkpoint, body.checkpoint_id)
    try:
        written = await runtime.graph_of(thread).aupdate_state(config, body.values, as_node=body.as_node)
    except (InvalidUpdateError, ValueError, KeyError, TypeError) as error:  # unknown node, bad values...
        raise HTTPException(status_code=400, detail=f"cannot update state: {error}") from None
    state = await runtime.graph_of(thread).aget_state({"configurable": {"thread_id": thread_id}})
    await runtime.threads.update(thread_id, values=to_jsonable(state.values))
    return {"checkpoint": _checkpoint(written)}


@router.post("/{thread_id}/history")
async def get_thread_history(
    thread: ThreadDep, query: HistoryQuery, runtime: RuntimeDep
) -> list[dict[str, Any]]:
    before = query.before
    before_config = None
    if before is not None:
        ref = before if isinstance(before, CheckpointRef) else CheckpointRef(checkpoint_id=before)
        before_config = _config(thread["thread_id"], ref)
    history = runtime.graph_of(thread).aget_state_history(
        _config(thread["thread_id"], query.checkpoint),
        filter=query.metadata,
        before=before_config,
        limit=query.limit,
    )
    return [thread_state(snapshot) async for snapshot in history]
