"""Rate limits per user and per tenant: a sliding window in Redis, shared by every replica.

Each scope's key is a sorted set of the admitted requests' timestamps over the last window. One Lua script
checks every scope and admits the request into all of them or none (a refused request consumes nothing),
using Redis' own clock so replicas with skewed clocks agree.

Responses carry `X-RateLimit-Limit`, `X-RateLimit-Remaining`, `X-RateLimit-Reset` (seconds until a slot
frees) for the tightest scope; a refusal is a 429 with `Retry-After`.

If Redis fails the request is let through (fail-open), counted in agent_fail_open_total{component="ratelimit"}
and logged: limits protect capacity and cost, but refusing all traffic because the limiter's store blinked
would turn a Redis hiccup into a full outage (requests that need state get their own 503 anyway, and the
LLM budget still bounds spend).
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from agent_service.observability.metrics import FAIL_OPEN, RATE_LIMITED
from agent_service.security.auth import Principal, authenticate
from agent_service.security.headers import add_response_headers
from agent_service.settings import Settings
from agent_service.state.keys import ServiceKeys

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60

# KEYS: one sorted set per scope. ARGV: window ms, member, then one limit per key.
# Returns per key: count (including this request if admitted), ms until a slot frees; then admitted 0/1.
_SLIDING_WINDOW = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local window = tonumber(ARGV[1])
local admitted = 1
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  counts[i] = redis.call('ZCARD', key)
  if counts[i] >= tonumber(ARGV[2 + i]) then admitted = 0 end
end
local result = {}
for i, key in ipairs(KEYS) do
  if admitted == 1 then
    redis.call('ZADD', key, now, ARGV[2])
    redis.call('PEXPIRE', key, window)
    counts[i] = counts[i] + 1
  end
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')[2] or now
  table.insert(result, counts[i])
  table.insert(result, tonumber(oldest) + window - now)
end
table.insert(result, admitted)
return result
"""


@dataclass(frozen=True)
class Verdict:
    admitted: bool
    limit: int
    remaining: int
    reset_seconds: int
    scope: str

    def headers(self) -> dict[str, str]:
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_seconds),
        }
        if not self.admitted:
            headers["Retry-After"] = str(self.reset_seconds)
        return headers


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self._limits = {
            "user": settings.rate_limit_user_per_minute,
            "tenant": settings.rate_limit_tenant_per_minute,
        }
        # One hash tag for every scope's key: the script checks them together, on one Cluster slot too.
        self._keys = ServiceKeys(settings.redis_key_prefix)
        self.enabled = any(self._limits.values())
        self._script: AsyncScript | None = None  # EVALSHA: the script body is sent once, not per request

    async def check(self, redis: Redis, principal: Principal) -> Verdict | None:
        """The verdict for one request, or None when limits are off or Redis failed (fail-open)."""
        scopes = [(scope, limit) for scope, limit in self._limits.items() if limit]
        if not scopes:
            return None
        ids = {"user": f"{principal.tenant}:{principal.user}", "tenant": principal.tenant}
        keys = [self._keys.control("ratelimit", scope, ids[scope]) for scope, _ in scopes]
        try:
            if self._script is None or self._script.registered_client is not redis:
                self._script = redis.register_script(_SLIDING_WINDOW)
            args = [WINDOW_SECONDS * 1000, uuid.uuid4().hex, *(limit for _, limit in scopes)]
            result = await self._script(keys=keys, args=args)
        except RedisError:
            FAIL_OPEN.labels("ratelimit").inc()
            log.warning("rate limit skipped: Redis unavailable", exc_info=True)
            return None
        admitted = bool(result[-1])
        verdicts = [
            Verdict(
                admitted,
                limit,
                max(0, limit - int(result[2 * i])),
                math.ceil(int(result[2 * i + 1]) / 1000),
                scope,
            )
            for i, (scope, limit) in enumerate(scopes)
        ]
        # The scope that refused (or, when admitted, the one closest to refusing) is the one to report.
        return min(verdicts, key=lambda v: (v.remaining, -v.reset_seconds))


async def enforce_rate_limit(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> None:
    """FastAPI dependency (after auth): 429 when over a limit; X-RateLimit-* headers on every response."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled:
        return
    verdict = await limiter.check(request.app.state.runtime.redis, principal)
    if verdict is None:
        return
    if not verdict.admitted:
        RATE_LIMITED.labels(verdict.scope).inc()
        raise HTTPException(
            status_code=429, detail=f"{verdict.scope} rate limit exceeded", headers=verdict.headers()
        )
    add_response_headers(request, verdict.headers())
