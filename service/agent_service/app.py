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
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.params import Depends
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.routing import APIRoute

from agent_service.api import (
    a2a,
    admin,
    assistants,
    crons,
    health,
    mcp,
    runs,
    store,
    thread_stream,
    threads,
    usage,
)
from agent_service.extensions.auth import ProjectAuth
from agent_service.extensions.routes import ProjectRoutes
from agent_service.gateway import Gateway
from agent_service.graphs.loader import GraphLoadError, load_graphs
from agent_service.graphs.project import Project, read_project
from agent_service.llm import LLMError, shared_llm
from agent_service.observability.logging import RequestContextMiddleware
from agent_service.observability.metrics import MetricsMiddleware, metrics_endpoint
from agent_service.observability.tracing import TracingMiddleware
from agent_service.runs.engine import FOLLOW_IDLE_SECONDS, RunEngine, ThreadBusyError
from agent_service.runtime import Runtime
from agent_service.security.auth import Authenticator, authenticate, require_admin
from agent_service.security.body_limit import BodySizeLimitMiddleware
from agent_service.security.headers import ResponseHeadersMiddleware
from agent_service.security.input_limits import apply_input_limits
from agent_service.security.ratelimit import RateLimiter, enforce_rate_limit
from agent_service.settings import Settings
from agent_service.startup import apply_project_env, report_failure, warn_about
from agent_service.state import RedisSaver, connection
from agent_service.state.assistants import Assistants
from agent_service.state.keys import ServiceKeys
from agent_service.state.runs import RunStore
from agent_service.state.store import RedisStore
from agent_service.state.threads import ThreadStore, ttl_policy
from agent_service.store_setup import store_index, with_project_ttl

#: Connections of the blocking-read pool (a worker's BLPOP plus one per follower on another replica).
BLOCKING_CONNECTIONS = 512


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
    """Dependencies of every API route except the probes: auth first, then rate limits, then the
    input limits the body is parsed with (dependencies run before FastAPI reads the body), then the
    spend gate of new runs."""
    # enforce_rate_limit depends on authenticate itself; FastAPI runs it once per request (cached).
    return [
        Depends(authenticate),
        Depends(enforce_rate_limit),
        Depends(apply_input_limits),
        Depends(usage.admit_run),
    ]


def _operation_id(route: APIRoute) -> str:
    # Stable operationIds: the endpoint function's name, unique across routers.
    return route.name


def default_thread_ttl(settings: Settings) -> dict[str, Any] | None:
    """THREAD_TTL_SECONDS / THREAD_TTL_STRATEGY (spec.retention.threads, threadStrategy)."""
    if not settings.thread_ttl_seconds:
        return None
    return ttl_policy(settings.thread_ttl_seconds / 60, settings.thread_ttl_strategy)


def build_runtime(settings: Settings, project: Project | None = None) -> Runtime:
    """Clients connect lazily, so this succeeds while Redis is down and the service recovers by itself."""
    timeout, cluster = settings.redis_timeout_seconds, settings.redis_cluster
    client = connection.async_client(settings.redis_url, timeout, cluster=cluster)
    # Blocking reads (a worker's BLPOP, followers' XREAD BLOCK) hold a connection each, and for longer
    # than the command timeout: their own pool, so they never starve ordinary commands.
    blocking = connection.async_client(
        settings.redis_url, timeout + FOLLOW_IDLE_SECONDS, BLOCKING_CONNECTIONS, cluster=cluster
    )
    keys = ServiceKeys(settings.redis_key_prefix)
    saver = RedisSaver(async_client=client, prefix=keys.checkpoint_prefix)
    graphs = load_graphs(settings, saver, project)
    assistants = Assistants(graphs, client, keys)
    threads = ThreadStore(client, keys, default_ttl=default_thread_ttl(settings))
    runs = RunStore(client, keys)
    memory = RedisStore(
        client=connection.sync_client(settings.redis_url, timeout, cluster=cluster),  # sync graph nodes
        async_client=client,
        prefix=settings.redis_key_prefix,
        ttl={
            "default_ttl": settings.store_default_ttl_minutes,
            "refresh_on_read": settings.store_ttl_refresh_on_read,
        },
        index=store_index(settings, project),
    )
    engine = RunEngine(
        settings,
        client=client,
        blocking=blocking,
        graphs=graphs,
        saver=saver,
        threads=threads,
        runs=runs,
        keys=keys,
        resolve_assistant=assistants.resolve,
        store=memory,
    )
    return Runtime(settings, client, saver, graphs, assistants, threads, runs, engine, memory)


async def drain(runtime: Runtime) -> None:
    """Readiness turns false at once; runs get the grace period, then go back to the queue."""
    await runtime.engine.stop(runtime.settings.drain_grace_seconds)


async def start_gateway(settings: Settings) -> Gateway | None:
    """The LLM gateway on loopback, the SDKs pointed at it: before the graph loads (see gateway/)."""
    if not settings.llm_gateway:
        return None
    gateway = Gateway(shared_llm(settings), settings.llm_gateway_port)
    await gateway.start()
    gateway.point_sdks_here()
    return gateway


