"""Settings of the LLM layer and the choice between the stub and the resilient Claude model."""

from __future__ import annotations

import pytest
from agent_service.llm import build_chat_model, llm_config
from agent_service.llm.chat_model import AnthropicChatModel
from agent_service.llm.stub import StubChatModel
from agent_service.settings import Settings


def test_fallback_chain_from_comma_separated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MODEL", "claude-sonnet-4-6")
    monkeypatch.setenv("LLM_FALLBACK_MODELS", "claude-haiku-4-5, claude-sonnet-4-6 ,claude-opus-4-5")
    assert Settings().llm_models == ("claude-sonnet-4-6", "claude-haiku-4-5", "claude-opus-4-5")


def test_config_carries_every_setting() -> None:
    config = llm_config(
        Settings(
            anthropic_api_key="k",
            llm_timeout_seconds=7,
            llm_max_retries=4,
            llm_backoff_base_seconds=0.1,
            llm_backoff_max_seconds=3,
            circuit_failure_threshold=2,
            circuit_recovery_seconds=9,
            circuit_half_open_probes=3,
            token_budget_per_request=100,
            token_budget_per_day=1000,
            cost_budget_usd_per_day=2.5,
            llm_max_concurrency=5,
        )
    )
    assert (config.routes[0].credentials.api_key, config.timeout_seconds, config.max_concurrency) == (
        "k",
        7,
        5,
    )
    assert (config.retry.max_retries, config.retry.backoff_base, config.retry.backoff_max) == (4, 0.1, 3)
    assert (
        config.circuit.failure_threshold,
        config.circuit.recovery_seconds,
        config.circuit.half_open_probes,
    ) == (2, 9, 3)
    assert (config.budget.tokens_per_request, config.budget.tokens_per_day, config.budget.usd_per_day) == (
        100,
        1000,
        2.5,
    )


def test_stub_without_api_key_and_claude_with_one() -> None:
    assert isinstance(build_chat_model(Settings()), StubChatModel)
    assert isinstance(build_chat_model(Settings(anthropic_api_key="k")), AnthropicChatModel)


def test_api_key_is_never_shown() -> None:
    settings = Settings(anthropic_api_key="sk-ant-very-secret", auth_jwt_secret="s" * 40)
    assert "sk-ant-very-secret" not in repr(settings)
    assert "s" * 40 not in str(settings.model_dump())


def test_log_level_is_validated() -> None:
    assert Settings(log_level="debug").log_level == "DEBUG"
    with pytest.raises(ValueError, match="must be DEBUG"):
        Settings(log_level="loud")
