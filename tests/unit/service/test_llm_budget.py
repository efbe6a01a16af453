"""Budget checks before a call: per request in process, per tenant per UTC day (Redis stubbed here)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from agent_service.llm.budget import BudgetPolicy, TokenBudget, estimate_tokens
from agent_service.llm.errors import BudgetExceededError
from agent_service.observability.context import RequestContext

NOW = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)


class DayCounters:
    """Just enough of redis.asyncio.Redis for a check: HMGET of the day's hash."""

    def __init__(self, values: dict[str, dict[str, int]]) -> None:
        self.values = values
        self.keys_read: list[str] = []

    async def hmget(self, key: str, *fields: str) -> list[int | None]:
        self.keys_read.append(key)
        return [self.values.get(key, {}).get(f) for f in fields]


async def test_request_budget_counts_what_the_request_already_spent() -> None:
    budget = TokenBudget(BudgetPolicy(tokens_per_request=100), redis=None)
    await budget.check(RequestContext(tokens_used=60), estimated_input=40)
    with pytest.raises(BudgetExceededError) as refused:
        await budget.check(RequestContext(tokens_used=61), estimated_input=40)
    assert (refused.value.scope, refused.value.limit, refused.value.used) == ("request", 100, 61)
    assert refused.value.retry_after is None, "a new request starts a new budget"


async def test_daily_budget_reads_the_tenants_key_of_the_utc_day_and_waits_until_midnight() -> None:
    redis = DayCounters({"p:budget:acme:20261123": {"tokens": 990, "usd_micros": 0}})
    budget = TokenBudget(BudgetPolicy(tokens_per_day=1000), redis, key_prefix="p", now=lambda: NOW)  # type: ignore[arg-type]

    await budget.check(RequestContext(tenant="globex"), estimated_input=500)
    with pytest.raises(BudgetExceededError) as refused:
        await budget.check(RequestContext(tenant="acme"), estimated_input=11)

    assert redis.keys_read == ["p:budget:globex:20261123", "p:budget:acme:20261123"]
    assert refused.value.scope == "tenant_day_tokens"
    assert refused.value.retry_after == 90 * 60


async def test_daily_cost_budget_refuses_once_reached() -> None:
    redis = DayCounters({"shepherd:budget:acme:20261123": {"tokens": 1, "usd_micros": 2_000_000}})
    budget = TokenBudget(BudgetPolicy(usd_per_day=2.0), redis, now=lambda: NOW)  # type: ignore[arg-type]
    with pytest.raises(BudgetExceededError) as refused:
        await budget.check(RequestContext(tenant="acme"), estimated_input=1)
    assert (refused.value.scope, refused.value.used) == ("tenant_day_usd", 2.0)
    assert refused.value.status_code == 429


def test_estimate_errs_high_for_short_texts() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("x" * 400) == 101
