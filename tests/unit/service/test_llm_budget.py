"""Budget rules that need no Redis: the per-request limit and the worst case a call reserves.

The Redis limits (reservations, waiting, refusals, leases) are proven against a real Redis in
tests/integration/service/test_spend_budget.py.
"""

from __future__ import annotations

import pytest
from agent_service.llm.budget import BudgetPolicy, Estimate, TokenBudget, estimate_tokens
from agent_service.llm.errors import BudgetExceededError
from agent_service.observability.context import RequestContext


async def test_request_budget_counts_what_the_request_already_spent() -> None:
    budget = TokenBudget(BudgetPolicy(tokens_per_request=100), redis=None)
    async with budget.reserve(RequestContext(tokens_used=60), Estimate(40, 1000, ("claude-haiku-4-5",))):
        pass
    with pytest.raises(BudgetExceededError) as refused:
        async with budget.reserve(RequestContext(tokens_used=61), Estimate(40, 1000, ("claude-haiku-4-5",))):
            pass
    assert (refused.value.scope, refused.value.limit, refused.value.used) == ("request", 100, 61)
    assert refused.value.retry_after is None, "a new request starts a new budget"
    assert refused.value.status_code == 429


def test_the_worst_case_is_priced_at_the_dearest_model_of_the_chain() -> None:
    # 1000 input tokens as cache writes (1.25 x 5 USD/MTok for opus) + 500 output at 25 USD/MTok.
    estimate = Estimate(1000, 500, ("claude-haiku-4-5", "claude-opus-4-1"))
    assert estimate.tokens == 1500
    assert estimate.micros == 6250 + 12500 + 1
    # An unknown model is priced like the dearest family: the budget errs towards refusing.
    assert Estimate(1000, 500, ("some-new-model",)).micros == estimate.micros


def test_estimate_errs_high_for_short_texts() -> None:
    assert estimate_tokens("") == 1
    assert estimate_tokens("x" * 400) == 101


async def test_without_redis_only_the_request_limit_applies() -> None:
    budget = TokenBudget(
        BudgetPolicy(tokens_per_day=1, deployment_usd_per_day=0.01, enforce=True), redis=None
    )
    await budget.admit("acme")
    async with budget.reserve(RequestContext(tenant="acme"), Estimate(10**6, 1000, ("claude-opus-4-1",))):
        pass
