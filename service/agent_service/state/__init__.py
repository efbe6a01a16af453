"""Redis-backed state: the public checkpointer and the service's own thread and run records.

`RedisSaver` works in any LangGraph app, on any Redis 6.2+ (no modules):

    from agent_service.state import RedisSaver

    saver = RedisSaver.from_url("redis://localhost:6379/0")
    graph = builder.compile(checkpointer=saver)
    graph.invoke(inputs, {"configurable": {"thread_id": "t-1"}})          # sync methods
    await graph.ainvoke(inputs, {"configurable": {"thread_id": "t-1"}})   # async methods

It implements the base and extended capabilities of langgraph-checkpoint-conformance
(delete_for_runs, copy_thread, prune); see tests/integration/service/test_redis_saver.py.
"""

from agent_service.state.saver import RedisSaver

__all__ = ["RedisSaver"]
