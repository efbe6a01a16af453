"""Runs on a thread or stateless: background, wait, stream (SSE), join, list, get, cancel, delete.

Every route goes through the run engine (``agent_service.runs.engine``), so it answers the same
on any replica. SSE events carry ``id:`` (the event's number in the run's log); ``Last-Event-ID``
on a join resumes after that event. A stateless run's thread has the run's own id, so the
``Location`` of a stateless stream (``/runs/{run_id}/stream``) can be followed on any replica too.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse

from agent_service.api.assistants import resolve_assistant
from agent_service.api.deps import (
    RuntimeDep,
    ThreadDep,
    authorize,
    current_tenant,
    field_error,
    not_found,
    owned,
)
from agent_service.api.schemas import MAX_OFFSET, RunCreate, RunsCancel, RunStatus, StreamMode
from agent_service.extensions.auth import matches, plain
from agent_service.observability.context import current_request
from agent_service.runs import events
from agent_service.runs.graph_run import GRAPH_STREAM_MODES
from agent_service.runs.webhooks import WebhookRefusedError, public_run
from agent_service.runtime import Runtime
from agent_service.state.runs import RunNotFoundError
from agent_service.state.threads import ThreadNotFoundError

thread_runs = APIRouter(prefix="/threads/{thread_id}/runs", tags=["runs"])
stateless_runs = APIRouter(prefix="/runs", tags=["runs"])
_ACTIVE = ("pending", "running")
#: Cancels started by disconnecting streams; kept so the tasks are not collected mid-flight.
_disconnect_cancels: set[asyncio.Task] = set()


def _sse(event: events.Event) -> bytes:
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event.seq, event.name.encode(), event.data)


def _wanted(name: str, modes: list[str] | None) -> bool:
    if not modes:
        return True
    base = name.split("|")[0]
    return base in ("metadata", "error") or base in {GRAPH_STREAM_MODES.get(m, m) for m in modes}


def _paths(record: dict[str, Any]) -> tuple[str, str]:
    """(the run's path, its thread-less alias for stateless runs)."""
    run_id, thread_id = record["run_id"], record["thread_id"]
    return (f"/runs/{run_id}" if record.get("temporary") else f"/threads/{thread_id}/runs/{run_id}"), run_id


async def check_webhook(runtime: Runtime, webhook: str | None) -> None:
    """A run's or a cron's webhook is refused now (422 naming the field), not when it is due."""
    if webhook is None:
        return
    try:
        await runtime.engine.webhooks.policy.resolve(webhook, must_resolve=False)
    except WebhookRefusedError as refusal:
        raise field_error("webhook", f"webhook refused: {refusal}") from None


async def start_run(
    runtime: Runtime, request: Request, thread_id: str | None, body: RunCreate
) -> dict[str, Any]:
    assistant = await resolve_assistant(runtime, body.assistant_id)
    await check_webhook(runtime, body.webhook)
    identity = {"graph_id": assistant["graph_id"], "assistant_id": assistant["assistant_id"]}
    tenant, user = current_tenant(), current_request().user
    # The project's auth handler (extensions/auth.py): its filter is stamped on a thread the run
    # creates and required of the thread it runs on.
    value = {
        "thread_id": thread_id,
        "assistant_id": assistant["assistant_id"],
        "metadata": body.metadata or {},
    }
    filters = await authorize(request, "threads", "create_run", value)
    created = {**identity, **plain(filters)}
    if thread_id is None and body.on_completion == "keep":
        thread_id = (await runtime.threads.create(None, created, tenant=tenant, user=user))["thread_id"]
    elif thread_id is not None:
        try:
            thread = owned(await runtime.threads.get(thread_id))
        except ThreadNotFoundError as error:
            if body.if_not_exists != "create":
                raise not_found(error) from None
            thread = await runtime.threads.create(
                thread_id, created, tenant=tenant, user=user, if_exists="do_nothing"
            )
        if not matches(thread["metadata"], filters):
            raise HTTPException(status_code=404, detail=f"thread {thread_id} not found")
        # As LangGraph Server does: the thread names the graph and assistant that last ran on it.
        if any(thread["metadata"].get(k) != v for k, v in identity.items()):
            await runtime.threads.merge_metadata(thread_id, identity)
    return await runtime.engine.submit(thread_id, body, assistant=assistant, tenant=tenant, user=user)


def _last_event_id(header: str | None) -> int | None:
    if header is None:
        return None
    try:
        return max(0, int(header))
    except ValueError:
        raise HTTPException(422, detail=f"Last-Event-ID must be an event number, got {header!r}") from None


async def _event_stream(
    runtime: Runtime,
    record: dict[str, Any],
    after: int | None,
    modes: list[str] | None,
    cancel_on_disconnect: bool,
) -> AsyncIterator[bytes]:
    engine, ended = runtime.engine, False
    try:
        async for item in engine.follow(record["thread_id"], record["run_id"], after):
            if item is None:
                yield b": heartbeat\n\n"  # keeps proxies from closing a quiet stream as idle
            elif isinstance(item, events.End):
                ended = True
                return
            elif _wanted(item.name, modes):
                yield _sse(item)
    finally:
        if cancel_on_disconnect and not ended:
            task = asyncio.create_task(engine.cancel(record["thread_id"], record["run_id"]))
            _disconnect_cancels.add(task)
            task.add_done_callback(_disconnect_cancels.discard)


def _streaming(
    runtime: Runtime, record: dict[str, Any], after: int | None, modes: list[str] | None, cancel: bool
) -> StreamingResponse:
    path, _ = _paths(record)
    return StreamingResponse(
        _event_stream(runtime, record, after, modes, cancel),
        media_type="text/event-stream",
        headers={"Location": f"{path}/stream", "Content-Location": path, "Cache-Control": "no-store"},
    )


# -- the same three entry points with and without a thread ------------------------------------


async def _create(
    runtime: Runtime, request: Request, thread_id: str | None, body: RunCreate, response: Response
) -> dict:
    record = await start_run(runtime, request, thread_id, body)
    response.headers["Content-Location"] = _paths(record)[0]
    return public_run(record)


async def _stream(
    runtime: Runtime, request: Request, thread_id: str | None, body: RunCreate
) -> StreamingResponse:
    record = await start_run(runtime, request, thread_id, body)
    return _streaming(runtime, record, 0, None, body.on_disconnect == "cancel")


async def _wait(
    runtime: Runtime, request: Request, thread_id: str | None, body: RunCreate, response: Response
) -> Any:
    record = await start_run(runtime, request, thread_id, body)
    path, _ = _paths(record)
    response.headers.update({"Location": f"{path}/join", "Content-Location": path})
    return await runtime.engine.wait_result(record["thread_id"], record["run_id"])


@thread_runs.post("")
async def create_run(
    thread_id: str, body: RunCreate, runtime: RuntimeDep, request: Request, response: Response
) -> dict[str, Any]:
    return await _create(runtime, request, thread_id, body, response)


@thread_runs.post("/stream", response_class=StreamingResponse)
async def stream_run(
    thread_id: str, body: RunCreate, runtime: RuntimeDep, request: Request
) -> StreamingResponse:
    return await _stream(runtime, request, thread_id, body)


@thread_runs.post("/wait")
async def wait_run(
    thread_id: str, body: RunCreate, runtime: RuntimeDep, request: Request, response: Response
) -> Any:
    return await _wait(runtime, request, thread_id, body, response)


@stateless_runs.post("")
async def create_stateless_run(
    body: RunCreate, runtime: RuntimeDep, request: Request, response: Response
) -> dict[str, Any]:
    return await _create(runtime, request, None, body, response)


@stateless_runs.post("/stream", response_class=StreamingResponse)
async def stream_stateless_run(body: RunCreate, runtime: RuntimeDep, request: Request) -> StreamingResponse:
    return await _stream(runtime, request, None, body)


@stateless_runs.post("/wait")
async def wait_stateless_run(
    body: RunCreate, runtime: RuntimeDep, request: Request, response: Response
) -> Any:
    return await _wait(runtime, request, None, body, response)


@stateless_runs.post("/cancel", status_code=204)
async def cancel_runs(
    body: RunsCancel, runtime: RuntimeDep, action: Literal["interrupt", "rollback"] = "interrupt"
) -> None:
    """Cancels the caller's runs in flight matching the filters (the SDK's ``runs.cancel_many``)."""
    if not (body.thread_id or body.run_ids or body.status):
        raise field_error("status", "give thread_id, run_ids or status")
    await runtime.engine.cancel_many(
        thread_id=body.thread_id,
        run_ids=body.run_ids,
        status=body.status,
        action=action,
        tenant=current_tenant(),
    )


# -- following and managing one run -----------------------------------------------------------


async def _owned_run(runtime: Runtime, thread_id: str, run_id: str) -> dict[str, Any]:
    try:
        record = await runtime.engine.get(thread_id, run_id)
    except RunNotFoundError as error:
        raise not_found(error) from None
    if record.get("tenant", current_tenant()) != current_tenant():
        raise HTTPException(status_code=404, detail=f"run {run_id} not found on thread {thread_id}")
    return record


async def existing_run(thread_id: str, run_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return await _owned_run(runtime, thread_id, run_id)


async def existing_stateless_run(run_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return await _owned_run(runtime, run_id, run_id)


RunDep = Annotated[dict[str, Any], Depends(existing_run)]


@thread_runs.get("")
async def list_runs(
    thread: ThreadDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    status: RunStatus | None = None,
) -> list[dict[str, Any]]:
    runs = await runtime.engine.list(thread["thread_id"], limit=limit, offset=offset, status=status)
    return [public_run(r) for r in runs]


def _stream_modes(stream_mode: Annotated[list[str] | None, Query()] = None) -> list[str] | None:
    """The stream modes to pass on; the SDK sends an empty ``stream_mode=`` for "all of them"."""
    modes = [m for m in stream_mode or [] if m]
    if unknown := sorted(set(modes) - set(get_args(StreamMode))):
        raise HTTPException(422, detail=f"stream_mode: unknown mode(s) {', '.join(unknown)}")
    return modes or None


StreamModes = Annotated[list[str] | None, Depends(_stream_modes)]


def _add_run_routes(router: APIRouter, find_run: Callable[..., Awaitable[dict[str, Any]]], kind: str) -> None:
    """Get, join, stream and cancel one run by its id: the same for a thread's run and a stateless
    run (found by ``find_run``); ``kind`` names their operations (``get_run``, ``get_stateless_run``)."""

    async def get(run: dict[str, Any] = Depends(find_run)) -> dict[str, Any]:
        return public_run(run)

    async def join(response: Response, runtime: RuntimeDep, run: dict[str, Any] = Depends(find_run)) -> Any:
        path, _ = _paths(run)
        response.headers.update({"Location": f"{path}/join", "Content-Location": path})
        return await runtime.engine.wait_result(run["thread_id"], run["run_id"])

    async def join_stream(
        runtime: RuntimeDep,
        stream_mode: StreamModes,
        run: dict[str, Any] = Depends(find_run),
        cancel_on_disconnect: bool = False,
        last_event_id: Annotated[str | None, Header()] = None,
    ) -> StreamingResponse:
        return _streaming(runtime, run, _last_event_id(last_event_id), stream_mode, cancel_on_disconnect)

    async def cancel(
        runtime: RuntimeDep,
        run: dict[str, Any] = Depends(find_run),
        wait: bool = False,
        action: Literal["interrupt", "rollback"] = "interrupt",
    ) -> Response | None:
        if run["status"] in _ACTIVE:
            await runtime.engine.cancel(run["thread_id"], run["run_id"], action, wait=wait)
        return Response(status_code=204) if wait else None

    router.add_api_route("/{run_id}", get, methods=["GET"], name=f"get_{kind}")
    router.add_api_route("/{run_id}/join", join, methods=["GET"], name=f"join_{kind}")
    router.add_api_route(
        "/{run_id}/stream",
        join_stream,
        methods=["GET"],
        name=f"join_{kind}_stream",
        response_class=StreamingResponse,
    )
    router.add_api_route(
        "/{run_id}/cancel",
        cancel,
        methods=["POST"],
        name=f"cancel_{kind}",
        status_code=202,
        response_model=None,
    )


_add_run_routes(thread_runs, existing_run, "run")
_add_run_routes(stateless_runs, existing_stateless_run, "stateless_run")


@thread_runs.delete("/{run_id}", status_code=204)
async def delete_run(run: RunDep, runtime: RuntimeDep) -> None:
    if run["status"] in _ACTIVE:
        raise HTTPException(
            status_code=409, detail=f"run {run['run_id']} is {run['status']}; cancel it first"
        )
    await runtime.runs.delete(run["thread_id"], run["run_id"])
