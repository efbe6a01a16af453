"""The official langgraph_sdk client, unchanged, against live agent-service processes sharing one Redis."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.errors import NotFoundError

QUESTION = {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}


def _last_text(values: dict) -> str:
    return values["messages"][-1]["content"]


async def test_thread_lifecycle_across_two_replicas(redis_url, start_service):
    first, second = start_service(redis_url), start_service(redis_url)
    client_a, client_b = get_client(url=first.url), get_client(url=second.url)

    thread = await client_a.threads.create(metadata={"owner": "acceptance"})
    assert thread["status"] == "idle"

    streamed = [
        part
        async for part in client_a.runs.stream(
            thread["thread_id"], "agent", input=QUESTION, stream_mode=["values", "updates", "messages-tuple"]
        )
    ]
    events = [part.event for part in streamed]
    assert events[0] == "metadata"
    assert {"values", "updates", "messages"} <= set(events)
    final_values = [part.data for part in streamed if part.event == "values"][-1]
    assert "42" in _last_text(final_values)  # the calculator tool ran and its result reached the answer

    state = await client_a.threads.get_state(thread["thread_id"])
    assert state["values"] == final_values
    assert state["next"] == []

    # The second replica continues the thread it never saw, from the checkpoints in Redis.
    answer = await client_b.runs.wait(
        thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "tell me about redis"}]}
    )
    assert "Redis is an in-memory data store" in str(answer["messages"])
    assert answer["messages"][: len(final_values["messages"])] == final_values["messages"]

    runs = await client_b.runs.list(thread["thread_id"])
    assert [run["status"] for run in runs] == ["success", "success"]
    history = await client_a.threads.get_history(thread["thread_id"], limit=100)
    assert len(history) > 2
    assert (
        history[0]["checkpoint"]["checkpoint_id"]
        == (await client_b.threads.get_state(thread["thread_id"]))["checkpoint"]["checkpoint_id"]
    )
    found = await client_b.threads.search(metadata={"owner": "acceptance"})
    assert [t["thread_id"] for t in found] == [thread["thread_id"]]
    assert found[0]["status"] == "idle"

    await client_b.threads.delete(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client_a.threads.get(thread["thread_id"])
    with pytest.raises(NotFoundError):
        await client_a.threads.get_state(thread["thread_id"])


async def test_background_run_join_copy_and_state_update(redis_url, start_service):
    client = get_client(url=start_service(redis_url).url)
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "agent", input=QUESTION)
    assert run["status"] == "pending"

    joined = await client.runs.join(thread["thread_id"], run["run_id"])
    assert "42" in _last_text(joined)
    assert (await client.runs.get(thread["thread_id"], run["run_id"]))["status"] == "success"

    copy = await client.threads.copy(thread["thread_id"])
    assert copy["thread_id"] != thread["thread_id"]
    assert (await client.threads.get_state(copy["thread_id"]))["values"] == joined

    update = await client.threads.update_state(
        thread["thread_id"], {"messages": [{"role": "user", "content": "noted"}]}, as_node="model"
    )
    state = await client.threads.get_state(thread["thread_id"])
    assert state["checkpoint"]["checkpoint_id"] == update["checkpoint"]["checkpoint_id"]
    assert _last_text(state["values"]) == "noted"
    # The copy is independent of the original.
    assert _last_text((await client.threads.get_state(copy["thread_id"]))["values"]) == _last_text(joined)


async def test_stateless_runs_leave_no_thread_behind(redis_url, start_service):
    client = get_client(url=start_service(redis_url).url)
    before = await client.threads.count()

    result = await client.runs.wait(None, "agent", input=QUESTION)
    assert "42" in _last_text(result)
    stream = client.runs.stream(None, "agent", input=QUESTION, stream_mode=["events", "values"])
    events = [part.event async for part in stream]
    assert events[0] == "metadata"
    assert {"events", "values"} <= set(events)

    assert await client.threads.count() == before


async def test_assistant_and_openapi_are_published(redis_url, start_service):
    service = start_service(redis_url)
    client = get_client(url=service.url)
    (assistant,) = await client.assistants.search()
    assert assistant["graph_id"] == "agent"
    assert await client.assistants.get(assistant["assistant_id"]) == assistant
    graph = await client.assistants.get_graph("agent")
    assert {node["id"] for node in graph["nodes"]} >= {"model", "tools"}
    schemas = await client.assistants.get_schemas("agent")
    assert "messages" in schemas["input_schema"]["properties"]

    openapi = service.get("/openapi.json").json()
    operation_ids = {op["operationId"] for path in openapi["paths"].values() for op in path.values()}
    assert {"create_thread", "stream_run", "wait_run", "search_assistants", "readiness"} <= operation_ids


async def test_malformed_requests_get_a_4xx_naming_the_problem(redis_url, start_service):
    service = start_service(redis_url)
    async with httpx.AsyncClient(base_url=service.url) as http:
        not_json = await http.post("/threads", content=b"{nope", headers={"content-type": "application/json"})
        wrong_type = await http.post("/threads", json={"metadata": "not an object"})
        bad_mode = await http.post("/runs/wait", json={"assistant_id": "agent", "stream_mode": "telepathy"})
        no_assistant = await http.post("/runs/wait", json={"assistant_id": "nobody", "input": QUESTION})
        no_thread = await http.post("/threads/does-not-exist/runs/wait", json={"assistant_id": "agent"})

    assert not_json.status_code == 422
    assert (wrong_type.status_code, wrong_type.json()["detail"][0]["loc"]) == (422, ["body", "metadata"])
    assert (bad_mode.status_code, "stream_mode" in bad_mode.text) == (422, True)
    assert (no_assistant.status_code, "nobody" in no_assistant.text) == (404, True)
    assert (no_thread.status_code, "does-not-exist" in no_thread.text) == (404, True)


async def test_interrupt_before_a_node_then_resume(redis_url, start_service):
    client = get_client(url=start_service(redis_url).url)
    thread_id = (await client.threads.create())["thread_id"]

    paused = await client.runs.wait(thread_id, "agent", input=QUESTION, interrupt_before=["tools"])
    assert paused["messages"][-1]["tool_calls"][0]["name"] == "calculator"
    assert (await client.threads.get(thread_id))["status"] == "interrupted"
    assert (await client.threads.get_state(thread_id))["next"] == ["tools"]

    resumed = await client.runs.wait(thread_id, "agent", input=None)
    assert "42" in _last_text(resumed)
    assert (await client.threads.get(thread_id))["status"] == "idle"


async def test_prune_keeps_the_latest_state_or_deletes_the_thread(redis_url, start_service):
    client = get_client(url=start_service(redis_url).url)
    kept, other = (await client.threads.create())["thread_id"], (await client.threads.create())["thread_id"]
    answer = await client.runs.wait(kept, "agent", input=QUESTION)
    assert len(await client.threads.get_history(kept, limit=100)) > 1

    assert await client.threads.prune([], strategy="delete") == {"pruned_count": 0}
    assert await client.threads.prune([kept], strategy="keep_latest") == {"pruned_count": 1}
    (latest,) = await client.threads.get_history(kept, limit=100)
    assert latest["values"] == answer

    assert await client.threads.prune([kept, "no-such-thread"]) == {"pruned_count": 1}
    with pytest.raises(NotFoundError):
        await client.threads.get(kept)
    assert (await client.threads.get(other))["thread_id"] == other
