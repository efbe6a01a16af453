"""The offline stub model: deterministic tool calls, answers and token streaming."""

from __future__ import annotations

from agent_service.llm.stub import StubChatModel
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool


@tool
def search_notes(query: str) -> str:
    """Search the notes."""
    return query


@tool
def calculator(expression: str) -> str:
    """Evaluate arithmetic."""
    return expression


MODEL = StubChatModel().bind_tools([calculator, search_notes])


async def test_a_question_calls_the_search_tool_with_it() -> None:
    reply = await MODEL.ainvoke([HumanMessage("What is an error budget?")])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("search_notes", {"query": "What is an error budget?"})
    ]


async def test_arithmetic_goes_to_the_calculator() -> None:
    reply = await MODEL.ainvoke([HumanMessage("please compute (2 + 3) * 4")])
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [
        ("calculator", {"expression": "(2 + 3) * 4"})
    ]


async def test_a_tool_result_is_answered_and_the_reply_is_deterministic() -> None:
    history = [
        HumanMessage("What is redis?"),
        AIMessage("", tool_calls=[{"name": "search_notes", "args": {"query": "redis"}, "id": "t1"}]),
        ToolMessage("Redis is a data store.", tool_call_id="t1"),
    ]
    first, second = await MODEL.ainvoke(history), await MODEL.ainvoke(history)
    assert first.tool_calls == []
    assert "Redis is a data store." in first.content
    assert (first.content, first.id) == (second.content, second.id)


async def test_small_talk_without_tools_is_answered_directly() -> None:
    reply = await StubChatModel().ainvoke([HumanMessage("hello")])
    assert reply.tool_calls == []
    assert "hello" in reply.content


async def test_streams_word_by_word_with_usage_on_the_last_chunk() -> None:
    chunks = [c async for c in StubChatModel().astream([HumanMessage("tell me a story")])]
    assert len(chunks) > 3
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == (await StubChatModel().ainvoke([HumanMessage("tell me a story")])).content
    assert merged.usage_metadata["output_tokens"] > 0
