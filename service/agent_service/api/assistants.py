"""Assistants (read side): one assistant per served graph, as LangGraph Server creates from langgraph.json."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, HTTPException
from langchain_core.utils.pydantic import create_model_v2
from langgraph.pregel import Pregel
from pydantic import TypeAdapter

from agent_service.api.deps import RuntimeDep
from agent_service.api.schemas import AssistantCount, AssistantSearch
from agent_service.runtime import Runtime
from agent_service.state.assistants import AssistantNotFoundError

router = APIRouter(prefix="/assistants", tags=["assistants"])


async def resolve_assistant(runtime: Runtime, assistant_id: str) -> dict[str, Any]:
    """Accepts the assistant id or the graph id, as LangGraph Server does; 404 otherwise."""
    try:
        return await runtime.assistants.resolve(assistant_id)
    except AssistantNotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None


def _matches(assistant: dict[str, Any], query: AssistantSearch | AssistantCount) -> bool:
    if query.graph_id and query.graph_id != assistant["graph_id"]:
        return False
    if query.name and query.name.lower() not in assistant["name"].lower():
        return False
    return not query.metadata or all(assistant["metadata"].get(k) == v for k, v in query.metadata.items())


def _matching(runtime: Runtime, query: AssistantSearch | AssistantCount) -> list[dict[str, Any]]:
    return [a for a in runtime.assistants.all() if _matches(a, query)]


@router.post("/search")
async def search_assistants(query: AssistantSearch, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return _matching(runtime, query)[query.offset : query.offset + query.limit]


@router.post("/count")
async def count_assistants(query: AssistantCount, runtime: RuntimeDep) -> int:
    return len(_matching(runtime, query))


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return await resolve_assistant(runtime, assistant_id)


@router.get("/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, runtime: RuntimeDep, xray: int | bool = False
) -> dict[str, Any]:
    assistant = await resolve_assistant(runtime, assistant_id)
    return (await runtime.graphs[assistant["graph_id"]].aget_graph(xray=xray)).to_json()


#: Keys the runtime fills in itself: not for callers to set, so not in the published schema.
_RUNTIME_CONFIGURABLE = (
    "__pregel_checkpointer",
    "__pregel_store",
    "checkpoint_id",
    "checkpoint_ns",
    "thread_id",
)


def configurable_schema(graph: Pregel) -> dict[str, Any]:
    """The JSON schema of ``config.configurable`` alone, as LangGraph Server publishes it (the rest
    of a RunnableConfig, such as ``recursion_limit``, is not the graph's to describe)."""
    field = graph.config_schema().model_fields.get("configurable")
    if field is None:
        return {}
    schema = TypeAdapter(field.annotation).json_schema()
    for key in _RUNTIME_CONFIGURABLE:
        schema.get("properties", {}).pop(key, None)
    return schema


def state_schema(graph: Pregel) -> dict[str, Any]:
    """The thread state's schema: a field per channel the graph streams (so also ``__end__`` of a
    graph that only returns), typed by what the channel accepts, or anything when pydantic cannot
    describe that type."""

    def field_type(channel: str) -> Any:
        update_type = graph.channels[channel].UpdateType
        try:
            TypeAdapter(update_type).json_schema()
        except Exception:
            return Any
        return update_type

    fields: Any = {channel: (field_type(channel), None) for channel in graph.stream_channels_list}
    # LangChain's model factory, not pydantic's: it keeps names with leading underscores (``__end__``).
    return create_model_v2(graph.get_name("State"), field_definitions=fields).model_json_schema()


@router.get("/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    assistant = await resolve_assistant(runtime, assistant_id)
    graph = runtime.graphs[assistant["graph_id"]]
    describe = {
        "input_schema": graph.get_input_jsonschema,
        "output_schema": graph.get_output_jsonschema,
        "state_schema": lambda: state_schema(graph),
        "config_schema": lambda: configurable_schema(graph),
        "context_schema": graph.get_context_jsonschema,
    }
    schemas: dict[str, Any] = {"graph_id": assistant["graph_id"]}
    for kind, schema_of in describe.items():
        # A schema pydantic cannot describe (a forward reference it cannot resolve, no context
        # schema at all) is null, as LangGraph Server answers, never a 500 for the others.
        schemas[kind] = None
        with contextlib.suppress(Exception):
            schemas[kind] = schema_of()
    return schemas
