"""The offline model used when no ANTHROPIC_API_KEY is set: deterministic, instant, tool-calling.

Its policy is small and predictable, enough to drive a research agent through a tool loop:
- the last message is a tool result -> answer with it;
- the user asks something and tools are bound -> call one tool once: `calculator`-like tools (a parameter
  named `expression`) for arithmetic, else a search-like tool (name contains "search") for look-ups,
  with the question (or the arithmetic) as the tool's first required argument;
- otherwise -> an answer that restates the question.
Replies stream word by word, so token streaming and time to first token behave as with a real model.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from agent_service.llm.chat_model import ToolBindingMixin
from agent_service.llm.messages import usage_metadata
from agent_service.observability.metrics import LLM_DURATION, LLM_REQUESTS, TTFT, record_llm_usage

STUB_PROVIDER = STUB_MODEL = "stub"
_ARITHMETIC = re.compile(r"[\d.()\s]*\d[\d.()\s]*(?:(?:\*\*|[-+*/%])[\d.()\s]+)+")
_LOOKUP = re.compile(r"\b(what|who|when|where|which|how|why|explain|look|search|find|tell)\b|\?", re.I)


class StubChatModel(ToolBindingMixin, BaseChatModel):
    @property
    def _llm_type(self) -> str:
        return "shepherd-stub"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(
            generations=[ChatGeneration(message=self._reply(messages, kwargs.get("tools") or []))]
        )

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return self._generate(messages, stop, **kwargs)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        started = time.perf_counter()
        reply = self._reply(messages, kwargs.get("tools") or [])
        words = re.findall(r"\S+\s*", reply.content) or [""]
        for i, word in enumerate(words):
            if i == 0:
                TTFT.observe(time.perf_counter() - started)
            yield ChatGenerationChunk(message=AIMessageChunk(content=word, id=reply.id))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                id=reply.id,
                tool_calls=reply.tool_calls,
                usage_metadata=reply.usage_metadata,
                response_metadata=reply.response_metadata,
                chunk_position="last",
            )
        )

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        for chunk in self._stream(messages, stop, **kwargs):
            yield chunk

    def _reply(self, messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
        started = time.perf_counter()
        reply = stub_reply(messages, tools)
        usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
        LLM_REQUESTS.labels(STUB_PROVIDER, STUB_MODEL, "success").inc()
        LLM_DURATION.labels(STUB_PROVIDER, STUB_MODEL).observe(time.perf_counter() - started)
        tokens = {"input": usage["input_tokens"], "output": usage["output_tokens"]}
        record_llm_usage(STUB_PROVIDER, STUB_MODEL, tokens, 0.0)
        return reply


def stub_reply(messages: list[BaseMessage], tools: list[dict[str, Any]]) -> AIMessage:
    """The stub's answer to `messages` with `tools` (Anthropic tool definitions) bound; no side effects."""
    last = messages[-1] if messages else HumanMessage("")
    question = last.text
    tool_call = None if isinstance(last, ToolMessage) else _choose_tool_call(question, tools)
    if isinstance(last, ToolMessage):
        text = f"Here is what I found: {last.text}"
    elif tool_call:
        text = ""
    else:
        text = f"(offline stub model) You asked: {question}"
    digest = hashlib.sha256(f"{len(messages)}:{question}".encode()).hexdigest()[:16]
    input_tokens = sum(len(m.text.split()) for m in messages)
    output_tokens = len(text.split()) + (1 if tool_call else 0)
    return AIMessage(
        content=text,
        id=f"msg_stub_{digest}",
        tool_calls=[{**tool_call, "id": f"toolu_stub_{digest}", "type": "tool_call"}] if tool_call else [],
        usage_metadata=usage_metadata(input_tokens, output_tokens),
        response_metadata={"model_name": STUB_MODEL, "stop_reason": "tool_use" if tool_call else "end_turn"},
    )


def _choose_tool_call(question: str, tools: list[dict[str, Any]]) -> dict[str, Any] | None:
    arithmetic = _ARITHMETIC.search(question)
    for tool in tools:
        if arithmetic and "expression" in tool["input_schema"].get("properties", {}):
            return {"name": tool["name"], "args": {"expression": arithmetic.group(0).strip()}}
    if not _LOOKUP.search(question):
        return None
    for tool in sorted(tools, key=lambda t: "search" not in t["name"]):
        schema = tool["input_schema"]
        argument = next(iter(schema.get("required") or schema.get("properties") or []), None)
        if argument:
            return {"name": tool["name"], "args": {argument: question}}
    return None
