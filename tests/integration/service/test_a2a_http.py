"""A2A with the official ``a2a-sdk`` client against live agent-service processes on real Redis: the
agent card, message/send (a counted run on the context's thread), message/stream, tasks/get from
another replica, tasks/cancel, tasks/resubscribe on another replica, an input-required task
answered; auth (401 without a token,
tenants apart) and bad input (JSON-RPC errors with their codes, never a 5xx)."""

from __future__ import annotations

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    InvalidParamsError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from langgraph_sdk import get_client

from tests.integration.service.tenants import AUTH, bearer

GRAPH = {"AGENT_GRAPH": "memory_graph:graph"}
SLOW = {"AGENT_GRAPH": "slow_graph:graph", "SLOW_NODE_SECONDS": "30"}


def _card_path(assistant_id: str) -> str:
    return f"/.well-known/agent-card.json?assistant_id={assistant_id}"


async def _client(http: httpx.AsyncClient, url: str, assistant_id: str, **config):
    card = await A2ACardResolver(http, url, _card_path(assistant_id)).get_agent_card()
    return card, ClientFactory(ClientConfig(httpx_client=http, **config)).create(card)


def _say(text: str, context_id: str = "") -> pb.SendMessageRequest:
    message = pb.Message(message_id=f"m-{text}", role=pb.ROLE_USER, parts=[pb.Part(text=text)])
    if context_id:
        message.context_id = context_id
    return pb.SendMessageRequest(message=message)


def _runs_counted(url: str) -> float:
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    lines = [line for line in metrics.splitlines() if line.startswith("agent_runs_total{")]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def test_card_send_get_and_stream_on_two_replicas(redis_url, start_service):
    first, second = start_service(redis_url, **GRAPH), start_service(redis_url, **GRAPH)
    pirate = await get_client(url=first.url).assistants.create(
        "agent", name="pirate agent", description="talks like one", context={"persona": "pirate"}
    )
    before = _runs_counted(first.url)
    async with httpx.AsyncClient(timeout=60) as http:
        card, client = await _client(http, first.url, pirate["assistant_id"], streaming=False)
        assert card.name == "pirate agent"
        assert card.description == "talks like one"
        assert card.capabilities.streaming
        assert card.supported_interfaces[0].url == f"{first.url}/a2a/{pirate['assistant_id']}"
        assert card.supported_interfaces[0].protocol_version == "0.3.0"

        sent = [r async for r in client.send_message(_say("remember parrots"))]
        assert len(sent) == 1
        task = sent[0].task
        assert task.status.state == pb.TASK_STATE_COMPLETED
        assert task.status.message.parts[0].text == "persona=pirate remembers=parrots"
        assert task.artifacts[0].parts[0].text == "persona=pirate remembers=parrots"
        assert [m.parts[0].text for m in task.history] == [
            "remember parrots",
            "persona=pirate remembers=parrots",
        ]

        # The context is the thread, the task its run: the LangGraph API shows both.
        run = await get_client(url=second.url).runs.get(task.context_id, task.id)
        assert run["status"] == "success"
        assert run["assistant_id"] == pirate["assistant_id"]

        # Read from the other replica; history_length keeps the last messages only.
        _, elsewhere = await _client(http, second.url, pirate["assistant_id"], streaming=False)
        got = await elsewhere.get_task(pb.GetTaskRequest(id=task.id, history_length=1))
        assert got.status.state == pb.TASK_STATE_COMPLETED
        assert [m.parts[0].text for m in got.history] == ["persona=pirate remembers=parrots"]

        # The same context goes on: its thread keeps the earlier messages.
        _, streaming = await _client(http, second.url, pirate["assistant_id"], streaming=True)
        streamed = [r async for r in streaming.send_message(_say("hello", task.context_id))]
    kinds = [r.WhichOneof("payload") for r in streamed]
    assert kinds[0] == "task"
    assert kinds[-1] == "status_update"
    assert "artifact_update" in kinds
    final = streamed[-1].status_update
    assert final.status.state == pb.TASK_STATE_COMPLETED
    assert final.status.message.parts[0].text == "persona=pirate remembers=parrots"
    chunks = "".join(
        r.artifact_update.artifact.parts[0].text for r in streamed if r.HasField("artifact_update")
    )
    assert chunks == "persona=pirate remembers=parrots"
    assert streamed[0].task.context_id == task.context_id
    history = await get_client(url=first.url).threads.get_state(task.context_id)
    assert len(history["values"]["messages"]) == 4
    assert _runs_counted(first.url) + _runs_counted(second.url) >= before + 2


