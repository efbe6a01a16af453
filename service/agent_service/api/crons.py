"""Crons (LangGraph Server's /runs/crons API): create, search, count, get, update, delete.

Scheduling and firing are ``agent_service.runs.crons``; every cron belongs to the caller's tenant,
and another tenant's cron answers 404 like one that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from agent_service.api.assistants import resolve_assistant
from agent_service.api.deps import RuntimeDep, ThreadDep, current_tenant
from agent_service.api.runs import check_webhook, field_error
from agent_service.api.schemas import CronCount, CronCreate, CronPatch, CronRun, CronSearch, RunCreate
from agent_service.observability.context import current_request
from agent_service.runs.crons import CronError, check_schedule, zone
from agent_service.runtime import Runtime
from agent_service.serialization import now_iso, to_jsonable

router = APIRouter(tags=["crons"])
_PUBLIC_FIELDS = (
    "cron_id",
    "assistant_id",
    "thread_id",
    "on_run_completed",
    "end_time",
    "schedule",
    "timezone",
    "created_at",
    "updated_at",
    "payload",
    "user_id",
    "next_run_date",
    "metadata",
    "enabled",
)


def _public(cron: dict[str, Any], select: list[str] | None = None) -> dict[str, Any]:
    return {k: cron.get(k) for k in (select or _PUBLIC_FIELDS) if k in _PUBLIC_FIELDS}


def _valid_run(payload: dict[str, Any]) -> None:
    try:
        RunCreate.model_validate(payload)
    except ValidationError as error:
        raise RequestValidationError(error.errors()) from None


async def _validated(runtime: Runtime, fields: CronRun, schedule: str | None, timezone: str | None) -> None:
    try:
        if schedule is not None:
            check_schedule(schedule)
        zone(timezone)
    except CronError as error:
        raise field_error(error.field, str(error)) from None
    await check_webhook(runtime, fields.webhook)


async def _create(runtime: Runtime, thread_id: str | None, body: CronCreate) -> dict[str, Any]:
    assistant = await resolve_assistant(runtime, body.assistant_id)
    await _validated(runtime, body, body.schedule, body.timezone)
    # The payload must make a valid run (refused now, not at 3 a.m. when it fires).
    _valid_run({**body.run_payload(), "assistant_id": assistant["assistant_id"]})
    now = now_iso()
    cron = {
        "cron_id": str(uuid.uuid4()),
        "assistant_id": assistant["assistant_id"],
        "thread_id": thread_id,
        "on_run_completed": None if thread_id else (body.on_run_completed or "delete"),
        "end_time": body.end_time.isoformat() if body.end_time else None,
        "schedule": body.schedule,
        "timezone": body.timezone,
        "created_at": now,
        "updated_at": now,
        "payload": to_jsonable(body.run_payload()),
        "user_id": current_request().user,
        "metadata": body.metadata or {},
        "enabled": body.enabled,
        "tenant": current_tenant(),
    }
    return _public(await runtime.engine.crons.save(cron))


@router.post("/runs/crons")
async def create_cron(body: CronCreate, runtime: RuntimeDep) -> dict[str, Any]:
    return await _create(runtime, None, body)


@router.post("/threads/{thread_id}/runs/crons")
async def create_thread_cron(thread: ThreadDep, body: CronCreate, runtime: RuntimeDep) -> dict[str, Any]:
    return await _create(runtime, thread["thread_id"], body)


async def _mine(runtime: Runtime) -> list[dict[str, Any]]:
    return [c for c in await runtime.engine.crons.all() if c.get("tenant") == current_tenant()]


def _matches(cron: dict[str, Any], query: CronSearch | CronCount) -> bool:
    if query.assistant_id and query.assistant_id not in (cron["assistant_id"],):
        return False
    if query.thread_id and query.thread_id != cron["thread_id"]:
        return False
    if isinstance(query, CronSearch) and query.enabled is not None and query.enabled != cron["enabled"]:
        return False
    return not query.metadata or all(cron["metadata"].get(k) == v for k, v in query.metadata.items())


@router.post("/runs/crons/search")
async def search_crons(query: CronSearch, runtime: RuntimeDep) -> list[dict[str, Any]]:
    found = [c for c in await _mine(runtime) if _matches(c, query)]
    found.sort(key=lambda c: c.get(query.sort_by) or "", reverse=query.sort_order == "desc")
    return [_public(c, query.select) for c in found[query.offset : query.offset + query.limit]]


@router.post("/runs/crons/count")
async def count_crons(query: CronCount, runtime: RuntimeDep) -> int:
    return sum(1 for c in await _mine(runtime) if _matches(c, query))


async def _owned(runtime: Runtime, cron_id: str) -> dict[str, Any]:
    cron = await runtime.engine.crons.get(cron_id)
    if cron is None or cron.get("tenant") != current_tenant():
        raise HTTPException(status_code=404, detail=f"cron {cron_id} not found")
    return cron


@router.get("/runs/crons/{cron_id}")
async def get_cron(cron_id: str, runtime: RuntimeDep) -> dict[str, Any]:
    return _public(await _owned(runtime, cron_id))


@router.patch("/runs/crons/{cron_id}")
async def update_cron(cron_id: str, body: CronPatch, runtime: RuntimeDep) -> dict[str, Any]:
    cron = await _owned(runtime, cron_id)
    given = body.model_fields_set
    await _validated(runtime, body, body.schedule, body.timezone if "timezone" in given else cron["timezone"])
    changed = {
        **cron,
        "payload": {**cron["payload"], **to_jsonable(body.run_payload())},
        "updated_at": now_iso(),
    }
    for name in ("schedule", "enabled", "timezone", "on_run_completed"):
        if name in given and getattr(body, name) is not None:
            changed[name] = getattr(body, name)
    if "end_time" in given:  # an explicit null clears it
        changed["end_time"] = body.end_time.isoformat() if body.end_time else None
    if body.metadata is not None:
        changed["metadata"] = body.metadata
    _valid_run({**changed["payload"], "assistant_id": changed["assistant_id"]})
    return _public(await runtime.engine.crons.save(changed))


@router.delete("/runs/crons/{cron_id}", status_code=204)
async def delete_cron(cron_id: str, runtime: RuntimeDep) -> None:
    await _owned(runtime, cron_id)
    await runtime.engine.crons.delete(cron_id)
