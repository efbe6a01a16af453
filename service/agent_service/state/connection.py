"""Redis client options shared by the saver and the service: fail fast, reconnect by itself."""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError
from redis.retry import Retry

RETRIES = 3


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


#: Connections one async client opens at most; past that, callers wait up to ``POOL_WAIT_SECONDS``
#: for a free one. (redis-py's default pool refuses at once with "Too many connections" when a
#: burst of runs needs more than 100.)
MAX_CONNECTIONS = 64
POOL_WAIT_SECONDS = 10.0


def async_client(
    url: str, timeout_seconds: float = 2.0, max_connections: int = MAX_CONNECTIONS, **overrides: Any
) -> aredis.Redis:
    options = {**_options(timeout_seconds, AsyncRetry(_backoff(), RETRIES)), **overrides}
    retry = options.pop("retry")
    pool = aredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_SECONDS, **options
    )
    return aredis.Redis(connection_pool=pool, retry=retry)


def sync_client(url: str, timeout_seconds: float = 2.0, **overrides: Any) -> redis.Redis:
    return redis.Redis.from_url(url, **{**_options(timeout_seconds, Retry(_backoff(), RETRIES)), **overrides})