def load_project(app: FastAPI) -> Runtime:
    """The graphs and the project's own app, imported with the project's env applied; a project that
    does not import is reported (log and termination message) naming the key and the file."""
    settings, project = app.state.settings, app.state.project
    try:
        if project is not None:
            apply_project_env(project)
            warn_about(project)
        runtime = build_runtime(settings, project)
        if project is not None and project.http_app is not None:
            app.state.project_routes.load(project)
        if project is not None and project.auth is not None:
            app.state.project_auth.load(project)
    except GraphLoadError as error:
        report_failure(settings, str(error))
        raise
    return runtime


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    gateway = await start_gateway(app.state.settings)
    runtime = load_project(app)
    app.state.runtime = runtime
    await runtime.engine.start()
    sweeper = asyncio.create_task(
        runtime.store.sweep_forever(app.state.settings.store_sweep_interval_seconds)
    )
    protocols = contextlib.AsyncExitStack()
    if app.state.settings.protocol_mcp:
        app.state.mcp = mcp.AgentTools(runtime)
        await protocols.enter_async_context(app.state.mcp.running())
    try:
        async with protocols, contextlib.AsyncExitStack() as stack:
            if app.state.project_routes.app is not None:
                await stack.enter_async_context(app.state.project_routes.lifespan())
            yield
    finally:
        sweeper.cancel()
        await drain(runtime)
        await runtime.engine.blocking.aclose()
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

    @app.exception_handler(redis.exceptions.OutOfMemoryError)
    async def state_store_full(_: Request, error: Exception) -> JSONResponse:
        # maxmemory with noeviction: Redis refuses writes rather than dropping conversations.
        return _retry_later(settings, "the state store (Redis) is full; retry later")

    @app.exception_handler(LLMError)
    async def llm_unavailable(_: Request, error: LLMError) -> JSONResponse:
        # Budget refusals are 429, open circuits / exhausted fallbacks 503, provider refusals 502.
        headers = {"Retry-After": str(max(1, round(error.retry_after)))} if error.retry_after else None
        return JSONResponse({"detail": str(error)}, status_code=error.status_code, headers=headers)

    @app.exception_handler(ThreadBusyError)
    async def thread_busy(_: Request, error: ThreadBusyError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=409)


def _install_docs(app: FastAPI, dependencies: Any) -> None:
    """``/openapi.json`` and ``/docs`` behind the API's own auth (and rate limits): with auth on, the
    API's shape is not for anonymous callers either. (FastAPI's built-in routes take no dependencies.)"""

    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - Swagger UI")

    app.add_api_route("/openapi.json", openapi_document, include_in_schema=False, dependencies=dependencies)
    app.add_api_route("/docs", swagger_ui, include_in_schema=False, dependencies=dependencies)


def create_app(settings: Settings, project: Project | None = None) -> FastAPI:
    """``project``: the langgraph.json the service serves; read from AGENT_CONFIG when not given
    (a `ProjectError` names what is wrong with it)."""
    if project is None and settings.agent_config is not None:
        project = read_project(settings.agent_config)
    settings = with_project_ttl(settings, project)
    # With auth on, the documentation routes are added behind it (_install_docs), not FastAPI's own.
    docs = {"openapi_url": None, "docs_url": None, "redoc_url": None} if settings.auth_enabled else {}
    app = FastAPI(
        title="Shepherd agent service",
        summary="LangGraph Server API for one graph, with state in Redis",
        version="0.1.0",
        lifespan=lifespan,
        middleware=_middleware(settings),
        generate_unique_id_function=_operation_id,
        **docs,
    )
    app.state.settings = settings
    app.state.project = project
    app.state.project_routes = ProjectRoutes()
    app.state.project_auth = ProjectAuth()
    app.state.authenticator = Authenticator(settings)
    app.state.rate_limiter = RateLimiter(settings)
    _install_error_mapping(app, settings)
    app.include_router(health.router)
    app.add_api_route("/metrics", metrics_endpoint, include_in_schema=False)
    api_dependencies: Any = _api_dependencies(settings)
    # crons before the stateless runs: /runs/crons/... must not be taken for a run id.
    routers = (
        assistants.router,
        threads.router,
        thread_stream.router,
        crons.router,
        runs.thread_runs,
        runs.stateless_runs,
        store.router,
        *([mcp.router] if settings.protocol_mcp else []),
        *([a2a.router] if settings.protocol_a2a else []),
    )
    for router in routers:
        app.include_router(router, dependencies=api_dependencies)
    if settings.auth_enabled:
        _install_docs(app, api_dependencies)
        # Without auth, GET /usage is on the loopback listener only (api/usage.py), and there is no
        # admin API: nobody can be told apart as an admin.
        admin_dependencies = [*api_dependencies, Depends(require_admin)]
        app.include_router(usage.router, dependencies=admin_dependencies)
        app.include_router(admin.router, dependencies=admin_dependencies)
    if project is not None and project.http_app is not None:
        app.mount("", app.state.project_routes)  # last: the API's routes win on a clash
    return app
