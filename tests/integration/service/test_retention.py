"""Retention against a live agent-service and a real Redis: threads expire by their TTL (the
LangGraph API's option, or the deployment's default) and the sweeper removes them with their
checkpoints, writes, runs and event logs; keep_latest prunes instead; activity keeps a thread alive;
finished run records expire; one sweeper per deployment holds the lease."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
import redis
from agent_service.runs.lease import Lease
from agent_service.state import connection
from langgraph_sdk import get_sync_client

from tests.integration.service.redis_scan import mentions

QUESTION = {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}
TTL_MINUTES = 0.03  # 1.8 s
SWEEP = {"RETENTION_SWEEP_INTERVAL_SECONDS": "0.3", "RUN_RECORD_TTL_SECONDS": "3600"}


def _run(http: httpx.Client, thread_id: str) -> str:
    response = http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "agent", "input": QUESTION})
    assert response.status_code == 200, response.text
    runs = http.get(f"/threads/{thread_id}/runs").json()
    return runs[0]["run_id"]


def _wait_gone(http: httpx.Client, thread_id: str, timeout: float = 30) -> float:
    start = time.monotonic()
    while http.get(f"/threads/{thread_id}").status_code != 404:
        assert time.monotonic() - start < timeout, f"thread {thread_id} was never swept"
        time.sleep(0.2)
    return time.monotonic() - start


@pytest.fixture
def admin_redis(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_expired_threads_are_swept_with_everything_of_theirs(
    redis_url, start_service, key_prefix, admin_redis
):
    url = start_service(redis_url, **SWEEP).url
    sdk = get_sync_client(url=url)
    http = httpx.Client(base_url=url, timeout=60)

    # The SDK's int form ({"ttl": n, "strategy": "delete"} on the wire), a kept one, a keep_latest one.
    doomed = sdk.threads.create(ttl={"ttl": TTL_MINUTES, "strategy": "delete"})["thread_id"]
    kept = sdk.threads.create()["thread_id"]
    pruned = sdk.threads.create(ttl={"ttl": TTL_MINUTES, "strategy": "keep_latest"})["thread_id"]
    doomed_runs = [_run(http, doomed), _run(http, doomed)]
    kept_run = _run(http, kept)
    _run(http, pruned), _run(http, pruned)
    assert len(sdk.threads.get_history(pruned, limit=100)) > 1

    thread = http.get(f"/threads/{doomed}").json()
    assert thread["ttl"]["strategy"] == "delete"
    assert thread["ttl"]["ttl_minutes"] == TTL_MINUTES
    ids = [doomed, *doomed_runs]
    before = mentions(admin_redis, key_prefix, ids)
    kinds = {key.split("}:", 1)[1].split(":")[0] for key in before}  # what follows the hash tag
    assert {"ns", "cp", "writes", "blobs", "order", "run", "runs", "events", "values", "thread"} <= kinds, (
        kinds
    )
    # A finished thread run's record expires (RUN_RECORD_TTL_SECONDS), its thread's does not.
    record_key = next(k for k in before if f":run:{doomed_runs[0]}" in k and ":cp:" not in k)
    assert 0 < admin_redis.ttl(record_key) <= 3600

    _wait_gone(http, doomed)
    assert mentions(admin_redis, key_prefix, ids) == {}, "the sweeper left keys of the expired thread"

    assert http.get(f"/threads/{kept}").status_code == 200
    assert http.get(f"/threads/{kept}/runs/{kept_run}").status_code == 200
    # keep_latest: the thread and its latest state stay; older checkpoints go; it leaves the index.
    deadline = time.monotonic() + 30
    while len(sdk.threads.get_history(pruned, limit=100)) > 1:
        assert time.monotonic() < deadline, "keep_latest never pruned the thread"
        time.sleep(0.2)
    assert http.get(f"/threads/{pruned}").json()["values"]["messages"]
    assert admin_redis.zscore(f"{key_prefix}:{{{key_prefix}}}:threads:expiry", pruned) is None


def test_activity_keeps_a_thread_alive_and_the_default_ttl_applies(redis_url, start_service):
    # The deployment's default (THREAD_TTL_SECONDS) for threads created without a ttl.
    url = start_service(redis_url, THREAD_TTL_SECONDS="2", **SWEEP).url
    http = httpx.Client(base_url=url, timeout=60)
    idle = http.post("/threads", json={}).json()["thread_id"]
    busy = http.post("/threads", json={}).json()["thread_id"]
    assert http.get(f"/threads/{idle}").json()["ttl"] == {
        **http.get(f"/threads/{idle}").json()["ttl"],
        "strategy": "delete",
        "ttl_minutes": 2 / 60,
    }
    start = time.monotonic()
    while time.monotonic() - start < 4:  # twice its TTL, touched every half second
        assert http.patch(f"/threads/{busy}", json={"metadata": {"seen": time.time()}}).status_code == 200
        time.sleep(0.5)
    assert http.get(f"/threads/{idle}").status_code == 404
    assert http.get(f"/threads/{busy}").status_code == 200
    # A patch with ttl sets the thread's own policy (minutes, as the LangGraph API has it).
    patched = http.patch(f"/threads/{busy}", json={"metadata": {}, "ttl": {"ttl": 600}}).json()
    assert patched["ttl"]["ttl_minutes"] == 600
    refused = http.post("/threads", json={"ttl": {"ttl": -1}})
    assert refused.status_code == 422
    assert "ttl" in refused.json()["detail"][0]["loc"]
    refused = http.post("/threads", json={"ttl": {"ttl": 5, "strategy": "archive"}})
    assert refused.status_code == 422
    assert "strategy" in refused.json()["detail"][0]["loc"]


def test_one_sweeper_holds_the_lease(redis_url):
    async def scenario() -> list[bool]:
        client = connection.async_client(redis_url, 2.0)
        key = f"test-{uuid.uuid4().hex[:8]}:lease"
        try:
            first, second = Lease(client, key, "a", 0.5), Lease(client, key, "b", 0.5)
            held = [await first.hold(), await second.hold(), await first.hold()]
            await asyncio.sleep(0.7)  # the holder stopped renewing: the other takes over
            return [*held, await second.hold(), await first.hold()]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [True, False, True, True, False]
