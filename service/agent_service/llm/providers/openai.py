"""Any OpenAI-compatible Chat Completions endpoint (OpenAI, Azure OpenAI's v1 API, vLLM, LiteLLM,
Ollama) through the official `openai` SDK, spoken to in Messages shapes (llm/openai_format.py)."""

from __future__ import annotations

from typing import Any

import openai
from anthropic.types import Message

from agent_service.llm.openai_format import (
    AnthropicEventsFromChunks,
    from_openai_completion,
    to_openai_request,
)
from agent_service.llm.providers import EventStream
from agent_service.llm.routes import ModelRoute

#: Set explicitly: the SDK would otherwise read OPENAI_BASE_URL, the gateway's address (llm/gateway).
OPENAI_API_URL = "https://api.openai.com/v1"
#: Self-hosted servers (vLLM, Ollama) take no key, but the SDK insists on one.
_NO_KEY = "no-key"


class OpenAICompatible:
    def __init__(self, route: ModelRoute, timeout_seconds: float) -> None:
        self._client = openai.AsyncOpenAI(
            api_key=route.credentials.api_key or _NO_KEY,
            base_url=route.base_url or OPENAI_API_URL,
            timeout=timeout_seconds,
            max_retries=0,
        )

    async def create(self, model: str, params: dict[str, Any]) -> Message:
        completion = await self._client.chat.completions.create(model=model, **to_openai_request(params))
        return from_openai_completion(completion)

    async def stream(self, model: str, params: dict[str, Any]) -> EventStream:
        chunks = await self._client.chat.completions.create(
            model=model, stream=True, stream_options={"include_usage": True}, **to_openai_request(params)
        )
        return AnthropicEventsFromChunks(chunks)