async def test_a_task_in_flight_is_read_and_cancelled(redis_url, start_service):
    service = start_service(redis_url, **SLOW)
    async with httpx.AsyncClient(timeout=60) as http:
        _, client = await _client(http, service.url, "agent", streaming=False, polling=True)
        (accepted,) = [r.task async for r in client.send_message(_say("take your time"))]
        assert accepted.status.state == pb.TASK_STATE_SUBMITTED
        while (
            await client.get_task(pb.GetTaskRequest(id=accepted.id))
        ).status.state != pb.TASK_STATE_WORKING:
            pass  # the queue hands it to a worker at once; each read is one round trip
        cancelled = await client.cancel_task(pb.CancelTaskRequest(id=accepted.id))
        assert cancelled.status.state == pb.TASK_STATE_CANCELED
        assert (
            await client.get_task(pb.GetTaskRequest(id=accepted.id))
        ).status.state == pb.TASK_STATE_CANCELED
        with pytest.raises(TaskNotCancelableError):
            await client.cancel_task(pb.CancelTaskRequest(id=accepted.id))
        with pytest.raises(TaskNotFoundError):
            await client.get_task(pb.GetTaskRequest(id="no-such-task"))


async def test_a_stream_is_picked_up_again_on_another_replica(redis_url, start_service):
    env = {**SLOW, "SLOW_NODE_SECONDS": "3"}
    first, second = start_service(redis_url, **env), start_service(redis_url, **env)
    async with httpx.AsyncClient(timeout=60) as http:
        _, sender = await _client(http, first.url, "agent", streaming=False, polling=True)
        (accepted,) = [r.task async for r in sender.send_message(_say("take your time"))]
        _, follower = await _client(http, second.url, "agent", streaming=True)
        followed = [r async for r in follower.subscribe(pb.SubscribeToTaskRequest(id=accepted.id))]
        kinds = [r.WhichOneof("payload") for r in followed]
        assert kinds[0] == "task"
        assert followed[0].task.id == accepted.id
        assert kinds[-1] == "status_update"
        assert followed[-1].status_update.status.state == pb.TASK_STATE_COMPLETED
        (artifact,) = [r.artifact_update.artifact for r in followed if r.HasField("artifact_update")]
        assert artifact.parts[0].text == "done"
        # Ended: nothing more to stream, as a2a-sdk's own server says; tasks/get reads it.
        with pytest.raises(UnsupportedOperationError, match="completed"):
            [r async for r in follower.subscribe(pb.SubscribeToTaskRequest(id=accepted.id))]


async def test_an_input_required_task_is_answered_with_a_message_to_it(redis_url, start_service):
    first, second = (start_service(redis_url, AGENT_GRAPH="ask_graph:graph") for _ in range(2))
    async with httpx.AsyncClient(timeout=60) as http:
        _, client = await _client(http, first.url, "agent", streaming=False)
        (asked,) = [r.task async for r in client.send_message(_say("hi"))]
        assert asked.status.state == pb.TASK_STATE_INPUT_REQUIRED
        assert "What is your name?" in asked.status.message.parts[0].text

        # The answer goes to the task (on the other replica): the same task resumes and completes.
        _, elsewhere = await _client(http, second.url, "agent", streaming=False)
        answer = _say("Ada")
        answer.message.task_id = asked.id
        (done,) = [r.task async for r in elsewhere.send_message(answer)]
        assert (done.id, done.context_id) == (asked.id, asked.context_id)
        assert done.status.state == pb.TASK_STATE_COMPLETED
        assert done.status.message.parts[0].text == "hello Ada"
        got = await client.get_task(pb.GetTaskRequest(id=asked.id))
        assert got.status.state == pb.TASK_STATE_COMPLETED
        assert [m.parts[0].text for m in got.history] == ["hi", "hello Ada"]
        # Both runs are on the context's thread, the second one a resume of the first.
        runs = await get_client(url=first.url).runs.list(asked.context_id)
        assert len(runs) == 2

        with pytest.raises(UnsupportedOperationError, match="only an input-required task"):
            [r async for r in client.send_message(answer)]


