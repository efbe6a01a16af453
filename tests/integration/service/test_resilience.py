"""A live service through a Redis outage and through a SIGTERM drain."""

from __future__ import annotations

import signal

import httpx
import redis
from langgraph_sdk import get_sync_client

from tests.harness.processes import wait_until

QUESTION = {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}


def test_redis_outage_gives_503_then_recovers_with_every_checkpoint(redis_factory, start_service):
    store = redis_factory()
    # Every write Redis acknowledges is on disk before it is killed: any loss would be the service's.
    redis.Redis.from_url(store.url).config_set("appendfsync", "always")
    service = start_service(store.url)
    client = get_sync_client(url=service.url)
    thread = client.threads.create()
    thread_id = thread["thread_id"]
    first_answer = client.runs.wait(thread_id, "agent", input=QUESTION)
    history_before = [
        s["checkpoint"]["checkpoint_id"] for s in client.threads.get_history(thread_id, limit=100)
    ]

    store.kill()
    create = httpx.post(f"{service.url}/threads", json={}, timeout=10)
    state = httpx.get(f"{service.url}/threads/{thread_id}/state", timeout=10)
    run = httpx.post(
        f"{service.url}/threads/{thread_id}/runs/wait", json={"assistant_id": "agent"}, timeout=10
    )
    assert [create.status_code, state.status_code, run.status_code] == [503, 503, 503]
    assert int(create.headers["Retry-After"]) > 0
    assert service.get("/readyz").json()["checks"]["redis"].startswith("unreachable")
    assert service.get("/healthz").status_code == 200  # liveness must not restart the pod for this

    store.start()
    wait_until(
        lambda: service.get("/readyz").status_code == 200, timeout=30, what="readiness after Redis is back"
    )
    history_after = [
        s["checkpoint"]["checkpoint_id"] for s in client.threads.get_history(thread_id, limit=100)
    ]
    assert history_after == history_before
    second_answer = client.runs.wait(thread_id, "agent", input=QUESTION)
    assert second_answer["messages"][: len(first_answer["messages"])] == first_answer["messages"]
    assert len(second_answer["messages"]) > len(first_answer["messages"])


def test_sigterm_lets_the_inflight_run_finish_then_exits_cleanly(redis_url, start_service):
    service = start_service(
        redis_url, AGENT_GRAPH="slow_graph:graph", SLOW_NODE_SECONDS="4", DRAIN_GRACE_SECONDS="60"
    )
    client = get_sync_client(url=service.url)
    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], "agent", input=QUESTION)
    wait_until(
        lambda: (
            httpx.get(f"{service.url}/threads/{thread['thread_id']}/runs/{run['run_id']}").json()["status"]
            == "running"
        ),
        timeout=30,
        what="the run to start",
    )

    service.process.process.send_signal(signal.SIGTERM)
    readiness = wait_until(
        lambda: (r := service.get("/readyz")).status_code == 503 and r.json(),
        timeout=10,
        what="readiness to drop",
    )
    assert readiness["checks"]["draining"] is True
    # A run that reaches the draining replica is queued, not refused: another replica will take it.
    other_thread = client.threads.create()
    queued = client.runs.create(other_thread["thread_id"], "agent", input=QUESTION)
    assert client.runs.get(other_thread["thread_id"], queued["run_id"])["status"] == "pending"

    assert service.process.process.wait(timeout=60) == 0
    finished = start_service(redis_url, AGENT_GRAPH="slow_graph:graph", SLOW_NODE_SECONDS="0")
    record = httpx.get(f"{finished.url}/threads/{thread['thread_id']}/runs/{run['run_id']}").json()
    assert (record["status"], record["attempt"]) == ("success", 1)  # it finished within the grace
    state = httpx.get(f"{finished.url}/threads/{thread['thread_id']}/state").json()
    assert state["values"]["messages"][-1]["content"] == "done"
    joined = get_sync_client(url=finished.url).runs.join(other_thread["thread_id"], queued["run_id"])
    assert joined["messages"][-1]["content"] == "done"


def test_runs_still_going_after_the_grace_are_handed_back_and_resume_elsewhere(redis_url, start_service):
    service = start_service(
        redis_url, AGENT_GRAPH="slow_graph:graph", SLOW_NODE_SECONDS="600", DRAIN_GRACE_SECONDS="1"
    )
    client = get_sync_client(url=service.url)
    thread = client.threads.create()
    run = client.runs.create(thread["thread_id"], "agent", input=QUESTION)
    run_url = f"{service.url}/threads/{thread['thread_id']}/runs/{run['run_id']}"
    wait_until(lambda: httpx.get(run_url).json()["status"] == "running", timeout=30, what="the run to start")

    assert service.stop(timeout=60) == 0  # the run was not cancelled: it went back to the queue
    other = start_service(redis_url, AGENT_GRAPH="slow_graph:graph", SLOW_NODE_SECONDS="0")
    joined = get_sync_client(url=other.url).runs.join(thread["thread_id"], run["run_id"])

    assert joined["messages"][-1]["content"] == "done"
    record = httpx.get(f"{other.url}/threads/{thread['thread_id']}/runs/{run['run_id']}").json()
    assert (record["status"], record["attempt"]) == ("success", 2)
    assert httpx.get(f"{other.url}/threads/{thread['thread_id']}").json()["status"] == "idle"
