"""Translation between Anthropic's Messages shapes (the resilient client's own) and OpenAI's Chat
Completions, both ways: the `openai` provider sends Messages requests to a Chat Completions endpoint,
and the gateway's Chat Completions route serves OpenAI-SDK graphs from the Messages-speaking chain.

Covered: system/developer prompts, text and image parts, tool definitions, tool choice, tool calls and
results, stop sequences, temperature/top_p, usage (OpenAI's cached prompt tokens as cache reads) and
streaming with usage. Not covered (dropped): n > 1, logprobs, response_format, audio.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from anthropic.types import Message, RawMessageStreamEvent

from agent_service.llm.stream import event

_FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_STOP_TO_FINISH = {
    "end_turn": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "stop_sequence": "stop",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


# ------------------------------------------------------------------ Messages request -> Chat Completions


def to_openai_request(params: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if system := _text(params.get("system")):
        messages.append({"role": "system", "content": system})
    for turn in params["messages"]:
        messages.extend(_openai_turns(turn))
    request: dict[str, Any] = {"messages": messages, "max_tokens": params["max_tokens"]}
    for name in ("temperature", "top_p"):
        if name in params:
            request[name] = params[name]
    if params.get("stop_sequences"):
        request["stop"] = params["stop_sequences"]
    if params.get("tools"):
        request["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    "description": tool.get("description", ""),
                    "parameters": tool.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
            for tool in params["tools"]
        ]
    if choice := params.get("tool_choice"):
        request["tool_choice"] = (
            {"type": "function", "function": {"name": choice["name"]}}
            if choice["type"] == "tool"
            else {"auto": "auto", "any": "required", "none": "none"}[choice["type"]]
        )
    return request


def _openai_turns(turn: dict[str, Any]) -> Iterator[dict[str, Any]]:
    content = turn["content"]
    if isinstance(content, str):
        yield {"role": turn["role"], "content": content}
        return
    if turn["role"] == "assistant":
        calls = [
            {
                "id": b["id"],
                "type": "function",
                "function": {"name": b["name"], "arguments": json.dumps(b["input"])},
            }
            for b in content
            if b["type"] == "tool_use"
        ]
        message: dict[str, Any] = {"role": "assistant", "content": _text(content) or None}
        if calls:
            message["tool_calls"] = calls
        yield message
        return
    parts = []
    for block in content:
        if block["type"] == "tool_result":
            yield {
                "role": "tool",
                "tool_call_id": block["tool_use_id"],
                "content": _text(block.get("content")),
            }
        elif block["type"] == "text":
            parts.append({"type": "text", "text": block["text"]})
        elif block["type"] == "image" and block["source"]["type"] == "base64":
            source = block["source"]
            url = f"data:{source['media_type']};base64,{source['data']}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        elif block["type"] == "image":
            parts.append({"type": "image_url", "image_url": {"url": block["source"]["url"]}})
    if parts:
        all_text = all(p["type"] == "text" for p in parts)
        yield {"role": "user", "content": "".join(p["text"] for p in parts) if all_text else parts}


def from_openai_completion(completion: Any) -> Message:
    choice = completion.choices[0]
    content: list[dict[str, Any]] = []
    if choice.message.content:
        content.append({"type": "text", "text": choice.message.content})
    for call in choice.message.tool_calls or []:
        arguments = json.loads(call.function.arguments or "{}")
        content.append({"type": "tool_use", "id": call.id, "name": call.function.name, "input": arguments})
    return Message.model_validate(
        {
            "id": completion.id,
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": content or [{"type": "text", "text": ""}],
            "stop_reason": _FINISH_TO_STOP.get(choice.finish_reason or "stop", "end_turn"),
            "stop_sequence": None,
            "usage": _anthropic_usage(completion.usage),
        }
    )


def _anthropic_usage(usage: Any) -> dict[str, int]:
    """OpenAI counts cached prompt tokens inside prompt_tokens; Anthropic counts them apart."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    details = getattr(usage, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details else 0
    return {
        "input_tokens": usage.prompt_tokens - cached,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": cached,
    }


