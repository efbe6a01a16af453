"""Cancelling runs (on this replica or another) and refusing a second run on a busy thread."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.harness.processes import wait_until

QUESTION = {"messages": [{"role": "user", "content": "take your time"}]}


def _wait_for_status(url: str, thread_id: str, run_id: str, status: str) -> None:
    run_url = f"{url}/threads/{thread_id}/runs/{run_id}"
    wait_until(lambda: httpx.get(run_url).json()["status"] == status, timeout=30, what=f"run status {status}")


SLOW = {"AGENT_GRAPH": "slow_graph:graph", "SLOW_NODE_SECONDS": "600"}


def test_a_busy_thread_rejects_a_second_run_then_cancel_frees_it(redis_url, start_service):
    first = start_service(redis_url, **SLOW)
    client = get_sync_client(url=first.url)
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, "agent", input=QUESTION)
    _wait_for_status(first.url, thread_id, run["run_id"], "running")
    assert client.threads.get(thread_id)["status"] == "busy"

    with pytest.raises(ConflictError):
        client.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="reject")

    client.runs.cancel(thread_id, run["run_id"], wait=True)
    assert client.runs.get(thread_id, run["run_id"])["status"] == "interrupted"
    assert client.threads.get(thread_id)["status"] == "idle"


def test_a_run_is_cancelled_through_another_replica(redis_url, start_service):
    first, second = start_service(redis_url, **SLOW), start_service(redis_url, **SLOW)
    thread_id = get_sync_client(url=first.url).threads.create()["thread_id"]
    run = get_sync_client(url=first.url).runs.create(thread_id, "agent", input=QUESTION)
    _wait_for_status(first.url, thread_id, run["run_id"], "running")

    get_sync_client(url=second.url).runs.cancel(thread_id, run["run_id"], wait=True)

    assert get_sync_client(url=first.url).runs.get(thread_id, run["run_id"])["status"] == "interrupted"


def test_interrupt_strategy_replaces_the_running_run(redis_url, start_service):
    first = start_service(redis_url, **SLOW)
    client = get_sync_client(url=first.url)
    thread_id = client.threads.create()["thread_id"]
    old = client.runs.create(thread_id, "agent", input=QUESTION)
    _wait_for_status(first.url, thread_id, old["run_id"], "running")

    new = client.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="interrupt")
    _wait_for_status(first.url, thread_id, new["run_id"], "running")

    assert client.runs.get(thread_id, old["run_id"])["status"] == "interrupted"
    client.runs.cancel(thread_id, new["run_id"], wait=True)


def test_a_run_whose_replica_dies_resumes_on_another_and_frees_its_thread(redis_url, start_service):
    doomed = start_service(redis_url, **SLOW, RUN_LEASE_SECONDS="2")
    survivor = start_service(redis_url, **{**SLOW, "SLOW_NODE_SECONDS": "0"}, RUN_LEASE_SECONDS="2")
    thread_id = get_sync_client(url=doomed.url).threads.create()["thread_id"]
    run = get_sync_client(url=doomed.url).runs.create(thread_id, "agent", input=QUESTION)
    _wait_for_status(doomed.url, thread_id, run["run_id"], "running")

    doomed.process.process.kill()
    doomed.process.process.wait()
    client = get_sync_client(url=survivor.url)
    client.runs.join(thread_id, run["run_id"])  # the survivor takes the run over once the lease lapses

    record = client.runs.get(thread_id, run["run_id"])
    assert (record["status"], record["attempt"]) == ("success", 2)
    assert client.threads.get(thread_id)["status"] == "idle"
    again = client.runs.wait(thread_id, "agent", input=QUESTION, multitask_strategy="reject")
    assert again["messages"][-1]["content"] == "done"


def test_rollback_cancel_removes_the_run_and_its_checkpoints(redis_url, start_service):
    service = start_service(redis_url, **SLOW)
    client = get_sync_client(url=service.url)
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, "agent", input=QUESTION)
    _wait_for_status(service.url, thread_id, run["run_id"], "running")
    assert client.threads.get_history(thread_id)  # the run has written its input checkpoint

    client.runs.cancel(thread_id, run["run_id"], wait=True, action="rollback")

    assert client.threads.get_history(thread_id) == []
    with pytest.raises(NotFoundError):
        client.runs.get(thread_id, run["run_id"])


def test_a_run_over_the_time_limit_ends_as_timeout(redis_url, start_service):
    service = start_service(redis_url, **SLOW, RUN_TIMEOUT_SECONDS="1")
    client = get_sync_client(url=service.url)
    thread_id = client.threads.create()["thread_id"]

    with pytest.raises(Exception, match="run exceeded RUN_TIMEOUT_SECONDS=1"):
        client.runs.wait(thread_id, "agent", input=QUESTION)

    (run,) = client.runs.list(thread_id)
    assert run["status"] == "timeout"
    assert client.threads.get(thread_id)["status"] == "idle"


def test_runs_past_the_replica_limit_wait_their_turn(redis_url, start_service):
    service = start_service(redis_url, **SLOW, MAX_CONCURRENT_RUNS="2")
    client = get_sync_client(url=service.url)
    threads = [client.threads.create()["thread_id"] for _ in range(4)]
    runs = [client.runs.create(t, "agent", input=QUESTION)["run_id"] for t in threads]
    _wait_for_status(service.url, threads[0], runs[0], "running")
    _wait_for_status(service.url, threads[1], runs[1], "running")
    assert [client.runs.get(t, r)["status"] for t, r in zip(threads[2:], runs[2:], strict=True)] == [
        "pending",
        "pending",
    ]

    # A waiting run can be cancelled; a finished one hands its slot to the next in line.
    client.runs.cancel(threads[3], runs[3], wait=True)
    assert client.runs.get(threads[3], runs[3])["status"] == "interrupted"
    client.runs.cancel(threads[0], runs[0], wait=True)
    _wait_for_status(service.url, threads[2], runs[2], "running")
    for thread_id, run_id in zip(threads[1:3], runs[1:3], strict=True):
        client.runs.cancel(thread_id, run_id, wait=True)
