"""A burst of Redis calls larger than the connection pool waits for connections instead of failing
(redis-py's default pool answered "Too many connections" past 100, failing runs under load)."""

from __future__ import annotations

import asyncio

from agent_service.state import connection


async def test_a_burst_past_the_pool_size_waits_for_free_connections(redis_url: str) -> None:
    client = connection.async_client(redis_url, max_connections=4)
    try:

        async def call(index: int) -> int:
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(f"pool-burst:{index}", index).get(f"pool-burst:{index}").delete(
                    f"pool-burst:{index}"
                )
                return int((await pipe.execute())[1])

        assert await asyncio.gather(*(call(i) for i in range(200))) == list(range(200))
        pool = client.connection_pool
        assert len(pool._available_connections) + len(pool._in_use_connections) <= 4
    finally:
        await client.aclose()
