"""The offline stub model as a chain entry: the stub's policy (llm/stub.py) in Messages shapes."""

from __future__ import annotations

from typing import Any

from anthropic.types import Message
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from agent_service.llm.messages import text_of
from agent_service.llm.stream import ReplayStream
from agent_service.llm.stub import STUB_MODEL, stub_reply


def _langchain_messages(params: dict[str, Any]) -> list[BaseMessage]:
    messages: list[BaseMessage] = []
    for turn in params["messages"]:
        content = turn["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if turn["role"] == "assistant":
            messages.append(AIMessage(text_of(blocks)))
            continue
        for block in blocks:
            if block["type"] == "tool_result":
                messages.append(
                    ToolMessage(text_of(block.get("content") or ""), tool_call_id=block["tool_use_id"])
                )
        if text := text_of(blocks):
            messages.append(HumanMessage(text))
    return messages


def _to_message(reply: AIMessage) -> Message:
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [
        {"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["args"]} for c in reply.tool_calls
    ]
    usage = reply.usage_metadata or {"input_tokens": 0, "output_tokens": 0}
    return Message.model_validate(
        {
            "id": reply.id,
            "type": "message",
            "role": "assistant",
            "model": STUB_MODEL,
            "content": content or [{"type": "text", "text": ""}],
            "stop_reason": reply.response_metadata["stop_reason"],
            "stop_sequence": None,
            "usage": {"input_tokens": usage["input_tokens"], "output_tokens": usage["output_tokens"]},
        }
    )


class StubProvider:
    async def create(self, model: str, params: dict[str, Any]) -> Message:
        return _to_message(stub_reply(_langchain_messages(params), params.get("tools") or []))

    async def stream(self, model: str, params: dict[str, Any]) -> ReplayStream:
        return ReplayStream(await self.create(model, params))
