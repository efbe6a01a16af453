"""Assistants through the official langgraph_sdk against live agent-service processes on one Redis:
created, versioned, searched and deleted on one replica, seen on the other; their context reaches
the graph; the default assistant is read-only; tenants never see each other's."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError, UnprocessableEntityError

from tests.integration.service.tenants import AUTH, bearer

GRAPH = {"AGENT_GRAPH": "memory_graph:graph"}
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def _persona(values: dict) -> str:
    return values["messages"][-1]["content"]


async def test_create_version_set_latest_and_delete_across_replicas(redis_url, start_service):
    first, second = start_service(redis_url, **GRAPH), start_service(redis_url, **GRAPH)
    a, b = get_client(url=first.url), get_client(url=second.url)

    pirate = await a.assistants.create(
        "agent", context={"persona": "pirate"}, metadata={"team": "support", "tier": 1}, name="Pirate"
    )
    assert (pirate["version"], pirate["graph_id"], pirate["name"]) == (1, "agent", "Pirate")
    assert (await b.assistants.get(pirate["assistant_id"]))["context"] == {"persona": "pirate"}
    assert _persona(await b.runs.wait(None, pirate["assistant_id"], input=HELLO)) == "persona=pirate"
    # The run's own context overrides the assistant's.
    overridden = await b.runs.wait(None, pirate["assistant_id"], input=HELLO, context={"persona": "poet"})
    assert _persona(overridden) == "persona=poet"

    updated = await b.assistants.update(
        pirate["assistant_id"], context={"persona": "robot"}, metadata={"tier": 2}
    )
    assert updated["version"] == 2
    assert updated["metadata"] == {"team": "support", "tier": 2}  # metadata merges
    assert _persona(await a.runs.wait(None, pirate["assistant_id"], input=HELLO)) == "persona=robot"

    versions = await a.assistants.get_versions(pirate["assistant_id"])
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["context"] for v in versions] == [{"persona": "robot"}, {"persona": "pirate"}]
    only_first = await a.assistants.get_versions(pirate["assistant_id"], metadata={"tier": 1})
    assert [v["version"] for v in only_first] == [1]

    back = await b.assistants.set_latest(pirate["assistant_id"], 1)
    assert (back["version"], back["context"]) == (1, {"persona": "pirate"})
    assert _persona(await a.runs.wait(None, pirate["assistant_id"], input=HELLO)) == "persona=pirate"
    # A new version after set_latest gets the next number, not a reused one.
    assert (await a.assistants.update(pirate["assistant_id"], name="Pirate 3"))["version"] == 3

    await b.assistants.delete(pirate["assistant_id"])
    with pytest.raises(NotFoundError):
        await a.assistants.get(pirate["assistant_id"])
    with pytest.raises(NotFoundError):
        await a.assistants.get_versions(pirate["assistant_id"])


async def test_delete_with_threads_takes_the_threads_it_ran_on_and_no_other(redis_url, start_service):
    client = get_client(url=start_service(redis_url, **GRAPH).url)
    pirate = await client.assistants.create("agent", context={"persona": "pirate"})
    ran_on, other, untouched = [await client.threads.create() for _ in range(3)]
    await client.runs.wait(ran_on["thread_id"], pirate["assistant_id"], input=HELLO)
    await client.runs.wait(other["thread_id"], "agent", input=HELLO)
    # As LangGraph Server does, a run stamps its thread with the graph and the assistant.
    stamped = (await client.threads.get(ran_on["thread_id"]))["metadata"]
    assert (stamped["graph_id"], stamped["assistant_id"]) == ("agent", pirate["assistant_id"])
    found = await client.threads.search(metadata={"assistant_id": pirate["assistant_id"]})
    assert [t["thread_id"] for t in found] == [ran_on["thread_id"]]

    await client.assistants.delete(pirate["assistant_id"], delete_threads=True)
    with pytest.raises(NotFoundError):
        await client.threads.get(ran_on["thread_id"])
    for kept in (other, untouched):
        assert (await client.threads.get(kept["thread_id"]))["thread_id"] == kept["thread_id"]


async def test_search_count_and_sort_with_metadata_filters(redis_url, start_service):
    client = get_client(url=start_service(redis_url, **GRAPH).url)
    made = [
        await client.assistants.create("agent", metadata={"team": team, "labels": labels}, name=name)
        for name, team, labels in [
            ("Beta", "search", ["a", "b"]),
            ("alpha", "search", ["b"]),
            ("Gamma", "billing", ["a"]),
        ]
    ]
    ids = [m["assistant_id"] for m in made]
    found = await client.assistants.search(metadata={"team": "search"})
    assert [f["assistant_id"] for f in found] == [ids[1], ids[0]]  # newest first by default
    # Containment like LangGraph Server's: a list filter matches lists holding its elements.
    assert {f["assistant_id"] for f in await client.assistants.search(metadata={"labels": ["a"]})} == {
        ids[0],
        ids[2],
    }
    by_name = await client.assistants.search(metadata={"team": "search"}, sort_by="name", sort_order="asc")
    assert [f["name"] for f in by_name] == ["alpha", "Beta"]
    assert await client.assistants.count(metadata={"team": "search"}) == 2
    assert await client.assistants.count(graph_id="agent") == 4  # the default assistant too
    assert await client.assistants.count(name="amm") == 1
    page = await client.assistants.search(
        graph_id="agent", limit=2, offset=1, select=["assistant_id", "name"]
    )
    assert [set(p) for p in page] == [{"assistant_id", "name"}] * 2


async def test_default_assistant_is_read_only_and_bad_input_names_the_field(redis_url, start_service):
    client = get_client(url=start_service(redis_url, **GRAPH).url)
    default = await client.assistants.get("agent")
    for change in (
        lambda: client.assistants.update(default["assistant_id"], name="mine"),
        lambda: client.assistants.delete(default["assistant_id"]),
        lambda: client.assistants.set_latest(default["assistant_id"], 1),
    ):
        with pytest.raises(ConflictError):
            await change()
    assert (await client.assistants.get("agent")) == default

    own = await client.assistants.create("agent", name="mine")
    with pytest.raises(ConflictError):
        await client.assistants.create("agent", assistant_id=own["assistant_id"])
    same = await client.assistants.create("agent", assistant_id=own["assistant_id"], if_exists="do_nothing")
    assert (same["assistant_id"], same["name"]) == (own["assistant_id"], "mine")

    refusals = [
        (lambda: client.assistants.create("no-such-graph"), "graph_id"),
        (lambda: client.assistants.set_latest(own["assistant_id"], 7), "version"),
        (lambda: client.assistants.update(own["assistant_id"], graph_id="no-such-graph"), "graph_id"),
        (
            lambda: client.assistants.create("agent", context={"a": 1}, config={"configurable": {"b": 2}}),
            "context",
        ),
    ]
    for call, field in refusals:
        with pytest.raises(UnprocessableEntityError) as refused:
            await call()
        assert field in refused.value.response.text
    for unknown in (
        lambda: client.assistants.get("00000000-0000-0000-0000-000000000000"),
        lambda: client.assistants.update("00000000-0000-0000-0000-000000000000", name="x"),
        lambda: client.runs.wait(None, "00000000-0000-0000-0000-000000000000", input=HELLO),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:  # runs.wait raises the plain httpx error
            await unknown()
        assert refused.value.response.status_code == 404
    assert (await client.assistants.get(own["assistant_id"]))["version"] == 1  # nothing was lost


def _tenant_client(url: str, tenant: str):
    return get_sync_client(url=url, headers=bearer(tenant))


def test_tenants_never_see_each_others_assistants(redis_url, start_service):
    url = start_service(redis_url, **GRAPH, **AUTH).url
    acme, globex = _tenant_client(url, "acme"), _tenant_client(url, "globex")
    mine = acme.assistants.create("agent", metadata={"owner": "acme"}, context={"persona": "acme"})
    for call in (
        lambda: globex.assistants.get(mine["assistant_id"]),
        lambda: globex.assistants.update(mine["assistant_id"], name="stolen"),
        lambda: globex.assistants.delete(mine["assistant_id"]),
        lambda: globex.assistants.get_versions(mine["assistant_id"]),
        lambda: globex.runs.wait(None, mine["assistant_id"], input=HELLO),
    ):
        with pytest.raises(httpx.HTTPStatusError) as refused:
            call()
        assert refused.value.response.status_code == 404
    with pytest.raises(httpx.HTTPStatusError) as taken:
        globex.assistants.create("agent", assistant_id=mine["assistant_id"], if_exists="do_nothing")
    assert taken.value.response.status_code == 409  # the id is taken; nothing of it is returned
    assert globex.assistants.search(metadata={"owner": "acme"}) == []
    assert globex.assistants.count() == 1  # the shared default only
    assert [a["assistant_id"] for a in acme.assistants.search(metadata={"owner": "acme"})] == [
        mine["assistant_id"]
    ]
