"""Token and spend budgets: a model call reserves its worst case BEFORE it is sent and settles after.

Limits (0 = none):

- per request: tokens of all model calls made while serving one HTTP request (in process, on the
  request context: a run executes in the replica that accepted it);
- per tenant per UTC day: tokens and US dollars (`tokenBudget`, `costBudget.tenantUsdPerDay`);
- per deployment per UTC day and per calendar month, US dollars, when `costBudget.enforce` is on.

The Redis limits are shared by every replica and kept by reservation. Before a call, one Lua script
drops expired reservations and, for each limit, adds what is spent to what the calls in flight
have reserved. The call goes ahead and reserves its worst case (the estimated input plus
`max_tokens` of output, priced at the dearest model of the fallback chain) when that still fits;
when it does not fit but calls are in flight, it waits for them to settle; with nothing in flight
it goes ahead while the limit is not reached (tokens: while its input fits), else it is refused.
After the call its actual usage is charged and only then the reservation released. So however many
calls run at once, a limit is overshot by at most the one call admitted last, and never by all the
calls that would pass the same "spent < limit" check together. A reservation of a replica that
died expires after its lease.

`admit` refuses a new run (429) whose tenant or deployment budget is already spent.

Every charge also feeds the usage counters (agent_service/usage.py), budget or not.

If Redis fails, the Redis checks are skipped (counted in agent_fail_open_total{component="budget"}
and logged): a Redis blip must not turn into a full LLM outage, and the per-request limit still
bounds what any one request can spend meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from agent_service.llm.errors import BudgetExceededError
from agent_service.llm.pricing import Price, Usage, price_of
from agent_service.observability.context import RequestContext
from agent_service.observability.metrics import FAIL_OPEN, TOKEN_BUDGET_EXHAUSTED
from agent_service.usage import UsageStore, spend_tag

log = logging.getLogger(__name__)

MICRO = 1_000_000  # dollars are counted in integer micro-dollars so Redis increments stay exact
_DAY_TTL_SECONDS = 2 * 24 * 3600
_MONTH_TTL_SECONDS = 62 * 24 * 3600
_WAIT_POLL_SECONDS = 0.05

# KEYS: per limited counter, its hash (fields tokens, usd_micros) then its reservations (a sorted
# set of "id|tokens|micros" scored by the lease's end, in ms).
# ARGV: lease ms, member, want tokens, want micros, start tokens, then per counter: key TTL s,
# token limit, micro-dollar limit (0 = none).
# Returns {0} reserved, {1, i, kind, used} refused by counter i (kind 1 tokens, 2 usd), {2} wait.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, member = tonumber(ARGV[1]), ARGV[2]
local want = {tonumber(ARGV[3]), tonumber(ARGV[4])}
local start_tokens = tonumber(ARGV[5])
local wait = false
for i = 1, #KEYS / 2 do
  local counter, held = KEYS[2 * i - 1], KEYS[2 * i]
  local limit = {tonumber(ARGV[6 + 3 * (i - 1) + 1]), tonumber(ARGV[6 + 3 * (i - 1) + 2])}
  redis.call('ZREMRANGEBYSCORE', held, '-inf', now)
  local spent = redis.call('HMGET', counter, 'tokens', 'usd_micros')
  local used = {tonumber(spent[1]) or 0, tonumber(spent[2]) or 0}
  local reserved = {0, 0}
  local holders = redis.call('ZRANGE', held, 0, -1)
  for _, m in ipairs(holders) do
    local tokens, micros = string.match(m, '|(%d+)|(%d+)$')
    reserved[1] = reserved[1] + tonumber(tokens)
    reserved[2] = reserved[2] + tonumber(micros)
  end
  local start = {start_tokens, 1}
  for kind = 1, 2 do
    if limit[kind] > 0 then
      if used[kind] + start[kind] > limit[kind] then return {1, i, kind, used[kind]} end
      if #holders > 0 and used[kind] + reserved[kind] + want[kind] > limit[kind] then wait = true end
    end
  end
end
if wait then return {2} end
for i = 1, #KEYS / 2 do
  redis.call('ZADD', KEYS[2 * i], now + lease, member)
  redis.call('EXPIRE', KEYS[2 * i], tonumber(ARGV[6 + 3 * (i - 1)]))
end
return {0}
"""


