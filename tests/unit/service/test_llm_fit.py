"""Context that fits: trim the oldest exchanges (system prompt, tools, tool-call pairs intact) or refuse."""

from __future__ import annotations

import json

import pytest
from agent_service.llm.budget import estimate_tokens
from agent_service.llm.errors import ContextTooLongError
from agent_service.llm.fit import FIT_MARGIN, Overflow, fit, input_limit
from agent_service.llm.messages import to_anthropic_request
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage


def thread(turns: int) -> dict:
    messages = [SystemMessage("You are careful.")]
    for i in range(turns):
        messages += [
            HumanMessage(f"question {i} " + "word " * 30),
            AIMessage("", tool_calls=[{"name": "search", "args": {"q": str(i)}, "id": f"c{i}"}]),
            ToolMessage("result " * 30, tool_call_id=f"c{i}"),
            AIMessage(f"answer {i} " + "word " * 30),
        ]
    messages.append(HumanMessage("the newest question"))
    tools = [{"name": "search", "description": "s", "input_schema": {"type": "object", "properties": {}}}]
    return {"max_tokens": 1024, "tools": tools, **to_anthropic_request(messages)}


def test_known_defaults_and_configured_limits() -> None:
    assert input_limit("claude-sonnet-4-5", None) == 200_000
    assert input_limit("us.anthropic.claude-haiku-4-5-v1:0", None) == 200_000
    assert input_limit("gpt-4o-mini", None) == 128_000
    assert input_limit("my-own-model", None) is None
    assert input_limit("my-own-model", 8000) == 8000


def test_a_300_turn_thread_is_trimmed_under_the_limit_with_pairs_intact() -> None:
    params = thread(300)
    trimmed, dropped = fit(params, "claude", 20_000, Overflow.trim)

    assert dropped > 0
    assert estimate_tokens(json.dumps(trimmed)) <= (20_000 - 1024) * FIT_MARGIN + 1
    assert trimmed["system"] == params["system"]
    assert trimmed["tools"] == params["tools"]
    turns = trimmed["messages"]
    assert turns[0]["role"] == "user"
    assert all(block["type"] != "tool_result" for block in turns[0]["content"])
    assert turns[-1] == params["messages"][-1]
    uses = [b["id"] for t in turns for b in t["content"] if b["type"] == "tool_use"]
    results = [b["tool_use_id"] for t in turns for b in t["content"] if b["type"] == "tool_result"]
    assert uses == results


def test_what_fits_is_left_alone_and_no_limit_means_no_trimming() -> None:
    params = thread(3)
    assert fit(params, "claude", 200_000, Overflow.trim) == (params, 0)
    assert fit(thread(300), "mine", None, Overflow.trim)[1] == 0


def test_refuse_mode_and_a_newest_turn_too_long_for_any_trim() -> None:
    with pytest.raises(ContextTooLongError, match="over the 2764 that claude accepts"):
        fit(thread(50), "claude", 4096, Overflow.refuse)
    huge = {"max_tokens": 10, "messages": [{"role": "user", "content": "x " * 50_000}]}
    with pytest.raises(ContextTooLongError):
        fit(huge, "claude", 4096, Overflow.trim)
