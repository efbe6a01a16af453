"""``GET /threads/{thread_id}/stream``: the events of every run of a thread (``runs.thread_stream``).

``stream_mode`` as LangGraph Server takes it: ``run_modes`` (every event the runs stream, the
default), ``lifecycle`` (each run's ``metadata`` event, and errors), ``state_update`` (the thread's
values after each step).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import StreamingResponse

from agent_service.api.deps import RuntimeDep, ThreadDep
from agent_service.runs import events
from agent_service.runs.thread_stream import Position, follow_thread

router = APIRouter(prefix="/threads", tags=["threads"])

ThreadStreamMode = Literal["run_modes", "lifecycle", "state_update"]
_EVENTS: dict[str, frozenset[str]] = {
    "lifecycle": frozenset({"metadata", "error"}),
    "state_update": frozenset({"metadata", "values"}),
}


def _wanted(name: str, modes: set[str]) -> bool:
    return "run_modes" in modes or any(name.split("|")[0] in _EVENTS[m] for m in modes)


def _sse(position: Position, event: events.Event) -> bytes:
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (str(position).encode(), event.name.encode(), event.data)


@router.get("/{thread_id}/stream", response_class=StreamingResponse)
async def join_thread_stream(
    thread: ThreadDep,
    runtime: RuntimeDep,
    stream_mode: Annotated[list[ThreadStreamMode] | None, Query()] = None,
    last_event_id: Annotated[str | None, Header(max_length=300)] = None,
) -> StreamingResponse:
    modes = set(stream_mode or ["run_modes"])
    try:
        resume = None if last_event_id is None else Position.parse(last_event_id)
    except ValueError as error:
        raise HTTPException(422, detail=str(error)) from None
    if resume is not None and await runtime.engine.runs.find(thread["thread_id"], resume.run_id) is None:
        raise HTTPException(422, detail=f"Last-Event-ID names run {resume.run_id}, not a run of this thread")

    async def stream() -> AsyncIterator[bytes]:
        async for item in follow_thread(runtime.engine, thread["thread_id"], resume):
            if item is None:
                yield b": heartbeat\n\n"
            elif _wanted(item[1].name, modes):
                yield _sse(*item)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})
