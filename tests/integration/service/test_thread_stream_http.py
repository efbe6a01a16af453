"""``GET /threads/{thread_id}/stream`` through the official langgraph_sdk against two live
agent-service replicas on one Redis: a follower on one replica sees every run the other executes,
in order, and a reconnect with ``Last-Event-ID`` (on either replica) gets exactly the rest."""

from __future__ import annotations

import asyncio

import httpx
from langgraph_sdk import get_client

GRAPH = {"AGENT_GRAPH": "memory_graph:graph"}


def _said(text: str) -> dict:
    return {"messages": [{"role": "user", "content": text}]}


async def _collect(client, thread_id: str, runs: int, **options) -> list:
    """Parts of the thread stream until ``runs`` runs have streamed their last values."""
    parts, finished = [], 0
    async for part in await client.threads.join_stream(thread_id, **options):
        parts.append(part)
        if part.event == "values" and part.data["messages"][-1]["type"] == "ai":
            finished += 1
            if finished == runs:
                return parts
    raise AssertionError("the thread stream ended before its runs did")


async def test_a_thread_stream_follows_every_run_from_another_replica_and_resumes(redis_url, start_service):
    first, second = start_service(redis_url, **GRAPH), start_service(redis_url, **GRAPH)
    a, b = get_client(url=first.url), get_client(url=second.url)
    thread = await a.threads.create()
    thread_id = thread["thread_id"]

    follower = asyncio.create_task(_collect(a, thread_id, runs=2))
    await asyncio.sleep(1)  # the follower is listening before the first run starts
    one = await b.runs.wait(thread_id, "agent", input=_said("remember tea"))
    two = await b.runs.wait(thread_id, "agent", input=_said("what do you know?"))
    parts = await asyncio.wait_for(follower, timeout=120)

    metadata = [p for p in parts if p.event == "metadata"]
    runs = [r["run_id"] for r in reversed(await b.runs.list(thread_id))]
    assert [m.data["run_id"] for m in metadata] == runs  # both runs, oldest first
    values = [p.data for p in parts if p.event == "values"]
    assert values[-1] == two
    assert one in values
    ids = [p.id for p in parts]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith(f"{runs[0]}:") or i.startswith(f"{runs[1]}:") for i in ids)

    # Resume in the middle of the first run, on the other replica: exactly the rest, both runs.
    middle = next(i for i, p in enumerate(parts) if p.event == "values")
    rest = await asyncio.wait_for(_collect(b, thread_id, runs=2, last_event_id=parts[middle].id), timeout=120)
    assert [(p.id, p.event, p.data) for p in rest] == [(p.id, p.event, p.data) for p in parts[middle + 1 :]]

    # Only the state updates (and each run's metadata).
    updates = await asyncio.wait_for(
        _collect(a, thread_id, runs=2, last_event_id=f"{runs[0]}:0", stream_mode="state_update"), timeout=120
    )
    assert {p.event for p in updates} == {"metadata", "values"}
    assert [p.data for p in updates if p.event == "values"] == values

    async with httpx.AsyncClient(base_url=first.url) as http:
        for bad in ("garbage", f"{runs[0]}:x", "00000000-0000-0000-0000-000000000000:3"):
            response = await http.get(f"/threads/{thread_id}/stream", headers={"Last-Event-ID": bad})
            assert response.status_code == 422, response.text
        response = await http.get(f"/threads/{thread_id}/stream", params={"stream_mode": "bogus"})
        assert response.status_code == 422
        assert "stream_mode" in response.text
        missing = await http.get("/threads/00000000-0000-0000-0000-000000000000/stream")
        assert missing.status_code == 404