@dataclass(frozen=True)
class BudgetPolicy:
    """0 means unlimited; the deployment's USD limits apply only with `enforce`."""

    tokens_per_request: int = 0
    tokens_per_day: int = 0  # per tenant
    usd_per_day: float = 0.0  # per tenant
    deployment_usd_per_day: float = 0.0
    deployment_usd_per_month: float = 0.0
    enforce: bool = False
    #: A reservation of a replica that stopped mid-call is dropped after this long.
    lease_seconds: float = 600.0
    #: A call near a limit waits this long for calls in flight to settle before it is refused.
    wait_seconds: float = 30.0
    usage_retention_days: int = 90


def estimate_tokens(text: str) -> int:
    """A cheap upper-side estimate (about 4 characters per token) of a request's input."""
    return len(text) // 4 + 1


@dataclass(frozen=True)
class Estimate:
    """The worst a call can cost: its estimated input and `max_tokens` of output."""

    input_tokens: int
    max_output_tokens: int
    models: tuple[str, ...]
    #: Prices that replace the table for some models (spec.model pricing overrides).
    prices: Mapping[str, Price] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.max_output_tokens

    @property
    def micros(self) -> int:
        """At the dearest model of the chain, input priced as cache writes (the dearest input kind)."""
        prices = (self.prices.get(m) or price_of(m) for m in self.models)
        price = max(prices, key=lambda p: p.cache_write + p.output)
        worst = self.input_tokens * price.cache_write + self.max_output_tokens * price.output
        return int(worst) + 1  # per million tokens x tokens = micro-dollars


