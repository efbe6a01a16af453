"""A graph whose search tool depends on a backend that never answers: the stub model asks it, the
armoured tool times out, is retried, its circuit opens (tool:slow_search) and later calls fail fast.
The ToolNode hands every tool failure to the model, so the run itself ends normally."""

from __future__ import annotations

import asyncio

from agent_service.llm import build_chat_model
from agent_service.settings import Settings
from agent_service.tools import armoured
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition


@tool
@armoured(
    timeout_seconds=0.2, retries=1, backoff_base_seconds=0.05, failure_threshold=2, recovery_seconds=600
)
async def slow_search(query: str) -> str:
    """Search the slow backend for a topic."""
    await asyncio.sleep(30)  # the backend hangs
    return "never"


def build_graph(settings: Settings) -> StateGraph:
    model = build_chat_model(settings).bind_tools([slow_search])

    async def call_model(state: MessagesState) -> dict:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode([slow_search], handle_tool_errors=True))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "model")
    return builder
