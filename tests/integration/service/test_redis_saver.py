"""RedisSaver against a real Redis: the official conformance suite, the sync API, and scale."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from agent_service.state import RedisSaver
from agent_service.state.operations import Batch
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.graph import START, MessagesState, StateGraph


async def test_official_conformance_suite_passes_every_capability(redis_url):
    prefix = f"conformance-{uuid.uuid4().hex[:8]}"

    @checkpointer_test(name="RedisSaver")
    async def fresh_saver():
        saver = RedisSaver.from_url(redis_url, prefix=prefix)
        yield saver
        await saver.aclose()

    report = await validate(fresh_saver)

    failures = {cap: result.failures for cap, result in report.results.items() if not result.passed}
    assert failures == {}
    assert set(report.results) == {cap.value for cap in ALL_CAPABILITIES}
    assert report.passed_all()


def _echo_graph(saver: RedisSaver):
    builder = StateGraph(MessagesState)
    builder.add_node("echo", lambda state: {"messages": [("ai", f"echo: {state['messages'][-1].content}")]})
    builder.add_edge(START, "echo")
    return builder.compile(checkpointer=saver)


def test_sync_api_runs_a_graph_and_survives_a_new_client(redis_url):
    prefix = f"sync-{uuid.uuid4().hex[:8]}"
    config = {"configurable": {"thread_id": "t-1"}}
    first = RedisSaver.from_url(redis_url, prefix=prefix)
    _echo_graph(first).invoke({"messages": [("user", "hi")]}, config)
    _echo_graph(first).invoke({"messages": [("user", "again")]}, config)
    first.close()

    # A new saver (another replica, or after a restart) sees the same thread.
    second = RedisSaver.from_url(redis_url, prefix=prefix)
    state = _echo_graph(second).get_state(config)
    assert [m.content for m in state.values["messages"]] == ["hi", "echo: hi", "again", "echo: again"]
    history = list(second.list(config))
    assert len(history) == len(list(_echo_graph(second).get_state_history(config)))
    second.copy_thread("t-1", "t-2")
    second.prune(["t-1"], strategy="keep_latest")
    assert len(list(second.list(config))) == 1
    assert len(list(second.list({"configurable": {"thread_id": "t-2"}}))) == len(history)
    second.delete_thread("t-2")
    assert second.get_tuple({"configurable": {"thread_id": "t-2"}}) is None
    second.close()


class CommandRecorder(RedisSaver):
    """Records the Redis commands each call sends, to check what a query costs."""

    sent: list[tuple[Any, ...]]

    async def _aexecute(self, batch: Batch) -> list[Any]:
        self.sent.extend(batch.commands)
        return await super()._aexecute(batch)


async def _history_commands(saver: CommandRecorder, thread_id: str) -> list[str]:
    saver.sent = []
    found = [t async for t in saver.alist(generate_config(thread_id), limit=10)]
    latest = await saver.aget_tuple(generate_config(thread_id))
    assert len(found) == 10
    assert latest.checkpoint["id"] == found[0].checkpoint["id"]
    return [command[0] for command in saver.sent]


@pytest.mark.timeout(300)
async def test_history_and_latest_cost_the_same_with_10000_threads_stored(redis_url):
    saver = CommandRecorder.from_url(redis_url, prefix=f"scale-{uuid.uuid4().hex[:8]}")
    saver.sent = []
    for _ in range(12):
        await saver.aput(generate_config("probe"), generate_checkpoint(), generate_metadata(), {})
    with_one_thread = await _history_commands(saver, "probe")

    for _ in range(10_000):
        await saver.aput(generate_config(str(uuid.uuid4())), generate_checkpoint(), generate_metadata(), {})
    with_many_threads = await _history_commands(saver, "probe")

    assert with_many_threads == with_one_thread
    assert not {"KEYS", "SCAN"} & set(with_many_threads)
    await saver.async_client.aclose()