@dataclass(frozen=True)
class _Counter:
    """One limited Redis counter: its hash, its reservations, its limits and when it starts over."""

    key: str
    ttl_seconds: int
    tokens: int
    micros: int
    scopes: tuple[str, str]  # refusal scopes: (tokens, usd)
    resets_in: float


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
        self._tag = spend_tag(key_prefix)
        self._now = now
        self.usage = UsageStore(redis, key_prefix, policy.usage_retention_days, now=now)
        self._script: AsyncScript | None = None  # registered on first use (EVALSHA afterwards)

    # -- before and after a call ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def reserve(self, request: RequestContext, estimate: Estimate) -> AsyncIterator[None]:
        """Admit one model call (or raise BudgetExceededError); released when the block ends."""
        limit = self.policy.tokens_per_request
        if limit and request.tokens_used + estimate.input_tokens > limit:
            self._refuse("request", limit, request.tokens_used)
        counters = self._counters(request.tenant)
        held = await self._hold(counters, estimate) if counters else None
        try:
            yield
        finally:
            if held is not None:
                await self._release(counters, held)

    async def charge(self, request: RequestContext, usage: Usage, cost_usd: float, *, model: str) -> None:
        """Add one attempt's usage to the request, the tenant's and the deployment's counters."""
        request.tokens_used += usage.total
        if self._redis is None:
            return
        micros = round(cost_usd * MICRO)
        day, month = self._day_keys()
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                tenant = self._tenant_key(request.tenant)
                pipe.hincrby(tenant, "tokens", usage.total)
                pipe.hincrby(tenant, "usd_micros", micros)
                pipe.expire(tenant, _DAY_TTL_SECONDS)
                for key, ttl in ((day, _DAY_TTL_SECONDS), (month, _MONTH_TTL_SECONDS)):
                    pipe.hincrby(key, "usd_micros", micros)
                    pipe.expire(key, ttl)
                self.usage.add_call(pipe, request.tenant, model, usage, micros)
                await pipe.execute()
        except RedisError:
            self._fail_open("charge")

    # -- before a run -----------------------------------------------------------------------------

    async def admit(self, tenant: str) -> None:
        """Refuse a new run (BudgetExceededError, 429) whose tenant or deployment budget is spent."""
        counters = self._counters(tenant)
        if not counters:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for counter in counters:
                    pipe.hmget(counter.key, "tokens", "usd_micros")
                spent = await pipe.execute()
        except RedisError:
            self._fail_open("admit")
            return
        for counter, (tokens, micros) in zip(counters, spent, strict=True):
            used = (int(tokens or 0), int(micros or 0))
            for kind, limit in enumerate((counter.tokens, counter.micros)):
                if limit and used[kind] >= limit:
                    self._refuse_counter(counter, kind, used[kind])

    # -- internals --------------------------------------------------------------------------------

    def _counters(self, tenant: str) -> list[_Counter]:
        """The Redis counters whose limits apply (none without Redis)."""
        if self._redis is None:
            return []
        policy, now = self.policy, self._now()
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        first = (now.replace(day=28) + timedelta(days=4)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        until_midnight, until_month = (midnight - now).total_seconds(), (first - now).total_seconds()
        day, month = self._day_keys()
        counters = []
        if policy.tokens_per_day or policy.usd_per_day:
            counters.append(
                _Counter(
                    self._tenant_key(tenant),
                    _DAY_TTL_SECONDS,
                    policy.tokens_per_day,
                    round(policy.usd_per_day * MICRO),
                    ("tenant_day_tokens", "tenant_day_usd"),
                    until_midnight,
                )
            )
        if policy.enforce and policy.deployment_usd_per_day:
            micros = round(policy.deployment_usd_per_day * MICRO)
            counters.append(
                _Counter(day, _DAY_TTL_SECONDS, 0, micros, ("", "deployment_day_usd"), until_midnight)
            )
        if policy.enforce and policy.deployment_usd_per_month:
            micros = round(policy.deployment_usd_per_month * MICRO)
            counters.append(
                _Counter(month, _MONTH_TTL_SECONDS, 0, micros, ("", "deployment_month_usd"), until_month)
            )
        return counters

    async def _hold(self, counters: list[_Counter], estimate: Estimate) -> str | None:
        """Reserve the estimate on every counter; None when Redis failed (fail-open)."""
        assert self._redis is not None
        if self._script is None:
            self._script = self._redis.register_script(_RESERVE)
        member = f"{uuid.uuid4().hex}|{estimate.tokens}|{estimate.micros}"
        keys = [k for c in counters for k in (c.key, _held(c.key))]
        args: list[int | float | str] = [
            int(self.policy.lease_seconds * 1000),
            member,
            estimate.tokens,
            estimate.micros,
            estimate.input_tokens,
        ]
        for counter in counters:
            args += [counter.ttl_seconds, counter.tokens, counter.micros]
        deadline = time.monotonic() + self.policy.wait_seconds
        while True:
            try:
                verdict = await self._script(keys=keys, args=args)
            except RedisError:
                self._fail_open("reserve")
                return None
            if verdict[0] == 0:
                return member
            if verdict[0] == 1:
                _, index, kind, used = verdict
                self._refuse_counter(counters[int(index) - 1], int(kind) - 1, int(used))
            if time.monotonic() >= deadline:
                # Still no room once the wait is over: what is in flight will use it up.
                self._refuse_counter(*_tightest(counters))
            await asyncio.sleep(_WAIT_POLL_SECONDS)

    async def _release(self, counters: Iterable[_Counter], member: str) -> None:
        assert self._redis is not None
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for counter in counters:
                    pipe.zrem(_held(counter.key), member)
                await pipe.execute()
        except RedisError:
            self._fail_open("release")  # the lease ends the reservation instead

    def _tenant_key(self, tenant: str) -> str:
        return f"{self._tag}:tenant:{tenant}:{self._now():%Y%m%d}"

    def _day_keys(self) -> tuple[str, str]:
        now = self._now()
        return f"{self._tag}:day:{now:%Y%m%d}", f"{self._tag}:month:{now:%Y%m}"

    def _refuse_counter(self, counter: _Counter, kind: int, used: int) -> None:
        limit = (counter.tokens, counter.micros)[kind]
        scale = 1 if kind == 0 else MICRO
        self._refuse(counter.scopes[kind], limit / scale, used / scale, counter.resets_in)

    def _refuse(self, scope: str, limit: float, used: float, retry_after: float | None = None) -> None:
        TOKEN_BUDGET_EXHAUSTED.labels(scope).inc()
        raise BudgetExceededError(scope, limit, used, retry_after)

    def _fail_open(self, step: str) -> None:
        FAIL_OPEN.labels("budget").inc()
        log.warning("budget %s skipped: Redis unavailable", step, exc_info=True)


def _held(counter_key: str) -> str:
    return f"{counter_key}:held"


def _tightest(counters: list[_Counter]) -> tuple[_Counter, int, int]:
    """The counter to name when a wait timed out: the first USD limit, else the first token limit."""
    for counter in counters:
        if counter.micros:
            return counter, 1, counter.micros
    return counters[0], 0, counters[0].tokens
