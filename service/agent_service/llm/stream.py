"""Messages API streams as values: the final message of a stream, and the stream of a final message.

A cached, degraded or stub answer is replayed as the events a streaming caller expects; a streamed
answer is assembled into the message the response cache keeps.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

_EVENT = TypeAdapter(RawMessageStreamEvent)
_WORDS = re.compile(r"\S+\s*")


def event(data: dict[str, Any]) -> RawMessageStreamEvent:
    return _EVENT.validate_python(data)


def text_message(text: str, model: str, *, input_tokens: int = 0, output_tokens: int = 0) -> Message:
    return Message.model_validate(
        {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    )


def message_events(message: Message) -> Iterator[RawMessageStreamEvent]:
    """The events that stream `message`: text word by word, tool input as one JSON delta."""
    start = message.model_dump(mode="json", exclude_none=True)
    start.update(content=[], stop_reason=None, stop_sequence=None)
    start["usage"] = {**start["usage"], "output_tokens": 0}
    yield event({"type": "message_start", "message": start})
    for index, block in enumerate(message.content):
        if block.type == "text":
            yield event(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            for word in _WORDS.findall(block.text):
                delta = {"type": "text_delta", "text": word}
                yield event({"type": "content_block_delta", "index": index, "delta": delta})
        elif block.type == "tool_use":
            opened = {"type": "tool_use", "id": block.id, "name": block.name, "input": {}}
            yield event({"type": "content_block_start", "index": index, "content_block": opened})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.input)}
            yield event({"type": "content_block_delta", "index": index, "delta": delta})
        else:
            continue
        yield event({"type": "content_block_stop", "index": index})
    usage = message.usage.model_dump(mode="json", exclude_none=True)
    delta = {"stop_reason": message.stop_reason, "stop_sequence": message.stop_sequence}
    yield event({"type": "message_delta", "delta": delta, "usage": usage})
    yield event({"type": "message_stop"})


class MessageAccumulator:
    """Builds the final message from a stream's text and tool_use blocks (others are not kept)."""

    def __init__(self) -> None:
        self._message: dict[str, Any] | None = None
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json: dict[int, str] = {}

    def observe(self, item: RawMessageStreamEvent) -> None:
        if item.type == "message_start":
            self._message = item.message.model_dump(mode="json", exclude_none=True)
        elif item.type == "content_block_start":
            self._blocks[item.index] = item.content_block.model_dump(mode="json", exclude_none=True)
        elif item.type == "content_block_delta" and item.index in self._blocks:
            if item.delta.type == "text_delta":
                self._blocks[item.index]["text"] = self._blocks[item.index].get("text", "") + item.delta.text
            elif item.delta.type == "input_json_delta":
                self._json[item.index] = self._json.get(item.index, "") + item.delta.partial_json
        elif item.type == "message_delta" and self._message is not None:
            self._message.update(stop_reason=item.delta.stop_reason, stop_sequence=item.delta.stop_sequence)
            self._message["usage"].update(item.usage.model_dump(mode="json", exclude_none=True))

    def message(self) -> Message | None:
        """The message, or None when the stream did not end normally or held other kinds of blocks."""
        if self._message is None or self._message.get("stop_reason") is None:
            return None
        blocks = []
        for index in sorted(self._blocks):
            block = self._blocks[index]
            if block["type"] == "tool_use":
                block = {**block, "input": json.loads(self._json.get(index) or "{}")}
            elif block["type"] != "text":
                return None
            blocks.append(block)
        return Message.model_validate({**self._message, "content": blocks})


class ReplayStream:
    """A finished message served as an open event stream (stub, cache hit, degraded answer)."""

    def __init__(self, message: Message) -> None:
        self.message = message

    def __aiter__(self) -> AsyncIterator[RawMessageStreamEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[RawMessageStreamEvent]:
        for item in message_events(self.message):
            yield item

    async def close(self) -> None:
        return None
