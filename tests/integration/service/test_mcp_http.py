"""``/mcp`` with the official ``mcp`` SDK's client (Streamable HTTP) against live agent-service
processes: every assistant the caller sees is a tool with its graph's input schema; a call runs
the graph as a stateless run (it shows in the run metrics); with auth on, no token is a 401 and
tenants see only their own assistants."""

from __future__ import annotations

import httpx
import httpx2
import pytest
from langgraph_sdk import get_client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.integration.service.tenants import AUTH, bearer

GRAPH = {"AGENT_GRAPH": "memory_graph:graph"}


async def session_call(url: str, headers: dict[str, str], work):
    async with (
        httpx2.AsyncClient(headers=headers, timeout=60) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as streams,
        ClientSession(*streams[:2]) as session,
    ):
        await session.initialize()
        return await work(session)


def _runs_counted(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    lines = [line for line in metrics.splitlines() if line.startswith("agent_runs_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def test_assistants_are_tools_and_a_call_is_a_counted_run(redis_url, start_service):
    service = start_service(redis_url, **GRAPH)
    client = get_client(url=service.url)
    await client.assistants.create("agent", name="pirate agent", context={"persona": "pirate"})
    before = _runs_counted(service.url)

    async def work(session):
        tools = (await session.list_tools()).tools
        said = {"messages": [{"role": "user", "content": "hello"}]}
        return tools, await session.call_tool("pirate_agent", said), await session.call_tool("nope", {})

    tools, called, unknown = await session_call(service.url, {}, work)
    assert sorted(t.name for t in tools) == ["agent", "pirate_agent"]
    graph_schema = (await client.assistants.get_schemas("agent"))["input_schema"]
    assert all(t.input_schema == graph_schema for t in tools)
    assert not called.is_error
    assert called.structured_content["messages"][-1]["content"] == "persona=pirate"
    assert unknown.is_error
    assert "unknown tool 'nope'" in unknown.content[0].text
    assert _runs_counted(service.url) == before + 1


async def test_mcp_is_behind_the_api_auth_and_tenants(redis_url, start_service):
    service = start_service(redis_url, **GRAPH, **AUTH)
    acme = get_client(url=service.url, headers=bearer("acme"))
    await acme.assistants.create("agent", name="acme only")
    async with httpx.AsyncClient(base_url=service.url) as http:
        refused = await http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401

    async def names(session):
        return sorted(t.name for t in (await session.list_tools()).tools)

    assert await session_call(service.url, bearer("acme"), names) == [
        "acme_only",
        "agent",
    ]
    assert await session_call(service.url, bearer("globex"), names) == ["agent"]

    async def steal(session):
        return await session.call_tool("acme_only", {"messages": []})

    stolen = await session_call(service.url, bearer("globex"), steal)
    assert stolen.is_error
    with pytest.raises(Exception):  # noqa: B017, PT011 - the SDK surfaces the 401 as its own error
        await session_call(service.url, {}, names)
