"""The node-span callback stays cheap around sync tools: LangChain runs a sync tool in a worker thread,
and an async callback handler there costs a fresh event loop per event (it did, under load)."""

from __future__ import annotations

import asyncio

from agent_service.observability.tracing import GraphTracingCallback
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
def shout(text: str) -> str:
    """Upper-case the text (a sync tool: LangChain runs it in a worker thread)."""
    return text.upper()


class ToolCallingFake(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


async def test_a_sync_tool_run_starts_no_event_loop_for_the_callback(monkeypatch):
    started: list[object] = []

    class CountingRunner(asyncio.Runner):
        def __enter__(self):
            started.append(self)
            return super().__enter__()

    monkeypatch.setattr(asyncio, "Runner", CountingRunner)
    replies = iter(
        [AIMessage("", tool_calls=[{"name": "shout", "args": {"text": "hi"}, "id": "c1"}]), AIMessage("ok")]
    )
    model = ToolCallingFake(messages=replies)

    async def call_model(state: MessagesState) -> dict:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode([shout]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    callback = GraphTracingCallback()

    result = await builder.compile().ainvoke({"messages": [("user", "shout hi")]}, {"callbacks": [callback]})

    assert result["messages"][2].content == "HI"  # the sync tool ran
    assert started == []
    assert callback._spans == {}  # every node span that started also ended
