"""The project's own FastAPI/Starlette app (langgraph.json ``http.app``), mounted beside the API.

It sits under the same middleware (request ids and access logs, tracing, metrics by route template,
security headers, CORS, body limit) and, before any of its routes runs, the same authentication and
rate limits as the API routes (there they are route dependencies; a mounted app has none, so they
are called here). The API's own routes win over the project's on a clash. The app is imported in
the lifespan, after the LLM gateway is up and the project's env applied, like the graphs; its own
lifespan runs inside ours.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_service.graphs.loader import GraphLoadError, import_target
from agent_service.graphs.project import Project
from agent_service.security.auth import authenticate
from agent_service.security.ratelimit import enforce_rate_limit


class ProjectRoutes:
    """ASGI: the project's app behind the API's auth and rate limits; empty until `load`."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    def load(self, project: Project) -> None:
        assert project.http_app is not None
        where = f"{project.config_file}: http.app"
        app: Any = import_target(project.http_app, where, project.root)
        if not callable(app) or not hasattr(app, "router"):
            raise GraphLoadError(
                f"{where}: {project.http_app.spec!r} is a {type(app).__name__}, "
                "not a FastAPI or Starlette app"
            )
        self.app = app

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """The project app's own start-up and shutdown (a mounted app's are not run by Starlette)."""
        assert self.app is not None
        async with self.app.router.lifespan_context(self.app):  # type: ignore[attr-defined]
            yield

    def _label_with_route(self, scope: Scope) -> None:
        """A refused request is counted under the project's route it was for (metrics by template)."""
        for route in getattr(self.app, "routes", ()):
            match, _ = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                return

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            await JSONResponse({"detail": "Not Found"}, status_code=404)(scope, receive, send)
            return
        if scope["type"] == "http":
            request = Request(scope, receive)
            try:
                principal = await authenticate(request)
                await enforce_rate_limit(request, principal)
            except HTTPException as error:
                self._label_with_route(scope)
                refusal = JSONResponse({"detail": error.detail}, error.status_code, headers=error.headers)
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)
