"""Assistants: create, read, search, count, update (a new version), versions, set_latest, delete.

The default assistant of each served graph is visible to every tenant and read-only; the others
belong to the tenant that created them (``agent_service.state.assistants``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, HTTPException, Response
from langchain_core.utils.pydantic import create_model_v2
from langgraph.pregel import Pregel
from pydantic import TypeAdapter

from agent_service.api.deps import RuntimeDep, current_tenant, field_error
from agent_service.api.schemas import (
    AssistantCount,
    AssistantCreate,
    AssistantLatest,
    AssistantPatch,
    AssistantSearch,
    AssistantVersions,
)
from agent_service.runtime import Runtime
from agent_service.state.assistants import (
    AssistantExistsError,
    AssistantNotFoundError,
    AssistantReadOnlyError,
    VersionNotFoundError,
    public,
)

router = APIRouter(prefix="/assistants", tags=["assistants"])


async def resolve_assistant(runtime: Runtime, assistant_id: str) -> dict[str, Any]:
    """The caller's assistant by id (or a default's graph id), as LangGraph Server does; 404 otherwise."""
    try:
        return await runtime.assistants.resolve(assistant_id, current_tenant())
    except AssistantNotFoundError as error:
        raise HTTPException(status_code=404, detail=str(error)) from None


def _config_and_context(
    config: dict[str, Any] | None, context: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """LangGraph Server keeps ``config.configurable`` and ``context`` the same; one of them may be given."""
    configurable = (config or {}).get("configurable")
    if configurable and context:
        raise field_error("context", "give context or config.configurable, not both (prefer context)")
    if configurable:
        return config, configurable
    if context:
        return {**(config or {}), "configurable": context}, context
    return config, context


def _refused(error: Exception) -> HTTPException:
    """Read-only defaults and taken ids conflict (409); unknown assistants and versions are 404."""
    conflict = isinstance(error, AssistantReadOnlyError | AssistantExistsError)
    return HTTPException(status_code=409 if conflict else 404, detail=str(error))


_ERRORS = (AssistantNotFoundError, AssistantReadOnlyError, AssistantExistsError, VersionNotFoundError)


@router.post("")
async def create_assistant(body: AssistantCreate, runtime: RuntimeDep) -> dict[str, Any]:
    config, context = _config_and_context(body.config, body.context)
    if body.graph_id not in runtime.assistants.graph_ids:
        raise field_error("graph_id", f"graph {body.graph_id!r} is not served here")
    try:
        created = await runtime.assistants.create(
            current_tenant(),
            graph_id=body.graph_id,
            assistant_id=str(body.assistant_id) if body.assistant_id else None,
            config=config or {},
            context=context or {},
            metadata=body.metadata,
            name=body.name,
            description=body.description,
            if_exists=body.if_exists,
        )
    except _ERRORS as error:
        raise _refused(error) from None
    return public(created)


@router.post("/search")
async def search_assistants(
    query: AssistantSearch, runtime: RuntimeDep, response: Response
) -> list[dict[str, Any]]:
    found = await runtime.assistants.search(
        current_tenant(),
        graph_id=query.graph_id,
        name=query.name,
        metadata=query.metadata,
        sort_by=query.sort_by,
        sort_order=query.sort_order,
    )
    page = found[query.offset : query.offset + query.limit]
    if len(found) > query.offset + query.limit:
        response.headers["X-Pagination-Next"] = str(query.offset + query.limit)
    return [{k: v for k, v in public(a).items() if not query.select or k in query.select} for a in page]


@router.post("/count")
async def count_assistants(query: AssistantCount, runtime: RuntimeDep) -> int:
    found = await runtime.assistants.search(
        current_tenant(), graph_id=query.graph_id, name=query.name, metadata=query.metadata
    )
    return len(found)


@router.get("/{assistant_id}")
async def get_assistant(assistant_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return public(await resolve_assistant(runtime, assistant_id))


@router.patch("/{assistant_id}")
async def patch_assistant(assistant_id: str, body: AssistantPatch, runtime: RuntimeDep) -> dict[str, Any]:
    config, context = _config_and_context(body.config, body.context)
    if body.graph_id is not None and body.graph_id not in runtime.assistants.graph_ids:
        raise field_error("graph_id", f"graph {body.graph_id!r} is not served here")
    try:
        updated = await runtime.assistants.update(
            assistant_id,
            current_tenant(),
            graph_id=body.graph_id,
            config=config,
            context=context,
            metadata=body.metadata,
            name=body.name,
            description=body.description,
        )
    except _ERRORS as error:
        raise _refused(error) from None
    return public(updated)


@router.delete("/{assistant_id}", status_code=204)
async def delete_assistant(assistant_id: str, runtime: RuntimeDep, delete_threads: bool = False) -> None:
    """``delete_threads``: the caller's threads whose ``metadata.assistant_id`` is this assistant go
    too, with their runs and checkpoints (as LangGraph Server does)."""
    tenant = current_tenant()
    try:
        await runtime.assistants.delete(assistant_id, tenant)
    except _ERRORS as error:
        raise _refused(error) from None
    # As LangGraph Server does: the assistant's crons go with it (they could never fire again).
    for cron in await runtime.engine.crons.all():
        if cron["assistant_id"] == assistant_id and cron.get("tenant") == tenant:
            await runtime.engine.crons.delete(cron["cron_id"])
    if delete_threads:
        await _delete_threads_of(runtime, assistant_id, tenant)


async def _delete_threads_of(runtime: Runtime, assistant_id: str, tenant: str | None) -> None:
    by_assistant = {"assistant_id": assistant_id}
    while page := await runtime.threads.search(metadata=by_assistant, limit=100, tenant=tenant):
        for thread in page:
            await runtime.engine.delete_thread(thread["thread_id"])


@router.post("/{assistant_id}/versions")
async def get_assistant_versions(
    assistant_id: str, body: AssistantVersions, runtime: RuntimeDep
) -> list[dict[str, Any]]:
    try:
        versions = await runtime.assistants.versions(assistant_id, current_tenant(), metadata=body.metadata)
    except _ERRORS as error:
        raise _refused(error) from None
    return versions[body.offset : body.offset + body.limit]


@router.post("/{assistant_id}/latest")
async def set_latest_assistant_version(
    assistant_id: str, body: AssistantLatest, runtime: RuntimeDep
) -> dict[str, Any]:
    try:
        return public(await runtime.assistants.set_latest(assistant_id, current_tenant(), body.version))
    except VersionNotFoundError as error:
        raise field_error("version", str(error)) from None
    except _ERRORS as error:
        raise _refused(error) from None


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
