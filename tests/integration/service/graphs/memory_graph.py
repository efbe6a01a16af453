"""A graph with long-term memory: "remember X" keeps X in the store (a sync node given
``store: BaseStore``); every answer names the run context's persona and what the store remembers
(an async node reading ``runtime.store``)."""

from __future__ import annotations

import hashlib

from langgraph.graph import START, MessagesState, StateGraph
from langgraph.runtime import Runtime
from langgraph.store.base import BaseStore
from typing_extensions import TypedDict  # pydantic (the schema routes) needs it on Python 3.11

NAMESPACE = ("memories",)


class Context(TypedDict, total=False):
    persona: str


def _said(state: MessagesState) -> str:
    return state["messages"][-1].content


def remember(state: MessagesState, *, store: BaseStore) -> dict:
    said = _said(state)
    if said.startswith("remember "):
        fact = said.removeprefix("remember ")
        store.put(NAMESPACE, hashlib.sha256(fact.encode()).hexdigest()[:16], {"fact": fact})
    return {}


async def answer(state: MessagesState, runtime: Runtime[Context]) -> dict:
    persona = (runtime.context or {}).get("persona", "nobody")
    facts = sorted(item.value["fact"] for item in await runtime.store.asearch(NAMESPACE, limit=100))
    remembered = f" remembers={','.join(facts)}" if facts else ""
    return {"messages": [("ai", f"persona={persona}{remembered}")]}


builder = StateGraph(MessagesState, context_schema=Context)
builder.add_node("remember", remember)
builder.add_node("answer", answer)
builder.add_edge(START, "remember")
builder.add_edge("remember", "answer")
graph = builder.compile()
