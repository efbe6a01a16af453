"""Runs on a thread or stateless: background, wait, stream (SSE), join, list, get, cancel, delete."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import StreamingResponse

from agent_service.api.assistants import resolve_assistant
from agent_service.api.deps import RuntimeDep, ThreadDep, current_tenant, not_found, owned
from agent_service.api.schemas import MAX_OFFSET, RunCreate, RunStatus
from agent_service.execution import LocalRun
from agent_service.runtime import Runtime
from agent_service.serialization import dumps
from agent_service.state.runs import RunNotFoundError
from agent_service.state.threads import ThreadNotFoundError

# A comment line on quiet streams keeps proxies and load balancers from closing them as idle.
HEARTBEAT_SECONDS = 15.0

thread_runs = APIRouter(prefix="/threads/{thread_id}/runs", tags=["runs"])
stateless_runs = APIRouter(prefix="/runs", tags=["runs"])


def _sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def _location(local: LocalRun, temporary: bool) -> dict[str, str]:
    run = local.run
    path = f"/runs/{run['run_id']}" if temporary else f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Content-Location": path}


async def _start(runtime: Runtime, thread_id: str | None, body: RunCreate) -> tuple[LocalRun, bool]:
    assistant = resolve_assistant(runtime, body.assistant_id)
    identity = {"graph_id": assistant["graph_id"], "assistant_id": assistant["assistant_id"]}
    temporary = thread_id is None
    tenant = current_tenant()
    if temporary:
        thread = await runtime.threads.create(str(uuid.uuid4()), identity, tenant=tenant)
    else:
        try:
            thread = owned(await runtime.threads.get(thread_id))
        except ThreadNotFoundError as error:
            if body.if_not_exists != "create":
                raise not_found(error) from None
            thread = await runtime.threads.create(thread_id, identity, tenant=tenant, if_exists="do_nothing")
        if any(k not in thread["metadata"] for k in identity):
            await runtime.threads.merge_metadata(thread_id, identity)
    local = await runtime.executor.start(
        thread["thread_id"], body, assistant_id=assistant["assistant_id"], temporary=temporary
    )
    return local, temporary


async def _stream_events(
    runtime: Runtime, local: LocalRun, cancel_on_disconnect: bool
) -> AsyncIterator[bytes]:
    try:
        async for item in local.follow(idle_seconds=HEARTBEAT_SECONDS):
            yield _sse(*item) if item else b": heartbeat\n\n"
    finally:
        if cancel_on_disconnect and not local.finished and local.task is not None:
            local.task.cancel()


async def _wait_result(local: LocalRun) -> Any:
    # Shielded: a client giving up on the wait must not cancel the run itself.
    await asyncio.shield(local.task)  # type: ignore[arg-type]
    return local.result


# -- the same three entry points with and without a thread ------------------------------------


async def _create(runtime: Runtime, thread_id: str | None, body: RunCreate, response: Response) -> dict:
    local, temporary = await _start(runtime, thread_id, body)
    response.headers.update(_location(local, temporary))
    return local.run


async def _stream(runtime: Runtime, thread_id: str | None, body: RunCreate) -> StreamingResponse:
    local, temporary = await _start(runtime, thread_id, body)
    return StreamingResponse(
        _stream_events(runtime, local, body.on_disconnect == "cancel"),
        media_type="text/event-stream",
        headers={**_location(local, temporary), "Cache-Control": "no-store"},
    )


async def _wait(runtime: Runtime, thread_id: str | None, body: RunCreate, response: Response) -> Any:
    local, temporary = await _start(runtime, thread_id, body)
    response.headers.update(_location(local, temporary))
    return await _wait_result(local)


@thread_runs.post("")
async def create_run(
    thread_id: str, body: RunCreate, runtime: RuntimeDep, response: Response
) -> dict[str, Any]:
    return await _create(runtime, thread_id, body, response)


@thread_runs.post("/stream", response_class=StreamingResponse)
async def stream_run(thread_id: str, body: RunCreate, runtime: RuntimeDep) -> StreamingResponse:
    return await _stream(runtime, thread_id, body)


@thread_runs.post("/wait")
async def wait_run(thread_id: str, body: RunCreate, runtime: RuntimeDep, response: Response) -> Any:
    return await _wait(runtime, thread_id, body, response)


@stateless_runs.post("")
async def create_stateless_run(body: RunCreate, runtime: RuntimeDep, response: Response) -> dict[str, Any]:
    return await _create(runtime, None, body, response)


@stateless_runs.post("/stream", response_class=StreamingResponse)
async def stream_stateless_run(body: RunCreate, runtime: RuntimeDep) -> StreamingResponse:
    return await _stream(runtime, None, body)


@stateless_runs.post("/wait")
async def wait_stateless_run(body: RunCreate, runtime: RuntimeDep, response: Response) -> Any:
    return await _wait(runtime, None, body, response)


# -- following and managing runs of a thread --------------------------------------------------


async def existing_run(run_id: str, thread: ThreadDep, runtime: RuntimeDep) -> dict[str, Any]:
    try:
        return await runtime.runs.get(run_id, thread["thread_id"])
    except RunNotFoundError as error:
        raise not_found(error) from None


RunDep = Annotated[dict[str, Any], Depends(existing_run)]


@thread_runs.get("")
async def list_runs(
    thread: ThreadDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:
    if limit < 1 or offset < 0:
        raise HTTPException(status_code=422, detail="limit must be >= 1 and offset >= 0")
    return await runtime.runs.list(thread["thread_id"], limit=limit, offset=offset, status=status)


@thread_runs.get("/{run_id}")
async def get_run(run: RunDep) -> dict[str, Any]:
    return run


@thread_runs.get("/{run_id}/join")
async def join_run(run: RunDep, runtime: RuntimeDep) -> Any:
    if local := runtime.executor.local.get(run["run_id"]):
        return await _wait_result(local)
    await runtime.executor.wait(run["run_id"])
    return (await runtime.threads.get(run["thread_id"]))["values"]


@thread_runs.get("/{run_id}/stream", response_class=StreamingResponse)
async def join_run_stream(
    run: RunDep, runtime: RuntimeDep, cancel_on_disconnect: bool = False
) -> StreamingResponse:
    local = runtime.executor.local.get(run["run_id"])
    if local is None:
        raise HTTPException(status_code=404, detail=f"run {run['run_id']} is not streaming on this replica")
    return StreamingResponse(
        _stream_events(runtime, local, cancel_on_disconnect), media_type="text/event-stream"
    )


@thread_runs.post("/{run_id}/cancel", status_code=202, response_model=None)
async def cancel_run(
    run: RunDep,
    runtime: RuntimeDep,
    wait: bool = False,
    action: Literal["interrupt", "rollback"] = "interrupt",
) -> Response | None:
    if run["status"] in ("pending", "running"):
        await runtime.executor.cancel(run["run_id"], rollback=action == "rollback")
        if wait and action != "rollback":
            await runtime.executor.wait(run["run_id"])
    return Response(status_code=204) if wait else None


@thread_runs.delete("/{run_id}", status_code=204)
async def delete_run(run: RunDep, runtime: RuntimeDep) -> None:
    if run["status"] in ("pending", "running"):
        raise HTTPException(
            status_code=409, detail=f"run {run['run_id']} is {run['status']}; cancel it first"
        )
    with contextlib.suppress(RunNotFoundError):
        await runtime.runs.delete(run["run_id"])
