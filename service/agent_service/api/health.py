"""Probes: liveness checks the process only; readiness checks what serving a request needs."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from agent_service.api.deps import RuntimeDep

router = APIRouter(tags=["health"])

READINESS_PING_TIMEOUT_SECONDS = 1.0


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    # Nothing external: a Redis outage must not make Kubernetes restart every replica.
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready; `checks` says why"}})
async def readiness(runtime: RuntimeDep) -> JSONResponse:
    draining = runtime.engine.draining
    checks: dict[str, Any] = {"graph": "ok", "draining": draining}
    try:
        async with asyncio.timeout(READINESS_PING_TIMEOUT_SECONDS):
            await runtime.redis.ping()
        checks["redis"] = "ok"
    except Exception as error:  # any failure to answer means not ready, whatever the cause
        checks["redis"] = f"unreachable: {type(error).__name__}"
    ready = checks["redis"] == "ok" and not draining
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks}, 200 if ready else 503
    )


@router.get("/info")
async def server_info(runtime: RuntimeDep) -> dict[str, Any]:
    return {
        "version": "shepherd",
        "graph_id": runtime.settings.agent_graph_id,
        "flags": {"assistants": False},
    }
