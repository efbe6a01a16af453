"""A one-node graph that takes SLOW_NODE_SECONDS, so a run is still in flight when SIGTERM arrives."""

import asyncio
import os

from langgraph.graph import START, MessagesState, StateGraph


async def work(state: MessagesState) -> dict:
    await asyncio.sleep(float(os.environ.get("SLOW_NODE_SECONDS", "5")))
    return {"messages": [("ai", "done")]}


builder = StateGraph(MessagesState)
builder.add_node("work", work)
builder.add_edge(START, "work")
graph = builder.compile()
