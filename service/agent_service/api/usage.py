"""GET /usage (runs, tokens by kind and cost per tenant and UTC day), and the spend gate of new runs.

Where GET /usage is served, because usage of every tenant is not for every caller:

- with auth on (AUTH_* set by the operator from spec.auth): on the API port, to callers whose roles
  claim (AUTH_ROLES_CLAIM, spec.auth.rolesClaim) contains AUTH_ADMIN_ROLE (spec.auth.adminRole,
  ``admin``); anyone else gets 403;
- with auth off there is no identity to check, so it is not on the API port at all (404 there).
  It listens on USAGE_LOCAL_ADDRESS only, which the operator sets to 127.0.0.1:<spec.usage.localPort>:
  inside the Pod, reached with ``kubectl port-forward`` (or exec) by whoever may do that.

``admit_run`` runs before every API route: a POST that starts a run is refused with 429 when the
tenant's or (with costBudget.enforce) the deployment's budget is spent, and counted in the tenant's
usage once its endpoint accepted the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Generator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import redis.exceptions
import uvicorn
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from agent_service.llm import budget_policy
from agent_service.llm.budget import TokenBudget
from agent_service.security.auth import Principal, authenticate
from agent_service.settings import Settings
from agent_service.state import connection
from agent_service.usage import UsageStore, totals

#: Route templates of the POSTs that start runs (thread or stateless; background, wait, stream, batch).
RUN_STARTING_ROUTE = re.compile(r"^(/threads/\{thread_id\})?/runs(/wait|/stream|/batch)?$")
log = logging.getLogger(__name__)
MAX_DAYS = 366
DEFAULT_DAYS = 30

router = APIRouter(tags=["usage"])


def _store(request: Request) -> UsageStore:
    state = request.app.state
    runtime = getattr(state, "runtime", None)  # the API app; the loopback app has its own client
    client = runtime.redis if runtime is not None else state.usage_redis
    settings: Settings = state.settings
    return UsageStore(client, settings.redis_key_prefix, settings.usage_retention_days)


@router.get("/usage")
async def get_usage(
    request: Request,
    start: Annotated[date | None, Query(alias="from", description="First UTC day (YYYY-MM-DD).")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last UTC day, included.")] = None,
    tenant: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    model: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
) -> dict[str, Any]:
    """Runs, tokens by kind and cost per UTC day and tenant (all tenants unless ``tenant``).

    Tokens and cost are per model (``model`` keeps one); runs are per tenant, whatever the model.
    """
    end = end or datetime.now(UTC).date()
    start = start or end - timedelta(days=DEFAULT_DAYS - 1)
    if start > end:
        raise HTTPException(422, detail=f"'from' ({start}) must be on or before 'to' ({end})")
    if (end - start).days + 1 > MAX_DAYS:
        raise HTTPException(422, detail=f"'from'..'to' spans more than {MAX_DAYS} days")
    days = await _store(request).days(start, end, tenant=tenant, model=model)
    total = {"runs": sum(d["runs"] for d in days), **totals(days)}
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "tenant": tenant,
        "model": model,
        "days": days,
        "total": total,
    }


async def admit_run(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> AsyncIterator[None]:
    """Refuse (429) a run whose budget is spent; count it in the tenant's usage once accepted."""
    route = getattr(request.scope.get("route"), "path", "")
    if request.method != "POST" or not RUN_STARTING_ROUTE.match(route):
        yield
        return
    gate = spend_gate(request.app)
    await gate.admit(principal.tenant)
    yield  # an endpoint that raises (404, 409, 503) accepted no run: nothing is counted
    await gate.usage.count_run(principal.tenant)


def spend_gate(app: Any) -> TokenBudget:
    """The app's admission check for new runs (the API's and the protocols' alike)."""
    state = app.state
    if getattr(state, "spend_gate", None) is None:  # the runtime's Redis client exists from the lifespan on
        state.spend_gate = TokenBudget(
            budget_policy(state.settings), state.runtime.redis, state.settings.redis_key_prefix
        )
    return state.spend_gate


# -- the loopback listener (auth off) ------------------------------------------------------------


def create_usage_app(settings: Settings) -> FastAPI:
    """GET /usage alone, for the loopback listener; its own Redis client."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.usage_redis = connection.async_client(settings.redis_url, settings.redis_timeout_seconds)
        try:
            yield
        finally:
            await app.state.usage_redis.aclose()

    app = FastAPI(title="Shepherd usage (loopback)", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.settings = settings

    @app.exception_handler(redis.exceptions.RedisError)
    async def state_store_unavailable(_: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": "the state store (Redis) is unavailable; retry later"}, status_code=503
        )

    app.include_router(router)
    return app


async def _serve(server: uvicorn.Server, address: str) -> None:
    """Serve until told to stop; a listener that cannot start must not take the API down with it."""
    try:
        await server.serve()
    except (OSError, SystemExit):  # uvicorn exits when it cannot bind
        log.error("GET /usage is not served: cannot listen on %s", address)


class _Listener(uvicorn.Server):
    """A second server in the same process: the main server owns the signals (drain on SIGTERM)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@contextlib.asynccontextmanager
async def local_usage_listener(settings: Settings) -> AsyncIterator[None]:
    """Serve GET /usage on USAGE_LOCAL_ADDRESS while the block runs, when auth is off."""
    if settings.auth_enabled or not settings.usage_local_address:
        yield
        return
    host, _, port = settings.usage_local_address.rpartition(":")
    config = uvicorn.Config(
        create_usage_app(settings), host=host, port=int(port), log_config=None, access_log=False
    )
    server = _Listener(config)
    task = asyncio.create_task(_serve(server, settings.usage_local_address), name="usage-listener")
    try:
        yield
    finally:
        server.should_exit = True
        await task
