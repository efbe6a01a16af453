"""App factory: `create_app(settings)` wires routers, error mapping, middleware and the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.middleware import Middleware
from fastapi.middleware.cors import CORSMiddleware
from fastapi.params import Depends
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from agent_service.api import assistants, health, runs, threads
from agent_service.execution import RunExecutor, ServiceDrainingError, ThreadBusyError
from agent_service.gateway import Gateway
from agent_service.graphs.loader import load_graph
from agent_service.llm import LLMError, shared_llm
from agent_service.observability.logging import RequestContextMiddleware
from agent_service.observability.metrics import MetricsMiddleware, metrics_endpoint
from agent_service.observability.tracing import TracingMiddleware
from agent_service.runtime import Runtime
from agent_service.security.auth import Authenticator, authenticate
from agent_service.security.body_limit import BodySizeLimitMiddleware
from agent_service.security.headers import ResponseHeadersMiddleware
from agent_service.security.ratelimit import RateLimiter, enforce_rate_limit
from agent_service.settings import Settings
from agent_service.state import RedisSaver, connection
from agent_service.state.runs import RunStore
from agent_service.state.threads import ThreadStore


def _middleware(settings: Settings) -> list[Middleware]:
    """The middleware stack, OUTERMOST FIRST (each entry wraps all the ones after it).

    1. request id + JSON access log: sees every response, including refusals from the layers below
    2. metrics: records the status code the client really got
    3. security headers: added to every response, errors included
    4. CORS: answers preflight requests before any limit counts them
    5. body-size limit: refuses an oversized body before anything reads it
    Auth and rate limits are not middleware: they need the matched route, see `_api_dependencies`.
    """
    stack = [Middleware(RequestContextMiddleware)]
    if settings.otel_exporter_otlp_endpoint:
        stack.append(Middleware(TracingMiddleware))  # inside 1 so spans carry the request id
    stack += [Middleware(MetricsMiddleware), Middleware(ResponseHeadersMiddleware)]
    if settings.cors_allow_origins:
        stack.append(
            Middleware(
                CORSMiddleware,
                allow_origins=settings.cors_allow_origins,
                allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
                expose_headers=[
                    "X-Request-ID",
                    "X-RateLimit-Limit",
                    "X-RateLimit-Remaining",
                    "X-RateLimit-Reset",
                    "Retry-After",
                    "Content-Location",
                    "Location",
                ],
                max_age=600,
            )
        )
    stack.append(Middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_body_bytes))
    return stack


def _api_dependencies(settings: Settings) -> list[Depends]:
    """Dependencies of every API route except the probes: auth first, then rate limits."""
    # enforce_rate_limit depends on authenticate itself; FastAPI runs it once per request (cached).
    return [Depends(authenticate), Depends(enforce_rate_limit)]


def _operation_id(route: APIRoute) -> str:
    # Stable operationIds: the endpoint function's name, unique across routers.
    return route.name


def build_runtime(settings: Settings) -> Runtime:
    """Clients connect lazily, so this succeeds while Redis is down and the service recovers by itself."""
    client = connection.async_client(settings.redis_url, settings.redis_timeout_seconds)
    saver = RedisSaver(async_client=client, prefix=f"{settings.redis_key_prefix}:cp")
    graph = load_graph(settings, saver)
    thread_store = ThreadStore(client, settings.redis_key_prefix)
    run_store = RunStore(client, settings.redis_key_prefix)
    executor = RunExecutor(
        graph,
        saver,
        thread_store,
        run_store,
        run_timeout=settings.run_timeout_seconds,
        lock_ttl=settings.run_lock_ttl_seconds,
        max_concurrent=settings.max_concurrent_runs,
        cancel_channel=f"{settings.redis_key_prefix}:cancel",
    )
    return Runtime(settings, client, saver, graph, thread_store, run_store, executor)


async def drain(runtime: Runtime) -> None:
    """Readiness turns false at once; runs get the grace period, then are cancelled."""
    await runtime.executor.drain(runtime.settings.drain_grace_seconds)


async def start_gateway(settings: Settings) -> Gateway | None:
    """The LLM gateway on loopback, the SDKs pointed at it: before the graph loads (see gateway/)."""
    if not settings.llm_gateway:
        return None
    gateway = Gateway(shared_llm(settings), settings.llm_gateway_port)
    await gateway.start()
    gateway.point_sdks_here()
    return gateway


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    gateway = await start_gateway(app.state.settings)
    runtime = build_runtime(app.state.settings)
    app.state.runtime = runtime
    cancel_listener = asyncio.create_task(runtime.executor.listen_for_cancellations())
    try:
        yield
    finally:
        await drain(runtime)
        cancel_listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancel_listener
        if gateway is not None:  # after the drain: runs still call their models until they end
            await gateway.stop()
        await runtime.redis.aclose()


def _retry_later(settings: Settings, detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(settings.redis_retry_after_seconds)}
    )


def _install_error_mapping(app: FastAPI, settings: Settings) -> None:
    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    async def state_store_unavailable(_: Request, error: Exception) -> JSONResponse:
        return _retry_later(settings, "the state store (Redis) is unavailable; retry later")

    @app.exception_handler(ServiceDrainingError)
    async def draining(_: Request, error: ServiceDrainingError) -> JSONResponse:
        return _retry_later(settings, str(error))

    @app.exception_handler(LLMError)
    async def llm_unavailable(_: Request, error: LLMError) -> JSONResponse:
        # Budget refusals are 429, open circuits / exhausted fallbacks 503, provider refusals 502.
        headers = {"Retry-After": str(max(1, round(error.retry_after)))} if error.retry_after else None
        return JSONResponse({"detail": str(error)}, status_code=error.status_code, headers=headers)

    @app.exception_handler(ThreadBusyError)
    async def thread_busy(_: Request, error: ThreadBusyError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Shepherd agent service",
        summary="LangGraph Server API for one graph, with state in Redis",
        version="0.1.0",
        lifespan=lifespan,
        middleware=_middleware(settings),
        generate_unique_id_function=_operation_id,
    )
    app.state.settings = settings
    app.state.authenticator = Authenticator(settings)
    app.state.rate_limiter = RateLimiter(settings)
    _install_error_mapping(app, settings)
    app.include_router(health.router)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    api_dependencies: Any = _api_dependencies(settings)
    for router in (assistants.router, threads.router, runs.thread_runs, runs.stateless_runs):
        app.include_router(router, dependencies=api_dependencies)
    return app
