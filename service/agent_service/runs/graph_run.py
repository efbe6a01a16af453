"""One attempt of a run through the graph: its config, its input, its streamed events, its outcome.

Nothing here touches the queue: ``agent_service.runs.worker`` decides when an attempt runs and
records how it ended; this module only knows LangGraph.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from langgraph.pregel import Pregel
from langgraph.types import Command

from agent_service.api.schemas import RunCreate
from agent_service.callbacks import run_callbacks
from agent_service.observability.tracing import graph_callbacks
from agent_service.serialization import dumps, to_jsonable

# API stream mode -> LangGraph stream mode; "events" is served by astream_events instead.
GRAPH_STREAM_MODES = {
    "values": "values",
    "updates": "updates",
    "messages-tuple": "messages",
    "messages": "messages",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
}

Publish = Callable[[str, bytes], object]


def thread_config(thread_id: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id}}


def run_config(
    run: dict[str, Any], body: RunCreate, assistant: dict[str, Any], graph_id: str
) -> dict[str, Any]:
    """The RunnableConfig of a run: the assistant's config under the run's, plus the run's identity."""
    base = assistant.get("config") or {}
    config = {**base, **(body.config or {})}
    ids = {
        "thread_id": run["thread_id"],
        "run_id": run["run_id"],
        "assistant_id": run["assistant_id"],
        "graph_id": graph_id,
    }
    configurable = {**base.get("configurable", {}), **(body.config or {}).get("configurable", {}), **ids}
    checkpoint = body.checkpoint
    if checkpoint_id := (checkpoint.checkpoint_id if checkpoint else None) or body.checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    if checkpoint and checkpoint.checkpoint_ns:
        configurable["checkpoint_ns"] = checkpoint.checkpoint_ns
    # Metadata lands in every checkpoint: run_id there is what delete_for_runs (rollback) uses and
    # what tells a resumed attempt which checkpoints are its own.
    metadata = {**config.get("metadata", {}), **(body.metadata or {}), **ids}
    return {
        **config,
        "configurable": configurable,
        "metadata": metadata,
        "run_id": uuid.UUID(run["run_id"]),
        # Node spans when tracing is on, tool and model metrics, the run's scope for the gateway;
        # the caller's own callbacks stay.
        "callbacks": [*(config.get("callbacks") or []), *graph_callbacks(), *run_callbacks()],
    }


def run_context(body: RunCreate, assistant: dict[str, Any]) -> dict[str, Any] | None:
    """The run's context (``Runtime.context`` in the graph): the assistant's, under the run's own."""
    return {**(assistant.get("context") or {}), **(body.context or {})} or None


@dataclass
class Attempt:
    """What one attempt produced: the root graph's last values."""

    result: Any = None


async def resume_point(graph: Pregel, thread_id: str, run_id: str) -> str:
    """Where a new attempt of ``run_id`` starts: ``start`` (nothing of it was checkpointed: from its
    input), ``resume`` (continue its last checkpoint: finished nodes are not run again) or ``done``
    (its graph had already finished; only the recording was lost)."""
    state = await graph.aget_state(thread_config(thread_id))
    if not state.metadata or state.metadata.get("run_id") != run_id:
        return "start"
    return "resume" if state.next else "done"


async def stream(
    graph: Pregel,
    body: RunCreate,
    config: dict[str, Any],
    publish: Publish,
    *,
    resume: bool,
    context: dict[str, Any] | None,
) -> Attempt:
    """Runs the graph, publishing the requested stream modes; ``resume`` continues the checkpoint."""
    attempt = Attempt()
    graph_input: Any = body.input
    if resume:
        graph_input = None
    elif body.command is not None:
        graph_input = Command(**body.command.model_dump(exclude_none=True))
    requested = body.stream_modes
    graph_modes = sorted({GRAPH_STREAM_MODES[m] for m in requested if m != "events"} | {"values"})
    published = {GRAPH_STREAM_MODES[m] for m in requested if m != "events"}
    options: dict[str, Any] = {
        "stream_mode": graph_modes,
        "subgraphs": True,
        "interrupt_before": None if resume else body.interrupt_before,
        "interrupt_after": None if resume else body.interrupt_after,
        "context": context,
    }
    if body.durability:
        options["durability"] = body.durability

    def emit(namespace: tuple[str, ...], mode: str, chunk: Any) -> None:
        if mode == "values" and not namespace:
            attempt.result = chunk
        if mode in published and (body.stream_subgraphs or not namespace):
            publish("|".join([mode, *namespace]), dumps(chunk))

    if "events" in requested:
        async for event in graph.astream_events(graph_input, config, version="v2", **options):
            if event["event"] == "on_chain_stream" and not event.get("parent_ids"):
                emit(*event["data"]["chunk"])
            else:
                publish("events", dumps(event))
    else:
        async for namespace, mode, chunk in graph.astream(graph_input, config, **options):
            emit(namespace, mode, chunk)
    return attempt


@dataclass(frozen=True)
class Ending:
    """What the thread looks like once an attempt has ended."""

    values: Any
    interrupts: dict[str, Any]
    paused: bool  # stopped at an interrupt (interrupt() or interrupt_before/after)
    result: Any  # the run's output: final values, with __interrupt__ when paused


async def ending(graph: Pregel, thread_id: str, status: str, last_values: Any) -> Ending:
    state = await graph.aget_state(thread_config(thread_id))
    interrupts = {t.id: to_jsonable(list(t.interrupts)) for t in state.tasks if t.interrupts}
    # A run that ended normally with nodes still pending stopped at an interrupt; a cancelled run
    # leaves the thread idle.
    paused = status == "success" and bool(interrupts or state.next)
    values = to_jsonable(state.values) if state.values else to_jsonable(last_values)
    result = values
    if interrupts and isinstance(result, dict):
        result = {**result, "__interrupt__": [i for group in interrupts.values() for i in group]}
    return Ending(to_jsonable(state.values), interrupts, paused, result)


def error_payload(error: BaseException) -> dict[str, str]:
    return {"error": type(error).__name__, "message": str(error)}
