"""Translation between LangChain messages/tools and the Anthropic Messages API shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from anthropic.types import Message, RawMessageStreamEvent
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.utils.function_calling import convert_to_openai_tool

#: llm/client.py DEGRADED_MODEL (not imported: the client imports this module's users).
DEGRADED_MODEL = "shepherd-degraded"


def to_anthropic_tool(tool: Any) -> dict[str, Any]:
    """A LangChain tool (BaseTool, function, pydantic model or dict) as an Anthropic tool definition."""
    if isinstance(tool, dict) and "input_schema" in tool:
        return tool
    function = convert_to_openai_tool(tool)["function"]
    return {
        "name": function["name"],
        "description": function.get("description", ""),
        "input_schema": function.get("parameters", {"type": "object", "properties": {}}),
    }


def to_anthropic_tool_choice(choice: str | dict | None) -> dict[str, Any] | None:
    if choice is None or isinstance(choice, dict):
        return choice
    if choice in ("auto", "any", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def to_anthropic_request(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """`system` and `messages` of a Messages API request; consecutive same-role turns are merged."""
    system = [text_of(m.content) for m in messages if isinstance(m, SystemMessage)]
    turns: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            continue
        role = "assistant" if isinstance(message, AIMessage) else "user"
        blocks = _blocks_of(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    request: dict[str, Any] = {"messages": turns}
    if system:
        request["system"] = "\n\n".join(system)
    return request


def _blocks_of(message: BaseMessage) -> list[dict[str, Any]]:
    if isinstance(message, ToolMessage):
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": text_of(message.content),
                "is_error": message.status == "error",
            }
        ]
    blocks = [{"type": "text", "text": text} for text in [text_of(message.content)] if text]
    if isinstance(message, AIMessage):
        blocks += [
            {"type": "tool_use", "id": call["id"], "name": call["name"], "input": call["args"]}
            for call in message.tool_calls
        ]
    return blocks or [{"type": "text", "text": "(empty)"}]


def text_of(content: str | list[Any]) -> str:
    if isinstance(content, str):
        return content
    parts = [
        p if isinstance(p, str) else p.get("text", "")
        for p in content
        if isinstance(p, str) or p.get("type") == "text"
    ]
    return "".join(parts)


def usage_metadata(input_tokens: int, output_tokens: int) -> UsageMetadata:
    return UsageMetadata(
        input_tokens=input_tokens, output_tokens=output_tokens, total_tokens=input_tokens + output_tokens
    )


def from_anthropic_message(message: Message) -> AIMessage:
    text = "".join(block.text for block in message.content if block.type == "text")
    tool_calls = [
        {"name": b.name, "args": b.input, "id": b.id, "type": "tool_call"}
        for b in message.content
        if b.type == "tool_use"
    ]
    return AIMessage(
        content=text,
        tool_calls=tool_calls,
        id=message.id,
        usage_metadata=usage_metadata(message.usage.input_tokens, message.usage.output_tokens),
        response_metadata={
            "model_name": message.model,
            "stop_reason": message.stop_reason,
            "degraded": message.model == DEGRADED_MODEL,
        },
    )


class StreamTranslator:
    """Turns raw stream events into AIMessageChunks (None for events that carry nothing for LangChain)."""

    def __init__(self) -> None:
        self.message_id: str | None = None
        self.model: str | None = None
        self.input_tokens = 0

    def chunk(self, event: RawMessageStreamEvent) -> AIMessageChunk | None:
        if event.type == "message_start":
            self.message_id, self.model = event.message.id, event.message.model
            self.input_tokens = event.message.usage.input_tokens
            return None
        if event.type == "content_block_start" and event.content_block.type == "tool_use":
            block = event.content_block
            return self._chunk(
                tool_call_chunks=[{"name": block.name, "id": block.id, "args": "", "index": event.index}]
            )
        if event.type == "content_block_delta" and event.delta.type == "text_delta":
            return self._chunk(content=event.delta.text)
        if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
            return self._chunk(
                tool_call_chunks=[
                    {"name": None, "id": None, "args": event.delta.partial_json, "index": event.index}
                ]
            )
        if event.type == "message_delta":
            # Usage once, complete: chunk addition sums usage, so earlier partial counts would double.
            return self._chunk(
                usage_metadata=usage_metadata(self.input_tokens, event.usage.output_tokens),
                response_metadata={"model_name": self.model, "stop_reason": event.delta.stop_reason},
                chunk_position="last",
            )
        return None

    def _chunk(self, content: str = "", **fields: Any) -> AIMessageChunk:
        return AIMessageChunk(content=content, id=self.message_id, **fields)
