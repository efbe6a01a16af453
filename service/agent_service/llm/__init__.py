"""The service's chat model: Claude through the resilient client, or the offline stub without an API key."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from redis.asyncio import Redis

from agent_service.llm.budget import BudgetPolicy
from agent_service.llm.chat_model import AnthropicChatModel
from agent_service.llm.circuit import CircuitPolicy
from agent_service.llm.client import LLMConfig, ResilientAnthropic
from agent_service.llm.errors import (
    AllModelsFailedError,
    BudgetExceededError,
    CircuitOpenError,
    LLMError,
    ProviderRequestError,
)
from agent_service.llm.retry import RetryPolicy
from agent_service.llm.stub import StubChatModel
from agent_service.settings import Settings

__all__ = [
    "AllModelsFailedError",
    "BudgetExceededError",
    "CircuitOpenError",
    "LLMError",
    "ProviderRequestError",
    "budget_policy",
    "build_chat_model",
    "llm_config",
]


def llm_config(settings: Settings) -> LLMConfig:
    return LLMConfig(
        models=settings.llm_models,
        api_key=settings.anthropic_api_key.get_secret_value() if settings.anthropic_api_key else None,
        base_url=settings.anthropic_base_url,
        timeout_seconds=settings.llm_timeout_seconds,
        max_tokens=settings.llm_max_tokens,
        max_concurrency=settings.llm_max_concurrency,
        retry=RetryPolicy(
            settings.llm_max_retries, settings.llm_backoff_base_seconds, settings.llm_backoff_max_seconds
        ),
        circuit=CircuitPolicy(
            settings.circuit_failure_threshold,
            settings.circuit_recovery_seconds,
            settings.circuit_half_open_probes,
        ),
        budget=budget_policy(settings),
    )


def budget_policy(settings: Settings) -> BudgetPolicy:
    return BudgetPolicy(
        tokens_per_request=settings.token_budget_per_request,
        tokens_per_day=settings.token_budget_per_day,
        usd_per_day=settings.cost_budget_usd_per_day,
        deployment_usd_per_day=settings.spend_budget_usd_per_day,
        deployment_usd_per_month=settings.spend_budget_usd_per_month,
        enforce=settings.spend_budget_enforce,
        lease_seconds=settings.run_timeout_seconds,
        wait_seconds=settings.llm_timeout_seconds,
        usage_retention_days=settings.usage_retention_days,
    )


def build_chat_model(settings: Settings, redis: Redis | None = None) -> BaseChatModel:
    """The model graphs should use. `redis` backs the budgets and usage counters; by default a client
    of REDIS_URL (it connects lazily, on the first call)."""
    if settings.anthropic_api_key is None:
        return StubChatModel()
    config = llm_config(settings)
    if redis is None:
        redis = Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_seconds)
    llm = ResilientAnthropic(config, redis=redis, key_prefix=settings.redis_key_prefix)
    return AnthropicChatModel(llm=llm, max_tokens=config.max_tokens)
