"""A fresh agent-service app and an httpx client speaking to it in-process over ASGI.

The app gets its runtime (Redis clients, graph, stores) without the lifespan's background tasks: these tests
exercise the request path (middleware, auth, limits, metrics), and skipping the cancellation listener keeps
each app's teardown instant.
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
    app.state.runtime = build_runtime(app.state.settings)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client
    finally:
        await app.state.runtime.redis.aclose()
