"""The fallback chain as a LangChain chat model, every call going through the resilient client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict

from agent_service.llm.client import ResilientLLM
from agent_service.llm.messages import (
    StreamTranslator,
    from_anthropic_message,
    to_anthropic_request,
    to_anthropic_tool,
    to_anthropic_tool_choice,
)


class ToolBindingMixin:
    """`bind_tools` in Anthropic's tool format, shared by the real and the stub model."""

    def bind_tools(
        self, tools: Sequence[Any], *, tool_choice: str | dict | None = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        choice = to_anthropic_tool_choice(tool_choice)
        if choice is not None:
            kwargs["tool_choice"] = choice
        return self.bind(tools=[to_anthropic_tool(t) for t in tools], **kwargs)  # type: ignore[attr-defined]


class AnthropicChatModel(ToolBindingMixin, BaseChatModel):
    """Async only: the service runs graphs on an event loop, and the client's pools belong to it."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    llm: ResilientLLM
    max_tokens: int = 1024
    temperature: float | None = None

    @property
    def _llm_type(self) -> str:
        return "shepherd-anthropic"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"models": [r.circuit for r in self.llm.config.routes], "max_tokens": self.max_tokens}

    def _params(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any]) -> dict:
        params = {"max_tokens": self.max_tokens, **to_anthropic_request(messages), **kwargs}
        if stop:
            params["stop_sequences"] = stop
        if self.temperature is not None:
            params.setdefault("temperature", self.temperature)
        return params

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise NotImplementedError("AnthropicChatModel is async only: use ainvoke/astream (graphs run async)")

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = await self.llm.create(self._params(messages, stop, kwargs))
        return ChatResult(generations=[ChatGeneration(message=from_anthropic_message(message))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        translator = StreamTranslator()
        async for event in self.llm.stream(self._params(messages, stop, kwargs)):
            chunk = translator.chunk(event)
            if chunk is not None:
                yield ChatGenerationChunk(message=chunk)
