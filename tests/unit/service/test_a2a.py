"""The A2A adapter's pure parts: the envelope, parts to graph input, runs to tasks."""

from __future__ import annotations

import pytest
from agent_service.api import a2a

MESSAGES = {"properties": {"messages": {"type": "array"}}}


def _message(*parts: dict) -> a2a.Message:
    return a2a.Message.model_validate({"messageId": "m1", "role": "user", "parts": list(parts)})


def test_text_parts_are_messages_and_data_parts_the_other_keys():
    message = _message({"kind": "text", "text": "hi"}, {"kind": "data", "data": {"city": "Oslo"}})
    assert a2a.graph_input(message, MESSAGES) == {
        "city": "Oslo",
        "messages": [{"role": "user", "content": "hi"}],
    }
    assert a2a.graph_input(_message({"kind": "data", "data": {"n": 1}}), {"properties": {}}) == {"n": 1}


def test_text_needs_a_graph_with_messages_and_files_are_refused():
    with pytest.raises(a2a.RpcError) as no_messages:
        a2a.graph_input(_message({"kind": "text", "text": "hi"}), {"properties": {"n": {}}})
    assert no_messages.value.code == a2a.INVALID_PARAMS
    assert "params.message.parts" in no_messages.value.message
    with pytest.raises(a2a.RpcError) as file:
        a2a.graph_input(_message({"kind": "file", "file": {"uri": "s3://x"}}), MESSAGES)
    assert file.value.code == a2a.CONTENT_TYPE


@pytest.mark.parametrize(
    ("raw", "code"),
    [(b"{", a2a.PARSE_ERROR), (b"[1]", a2a.INVALID_REQUEST), (b'{"jsonrpc": "2.0"}', a2a.INVALID_REQUEST)],
)
def test_a_broken_envelope_is_refused_with_its_code(raw, code):
    with pytest.raises(a2a.RpcError) as refused:
        a2a._envelope(raw)
    assert refused.value.code == code
    assert refused.value.body(None)["error"]["code"] == code


def test_bad_params_name_the_field():
    with pytest.raises(a2a.RpcError) as refused:
        a2a._params(a2a.MessageSendParams, {"message": {"messageId": "m", "role": "robot", "parts": []}})
    fields = {f["field"] for f in refused.value.data}
    assert fields == {"params.message.role", "params.message.parts"}


RECORD = {"run_id": "r1", "thread_id": "t1", "assistant_id": "a1", "updated_at": "2026-12-02T00:00:00Z"}
VALUES = {
    "messages": [
        {"type": "human", "content": "hi"},
        {"type": "ai", "content": [{"type": "text", "text": "hello "}, {"type": "text", "text": "there"}]},
    ]
}


def test_a_finished_run_is_a_completed_task_with_the_reply():
    task = a2a.task({**RECORD, "status": "success"}, VALUES, None)
    assert task["id"] == "r1"
    assert task["contextId"] == "t1"
    assert task["status"]["state"] == "completed"
    assert task["status"]["message"]["parts"] == [{"kind": "text", "text": "hello there"}]
    assert task["artifacts"][0]["parts"] == [{"kind": "text", "text": "hello there"}]
    assert [(m["role"], m["parts"][0]["text"]) for m in task["history"]] == [
        ("user", "hi"),
        ("agent", "hello there"),
    ]
    assert len(a2a.task({**RECORD, "status": "success"}, VALUES, 1)["history"]) == 1


@pytest.mark.parametrize(
    ("status", "values", "state"),
    [
        ("pending", None, "submitted"),
        ("running", None, "working"),
        ("interrupted", VALUES, "canceled"),
        ("timeout", {"__error__": {"error": "TimeoutError", "message": "run took too long"}}, "failed"),
        ("success", {**VALUES, "__interrupt__": [{"value": "approve?"}]}, "input-required"),
    ],
)
def test_run_states_map_to_task_states(status, values, state):
    task = a2a.task({**RECORD, "status": status}, values, None)
    assert task["status"]["state"] == state
    assert ("artifacts" in task) is (state == "completed")


def test_a_failed_run_says_why():
    record = {**RECORD, "status": "error", "error": {"error": "ValueError", "message": "bad"}}
    assert a2a.task(record, None, 0)["status"]["message"]["parts"][0]["text"] == "ValueError: bad"
