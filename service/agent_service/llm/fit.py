"""Context that fits: a request whose messages exceed the model's input limit is trimmed (oldest turns
first) or refused, instead of being sent for the provider to reject.

The limit is the entry's `max_input_tokens` (spec.model.maxInputTokens) or the model's known context
window below, less the answer's `max_tokens`; a model with neither has no limit. Tokens are estimated
from the request's JSON size (llm/budget.py `estimate_tokens`), with a margin for the estimate's error.

Trimming keeps the system prompt and the tools, and cuts only before a user turn that starts a new
exchange (text, no tool results): a tool call and its result are always kept or dropped together,
and the request still starts with a user turn, as the Messages API requires.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from agent_service.llm.budget import estimate_tokens
from agent_service.llm.errors import ContextTooLongError

#: Context windows by model family (the longest family contained in the name wins).
KNOWN_INPUT_LIMITS: dict[str, int] = {
    "claude": 200_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 272_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}
#: Share of the limit a trimmed request may fill: the character-based estimate can be low.
FIT_MARGIN = 0.9


class Overflow(StrEnum):
    trim = "trim"
    refuse = "refuse"


def input_limit(model: str, configured: int | None) -> int | None:
    if configured:
        return configured
    family = max((f for f in KNOWN_INPUT_LIMITS if f in model), key=len, default=None)
    return KNOWN_INPUT_LIMITS[family] if family else None


def _size(value: Any) -> int:
    return estimate_tokens(json.dumps(value, default=str))


def _starts_exchange(turn: dict[str, Any]) -> bool:
    if turn["role"] != "user":
        return False
    content = turn["content"]
    return isinstance(content, str) or not any(block.get("type") == "tool_result" for block in content)


def fit(
    params: dict[str, Any], model: str, limit: int | None, overflow: Overflow
) -> tuple[dict[str, Any], int]:
    """`params` within `limit` and how many messages were dropped; ContextTooLongError when impossible."""
    if not limit:
        return params, 0
    budget = int((limit - params.get("max_tokens", 0)) * FIT_MARGIN)
    messages = params["messages"]
    fixed = _size({k: v for k, v in params.items() if k != "messages"})
    sizes = [_size(turn) for turn in messages]
    total = fixed + sum(sizes)
    if total <= budget:
        return params, 0
    if overflow is Overflow.refuse:
        raise ContextTooLongError(model, total, budget)
    suffix = total
    for start, turn in enumerate(messages):
        if start and _starts_exchange(turn) and suffix <= budget:
            return {**params, "messages": messages[start:]}, start
        suffix -= sizes[start]
    raise ContextTooLongError(model, total, budget)
