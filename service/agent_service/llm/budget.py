"""Token and cost budgets, checked BEFORE a call is sent and charged after it returns.

- per request: tokens of all LLM calls made while serving one HTTP request (in process, on the request
  context: a run executes in the replica that accepted it);
- per tenant per UTC day: tokens and US dollars, in Redis so that every replica shares the count.

A check compares what is already spent plus this call's estimated input against the limit. Calls in
flight at the same time can overshoot a limit by their own size; the next call is refused.

If Redis fails, the daily check is skipped (counted in agent_fail_open_total{component="budget"} and
logged): a Redis blip must not turn into a full LLM outage, and the per-request limit still bounds
what any one request can spend meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.exceptions import RedisError

from agent_service.llm.errors import BudgetExceededError
from agent_service.llm.pricing import Usage
from agent_service.observability.context import RequestContext
from agent_service.observability.metrics import FAIL_OPEN, TOKEN_BUDGET_EXHAUSTED

log = logging.getLogger(__name__)

_MICRO = 1_000_000  # dollars are counted in integer micro-dollars so Redis increments stay exact
_KEY_TTL_SECONDS = 2 * 24 * 3600


@dataclass(frozen=True)
class BudgetPolicy:
    """0 means unlimited."""

    tokens_per_request: int = 0
    tokens_per_day: int = 0
    usd_per_day: float = 0.0

    @property
    def has_daily_limit(self) -> bool:
        return bool(self.tokens_per_day or self.usd_per_day)


def estimate_tokens(text: str) -> int:
    """A cheap upper-side estimate (about 4 characters per token) used only for the pre-check."""
    return len(text) // 4 + 1


class TokenBudget:
    def __init__(
        self,
        policy: BudgetPolicy,
        redis: Redis | None,
        key_prefix: str = "shepherd",
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.policy = policy
        self._redis = redis
        self._key_prefix = key_prefix
        self._now = now

    async def check(self, request: RequestContext, estimated_input: int) -> None:
        """Raise BudgetExceededError if this call would exceed a limit; sends nothing to the provider."""
        limit = self.policy.tokens_per_request
        if limit and request.tokens_used + estimated_input > limit:
            self._refuse("request", limit, request.tokens_used)
        if not (self.policy.has_daily_limit and self._redis):
            return
        try:
            tokens, micros = await self._redis.hmget(self._day_key(request.tenant), "tokens", "usd_micros")
        except RedisError:
            self._fail_open("check")
            return
        tokens, usd = int(tokens or 0), int(micros or 0) / _MICRO
        if self.policy.tokens_per_day and tokens + estimated_input > self.policy.tokens_per_day:
            self._refuse("tenant_day_tokens", self.policy.tokens_per_day, tokens, self._until_midnight())
        if self.policy.usd_per_day and usd >= self.policy.usd_per_day:
            self._refuse("tenant_day_usd", self.policy.usd_per_day, usd, self._until_midnight())

    async def charge(self, request: RequestContext, usage: Usage, cost_usd: float) -> None:
        request.tokens_used += usage.total
        if not (self.policy.has_daily_limit and self._redis):
            return
        key = self._day_key(request.tenant)
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(key, "tokens", usage.total)
                pipe.hincrby(key, "usd_micros", round(cost_usd * _MICRO))
                pipe.expire(key, _KEY_TTL_SECONDS)
                await pipe.execute()
        except RedisError:
            self._fail_open("charge")

    def _day_key(self, tenant: str) -> str:
        return f"{self._key_prefix}:budget:{tenant}:{self._now():%Y%m%d}"

    def _until_midnight(self) -> float:
        now = self._now()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - now).total_seconds()

    def _refuse(self, scope: str, limit: float, used: float, retry_after: float | None = None) -> None:
        TOKEN_BUDGET_EXHAUSTED.labels(scope).inc()
        raise BudgetExceededError(scope, limit, used, retry_after)

    def _fail_open(self, step: str) -> None:
        FAIL_OPEN.labels("budget").inc()
        log.warning("token budget %s skipped: Redis unavailable", step, exc_info=True)
