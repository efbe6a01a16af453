"""The project's own auth (langgraph.json ``auth.path``): a `langgraph_sdk.Auth` object, the interface
LangGraph Server calls.

Its ``@auth.authenticate`` handler replaces the service's JWT check: it gets the parameters it names
(``request``, ``headers``, ``authorization``, ``path``, ``method``), returns the user's identity (a
string or a dict with ``identity``, optional ``permissions`` and, for Shepherd's per-tenant
accounting and isolation, optional ``tenant``; else the identity is the tenant) or raises
``Auth.exceptions.HTTPException``. Its ``@auth.on...`` handlers authorise each resource action:
None or True allow, False refuses (403), a dict is a metadata filter: written into what is created,
required of what is read, added to searches. Wired: threads create, read (everything on an
existing thread), search and create_run; handlers of other resources (crons, assistants, store)
are not called yet.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import HTTPException, Request
from langgraph_sdk import Auth
from langgraph_sdk.auth.types import AuthContext

from agent_service.graphs.loader import GraphLoadError, import_target
from agent_service.graphs.project import Project


class _User:
    """What handlers read as ``ctx.user``: identity, permissions, display name, and the dict's keys."""

    def __init__(self, value: str | dict[str, Any]) -> None:
        self._data = {"identity": value} if isinstance(value, str) else dict(value)
        if not isinstance(self._data.get("identity"), str) or not self._data["identity"]:
            raise HTTPException(
                status_code=500, detail="auth.path: the authenticate handler gave no identity"
            )

    @property
    def identity(self) -> str:
        return self._data["identity"]

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self._data.get("display_name", self.identity)

    @property
    def permissions(self) -> list[str]:
        return list(self._data.get("permissions") or [])

    @property
    def tenant(self) -> str:
        return str(self._data.get("tenant") or self.identity)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __contains__(self, key: str) -> bool:
        return key in self._data


def _arguments(request: Request, names: set[str]) -> dict[str, Any]:
    available = {
        "request": lambda: request,
        "headers": lambda: {k.encode(): v.encode() for k, v in request.headers.items()},
        "authorization": lambda: request.headers.get("authorization"),
        "path": lambda: request.url.path,
        "method": lambda: request.method,
        "query_params": lambda: request.query_params,
        "path_params": lambda: request.path_params,
        "scope": lambda: request.scope,
    }
    return {name: available[name]() for name in names if name in available}


def _refusal(error: Auth.exceptions.HTTPException) -> HTTPException:
    return HTTPException(
        status_code=error.status_code, detail=error.detail, headers=dict(error.headers or {})
    )


class ProjectAuth:
    """The Auth object of the project, or nothing (the service's own JWT check applies)."""

    def __init__(self) -> None:
        self.auth: Auth | None = None

    def load(self, project: Project) -> None:
        assert project.auth is not None
        where = f"{project.config_file}: auth.path"
        auth = import_target(project.auth, where, project.root)
        if not isinstance(auth, Auth):
            raise GraphLoadError(
                f"{where}: {project.auth.spec!r} is a {type(auth).__name__}, not a langgraph_sdk.Auth"
            )
        if auth._authenticate_handler is None:  # the SDK keeps its handlers in private attributes
            raise GraphLoadError(f"{where}: {project.auth.spec!r} has no @auth.authenticate handler")
        self.auth = auth

    async def authenticate(self, request: Request) -> _User:
        assert self.auth is not None
        assert self.auth._authenticate_handler is not None
        handler = self.auth._authenticate_handler
        try:
            return _User(await handler(**_arguments(request, set(inspect.signature(handler).parameters))))
        except Auth.exceptions.HTTPException as error:
            raise _refusal(error) from None

    async def authorize(
        self, user: _User, resource: str, action: str, value: dict[str, Any]
    ) -> dict[str, Any]:
        """The metadata filter the handler asks for ({} when it only allows); 403 when it refuses."""
        if self.auth is None:
            return {}
        handlers = self.auth._handlers
        found = (
            handlers.get((resource, action)) or handlers.get((resource, "*")) or self.auth._global_handlers
        )
        if not found:
            return {}
        context = AuthContext(
            user=user,  # type: ignore[arg-type]
            permissions=user.permissions,
            resource=resource,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
        try:
            verdict = await found[-1](ctx=context, value=value)
        except Auth.exceptions.HTTPException as error:
            raise _refusal(error) from None
        if verdict is False:
            raise HTTPException(status_code=403, detail=f"{resource}.{action} refused by the project's auth")
        return dict(verdict) if isinstance(verdict, dict) else {}


def matches(metadata: dict[str, Any], filters: dict[str, Any]) -> bool:
    """A resource's metadata against an auth filter (plain values or {"$eq": value})."""
    for key, wanted in filters.items():
        if isinstance(wanted, dict) and "$eq" in wanted:
            wanted = wanted["$eq"]
        if metadata.get(key) != wanted:
            return False
    return True


def plain(filters: dict[str, Any]) -> dict[str, Any]:
    """A filter as metadata to write or to search with."""
    return {k: v["$eq"] if isinstance(v, dict) and "$eq" in v else v for k, v in filters.items()}
