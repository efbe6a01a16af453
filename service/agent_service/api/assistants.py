"""Assistants (read side): one assistant per served graph, as LangGraph Server creates from langgraph.json."""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, HTTPException

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


@router.get("/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    assistant = await resolve_assistant(runtime, assistant_id)
    graph = runtime.graphs[assistant["graph_id"]]
    context_schema = None
    with contextlib.suppress(Exception):  # graphs without a context schema raise rather than return None
        context_schema = graph.get_context_jsonschema()
    return {
        "graph_id": assistant["graph_id"],
        "input_schema": graph.get_input_jsonschema(),
        "output_schema": graph.get_output_jsonschema(),
        "state_schema": graph.get_output_jsonschema(),
        "config_schema": graph.get_config_jsonschema(),
        "context_schema": context_schema,
    }
