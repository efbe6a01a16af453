"""Dependencies shared by the routers, defined once as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError

from agent_service.extensions.auth import matches
from agent_service.observability.context import current_request
from agent_service.runtime import Runtime
from agent_service.state.threads import ThreadNotFoundError


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def field_error(field: str, message: str) -> RequestValidationError:
    """A 422 in FastAPI's own shape, naming the body field."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", field), "msg": message, "input": None}]
    )


def not_found(error: LookupError) -> HTTPException:
    return HTTPException(status_code=404, detail=str(error))


def current_tenant() -> str:
    """The caller's tenant, set by the auth dependency (which runs first, for every API route)."""
    return current_request().tenant


def owned(thread: dict) -> dict:
    """Another tenant's thread is reported missing, exactly like one that does not exist."""
    if thread["tenant"] != current_tenant():
        raise HTTPException(status_code=404, detail=f"thread {thread['thread_id']} not found")
    return thread


async def authorize(request: Request, resource: str, action: str, value: dict[str, Any]) -> dict[str, Any]:
    """The project's auth handler's verdict on this action (extensions/auth.py): its metadata filter,
    {} without a handler; 403 when it refuses."""
    user = getattr(request.state, "project_user", None)
    if user is None:
        return {}
    return await request.app.state.project_auth.authorize(user, resource, action, value)


async def existing_thread(thread_id: str, runtime: RuntimeDep, request: Request) -> dict:
    try:
        thread = owned(await runtime.threads.get(thread_id))
    except ThreadNotFoundError as error:
        raise not_found(error) from None
    # What the project's auth filters out is missing too, exactly like another tenant's thread.
    if not matches(
        thread.get("metadata") or {}, await authorize(request, "threads", "read", {"thread_id": thread_id})
    ):
        raise HTTPException(status_code=404, detail=f"thread {thread_id} not found")
    return thread


ThreadDep = Annotated[dict, Depends(existing_thread)]
