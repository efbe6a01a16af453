"""How a run's context, configurable and durability are built, as LangGraph Server builds them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from agent_service.api.schemas import RunCreate
from agent_service.runs import graph_run
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from pydantic import ValidationError

RUN = {"thread_id": "t-1", "run_id": "00000000-0000-0000-0000-000000000001", "assistant_id": "a-1"}


@dataclass
class Context:
    model: str = "anthropic/default"
    user_id: str = "nobody"


def _graph(seen: list[Context]) -> object:
    def node(state: MessagesState, runtime: Runtime[Context]) -> dict:
        seen.append(runtime.context)
        return {}

    builder = StateGraph(MessagesState, context_schema=Context)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    return builder.compile()


def _body(**fields: object) -> RunCreate:
    return RunCreate(assistant_id="agent", **fields)


def test_context_is_assistant_then_run_and_undeclared_keys_are_dropped() -> None:
    graph = _graph([])
    assistant = {"context": {"model": "anthropic/assistant", "user_id": "alice"}}
    body = _body(context={"user_id": "bob", "not_in_schema": 1})
    assert graph_run.run_context(graph, body, assistant) == {"model": "anthropic/assistant", "user_id": "bob"}


def test_configurable_given_instead_of_context_stands_in_for_it() -> None:
    graph = _graph([])
    body = _body(config={"configurable": {"user_id": "carol"}})
    assert graph_run.run_context(graph, body, {}) == {"user_id": "carol"}
    config = graph_run.run_config(RUN, body, {"config": {"configurable": {"model": "m"}}}, "agent")
    assert config["configurable"]["model"] == "m"  # the assistant's, under the run's
    assert config["configurable"]["user_id"] == "carol"
    assert config["configurable"]["thread_id"] == "t-1"


def test_context_given_is_mirrored_into_configurable() -> None:
    config = graph_run.run_config(RUN, _body(context={"user_id": "dan"}), {}, "agent")
    assert config["configurable"]["user_id"] == "dan"


def test_context_and_configurable_together_are_refused_naming_both() -> None:
    with pytest.raises(ValidationError, match=r"context or config\.configurable"):
        _body(context={"user_id": "x"}, config={"configurable": {"user_id": "y"}})


async def test_a_run_without_context_gets_the_schema_defaults() -> None:
    seen: list[Context] = []
    graph = _graph(seen)
    context = graph_run.run_context(graph, _body(), {})
    await graph.ainvoke({"messages": []}, context=context)
    await graph.ainvoke(
        {"messages": []}, context=graph_run.run_context(graph, _body(context={"user_id": "e"}), {})
    )
    assert seen == [Context(), Context(user_id="e")]


def test_a_graph_without_context_schema_keeps_every_key() -> None:
    builder = StateGraph(MessagesState)
    builder.add_node("node", lambda state: {})
    builder.add_edge(START, "node")
    assert graph_run.run_context(builder.compile(), _body(context={"anything": 1}), {}) == {"anything": 1}


@pytest.mark.parametrize(
    ("fields", "mode"),
    [
        ({}, None),
        ({"durability": "sync"}, "sync"),
        ({"checkpoint_during": False}, "exit"),
        ({"checkpoint_during": True}, "async"),
        ({"durability": "exit", "checkpoint_during": True}, "exit"),  # durability wins
    ],
)
def test_durability_and_the_deprecated_checkpoint_during(fields: dict, mode: str | None) -> None:
    assert graph_run.durability(_body(**fields)) == mode
