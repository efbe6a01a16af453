"""The official langgraph-sdk against two live replicas: streams joined and resumed on the other replica,
crons, delayed runs, bulk cancel, signed webhooks, and the refusals that name the field."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator

import httpx
import pytest
from langgraph_sdk import get_client, get_sync_client
from langgraph_sdk.errors import NotFoundError, UnprocessableEntityError

from tests.fakes.webhook_receiver import WebhookReceiver
from tests.harness.processes import wait_until

QUESTION = {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}
SECRET = "api-webhook-secret-api-webhook-secret-0"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(failures=1).start()  # the first delivery fails: the retry must come
    yield server
    server.stop()


@pytest.fixture
def replicas(redis_url, start_service):
    env = {"WEBHOOK_ALLOWED_HOSTS": "127.0.0.1", "WEBHOOK_SECRET": SECRET}
    return start_service(redis_url, **env), start_service(redis_url, **env)


async def test_join_stream_and_resume_on_the_other_replica(replicas):
    first, second = replicas
    client_a, client_b = get_client(url=first.url), get_client(url=second.url)
    thread = await client_a.threads.create()
    run = await client_a.runs.create(
        thread["thread_id"], "agent", input=QUESTION, stream_mode=["values", "updates"]
    )

    everything = [
        (p.event, p.data)
        async for p in client_b.runs.join_stream(thread["thread_id"], run["run_id"], last_event_id="0")
    ]
    assert everything[0][0] == "metadata"
    assert {"values", "updates"} <= {event for event, _ in everything}
    # Resuming after event 3 gives exactly the events after it: no gap, no duplicate.
    resumed = [
        (p.event, p.data)
        async for p in client_a.runs.join_stream(thread["thread_id"], run["run_id"], last_event_id="3")
    ]
    assert resumed == everything[3:]
    only_values = [
        p.event
        async for p in client_b.runs.join_stream(
            thread["thread_id"], run["run_id"], last_event_id="0", stream_mode="values"
        )
    ]
    assert set(only_values) == {"metadata", "values"}


def test_sse_frames_carry_ids_and_last_event_id_resumes(replicas):
    first, second = replicas
    client = get_sync_client(url=first.url)
    thread_id = client.threads.create()["thread_id"]
    with httpx.stream(
        "POST",
        f"{first.url}/threads/{thread_id}/runs/stream",
        json={"assistant_id": "agent", "input": QUESTION},
    ) as response:
        location = response.headers["location"]
        ids = [line.split(": ")[1] for line in response.iter_lines() if line.startswith("id: ")]
    assert ids == [str(n) for n in range(1, len(ids) + 1)]
    # The stream's Location works on the other replica, from any event on.
    rejoined = httpx.get(f"{second.url}{location}", headers={"Last-Event-ID": ids[1]}).text
    assert [line.split(": ")[1] for line in rejoined.splitlines() if line.startswith("id: ")] == ids[2:]


def test_a_delayed_run_waits_and_bulk_cancel_stops_queued_runs(replicas):
    first, second = replicas
    client = get_sync_client(url=first.url)
    thread_id = client.threads.create()["thread_id"]
    delayed = client.runs.create(thread_id, "agent", input=QUESTION, after_seconds=1)
    assert client.runs.get(thread_id, delayed["run_id"])["status"] == "pending"
    client.runs.join(thread_id, delayed["run_id"])
    assert client.runs.get(thread_id, delayed["run_id"])["status"] == "success"

    later = [
        client.runs.create(
            thread_id, "agent", input=QUESTION, after_seconds=3600, multitask_strategy="enqueue"
        )
        for _ in range(2)
    ]
    queued = client.runs.create(thread_id, "agent", input=QUESTION, multitask_strategy="enqueue")
    get_sync_client(url=second.url).runs.cancel_many(thread_id=thread_id, run_ids=[later[0]["run_id"]])
    assert client.runs.get(thread_id, later[0]["run_id"])["status"] == "interrupted"
    get_sync_client(url=second.url).runs.cancel_many(status="pending")
    statuses = {client.runs.get(thread_id, r["run_id"])["status"] for r in (later[1], queued)}
    assert statuses == {"interrupted"}


def test_webhooks_arrive_once_signed_after_a_failed_try(replicas, receiver):
    first, second = replicas
    client = get_sync_client(url=first.url)
    thread_id = client.threads.create()["thread_id"]
    run = client.runs.create(thread_id, "agent", input=QUESTION, webhook=receiver.url)
    stateless = get_sync_client(url=second.url).runs.create(
        None, "agent", input=QUESTION, webhook=receiver.url
    )

    wait_until(lambda: len(receiver.by_run()) == 2, timeout=60, what="both webhooks")
    for run_id in (run["run_id"], stateless["run_id"]):
        (delivery,) = receiver.by_run()[run_id]
        assert delivery.payload["status"] == "success"
        assert "42" in delivery.payload["values"]["messages"][-1]["content"]
        signed = delivery.headers["X-Shepherd-Timestamp"].encode() + b"." + delivery.body
        assert delivery.headers["X-Shepherd-Signature"] == (
            "sha256=" + hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()
        )
    metrics = httpx.get(f"{first.url}/metrics").text + httpx.get(f"{second.url}/metrics").text
    assert 'agent_webhook_deliveries_total{outcome="retried"} 1.0' in metrics
    # A stateless run's outcome stays readable after its thread is gone, by its own id.
    assert (
        "42"
        in get_sync_client(url=first.url).runs.join(stateless["thread_id"], stateless["run_id"])["messages"][
            -1
        ]["content"]
    )
    assert httpx.get(f"{first.url}/runs/{stateless['run_id']}").json()["status"] == "success"


def test_crons_are_created_searched_updated_fired_and_deleted(replicas):
    first, second = replicas
    client_a, client_b = get_sync_client(url=first.url), get_sync_client(url=second.url)
    thread_id = client_a.threads.create()["thread_id"]
    # Six fields: the last one is seconds (every 2 s here, so the test sees it fire).
    cron = client_a.crons.create_for_thread(thread_id, "agent", schedule="* * * * * */2", input=QUESTION)
    stateless = client_a.crons.create("agent", schedule="0 9 * * *", input=QUESTION, timezone="Europe/Paris")
    assert stateless["next_run_date"].endswith(("+00:00", "Z"))

    assert {c["cron_id"] for c in client_b.crons.search()} == {cron["cron_id"], stateless["cron_id"]}
    assert client_b.crons.count(thread_id=thread_id) == 1
    wait_until(lambda: len(client_b.runs.list(thread_id)) >= 2, timeout=60, what="the cron to fire twice")
    assert {r["status"] for r in client_b.runs.list(thread_id)} <= {"pending", "running", "success"}

    client_b.crons.update(cron["cron_id"], enabled=False)
    fired = len(client_a.runs.list(thread_id, limit=100))
    assert client_a.crons.search(enabled=False)[0]["cron_id"] == cron["cron_id"]
    client_b.crons.delete(cron["cron_id"])
    with pytest.raises(NotFoundError):
        client_a.crons.delete(cron["cron_id"])
    assert len(client_a.runs.list(thread_id, limit=100)) in (fired, fired + 1)  # at most one in flight


def _field(error: UnprocessableEntityError) -> list:
    return [tuple(item["loc"]) for item in error.response.json()["detail"]]


def test_bad_input_is_refused_naming_the_field(replicas):
    first, _ = replicas
    client = get_sync_client(url=first.url)
    thread_id = client.threads.create()["thread_id"]
    with pytest.raises(NotFoundError):
        client.runs.get(thread_id, "00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFoundError):
        client.crons.update("00000000-0000-0000-0000-000000000000", enabled=False)
    for webhook in ("not a url", "https://169.254.169.254/latest/meta-data", "http://hooks.example.com/x"):
        with pytest.raises(UnprocessableEntityError) as refused:
            client.runs.create(thread_id, "agent", input=QUESTION, webhook=webhook)
        assert ("body", "webhook") in _field(refused.value)
    with pytest.raises(UnprocessableEntityError) as refused:
        client.crons.create("agent", schedule="every day at nine", input=QUESTION)
    assert ("body", "schedule") in _field(refused.value)
    with pytest.raises(UnprocessableEntityError) as refused:
        client.crons.create("agent", schedule="0 9 * * *", timezone="Mars/Olympus")
    assert ("body", "timezone") in _field(refused.value)
    assert client.runs.list(thread_id) == []  # nothing refused was kept
