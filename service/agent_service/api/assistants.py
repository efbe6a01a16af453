"""Assistants (read side): one assistant per served graph, as LangGraph Server creates from langgraph.json."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from fastapi import APIRouter, HTTPException

from agent_service.api.deps import RuntimeDep
from agent_service.api.schemas import AssistantCount, AssistantSearch
from agent_service.runtime import Runtime
from agent_service.serialization import now_iso
from agent_service.settings import Settings

# LangGraph Server derives the default assistant id from the graph id with this namespace,
# so clients that stored an assistant id keep working when they move to this runtime.
ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
_CREATED_AT = now_iso()

router = APIRouter(prefix="/assistants", tags=["assistants"])


def default_assistant(runtime: Runtime) -> dict[str, Any]:
    return assistant_of(runtime.settings)


def assistant_of(settings: Settings) -> dict[str, Any]:
    graph_id = settings.agent_graph_id
    return {
        "assistant_id": str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id)),
        "graph_id": graph_id,
        "config": {},
        "context": {},
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
        "metadata": {"created_by": "system"},
        "version": 1,
        "name": graph_id,
        "description": None,
    }


def resolve_assistant(runtime: Runtime, assistant_id: str) -> dict[str, Any]:
    """Accepts the assistant id or the graph id, as LangGraph Server does."""
    return find_assistant(runtime.settings, assistant_id)


def find_assistant(settings: Settings, assistant_id: str) -> dict[str, Any]:
    assistant = assistant_of(settings)
    if assistant_id not in (assistant["assistant_id"], assistant["graph_id"]):
        raise HTTPException(status_code=404, detail=f"assistant {assistant_id!r} not found")
    return assistant


def _matching(runtime: Runtime, query: AssistantSearch | AssistantCount) -> list[dict[str, Any]]:
    assistant = default_assistant(runtime)
    if query.graph_id and query.graph_id != assistant["graph_id"]:
        return []
    if query.name and query.name.lower() not in assistant["name"].lower():
        return []
    if query.metadata and any(assistant["metadata"].get(k) != v for k, v in query.metadata.items()):
        return []
    return [assistant]


@router.post("/search")
async def search_assistants(query: AssistantSearch, runtime: RuntimeDep) -> list[dict[str, Any]]:
    return _matching(runtime, query)[query.offset : query.offset + query.limit]


@router.post("/count")
async def count_assistants(query: AssistantCount, runtime: RuntimeDep) -> int:
    return len(_matching(runtime, query))


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return resolve_assistant(runtime, assistant_id)


@router.get("/{assistant_id}/graph")
async def get_assistant_graph(
    assistant_id: str, runtime: RuntimeDep, xray: int | bool = False
) -> dict[str, Any]:
    resolve_assistant(runtime, assistant_id)
    return (await runtime.graph.aget_graph(xray=xray)).to_json()


@router.get("/{assistant_id}/schemas")
async def get_assistant_schemas(assistant_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    assistant = resolve_assistant(runtime, assistant_id)
    graph = runtime.graph
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
