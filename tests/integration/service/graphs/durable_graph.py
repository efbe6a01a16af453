"""Three nodes, the middle one slow: a run is mid-flight when its replica dies or drains.

Each node counts its executions per thread in Redis (``<REDIS_KEY_PREFIX>:test-nodes:<thread>``), so
a test can prove that a resumed run does not run its finished nodes again.
"""

import asyncio
import os

import redis.asyncio as aredis
from langchain_core.runnables import RunnableConfig
from langgraph.graph import START, MessagesState, StateGraph
from redis.asyncio.cluster import RedisCluster

_client = None


async def _count(node: str, config: RunnableConfig) -> None:
    global _client
    if _client is None:
        kind = RedisCluster if os.environ.get("REDIS_CLUSTER") == "true" else aredis.Redis
        _client = kind.from_url(os.environ["REDIS_URL"])
    key = f"{os.environ['REDIS_KEY_PREFIX']}:test-nodes:{config['configurable']['thread_id']}"
    await _client.hincrby(key, node, 1)


async def first(state: MessagesState, config: RunnableConfig) -> dict:
    await _count("first", config)
    return {"messages": [("ai", "working on it")]}


async def slow(state: MessagesState, config: RunnableConfig) -> dict:
    await _count("slow", config)
    await asyncio.sleep(float(os.environ.get("SLOW_NODE_SECONDS", "5")))
    return {}


async def answer(state: MessagesState, config: RunnableConfig) -> dict:
    await _count("answer", config)
    return {"messages": [("ai", "done")]}


builder = StateGraph(MessagesState)
builder.add_node("first", first)
builder.add_node("slow", slow)
builder.add_node("answer", answer)
builder.add_edge(START, "first")
builder.add_edge("first", "slow")
builder.add_edge("slow", "answer")
graph = builder.compile()
