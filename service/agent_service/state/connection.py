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


def async_client(url: str, timeout_seconds: float = 2.0, **overrides: Any) -> aredis.Redis:
    return aredis.Redis.from_url(
        url, **{**_options(timeout_seconds, AsyncRetry(_backoff(), RETRIES)), **overrides}
    )


def sync_client(url: str, timeout_seconds: float = 2.0, **overrides: Any) -> redis.Redis:
    return redis.Redis.from_url(url, **{**_options(timeout_seconds, Retry(_backoff(), RETRIES)), **overrides})
