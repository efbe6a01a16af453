"""``/mcp``: every assistant the caller sees as an MCP tool (Streamable HTTP, the official ``mcp`` SDK).

A tool's input schema is its graph's input schema; calling it runs the graph as a stateless run
through the run engine, so it is queued, limited, counted in the run metrics and SLIs like any run.
The transport is stateless (JSON responses, no MCP session): any replica answers any request.

``/mcp`` is an ordinary API route, behind the same auth, rate limits and tenant rules as the rest of
the API; a tool call is admitted against the spend budgets and counted in the usage like a run.
The MCP server's handlers run in the session manager's own tasks, so the route hands them the
caller (``SCOPE_KEY`` in the ASGI scope) and they take it up as their request context.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from mcp import types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send

from agent_service.api.schemas import RunCreate
from agent_service.api.usage import spend_gate
from agent_service.llm.errors import BudgetExceededError
from agent_service.observability.context import RequestContext, current_request, enter_request
from agent_service.runtime import Runtime
from agent_service.serialization import to_jsonable

router = APIRouter(tags=["mcp"])
SCOPE_KEY = "shepherd.mcp.caller"
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]+")


def tool_names(assistants: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Tool name -> assistant: the assistant's name made a valid tool name, its id's start on clashes."""
    named: dict[str, dict[str, Any]] = {}
    for assistant in sorted(assistants, key=lambda a: a["created_at"]):
        base = (
            _TOOL_NAME.sub("_", assistant.get("name") or assistant["graph_id"]).strip("_")[:55] or "assistant"
        )
        name = base if base not in named else f"{base}-{assistant['assistant_id'][:8]}"
        named[name] = assistant
    return named


class AgentTools:
    """The MCP server: tools from the caller's assistants, calls as stateless runs."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.server = Server(
            "shepherd-agent", version="1", on_list_tools=self._list_tools, on_call_tool=self._call_tool
        )
        self.sessions = StreamableHTTPSessionManager(self.server, stateless=True, json_response=True)

    async def _tools(self, ctx: ServerRequestContext) -> dict[str, dict[str, Any]]:
        caller: RequestContext = ctx.request.scope[SCOPE_KEY]  # type: ignore[union-attr]
        enter_request(caller)
        return tool_names(await self.runtime.assistants.search(caller.tenant, sort_order="asc"))

    async def _list_tools(self, ctx: ServerRequestContext, _: Any) -> types.ListToolsResult:
        tools = []
        for name, assistant in (await self._tools(ctx)).items():
            graph = self.runtime.graphs[assistant["graph_id"]]
            tools.append(
                types.Tool(
                    name=name,
                    description=assistant.get("description") or f"Runs the {assistant['graph_id']} agent.",
                    input_schema=graph.get_input_jsonschema(),
                )
            )
        return types.ListToolsResult(tools=tools)

    async def _call_tool(
        self, ctx: ServerRequestContext, params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tools = await self._tools(ctx)
        if params.name not in tools:
            return _failed(f"unknown tool {params.name!r}; tools: {', '.join(sorted(tools))}")
        assistant = tools[params.name]
        try:
            body = RunCreate(assistant_id=assistant["assistant_id"], input=params.arguments or {})
        except ValidationError as error:
            return _failed(f"invalid arguments: {error}")
        caller = current_request()
        engine, gate = self.runtime.engine, spend_gate(ctx.request.app)  # type: ignore[union-attr]
        try:
            await gate.admit(caller.tenant)  # a spent budget refuses the call as it refuses a run
        except BudgetExceededError as refusal:
            return _failed(f"refused: {refusal}")
        record = await engine.submit(None, body, assistant=assistant, tenant=caller.tenant, user=caller.user)
        await gate.usage.count_run(caller.tenant)
        output = to_jsonable(await engine.wait_result(record["thread_id"], record["run_id"]))
        if isinstance(output, dict) and "__error__" in output:
            return _failed(orjson.dumps(output["__error__"]).decode())
        structured = output if isinstance(output, dict) else {"result": output}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=orjson.dumps(output).decode())],
            structured_content=structured,
        )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async with self.sessions.run():
            yield


def _failed(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


class _Handover(Response):
    """Lets the MCP session manager answer the request itself (it writes its own response)."""

    def __init__(self, tools: AgentTools) -> None:
        super().__init__()
        self.tools = tools

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.tools.sessions.handle_request(scope, receive, send)


@router.api_route("/mcp", methods=["GET", "POST", "DELETE"], include_in_schema=False)
async def mcp_endpoint(request: Request) -> Response:
    request.scope[SCOPE_KEY] = current_request()  # set by the auth dependency
    return _Handover(request.app.state.mcp)
