"""A run's event log: late subscribers get everything, quiet streams get heartbeats."""

from __future__ import annotations

import asyncio

from agent_service.execution import LocalRun


async def test_a_late_subscriber_gets_every_event_then_the_end():
    run = LocalRun(run={"run_id": "r"})
    run.publish("metadata", {"run_id": "r"})
    run.publish("values", {"n": 1})
    run.finish()

    assert [item async for item in run.follow()] == [("metadata", {"run_id": "r"}), ("values", {"n": 1})]


async def test_subscribers_follow_a_live_run_and_see_heartbeats_while_it_is_quiet():
    run = LocalRun(run={"run_id": "r"})
    stream = run.follow(idle_seconds=0.01)
    run.publish("metadata", {})

    assert await anext(stream) == ("metadata", {})
    assert await anext(stream) is None  # nothing happened for idle_seconds

    run.publish("values", {"n": 2})
    run.finish()
    assert [item async for item in stream if item is not None] == [("values", {"n": 2})]


async def test_two_subscribers_each_get_the_whole_log():
    run = LocalRun(run={"run_id": "r"})

    async def collect() -> list:
        return [item async for item in run.follow()]

    first, second = asyncio.create_task(collect()), asyncio.create_task(collect())
    for n in range(3):
        run.publish("values", {"n": n})
    run.finish()

    assert await first == await second == [("values", {"n": n}) for n in range(3)]
