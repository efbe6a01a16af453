"""Opt-in exact-match response cache in Redis (spec.model.cache) for deterministic calls.

A call is cached only when it asks for temperature 0: the same chain, messages, system prompt, tools
and parameters then get the stored answer until the TTL ends, without reaching any provider. Keys
carry a hash of the tenant, so one tenant never reads another's answers, and live under the
service's REDIS_KEY_PREFIX (`<prefix>:llmcache:<tenant hash>:<request hash>`). A Redis failure
skips the cache (counted as `error`) rather than failing the call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from anthropic.types import Message
from redis.asyncio import Redis
from redis.exceptions import RedisError

from agent_service.observability.metrics import LLM_CACHE

log = logging.getLogger(__name__)
#: Request fields that never change the answer.
_NOT_IN_KEY = frozenset({"stream", "metadata"})


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class ResponseCache:
    def __init__(
        self, redis: Redis | None, key_prefix: str, ttl_seconds: int, chain: tuple[str, ...]
    ) -> None:
        self._redis = redis if ttl_seconds > 0 else None
        self._prefix = f"{key_prefix}:llmcache"
        self._ttl = ttl_seconds
        self._chain = chain

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    def key(self, tenant: str, params: dict[str, Any]) -> str | None:
        """The cache key of a deterministic call, None for any other."""
        if self._redis is None or params.get("temperature") != 0:
            return None
        request = {k: v for k, v in params.items() if k not in _NOT_IN_KEY}
        canonical = json.dumps({"chain": self._chain, "request": request}, sort_keys=True, default=str)
        return f"{self._prefix}:{_digest(tenant)[:16]}:{_digest(canonical)}"

    async def get(self, key: str | None) -> Message | None:
        if key is None or self._redis is None:
            return None
        try:
            stored = await self._redis.get(key)
        except RedisError:
            return self._failed("read")
        LLM_CACHE.labels("hit" if stored else "miss").inc()
        return Message.model_validate_json(stored) if stored else None

    async def put(self, key: str | None, message: Message | None) -> None:
        if key is None or self._redis is None or message is None:
            return
        try:
            await self._redis.set(key, message.model_dump_json(exclude_none=True), ex=self._ttl)
        except RedisError:
            self._failed("write")

    def _failed(self, step: str) -> None:
        LLM_CACHE.labels("error").inc()
        log.warning("response cache %s skipped: Redis unavailable", step, exc_info=True)
