"""Runs survive their replicas: SIGKILL, a drain shorter than the runs, and a Redis restart lose none,
run none twice and send one webhook each (live agent-service processes on real Redis)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import httpx
import pytest
import redis
from langgraph_sdk import get_sync_client
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.harness.processes import wait_until

QUESTION = {"messages": [{"role": "user", "content": "take your time"}]}
SECRET = "chaos-webhook-secret-chaos-webhook-secret"
RUNS = 50


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver().start()
    yield server
    server.stop()


def _durable(**extra: str) -> dict[str, str]:
    return {
        "AGENT_GRAPH": "durable_graph:graph",
        "SLOW_NODE_SECONDS": "20",  # longer than accepting all 50 runs takes on a busy machine
        "RUN_LEASE_SECONDS": "3",
        "DRAIN_GRACE_SECONDS": "1",
        "MAX_CONCURRENT_RUNS": "50",
        "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "WEBHOOK_SECRET": SECRET,
        "LOG_LEVEL": "WARNING",
        **extra,
    }


def _successes(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "agent_runs"
        for sample in family.samples
        if sample.name == "agent_runs_total" and sample.labels["outcome"] == "success"
    )


def _start_runs(urls: list[str], receiver: WebhookReceiver) -> list[tuple[str, str]]:
    started = []
    for n in range(RUNS):
        client = get_sync_client(url=urls[n % len(urls)])
        thread_id = client.threads.create()["thread_id"]
        run = client.runs.create(thread_id, "agent", input=QUESTION, webhook=receiver.url)
        started.append((thread_id, run["run_id"]))
    return started


def _statuses(url: str, runs: list[tuple[str, str]]) -> list[str]:
    client = get_sync_client(url=url)
    return [client.runs.get(thread_id, run_id)["status"] for thread_id, run_id in runs]


def _assert_each_ran_once(url: str, redis_url: str, key_prefix: str, runs, receiver: WebhookReceiver) -> None:
    client = get_sync_client(url=url)
    store = redis.Redis.from_url(redis_url)
    for thread_id, _ in runs:
        contents = [m["content"] for m in client.threads.get_state(thread_id)["values"]["messages"]]
        assert contents == ["take your time", "working on it", "done"]  # exactly one reply
        counts = {
            k.decode(): int(v) for k, v in store.hgetall(f"{key_prefix}:test-nodes:{thread_id}").items()
        }
        # Finished nodes never run again; only the node a lost replica was in is run a second time.
        assert counts["first"] == 1
        assert counts["answer"] == 1
    wait_until(lambda: len(receiver.by_run()) == RUNS, timeout=60, what="one webhook per run")
    deliveries = receiver.by_run()
    assert {run_id for _, run_id in runs} == set(deliveries)
    for run_id, received in deliveries.items():
        (delivery,) = received  # one webhook each
        assert delivery.payload["status"] == "success"
        assert delivery.payload["values"]["messages"][-1]["content"] == "done"
        signed = delivery.headers["X-Shepherd-Timestamp"].encode() + b"." + delivery.body
        expected = "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(delivery.headers["X-Shepherd-Signature"], expected)
        assert delivery.headers["X-Shepherd-Delivery"] == run_id


@pytest.mark.timeout(300)
def test_a_killed_and_a_drained_replica_lose_no_run(redis_url, start_service, key_prefix, receiver):
    killed, drained, survivor = (start_service(redis_url, **_durable()) for _ in range(3))
    runs = _start_runs([killed.url, drained.url, survivor.url], receiver)
    wait_until(lambda: set(_statuses(survivor.url, runs)) == {"running"}, timeout=60, what="all runs running")

    killed.process.process.kill()  # SIGKILL: no goodbye, its lease just stops being renewed
    assert drained.stop() == 0  # SIGTERM with a grace shorter than the runs: they are handed back
    replacement = start_service(redis_url, **_durable())

    wait_until(
        lambda: set(_statuses(survivor.url, runs)) == {"success"}, timeout=180, what="every run to succeed"
    )
    client = get_sync_client(url=survivor.url)
    attempts = [client.runs.get(t, r)["attempt"] for t, r in runs]
    assert attempts.count(1) >= RUNS // 3 - 1  # the survivor's own runs ran once...
    assert max(attempts) == 2  # ...the others once more, from their last checkpoint
    _assert_each_ran_once(survivor.url, redis_url, key_prefix, runs, receiver)
    # Each outcome counted once, by the replica that finished the run (the drained one finished none).
    assert _successes(survivor.url) + _successes(replacement.url) == RUNS


@pytest.mark.timeout(300)
def test_runs_queued_across_a_redis_restart_all_complete(redis_factory, start_service, key_prefix, receiver):
    server = redis_factory()
    replicas = [
        start_service(server.url, **_durable(MAX_CONCURRENT_RUNS="5", RUN_LEASE_SECONDS="5"))
        for _ in range(3)
    ]
    runs = _start_runs([r.url for r in replicas], receiver)
    assert "pending" in _statuses(replicas[0].url, runs)  # 15 slots for 50 runs: most are queued

    server.stop()  # SIGTERM: Redis writes its append-only file and exits
    server.start()  # same port, same data directory

    wait_until(
        lambda: set(_statuses(replicas[0].url, runs)) == {"success"}, timeout=240, what="every run to succeed"
    )
    _assert_each_ran_once(replicas[0].url, server.url, key_prefix, runs, receiver)
    assert sum(_successes(r.url) for r in replicas) == RUNS
