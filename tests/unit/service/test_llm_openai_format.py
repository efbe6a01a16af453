"""Messages <-> Chat Completions translation, both directions, with the real SDKs' types."""

from __future__ import annotations

import json

from agent_service.llm.openai_format import (
    AnthropicEventsFromChunks,
    ChunksFromAnthropicEvents,
    from_openai_completion,
    from_openai_request,
    to_openai_completion,
    to_openai_request,
)
from agent_service.llm.stream import MessageAccumulator, message_events
from anthropic.types import Message
from openai.types.chat import ChatCompletion, ChatCompletionChunk

SEARCH_X = {"name": "search", "arguments": '{"q":"x"}'}
PARAMS = {
    "max_tokens": 256,
    "system": "Be brief.",
    "temperature": 0,
    "stop_sequences": ["END"],
    "tools": [
        {"name": "search", "description": "Search.", "input_schema": {"type": "object", "properties": {}}}
    ],
    "tool_choice": {"type": "any"},
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "find slo"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "c1", "name": "search", "input": {"q": "slo"}}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "c1", "content": "an objective"}],
        },
    ],
}


def test_a_messages_request_survives_the_round_trip_through_chat_completions() -> None:
    request = to_openai_request(PARAMS)
    assert request["messages"][0] == {"role": "system", "content": "Be brief."}
    assert request["messages"][2]["tool_calls"][0]["function"] == {
        "name": "search",
        "arguments": '{"q": "slo"}',
    }
    assert request["messages"][3] == {"role": "tool", "tool_call_id": "c1", "content": "an objective"}
    assert (request["tool_choice"], request["stop"]) == ("required", ["END"])

    back = from_openai_request(request, default_max_tokens=1)
    assert back["system"] == PARAMS["system"]
    assert back["tools"] == PARAMS["tools"]
    assert back["tool_choice"] == PARAMS["tool_choice"]
    assert back["messages"][1:] == PARAMS["messages"][1:]
    assert back["messages"][0]["content"] == [{"type": "text", "text": "find slo"}]
    assert (back["max_tokens"], back["temperature"], back["stop_sequences"]) == (256, 0, ["END"])


def test_completions_become_messages_and_back_with_usage_and_cached_tokens() -> None:
    completion = ChatCompletion.model_validate(
        {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": "c2", "type": "function", "function": SEARCH_X}],
            }}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 7, "total_tokens": 107,
                      "prompt_tokens_details": {"cached_tokens": 40}},
        }
    )  # fmt: skip
    message = from_openai_completion(completion)
    assert message.stop_reason == "tool_use"
    assert message.content[0].input == {"q": "x"}
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (60, 40)

    again = to_openai_completion(message)
    assert again["choices"][0]["finish_reason"] == "tool_calls"
    assert again["usage"]["prompt_tokens"] == 100
    assert json.loads(again["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]) == {"q": "x"}


class _Chunks:
    def __init__(self, chunks: list[dict]) -> None:
        self.items = [ChatCompletionChunk.model_validate(c) for c in chunks]

    def __aiter__(self):
        return self._iterate()

    async def _iterate(self):
        for item in self.items:
            yield item

    async def close(self) -> None: ...


async def test_a_chat_completions_stream_reads_as_messages_events() -> None:
    base = {"id": "chatcmpl-2", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}

    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    opened = {**SEARCH_X, "arguments": ""}
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Let me "}),
        chunk({"content": "look."}),
        chunk({"tool_calls": [{"index": 0, "id": "c3", "type": "function", "function": opened}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"x"}'}}]}),
        chunk({}, "tool_calls"),
        {**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}},
    ]  # fmt: skip
    answer = MessageAccumulator()
    async for item in AnthropicEventsFromChunks(_Chunks(chunks)):
        answer.observe(item)
    message = answer.message()
    assert message is not None
    assert [b.type for b in message.content] == ["text", "tool_use"]
    assert message.content[0].text == "Let me look."
    assert message.content[1].input == {"q": "x"}
    assert (message.stop_reason, message.usage.input_tokens, message.usage.output_tokens) == (
        "tool_use",
        10,
        4,
    )


def test_messages_events_write_as_chat_completion_chunks_with_usage() -> None:
    message = Message.model_validate(
        {"id": "m1", "type": "message", "role": "assistant", "model": "claude", "stop_reason": "end_turn",
         "content": [{"type": "text", "text": "hello there"}],
         "usage": {"input_tokens": 5, "output_tokens": 2}}
    )  # fmt: skip
    writer = ChunksFromAnthropicEvents(include_usage=True)
    chunks = [c for item in message_events(message) for c in writer.chunks(item)]
    parsed = [ChatCompletionChunk.model_validate(c) for c in chunks]
    assert "".join(c.choices[0].delta.content or "" for c in parsed if c.choices) == "hello there"
    assert parsed[-2].choices[0].finish_reason == "stop"
    assert parsed[-1].usage.prompt_tokens == 5
