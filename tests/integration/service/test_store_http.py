"""The store through the official langgraph_sdk against live agent-service processes on one Redis:
items written on one replica are read, searched and listed on the other; graphs get the same store
(a sync node taking ``store: BaseStore``, an async one reading ``runtime.store``); tenants never see
each other's memories; bad input is a 422 naming the field and loses nothing."""

from __future__ import annotations

import asyncio
import json
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client

from tests.fakes.openai_server import EMBEDDING_DIMS, FakeOpenAI
from tests.integration.service.tenants import AUTH, bearer

GRAPH = {"AGENT_GRAPH": "memory_graph:graph"}
NOOP_GRAPH = textwrap.dedent(
    """
    from langgraph.graph import START, MessagesState, StateGraph

    builder = StateGraph(MessagesState)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    graph = builder.compile()
    """
)


def _said(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def test_items_namespaces_and_graph_memory_across_replicas(redis_url, start_service):
    first, second = start_service(redis_url, **GRAPH), start_service(redis_url, **GRAPH)
    a, b = get_client(url=first.url), get_client(url=second.url)
    await _items_and_namespaces(a, b)
    await _graphs_remember_across_threads(a, b)


async def _items_and_namespaces(a, b) -> None:
    for user, key, stars in [("ada", "n1", 5), ("ada", "n2", 1), ("bob", "n1", 4)]:
        await a.store.put_item(["users", user, "notes"], key, {"stars": stars, "by": user})
    await a.store.put_item(["users", "ada", "prefs"], "theme", {"stars": 3})

    item = await b.store.get_item(["users", "ada", "notes"], "n1")
    assert (item["namespace"], item["key"], item["value"]) == (
        ["users", "ada", "notes"],
        "n1",
        {"stars": 5, "by": "ada"},
    )
    assert item["created_at"] == item["updated_at"]

    found = await b.store.search_items(["users", "ada"], limit=10)
    assert {(tuple(i["namespace"]), i["key"]) for i in found["items"]} == {
        (("users", "ada", "notes"), "n1"),
        (("users", "ada", "notes"), "n2"),
        (("users", "ada", "prefs"), "theme"),
    }
    rich = await b.store.search_items(["users"], filter={"stars": {"$gte": 4}})
    assert sorted(i["value"]["by"] for i in rich["items"]) == ["ada", "bob"]
    pages = [(await b.store.search_items(["users"], limit=3, offset=o))["items"] for o in (0, 3)]
    assert [len(p) for p in pages] == [3, 1]

    listed = await b.store.list_namespaces(prefix=["users"], max_depth=2)
    assert listed["namespaces"] == [["users", "ada"], ["users", "bob"]]
    notes = await b.store.list_namespaces(suffix=["notes"])
    assert notes["namespaces"] == [["users", "ada", "notes"], ["users", "bob", "notes"]]

    await b.store.delete_item(["users", "ada", "prefs"], "theme")
    assert await a.store.get_item(["users", "ada", "prefs"], "theme") is None
    assert ["users", "ada", "prefs"] not in (await a.store.list_namespaces())["namespaces"]


async def _graphs_remember_across_threads(a, b) -> None:
    thread = await a.threads.create()
    await a.runs.wait(thread["thread_id"], "agent", input=_said("remember tea"))
    other = await b.threads.create()  # another thread on another replica
    answer = await b.runs.wait(other["thread_id"], "agent", input=_said("what do you know?"))
    assert answer["messages"][-1]["content"] == "persona=nobody remembers=tea"
    # A stateless run has the same store; what the graph wrote is an ordinary item of the API.
    await b.runs.wait(None, "agent", input=_said("remember rain"))
    facts = await a.store.search_items(["memories"])
    assert sorted(i["value"]["fact"] for i in facts["items"]) == ["rain", "tea"]
    await a.store.put_item(["memories"], "api", {"fact": "coffee"})
    answer = await a.runs.wait(None, "agent", input=_said("and now?"))
    assert answer["messages"][-1]["content"] == "persona=nobody remembers=coffee,rain,tea"


async def test_ttl_and_bad_input(redis_url, start_service):
    service = start_service(
        redis_url, **GRAPH, STORE_SWEEP_INTERVAL_SECONDS="1", STORE_MAX_VALUE_BYTES="1000"
    )
    client = get_client(url=service.url)
    await _ttl_refresh_on_read_and_the_sweep(client)
    await _bad_input_is_a_422_naming_the_field_and_loses_nothing(service.url, client)


async def _ttl_refresh_on_read_and_the_sweep(client) -> None:
    ttl_minutes = 0.03  # 1.8 s (the SDK types ttl as int; the API takes minutes as a float)
    await client.store.put_item(["short"], "read", {"v": 1}, ttl=ttl_minutes)
    await client.store.put_item(["short"], "unread", {"v": 2}, ttl=ttl_minutes)
    await client.store.put_item(["long"], "kept", {"v": 3})
    deadline = time.monotonic() + 3 * ttl_minutes * 60
    while time.monotonic() < deadline:  # each read gives "read" its full TTL again
        assert await client.store.get_item(["short"], "read") is not None
        await asyncio.sleep(ttl_minutes * 60 / 4)
    assert await client.store.get_item(["short"], "unread") is None
    assert await client.store.get_item(["short"], "read", refresh_ttl=False) is not None
    # Unread, "read" expires too, and the sweep drops the namespace it leaves empty.
    for _ in range(600):
        if (await client.store.list_namespaces())["namespaces"] == [["long"]]:
            break
        await asyncio.sleep(0.2)
    assert (await client.store.list_namespaces())["namespaces"] == [["long"]]
    assert [i["key"] for i in (await client.store.search_items([]))["items"]] == ["kept"]


async def _bad_input_is_a_422_naming_the_field_and_loses_nothing(url: str, client) -> None:
    await client.store.put_item(["users", "ada"], "k", {"v": 1})
    # Raw HTTP: the SDK itself refuses dotted labels before sending them.
    refusals = [
        ("PUT", "/store/items", {"namespace": ["users", ""], "key": "k", "value": {}}, "namespace"),
        ("PUT", "/store/items", {"namespace": ["users.ada"], "key": "k", "value": {}}, "namespace"),
        ("PUT", "/store/items", {"namespace": [], "key": "k", "value": {}}, "namespace"),
        ("PUT", "/store/items", {"namespace": ["langgraph"], "key": "k", "value": {}}, "namespace"),
        (
            "PUT",
            "/store/items",
            {"namespace": ["users", "ada"], "key": "k", "value": {"v": "x" * 2000}},
            "value",
        ),
        ("PUT", "/store/items", {"namespace": ["users", "ada"], "key": "k", "value": [1]}, "value"),
        ("PUT", "/store/items", {"namespace": ["users", "ada"], "key": "k", "value": {}, "ttl": -1}, "ttl"),
        ("PUT", "/store/items", {"namespace": ["users", "ada"], "key": "", "value": {}}, "key"),
        ("DELETE", "/store/items", {"namespace": ["users", ""], "key": "k"}, "namespace"),
        ("POST", "/store/items/search", {"namespace_prefix": ["a.b"]}, "namespace_prefix"),
        ("POST", "/store/items/search", {"namespace_prefix": ["users"], "limit": 0}, "limit"),
        (
            "POST",
            "/store/items/search",
            {"namespace_prefix": ["users"], "filter": {"v": {"$regex": "."}}},
            "filter",
        ),
        ("POST", "/store/namespaces", {"prefix": ["users", ""]}, "prefix"),
        ("POST", "/store/namespaces", {"max_depth": 0}, "max_depth"),
    ]
    async with httpx.AsyncClient(base_url=url) as http:
        for method, path, body, field in refusals:
            response = await http.request(method, path, json=body)
            assert response.status_code == 422, (body, response.text)
            assert field in response.text, (body, response.text)
        for dotted in ("users..ada", "users.", ".ada"):
            response = await http.get("/store/items", params={"namespace": dotted, "key": "k"})
            assert response.status_code == 422, response.text
            assert "namespace" in response.text
    assert (await client.store.get_item(["users", "ada"], "k"))["value"] == {"v": 1}


def _tenant_client(url: str, tenant: str):
    return get_sync_client(url=url, headers=bearer(tenant))


def test_tenants_never_see_each_others_memories(redis_url, start_service):
    url = start_service(redis_url, **GRAPH, **AUTH).url
    acme, globex = _tenant_client(url, "acme"), _tenant_client(url, "globex")
    acme.runs.wait(None, "agent", input=_said("remember the acme launch code"))
    acme.store.put_item(["memories"], "api", {"fact": "acme roadmap"})
    answer = globex.runs.wait(None, "agent", input=_said("what do you know?"))
    assert answer["messages"][-1]["content"] == "persona=nobody"
    assert globex.store.search_items([])["items"] == []
    assert globex.store.list_namespaces()["namespaces"] == []
    assert globex.store.get_item(["memories"], "api") is None
    globex.store.delete_item(["memories"], "api")  # a no-op on globex's own store
    mine = acme.runs.wait(None, "agent", input=_said("what do you know?"))
    assert mine["messages"][-1]["content"] == "persona=nobody remembers=acme roadmap,the acme launch code"
    with pytest.raises(httpx.HTTPStatusError) as refused:
        get_sync_client(url=url).store.search_items([])  # no token
    assert refused.value.response.status_code == 401


@pytest.fixture(scope="module")
def embeddings() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


async def test_semantic_search_through_an_embeddings_endpoint(redis_url, start_service, embeddings):
    index = {
        "STORE_INDEX_URL": f"{embeddings.url}/v1",
        "STORE_INDEX_DIMS": str(EMBEDDING_DIMS),
        "STORE_INDEX_FIELDS": "text",
        "STORE_INDEX_API_KEY": embeddings.api_key,
    }
    first, second = start_service(redis_url, **GRAPH, **index), start_service(redis_url, **GRAPH, **index)
    a, b = get_client(url=first.url), get_client(url=second.url)
    notes = {"tea": "green tea in the morning", "bikes": "a red bike for the commute", "jazz": "jazz records"}
    for key, text in notes.items():
        await a.store.put_item(["ada", "notes"], key, {"text": text})
    await a.store.put_item(["ada", "notes"], "unindexed", {"text": "red bike"}, index=False)

    # Written on one replica, ranked by meaning on the other (its vector mirror catches up first).
    found = (await b.store.search_items(["ada"], query="which bike is red", limit=3))["items"]
    assert [i["key"] for i in found][:1] == ["bikes"]
    assert found[0]["score"] > max(i["score"] or 0 for i in found[1:] if i["key"] != "unindexed")
    await b.store.delete_item(["ada", "notes"], "bikes")
    after = (await a.store.search_items(["ada"], query="which bike is red", limit=3))["items"]
    assert "bikes" not in [i["key"] for i in after]
    assert embeddings.state.requests, "the vectors came from the endpoint"


async def test_semantic_search_from_the_projects_langgraph_json(
    redis_url, start_service, embeddings, tmp_path: Path
):
    """store.index as LangGraph Server reads it; the endpoint and key come from the project's env."""
    (tmp_path / "graph.py").write_text(NOOP_GRAPH)
    config = {
        "graphs": {"agent": "./graph.py:graph"},
        "env": {"OPENAI_BASE_URL": f"{embeddings.url}/v1", "OPENAI_API_KEY": embeddings.api_key},
        "store": {"index": {"embed": "openai:text-embedding-3-small", "dims": EMBEDDING_DIMS}},
    }
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    client = get_client(url=start_service(redis_url, AGENT_CONFIG=str(tmp_path / "langgraph.json")).url)
    before = len(embeddings.state.requests)
    for key, text in {"tea": "green tea in the morning", "bikes": "a red bike", "jazz": "old jazz"}.items():
        await client.store.put_item(["ada"], key, {"text": text})
    found = (await client.store.search_items(["ada"], query="a red bike to ride", limit=3))["items"]
    assert [i["key"] for i in found][:1] == ["bikes"]
    assert found[0]["score"] > found[1]["score"]
    assert len(embeddings.state.requests) > before, "the vectors came from the project's endpoint"


def test_an_index_without_dimensions_is_refused_at_start(redis_url, start_service):
    with pytest.raises(Exception, match="STORE_INDEX_URL needs STORE_INDEX_DIMS"):
        start_service(redis_url, **GRAPH, STORE_INDEX_URL="http://127.0.0.1:9/v1")
