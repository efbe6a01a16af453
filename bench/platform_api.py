"""The LangGraph Platform API of issue 17 against `langgraph dev`, in the same run.

1. One scenario of official-SDK calls (store, TTL, assistants, thread stream), run unchanged against
   agent-service (on Redis) and `langgraph dev` (in memory): each step passes or fails on both.
   Against any server by hand: ``python -m bench.platform_api URL`` (graph "agent" must be
   ``tests/integration/service/graphs/memory_graph.py``).
2. Store latency through the SDK (HTTP included): p50/p99 of put, get, a namespace-prefix search and
   a filtered search over the whole store, with ``BENCH_STORE_ITEMS`` items (default 10,000) in it.
3. MCP tool-call overhead: a tool call (the mcp SDK's client, one session) against the same
   stateless run through ``POST /runs/wait``.
4. A2A message/send overhead (the a2a-sdk client, blocking send, a new context each time) against
   the same run on a new thread through ``POST /runs/wait`` with ``on_completion=keep``.

`langgraph dev` is the reference install in ``LGREF`` (default /tmp/lgref).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import httpx2
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2
from langgraph_sdk import get_client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from bench.measure import percentile
from bench.service_load import _wait_healthy, start_shepherd
from tests.harness import components
from tests.harness.processes import ManagedProcess, free_port

ITEMS = int(os.environ.get("BENCH_STORE_ITEMS", "10000"))
SAMPLES = int(os.environ.get("BENCH_STORE_SAMPLES", "300"))
TOOL_CALLS = int(os.environ.get("BENCH_MCP_CALLS", "100"))
LGREF = Path(os.environ.get("LGREF", "/tmp/lgref"))
GRAPH = Path(__file__).parents[1] / "tests" / "integration" / "service" / "graphs" / "memory_graph.py"
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


# -- 1. the scenario ----------------------------------------------------------------------------


async def _store(client) -> None:
    ns = ["scenario", uuid.uuid4().hex[:8]]
    await client.store.put_item([*ns, "notes"], "a", {"stars": 5})
    await client.store.put_item([*ns, "notes"], "b", {"stars": 1})
    await client.store.put_item([*ns, "prefs"], "c", {"stars": 3})
    assert (await client.store.get_item([*ns, "notes"], "a"))["value"] == {"stars": 5}
    found = await client.store.search_items(ns, filter={"stars": {"$gte": 3}})
    assert sorted(i["key"] for i in found["items"]) == ["a", "c"]
    listed = await client.store.list_namespaces(prefix=ns)
    assert sorted(map(tuple, listed["namespaces"])) == [(*ns, "notes"), (*ns, "prefs")]
    await client.store.delete_item([*ns, "notes"], "a")
    assert await client.store.get_item([*ns, "notes"], "a") is None


async def _ttl(client) -> None:
    ns = ["ttl", uuid.uuid4().hex[:8]]
    await client.store.put_item(ns, "k", {"v": 1}, ttl=1)
    assert (await client.store.get_item(ns, "k", refresh_ttl=True))["value"] == {"v": 1}


async def _assistants(client) -> None:
    made = await client.assistants.create("agent", context={"persona": "pirate"}, metadata={"bench": "a"})
    updated = await client.assistants.update(made["assistant_id"], context={"persona": "robot"})
    assert updated["version"] == 2
    versions = await client.assistants.get_versions(made["assistant_id"])
    assert [v["version"] for v in versions] == [2, 1]
    assert (await client.assistants.set_latest(made["assistant_id"], 1))["version"] == 1
    assert [a["assistant_id"] for a in await client.assistants.search(metadata={"bench": "a"})][:1] == [
        made["assistant_id"]
    ]
    assert await client.assistants.count(metadata={"bench": "a"}) >= 1
    await client.assistants.delete(made["assistant_id"])


async def _thread_stream(client) -> None:
    thread = await client.threads.create()

    async def follow() -> list:
        parts = []
        async for part in await client.threads.join_stream(thread["thread_id"]):
            parts.append(part)
            if part.event == "values" and part.data["messages"][-1]["type"] == "ai":
                return parts
        return parts

    follower = asyncio.create_task(follow())
    await asyncio.sleep(1)
    await client.runs.wait(thread["thread_id"], "agent", input=HELLO)
    parts = await asyncio.wait_for(follower, timeout=60)
    assert "metadata" in [p.event for p in parts]


STEPS: list[tuple[str, Callable[..., Awaitable[None]]]] = [
    ("store items, search, namespaces", _store),
    ("store TTL and refresh_ttl", _ttl),
    ("assistants create/update/versions/set_latest/search/count/delete", _assistants),
    ("thread stream across a run", _thread_stream),
]


async def scenario(url: str) -> dict[str, str]:
    client = get_client(url=url)
    outcome = {}
    for name, step in STEPS:
        try:
            await step(client)
            outcome[name] = "pass"
        except Exception as error:  # a failing step is a row of the table, not the end of the run
            outcome[name] = f"FAIL: {type(error).__name__} {str(error)[:80]}"
    return outcome


# -- 2. store latency ---------------------------------------------------------------------------


async def _timed(calls: list[Callable[[], Awaitable[object]]]) -> list[float]:
    samples = []
    for call in calls:
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return sorted(samples)


async def _fill(client, count: int) -> None:
    batch = 10  # concurrent puts; more overruns the servers' connection handling on this machine
    for start in range(0, count, batch):
        await asyncio.gather(
            *(
                client.store.put_item(["bench", f"u{i % 100}"], f"k{i}", {"n": i % 1000, "text": f"item {i}"})
                for i in range(start, min(start + batch, count))
            )
        )


async def store_latency(url: str, items: int) -> dict[str, list[float]]:
    client = get_client(url=url, timeout=60)
    await _fill(client, items)
    rng = range(SAMPLES)
    return {
        "put": await _timed(
            [lambda i=i: client.store.put_item(["bench", "new"], f"p{i}", {"n": i}) for i in rng]
        ),
        "get": await _timed(
            [lambda i=i: client.store.get_item(["bench", f"u{i % 100}"], f"k{i}") for i in rng]
        ),
        "search prefix (100 items, limit 10)": await _timed(
            [lambda i=i: client.store.search_items(["bench", f"u{i % 100}"], limit=10) for i in rng]
        ),
        "search filter, whole store (limit 10)": await _timed(
            [
                lambda i=i: client.store.search_items(["bench"], filter={"n": i % 1000}, limit=10)
                for i in rng[:50]
            ]
        ),
    }


# -- 3. MCP overhead ----------------------------------------------------------------------------


async def mcp_overhead(url: str) -> dict[str, list[float]]:
    client = get_client(url=url)
    direct = await _timed([lambda: client.runs.wait(None, "agent", input=HELLO) for _ in range(TOOL_CALLS)])
    async with (
        httpx2.AsyncClient(timeout=60) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as streams,
        ClientSession(*streams[:2]) as session,
    ):
        await session.initialize()
        via_mcp = await _timed([lambda: session.call_tool("agent", HELLO) for _ in range(TOOL_CALLS)])
    return {"POST /runs/wait": direct, "MCP tools/call": via_mcp}


# -- 4. A2A overhead ----------------------------------------------------------------------------


async def a2a_overhead(url: str) -> dict[str, list[float]]:
    client = get_client(url=url)
    direct = await _timed(
        [
            lambda: client.runs.wait(None, "agent", input=HELLO, on_completion="keep")
            for _ in range(TOOL_CALLS)
        ]
    )
    hello = a2a_pb2.Message(message_id="hello", role=a2a_pb2.ROLE_USER, parts=[a2a_pb2.Part(text="hello")])
    async with httpx.AsyncClient(timeout=60) as http:
        card = await A2ACardResolver(
            http, url, "/.well-known/agent-card.json?assistant_id=agent"
        ).get_agent_card()
        a2a = ClientFactory(ClientConfig(httpx_client=http, streaming=False)).create(card)

        async def send() -> None:
            async for _ in a2a.send_message(a2a_pb2.SendMessageRequest(message=hello)):
                pass

        via_a2a = await _timed([send for _ in range(TOOL_CALLS)])
    return {"POST /runs/wait (on_completion=keep)": direct, "A2A message/send": via_a2a}


# -- the run ------------------------------------------------------------------------------------


def start_reference(workdir: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    project = workdir / f"lgdev-{port}"
    project.mkdir()
    (project / "graph.py").write_text(GRAPH.read_text())
    (project / "langgraph.json").write_text(
        json.dumps({"dependencies": ["."], "graphs": {"agent": "./graph.py:graph"}})
    )
    process = ManagedProcess(
        "langgraph-dev",
        [str(LGREF / "bin" / "langgraph"), "dev", "--no-reload", "--no-browser", "--port", str(port)],
        workdir,
        {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "LOG_LEVEL": "WARNING"},
        cwd=project,
    ).start()
    _wait_healthy(process, f"http://127.0.0.1:{port}/ok")
    return process, f"http://127.0.0.1:{port}"


def _ms(samples: list[float], q: float) -> str:
    return f"{percentile(samples, q) * 1000:.1f}"


def _overhead_table(title: str, samples: dict[str, list[float]]) -> list[str]:
    lines = ["", title, "", "| call | p50 | p99 |", "|---|---|---|"]
    return lines + [f"| {call} | {_ms(s, 50)} | {_ms(s, 99)} |" for call, s in samples.items()]


async def _measure(shepherd_url: str, dev_url: str) -> str:
    servers = {"agent-service": shepherd_url, "langgraph dev": dev_url}
    outcomes = {name: await scenario(url) for name, url in servers.items()}
    lines = ["| SDK scenario step | agent-service | langgraph dev |", "|---|---|---|"]
    lines += [
        f"| {step} | {outcomes['agent-service'][step]} | {outcomes['langgraph dev'][step]} |"
        for step, _ in STEPS
    ]
    lines += ["", f"Store through the SDK, {ITEMS} items, {SAMPLES} samples (filter search: 50), ms:", ""]
    lines += ["| operation | agent-service p50 | p99 | langgraph dev p50 | p99 |", "|---|---|---|---|---|"]
    latency = {name: await store_latency(url, ITEMS) for name, url in servers.items()}
    for op, samples in latency["agent-service"].items():
        ref = latency["langgraph dev"][op]
        lines.append(f"| {op} | {_ms(samples, 50)} | {_ms(samples, 99)} | {_ms(ref, 50)} | {_ms(ref, 99)} |")
    mcp = f"MCP tool call against the same stateless run, agent-service, {TOOL_CALLS} calls each, ms:"
    lines += _overhead_table(mcp, await mcp_overhead(shepherd_url))
    a2a = f"A2A message/send against the same run on a new thread, {TOOL_CALLS} calls each, ms:"
    lines += _overhead_table(a2a, await a2a_overhead(shepherd_url))
    return "\n".join(lines)


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "redis").mkdir()
        redis_server = components.start_redis(workdir / "redis")
        env = {"PYTHONPATH": str(GRAPH.parent), "AGENT_GRAPH": "memory_graph:graph"}
        shepherd, shepherd_url = start_shepherd(workdir, redis_server.url, full=False, **env)
        dev, dev_url = start_reference(workdir)
        try:
            return asyncio.run(_measure(shepherd_url, dev_url))
        finally:
            shepherd.stop()
            dev.stop()
            redis_server.stop()


if __name__ == "__main__":
    if len(sys.argv) > 1:  # the scenario against one server
        for step, outcome in asyncio.run(scenario(sys.argv[1])).items():
            print(f"{outcome:>6}  {step}")
    else:
        print(run())
