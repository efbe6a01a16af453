"""The reference agent's tools are deterministic and never run model output as code."""

from __future__ import annotations

import pytest
from agent_service.graphs import reference_agent
from agent_service.settings import Settings
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver


@pytest.mark.parametrize(
    ("expression", "result"),
    [("(2 + 3) * 4", "20"), ("7 / 2", "3.5"), ("-2 ** 3", "-8"), ("10 % 4", "2")],
)
async def test_calculator_evaluates_arithmetic(expression, result):
    assert await reference_agent.calculator.ainvoke({"expression": expression}) == result


@pytest.mark.parametrize(
    "expression",
    ["__import__('os').system('true')", "open('/etc/passwd')", "2 ** 10000", "1 / 0", "(1"],
)
async def test_calculator_refuses_anything_but_arithmetic(expression):
    assert (await reference_agent.calculator.ainvoke({"expression": expression})).startswith("error:")


async def test_search_notes_finds_topics_and_says_when_it_cannot():
    assert "in-memory data store" in await reference_agent.search_notes.ainvoke({"query": "Redis"})
    assert (
        await reference_agent.search_notes.ainvoke({"query": "quantum gravity"})
        == "no notes about 'quantum gravity'"
    )


class ToolCallingFake(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


async def test_the_graph_calls_a_tool_then_answers(monkeypatch):
    replies = iter(
        [
            AIMessage("", tool_calls=[{"name": "calculator", "args": {"expression": "6*7"}, "id": "call-1"}]),
            AIMessage("The answer is 42."),
        ]
    )
    monkeypatch.setattr(
        reference_agent, "build_chat_model", lambda settings: ToolCallingFake(messages=replies)
    )
    graph = reference_agent.build_graph(Settings()).compile(checkpointer=InMemorySaver())

    result = await graph.ainvoke({"messages": [("user", "6 times 7?")]}, {"configurable": {"thread_id": "t"}})

    assert [m.type for m in result["messages"]] == ["human", "ai", "tool", "ai"]
    assert result["messages"][2].content == "42"
