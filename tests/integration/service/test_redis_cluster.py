"""Everything Shepherd stores works on a real three-master Redis Cluster: the checkpointer passes the
official conformance suite there, and the service runs, streams and resumes runs on it."""

from __future__ import annotations

import uuid

from agent_service.state import RedisSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph_sdk import get_client
from redis.cluster import RedisCluster

QUESTION = {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}


async def test_conformance_suite_passes_on_a_redis_cluster(redis_cluster_url):
    prefix = f"cluster-{uuid.uuid4().hex[:8]}"

    @checkpointer_test(name="RedisSaver on Redis Cluster")
    async def fresh_saver():
        saver = RedisSaver.from_url(redis_cluster_url, prefix=prefix, cluster=True)
        yield saver
        await saver.aclose()

    report = await validate(fresh_saver)

    failures = {cap: result.failures for cap, result in report.results.items() if not result.passed}
    assert failures == {}
    assert set(report.results) == {cap.value for cap in ALL_CAPABILITIES}
    # The threads really spread over the shards (a hash tag per thread, not one for everything).
    cluster = RedisCluster.from_url(redis_cluster_url)
    try:
        holders = {
            cluster.keyslot(key) * 3 // 16384
            for key in cluster.scan_iter(match=f"{prefix}:{{t:*", count=1000)
        }
    finally:
        cluster.close()
    assert holders == {0, 1, 2}


async def test_two_replicas_serve_threads_and_stateless_runs_on_a_cluster(redis_cluster_url, start_service):
    cluster = {"REDIS_CLUSTER": "true"}
    first, second = start_service(redis_cluster_url, **cluster), start_service(redis_cluster_url, **cluster)
    client_a, client_b = get_client(url=first.url), get_client(url=second.url)

    threads = [await client_a.threads.create(metadata={"n": n}) for n in range(6)]
    for thread in threads:
        streamed = [p async for p in client_a.runs.stream(thread["thread_id"], "agent", input=QUESTION)]
        assert streamed[0].event == "metadata"
    for thread in threads:  # the other replica continues every thread from the cluster
        answer = await client_b.runs.wait(thread["thread_id"], "agent", input=QUESTION)
        assert "42" in answer["messages"][-1]["content"]
    found = await client_b.threads.search(metadata={"n": 3})
    assert [t["thread_id"] for t in found] == [threads[3]["thread_id"]]

    background = await client_a.runs.create(threads[0]["thread_id"], "agent", input=QUESTION)
    joined = [
        p.event
        async for p in client_b.runs.join_stream(
            threads[0]["thread_id"], background["run_id"], last_event_id="0"
        )
    ]
    assert joined[0] == "metadata"
    assert "42" in (await client_b.runs.wait(None, "agent", input=QUESTION))["messages"][-1]["content"]
