"""Redis clients shared by the saver and the service: fail fast, reconnect by itself, one Redis or a Cluster.

With ``cluster=True`` the URL names any node of a Redis Cluster; redis-py discovers the others.
Everything Shepherd stores is hash-tagged (``agent_service.state.keys``), so the multi-key commands,
transactions and scripts it sends touch one slot each; ``slot_groups`` splits a batch that spans
several (a checkpoint and the global index of threads) into one transaction per slot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import redis
import redis.asyncio as aredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

from agent_service.state.keys import hash_tag

RETRIES = 3

#: Either kind of async client; both speak the same command API.
AsyncClient = aredis.Redis | AsyncRedisCluster


def _options(timeout_seconds: float, retry: Retry | AsyncRetry) -> dict[str, Any]:
    return {
        # Short timeouts: an unreachable Redis becomes a 503 quickly instead of a hung request.
        "socket_connect_timeout": timeout_seconds,
        "socket_timeout": timeout_seconds,
        # Pooled connections go stale when Redis restarts; retrying on a fresh one hides that
        # (transactions included, which redis-py does not retry by default).
        "retry": retry,
        "retry_on_error": [ConnectionError, TimeoutError],
        "health_check_interval": 10,
    }


def _backoff() -> ExponentialWithJitterBackoff:
    return ExponentialWithJitterBackoff(base=0.05, cap=1.0)


#: Connections one async client opens at most (per node on a Cluster); past that, callers wait up
#: to ``POOL_WAIT_SECONDS`` for a free one. (redis-py's default pool refuses at once with "Too many
#: connections" when a burst of runs needs more than 100.)
MAX_CONNECTIONS = 64
POOL_WAIT_SECONDS = 10.0


def async_client(
    url: str,
    timeout_seconds: float = 2.0,
    max_connections: int = MAX_CONNECTIONS,
    *,
    cluster: bool = False,
    **overrides: Any,
) -> AsyncClient:
    options = {**_options(timeout_seconds, AsyncRetry(_backoff(), RETRIES)), **overrides}
    if cluster:
        options.pop("health_check_interval")  # not a cluster option; nodes are checked on error
        return AsyncRedisCluster.from_url(url, max_connections=max_connections, **options)
    retry = options.pop("retry")
    pool = aredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, **options
    )
    return aredis.Redis(connection_pool=pool, retry=retry)


def sync_client(
    url: str, timeout_seconds: float = 2.0, *, cluster: bool = False, **overrides: Any
) -> redis.Redis | RedisCluster:
    options = {**_options(timeout_seconds, Retry(_backoff(), RETRIES)), **overrides}
    if cluster:
        options.pop("health_check_interval")
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)


def is_cluster(client: object) -> bool:
    return isinstance(client, RedisCluster | AsyncRedisCluster)


class _Commands(Protocol):
    commands: list[tuple[Any, ...]]


def slot_groups(client: object, batch: _Commands) -> Iterable[list[int]]:
    """Indexes of ``batch.commands`` to send together: all of them on one Redis; one group per hash
    tag on a Cluster, in order of first appearance."""
    if not is_cluster(client):
        return [list(range(len(batch.commands)))]
    groups: dict[str, list[int]] = {}
    for index, command in enumerate(batch.commands):
        key = command[1]
        groups.setdefault(hash_tag(key.decode() if isinstance(key, bytes) else key), []).append(index)
    return list(groups.values())
