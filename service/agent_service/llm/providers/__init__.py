"""Providers of the fallback chain, all speaking Anthropic's Messages shapes to the resilient client.

Anthropic, Bedrock and Vertex serve Claude through the `anthropic` SDK's own clients (one code path,
three transports); `openai` is any Chat Completions endpoint through the official `openai` SDK, its
requests and answers translated (llm/openai_format.py); `stub` is the offline model. The SDKs' own
retries are off (max_retries=0): the resilient client's policy is the only one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from anthropic.types import Message, RawMessageStreamEvent

from agent_service.llm.routes import ModelRoute, ProviderName


class EventStream(Protocol):
    """An open stream of Messages API events; closed by the caller."""

    def __aiter__(self) -> AsyncIterator[RawMessageStreamEvent]: ...

    async def close(self) -> None: ...


class Provider(Protocol):
    async def create(self, model: str, params: dict[str, Any]) -> Message: ...

    async def stream(self, model: str, params: dict[str, Any]) -> EventStream: ...


def build_provider(route: ModelRoute, timeout_seconds: float) -> Provider:
    if route.provider is ProviderName.openai:
        from agent_service.llm.providers.openai import OpenAICompatible

        return OpenAICompatible(route, timeout_seconds)
    if route.provider is ProviderName.stub:
        from agent_service.llm.providers.stub import StubProvider

        return StubProvider()
    from agent_service.llm.providers.claude import ClaudeProvider

    return ClaudeProvider(route, timeout_seconds)