async def test_a2a_is_behind_the_api_auth_and_tenants(redis_url, start_service):
    service = start_service(redis_url, **GRAPH, **AUTH)
    acme = await get_client(url=service.url, headers=bearer("acme")).assistants.create("agent", name="acme")
    async with httpx.AsyncClient(base_url=service.url) as anonymous:
        said = {"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "x"}}
        assert (await anonymous.post("/a2a/agent", json=said)).status_code == 401
        assert (await anonymous.get(_card_path("agent"))).status_code == 401
    async with httpx.AsyncClient(timeout=60, headers=bearer("acme")) as http:
        card, client = await _client(http, service.url, acme["assistant_id"], streaming=False)
        assert "bearer" in card.security_schemes
        (task,) = [r.task async for r in client.send_message(_say("hi"))]
        assert task.status.state == pb.TASK_STATE_COMPLETED
    async with httpx.AsyncClient(timeout=60, headers=bearer("globex")) as http:
        assert (await http.get(f"{service.url}{_card_path(acme['assistant_id'])}")).status_code == 404
        _, client = await _client(http, service.url, "agent", streaming=False)
        with pytest.raises(TaskNotFoundError):  # another tenant's task does not exist
            await client.get_task(pb.GetTaskRequest(id=task.id))
        with pytest.raises(InvalidParamsError):  # nor does its context
            [r async for r in client.send_message(_say("hi", task.context_id))]


BAD_INPUT = [
    (b"{not json", -32700, ""),
    (b"[]", -32600, "batches"),
    (b'{"jsonrpc": "1.0", "id": 1, "method": "tasks/get"}', -32600, "jsonrpc"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/list"}', -32601, "tasks/list"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {}}', -32602, "params.id"),
    (
        b'{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": '
        b'{"messageId": "m", "role": "user", "parts": [{"kind": "video"}]}}}',
        -32602,
        "params.message.parts.0",
    ),
    (
        b'{"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": '
        b'{"messageId": "m", "role": "user", "parts": [{"kind": "file", "file": {"uri": "x"}}]}}}',
        -32005,
        "file parts",
    ),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": "nope"}}', -32001, "nope"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/cancel", "params": {"id": "nope"}}', -32001, "nope"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/resubscribe", "params": {"id": "nope"}}', -32001, "nope"),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "agent/getAuthenticatedExtendedCard"}', -32004, ""),
    (b'{"jsonrpc": "2.0", "id": 1, "method": "tasks/pushNotificationConfig/set", "params": {}}', -32003, ""),
]


def test_bad_input_is_a_jsonrpc_error(redis_url, start_service):
    service = start_service(redis_url, **GRAPH)
    for body, code, names in BAD_INPUT:
        answer = httpx.post(
            f"{service.url}/a2a/agent", content=body, headers={"Content-Type": "application/json"}, timeout=30
        )
        assert answer.status_code == 200, body
        error = answer.json()["error"]
        assert error["code"] == code, (body, error)
        assert names in error["message"] + str(error.get("data", "")), (body, error)


def test_an_unknown_assistant_is_a_jsonrpc_error_and_its_card_a_404(redis_url, start_service):
    service = start_service(redis_url, **GRAPH)
    said = {"jsonrpc": "2.0", "id": "a", "method": "tasks/get", "params": {"id": "x"}}
    answer = httpx.post(f"{service.url}/a2a/nobody", json=said, timeout=30).json()
    assert answer["id"] == "a"
    assert answer["error"]["code"] == -32602
    assert answer["error"]["data"] == {"assistant_id": "nobody"}
    assert service.get(_card_path("nobody")).status_code == 404
    missing = service.get("/.well-known/agent-card.json")
    assert missing.status_code == 422
    assert "assistant_id" in missing.text
