"""The service's chat models: the fallback chain of the AgentDeployment through the resilient client.

`build_chat_model(settings)` is the model graphs built on Shepherd use; graphs that build their own
(ChatAnthropic, ChatOpenAI, init_chat_model, the raw SDKs) reach the same client through the gateway
(llm/gateway). Both share one `ResilientLLM` per configuration in the process (`shared_llm`), so a
circuit, a budget and a cache are one, whichever path a call took.
"""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from redis.asyncio import Redis

from agent_service.llm.budget import BudgetPolicy
from agent_service.llm.chat_model import AnthropicChatModel
from agent_service.llm.circuit import CircuitPolicy
from agent_service.llm.client import LLMConfig, ResilientLLM
from agent_service.llm.errors import (
    AllModelsFailedError,
    BudgetExceededError,
    CircuitOpenError,
    ContextTooLongError,
    LLMError,
    ProviderRequestError,
)
from agent_service.llm.fit import Overflow
from agent_service.llm.pricing import Price
from agent_service.llm.retry import RetryPolicy
from agent_service.llm.routes import Credentials, ModelRoute, ProviderName
from agent_service.llm.stub import StubChatModel
from agent_service.settings import CHAIN_SECRETS, ChainEntry, Settings

__all__ = [
    "AllModelsFailedError",
    "BudgetExceededError",
    "CircuitOpenError",
    "ContextTooLongError",
    "LLMError",
    "ProviderRequestError",
    "budget_policy",
    "build_chat_model",
    "llm_config",
    "shared_llm",
]


def _route(entry: ChainEntry, settings: Settings) -> ModelRoute:
    secrets = {
        f: getattr(entry, f).get_secret_value() for f in CHAIN_SECRETS if getattr(entry, f) is not None
    }
    price = entry.pricing
    return ModelRoute(
        provider=ProviderName(entry.provider),
        model=entry.model,
        base_url=entry.base_url,
        region=entry.region,
        project_id=entry.project_id,
        credentials=Credentials(**secrets),
        price=Price(price.input, price.output, price.cache_read, price.cache_write) if price else None,
        max_input_tokens=entry.max_input_tokens,
    )


def llm_routes(settings: Settings) -> tuple[ModelRoute, ...]:
    """LLM_CHAIN when set; else the Anthropic models of LLM_MODEL/LLM_FALLBACK_MODELS with
    ANTHROPIC_API_KEY; else the offline stub. An entry listed twice is kept once, in first place."""
    if settings.llm_chain:
        routes = [_route(entry, settings) for entry in settings.llm_chain]
    elif settings.anthropic_api_key is not None:
        key = settings.anthropic_api_key.get_secret_value()
        routes = [
            ModelRoute(
                ProviderName.anthropic, m, settings.anthropic_base_url, credentials=Credentials(api_key=key)
            )
            for m in settings.llm_models
        ]
    else:
        routes = [ModelRoute(ProviderName.stub, "stub")]
    first: dict[str, ModelRoute] = {}
    for route in routes:
        first.setdefault(route.circuit, route)
    return tuple(first.values())


def llm_config(settings: Settings) -> LLMConfig:
    return LLMConfig(
        routes=llm_routes(settings),
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
        overflow=Overflow(settings.llm_context_overflow),
        degraded_reply=settings.llm_degraded_reply,
        cache_ttl_seconds=settings.llm_cache_ttl_seconds,
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


_shared: dict[tuple[LLMConfig, str], ResilientLLM] = {}


def shared_llm(settings: Settings, redis: Redis | None = None) -> ResilientLLM:
    """The process's client for this configuration. `redis` backs the budgets, the usage counters
    (kept whether or not a budget is set) and the cache; by default a client of REDIS_URL (it
    connects lazily, on the first call)."""
    config = llm_config(settings)
    key = (config, settings.redis_key_prefix)
    if key not in _shared:
        if redis is None:
            redis = Redis.from_url(settings.redis_url, socket_timeout=settings.redis_timeout_seconds)
        _shared[key] = ResilientLLM(config, redis=redis, key_prefix=settings.redis_key_prefix)
    return _shared[key]


def build_chat_model(settings: Settings, redis: Redis | None = None) -> BaseChatModel:
    """The model graphs should use: the chain through the resilient client, or the stub alone offline."""
    config = llm_config(settings)
    if all(route.provider is ProviderName.stub for route in config.routes):
        return StubChatModel()
    return AnthropicChatModel(llm=shared_llm(settings, redis), max_tokens=config.max_tokens)