class AnthropicEventsFromChunks:
    """A Chat Completions stream read as Messages API events (message_start ... message_stop)."""

    def __init__(self, chunks: Any) -> None:
        self._chunks = chunks
        self._index = -1  # content block being written
        self._open: str | None = None  # its kind: "text" or the tool call's index
        self._stop = "end_turn"
        self._usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}

    async def close(self) -> None:
        await self._chunks.close()

    def __aiter__(self) -> AsyncIterator[RawMessageStreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[RawMessageStreamEvent]:
        started = False
        async for chunk in self._chunks:
            if not started:
                started = True
                message = {"id": chunk.id, "type": "message", "role": "assistant", "model": chunk.model,
                           "content": [], "stop_reason": None, "stop_sequence": None,
                           "usage": {"input_tokens": 0, "output_tokens": 0}}  # fmt: skip
                yield event({"type": "message_start", "message": message})
            if chunk.usage is not None:
                self._usage = _anthropic_usage(chunk.usage)
            for choice in chunk.choices:
                for item in self._from_delta(choice.delta):
                    yield item
                if choice.finish_reason:
                    self._stop = _FINISH_TO_STOP.get(choice.finish_reason, "end_turn")
        if not started:
            return
        if self._open is not None:
            yield event({"type": "content_block_stop", "index": self._index})
        delta = {"stop_reason": self._stop, "stop_sequence": None}
        yield event({"type": "message_delta", "delta": delta, "usage": self._usage})
        yield event({"type": "message_stop"})

    def _switch_to(self, kind: str, block: dict[str, Any]) -> Iterator[RawMessageStreamEvent]:
        if self._open is not None:
            yield event({"type": "content_block_stop", "index": self._index})
        self._index += 1
        self._open = kind
        yield event({"type": "content_block_start", "index": self._index, "content_block": block})

    def _from_delta(self, delta: Any) -> Iterator[RawMessageStreamEvent]:
        if delta.content:
            if self._open != "text":
                yield from self._switch_to("text", {"type": "text", "text": ""})
            text = {"type": "text_delta", "text": delta.content}
            yield event({"type": "content_block_delta", "index": self._index, "delta": text})
        for call in delta.tool_calls or []:
            if call.id is not None or self._open != str(call.index):
                block = {"type": "tool_use", "id": call.id or f"call_{call.index}",
                         "name": call.function.name if call.function else "", "input": {}}  # fmt: skip
                yield from self._switch_to(str(call.index), block)
            if call.function and call.function.arguments:
                partial = {"type": "input_json_delta", "partial_json": call.function.arguments}
                yield event({"type": "content_block_delta", "index": self._index, "delta": partial})


# ------------------------------------------------------------------ Chat Completions request -> Messages


def from_openai_request(body: dict[str, Any], default_max_tokens: int) -> dict[str, Any]:
    """Messages API params (without model/stream) for a Chat Completions request body."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in body.get("messages") or []:
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_text(message.get("content")))
            continue
        if role == "tool":
            blocks = [{"type": "tool_result", "tool_use_id": message["tool_call_id"],
                       "content": _text(message.get("content"))}]  # fmt: skip
            role = "user"
        else:
            blocks = _anthropic_blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call["function"]
                arguments = json.loads(function.get("arguments") or "{}")
                blocks.append(
                    {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}
                )
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": "assistant" if role == "assistant" else "user", "content": blocks})
    params: dict[str, Any] = {
        "messages": turns,
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens") or default_max_tokens,
    }
    if system:
        params["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            params[name] = body[name]
    if stop := body.get("stop"):
        params["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if tools := body.get("tools"):
        params["tools"] = [
            {
                "name": t["function"]["name"],
                "description": t["function"].get("description", ""),
                "input_schema": t["function"].get("parameters") or {"type": "object", "properties": {}},
            }
            for t in tools
            if t.get("type", "function") == "function"
        ]
    if (choice := body.get("tool_choice")) is not None and tools:
        params["tool_choice"] = (
            {"type": "tool", "name": choice["function"]["name"]}
            if isinstance(choice, dict)
            else {"type": {"auto": "auto", "required": "any", "none": "none"}[choice]}
        )
    return params


def _anthropic_blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks = []
    for part in content:
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            url = part["image_url"]["url"]
            if url.startswith("data:"):
                media_type, _, data = url[5:].partition(";base64,")
                blocks.append(
                    {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
                )
            else:
                blocks.append({"type": "image", "source": {"type": "url", "url": url}})
    return blocks


def _openai_usage(usage: Any) -> dict[str, int]:
    prompt = (
        usage.input_tokens + (usage.cache_read_input_tokens or 0) + (usage.cache_creation_input_tokens or 0)
    )
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output_tokens,
        "total_tokens": prompt + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read_input_tokens or 0},
    }


def to_openai_completion(message: Message) -> dict[str, Any]:
    text = "".join(b.text for b in message.content if b.type == "text")
    calls = [
        {"id": b.id, "type": "function", "function": {"name": b.name, "arguments": json.dumps(b.input)}}
        for b in message.content
        if b.type == "tool_use"
    ]
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": message.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": message.model,
        "choices": [{"index": 0, "message": reply, "finish_reason": _finish(message.stop_reason)}],
        "usage": _openai_usage(message.usage),
    }


def _finish(stop_reason: str | None) -> str:
    return _STOP_TO_FINISH.get(stop_reason or "end_turn", "stop")


class ChunksFromAnthropicEvents:
    """Messages API events written as chat.completion.chunk objects (the final usage chunk on request)."""

    def __init__(self, *, include_usage: bool) -> None:
        self.include_usage = include_usage
        self._base: dict[str, Any] = {}
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index
        self._usage: Any = None

    def chunks(self, item: RawMessageStreamEvent) -> Iterator[dict[str, Any]]:
        if item.type == "message_start":
            self._base = {"id": item.message.id, "object": "chat.completion.chunk",
                          "created": int(time.time()), "model": item.message.model}  # fmt: skip
            self._usage = item.message.usage.model_copy()
            yield self._chunk({"role": "assistant", "content": ""})
        elif item.type == "content_block_start" and item.content_block.type == "tool_use":
            index = self._tool_index[item.index] = len(self._tool_index)
            call = {"index": index, "id": item.content_block.id, "type": "function",
                    "function": {"name": item.content_block.name, "arguments": ""}}  # fmt: skip
            yield self._chunk({"tool_calls": [call]})
        elif item.type == "content_block_delta" and item.delta.type == "text_delta":
            yield self._chunk({"content": item.delta.text})
        elif item.type == "content_block_delta" and item.delta.type == "input_json_delta":
            call = {
                "index": self._tool_index.get(item.index, 0),
                "function": {"arguments": item.delta.partial_json},
            }
            yield self._chunk({"tool_calls": [call]})
        elif item.type == "message_delta":
            self._usage.output_tokens = item.usage.output_tokens
            if item.usage.input_tokens is not None:
                self._usage.input_tokens = item.usage.input_tokens
            yield self._chunk({}, finish_reason=_finish(item.delta.stop_reason))
            if self.include_usage:
                yield {**self._base, "choices": [], "usage": _openai_usage(self._usage)}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        return {**self._base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}]}
