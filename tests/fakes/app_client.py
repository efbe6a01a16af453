"""A fresh agent-service app and an httpx client speaking to it in-process over ASGI.

The app gets its runtime (Redis clients, graph, stores) and its run engine (this process is one replica:
its worker runs the runs), as the lifespan would give it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from agent_service.app import build_runtime, create_app
from agent_service.settings import Settings
from fastapi import FastAPI


@asynccontextmanager
async def app_client(redis_url: str, **settings: Any) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """Own key prefix per app, so tests sharing a Redis never see each other's keys."""
    values = {"redis_url": redis_url, "redis_key_prefix": f"test-{uuid.uuid4().hex[:8]}", **settings}
    app = create_app(Settings(**values))
    runtime = app.state.runtime = build_runtime(app.state.settings)
    await runtime.engine.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client
    finally:
        await runtime.engine.stop(grace_seconds=0)
        await runtime.engine.blocking.aclose()
        await runtime.redis.aclose()
