"""A graph that answers with its run context: which assistant's configuration reached the graph."""

from __future__ import annotations

from typing import TypedDict

from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime


class Context(TypedDict, total=False):
    persona: str


async def answer(state: MessagesState, runtime: Runtime[Context]) -> dict:
    persona = (runtime.context or {}).get("persona", "nobody")
    return {"messages": [("ai", f"persona={persona}")]}


builder = StateGraph(MessagesState, context_schema=Context)
builder.add_node("answer", answer)
builder.add_edge(START, "answer")
graph = builder.compile()
