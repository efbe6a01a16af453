"""Spend budgets and usage counters against a real Redis: reservations, waits, leases, refusals.

The calls are simulated (a reservation, a short "provider" sleep, a charge of a known cost) so the
arithmetic is exact; tests/integration/service/test_usage_http.py and bench/spend_overshoot.py run
the same code through live agent-service processes and the fake Anthropic server.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import pytest
from agent_service.llm.budget import MICRO, BudgetPolicy, Estimate, TokenBudget
from agent_service.llm.errors import BudgetExceededError
from agent_service.llm.pricing import Usage, cost_usd
from agent_service.observability.context import RequestContext
from agent_service.usage import spend_tag
from redis.asyncio import Redis

MODEL = "claude-sonnet-4-6"
#: What one simulated call really uses: 800 input + 400 output tokens of Sonnet (0.0084 USD)...
USED = Usage(input=800, output=400)
#: ...and the worst case it reserves: its input and max_tokens=1024 of output (about 0.019 USD).
ESTIMATE = Estimate(800, 1024, (MODEL,))
NOW = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def budget(redis: Redis, **policy: object) -> TokenBudget:
    """A deployment of its own (key prefix) on the shared Redis, at a fixed moment."""
    prefix = f"spend-{uuid.uuid4().hex[:8]}"
    gate = TokenBudget(BudgetPolicy(**policy), redis, key_prefix=prefix, now=lambda: NOW)
    gate.day_key = f"{spend_tag(prefix)}:day:{NOW:%Y%m%d}"  # type: ignore[attr-defined]
    return gate


async def call(budget: TokenBudget, tenant: str = "acme", seconds: float = 0.05) -> bool:
    """One model call: reserve, 'send' it, charge what it used. False when it was refused."""
    request = RequestContext(tenant=tenant)
    try:
        async with budget.reserve(request, ESTIMATE):
            await asyncio.sleep(seconds)
            await budget.charge(request, USED, cost_usd(MODEL, USED), model=MODEL)
    except BudgetExceededError:
        return False
    return True


async def spent(gate: TokenBudget, redis: Redis) -> float:
    """What the deployment spent today, as its Redis counter says."""
    return int(await redis.hget(gate.day_key, "usd_micros") or 0) / MICRO  # type: ignore[attr-defined]


async def test_fifty_concurrent_calls_overshoot_the_deployment_budget_by_at_most_one_call(
    redis: Redis,
) -> None:
    limit = 0.10  # about 12 calls' worth
    gate = budget(redis, deployment_usd_per_day=limit, enforce=True, wait_seconds=10)
    results = await asyncio.gather(*(call(gate) for _ in range(50)))
    total = await spent(gate, redis)
    one_call = cost_usd(MODEL, USED)
    assert limit - one_call < total <= limit + one_call, (total, results.count(True))
    assert results.count(True) == round(total / one_call)
    assert results.count(False) >= 30, "the rest were refused once the budget was gone"


async def test_a_call_near_the_limit_waits_for_the_calls_in_flight(redis: Redis) -> None:
    # Room for one worst case: the second call cannot reserve while the first is in flight, waits,
    # and goes once the first settled below its reservation.
    gate = budget(redis, deployment_usd_per_day=0.03, enforce=True, wait_seconds=5)
    first = asyncio.create_task(call(gate, seconds=0.5))
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    assert await call(gate)
    assert asyncio.get_running_loop().time() - started >= 0.3, "it waited for the first to settle"
    assert await first


async def test_a_reservation_of_a_dead_replica_expires_with_its_lease(redis: Redis) -> None:
    gate = budget(redis, deployment_usd_per_day=0.03, enforce=True, lease_seconds=0.5, wait_seconds=5)
    # A replica reserves and dies: nothing releases its reservation.
    dead = gate.reserve(RequestContext(tenant="acme"), ESTIMATE)
    await dead.__aenter__()  # held (and kept referenced) but never left
    started = asyncio.get_running_loop().time()
    assert await call(gate)
    assert asyncio.get_running_loop().time() - started >= 0.4, "it waited for the lease to end"
    await dead.__aexit__(None, None, None)  # only now (the test cleans up after itself)


async def test_a_spent_budget_refuses_runs_and_calls_until_midnight(redis: Redis) -> None:
    gate = budget(redis, deployment_usd_per_day=0.005, deployment_usd_per_month=100, enforce=True)
    await gate.admit("acme")
    assert await call(gate)  # nothing spent yet: it goes, and overshoots by its own cost
    with pytest.raises(BudgetExceededError) as refused:
        await gate.admit("globex")  # a deployment budget: every tenant
    assert refused.value.scope == "deployment_day_usd"
    assert refused.value.retry_after == 90 * 60
    assert refused.value.status_code == 429
    assert not await call(gate)


async def test_without_enforce_the_deployment_budget_refuses_nothing(redis: Redis) -> None:
    gate = budget(redis, deployment_usd_per_day=0.001)
    assert all(await asyncio.gather(*(call(gate) for _ in range(5))))
    await gate.admit("acme")


async def test_tenant_limits_are_per_tenant(redis: Redis) -> None:
    gate = budget(redis, usd_per_day=0.005, tokens_per_day=5000)
    assert await call(gate, "acme")
    with pytest.raises(BudgetExceededError) as refused:
        await gate.admit("acme")
    assert refused.value.scope == "tenant_day_usd"
    assert not await call(gate, "acme")
    assert await call(gate, "globex")


async def test_usage_is_counted_per_tenant_day_and_model_with_the_retention_as_expiry(redis: Redis) -> None:
    gate = budget(redis, usage_retention_days=90)
    await asyncio.gather(call(gate, "acme"), call(gate, "acme"), call(gate, "globex"))
    await gate.usage.count_run("acme")
    rows = await gate.usage.days(date(2026, 11, 1), date(2026, 11, 30))
    assert [(r["date"], r["tenant"], r["runs"]) for r in rows] == [
        ("2026-11-23", "acme", 1),
        ("2026-11-23", "globex", 0),
    ]
    acme = rows[0]
    assert acme["tokens"] == {"input": 1600, "output": 800, "cache_read": 0, "cache_write": 0}
    assert acme["costUsd"] == pytest.approx(2 * cost_usd(MODEL, USED))
    assert set(acme["models"]) == {MODEL}
    assert await gate.usage.days(date(2026, 11, 1), date(2026, 11, 30), model="other") == [
        {**rows[0], "tokens": dict.fromkeys(acme["tokens"], 0), "costUsd": 0.0, "models": {}}
    ], "another model: the tenant's runs, none of its tokens"
    key = gate.usage._key(date(2026, 11, 23), "acme")
    expires = await redis.expiretime(key)
    assert expires == int(datetime(2026, 11, 24, tzinfo=UTC).timestamp()) + 90 * 86400
