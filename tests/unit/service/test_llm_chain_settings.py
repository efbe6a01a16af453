"""LLM_CHAIN and its per-entry secrets, the cache key, and the operator/service contract on circuits."""

from __future__ import annotations

import json

import pytest
from agent_service.llm import build_chat_model, llm_routes
from agent_service.llm.cache import ResponseCache
from agent_service.llm.chat_model import AnthropicChatModel
from agent_service.llm.routes import CIRCUIT_PROVIDERS, ProviderName
from agent_service.llm.stub import StubChatModel
from agent_service.settings import Settings, SettingsError, load_settings
from redis.asyncio import Redis
from shepherd.slo import objectives

CHAIN = [
    {"provider": "anthropic", "model": "claude-sonnet-4-5"},
    {"provider": "bedrock", "model": "us.anthropic.claude-haiku-4-5-v1:0", "region": "us-east-1"},
    {"provider": "openai", "model": "llama", "base_url": "http://vllm:8000/v1",
     "pricing": {"input": 0.1, "output": 0.2}},
]  # fmt: skip


def test_the_chain_and_its_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_CHAIN", json.dumps(CHAIN))
    monkeypatch.setenv("LLM_CHAIN_0_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("LLM_CHAIN_1_AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("LLM_CHAIN_1_AWS_SECRET_ACCESS_KEY", "aws-secret")
    settings = load_settings()

    routes = llm_routes(settings)
    assert [r.circuit for r in routes] == [
        "anthropic:claude-sonnet-4-5",
        "bedrock:us.anthropic.claude-haiku-4-5-v1:0",
        "openai:llama",
    ]
    assert routes[0].credentials.api_key == "sk-ant-secret"
    assert (routes[1].credentials.aws_access_key_id, routes[1].region) == ("AKID", "us-east-1")
    assert routes[2].price is not None
    assert routes[2].price.output == 0.2
    assert "sk-ant-secret" not in repr(settings) + repr(routes)
    assert isinstance(build_chat_model(settings), AnthropicChatModel)


def test_an_entry_missing_its_provider_settings_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "LLM_CHAIN", json.dumps([{"provider": "vertex", "model": "claude", "region": "us-east5"}])
    )
    with pytest.raises(SettingsError, match=r"LLM_CHAIN_0: .*needs project_id"):
        load_settings()
    monkeypatch.setenv("LLM_CHAIN", json.dumps([{"provider": "cohere", "model": "x"}]))
    with pytest.raises(SettingsError, match="LLM_CHAIN_0_PROVIDER"):
        load_settings()


def test_without_a_chain_the_legacy_variables_and_the_stub_still_work() -> None:
    assert [
        r.circuit for r in llm_routes(Settings(anthropic_api_key="k", llm_model="m", llm_fallback_models=[]))
    ] == ["anthropic:m"]
    assert [r.provider for r in llm_routes(Settings())] == [ProviderName.stub]
    assert isinstance(build_chat_model(Settings()), StubChatModel)


def test_cache_keys_are_per_tenant_deterministic_only_and_under_the_prefix() -> None:
    cache = ResponseCache(Redis(), "team-a", 60, ("anthropic:m",))
    params = {"max_tokens": 10, "temperature": 0, "messages": [{"role": "user", "content": "hi"}]}
    key = cache.key("acme", params)
    assert key is not None
    assert key.startswith("team-a:llmcache:")
    assert cache.key("acme", {**params, "stream": True}) == key, "streaming or not, the same answer"
    assert cache.key("globex", params) != key
    assert cache.key("acme", {**params, "temperature": 0.5}) is None
    assert cache.key("acme", {k: v for k, v in params.items() if k != "temperature"}) is None
    assert ResponseCache(Redis(), "team-a", 0, ()).key("acme", params) is None, "TTL 0: off"


def test_the_operator_counts_the_same_circuits_the_service_exports() -> None:
    assert {str(p) for p in CIRCUIT_PROVIDERS} == objectives.CIRCUIT_PROVIDERS
