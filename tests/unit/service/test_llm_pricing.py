"""The pricing table and per-call cost."""

from __future__ import annotations

import pytest
from agent_service.llm.pricing import PRICES_PER_MTOK, Usage, cost_usd, price_of


def test_models_are_priced_by_family() -> None:
    assert price_of("claude-sonnet-4-6") == PRICES_PER_MTOK["claude-sonnet"]
    assert price_of("claude-haiku-4-5-20251001") == PRICES_PER_MTOK["claude-haiku"]
    assert price_of("claude-opus-4-5") == PRICES_PER_MTOK["claude-opus"]


def test_unknown_models_are_priced_conservatively() -> None:
    most_expensive = max(p.output for p in PRICES_PER_MTOK.values())
    assert price_of("some-new-model").output == most_expensive


def test_cost_counts_every_token_kind() -> None:
    usage = Usage(input=1_000_000, output=1_000_000, cache_read=1_000_000, cache_write=1_000_000)
    # sonnet: 3 in + 15 out + 0.3 cache read + 3.75 cache write
    assert cost_usd("claude-sonnet-4-6", usage) == pytest.approx(22.05)
    assert cost_usd("claude-haiku-4-5", Usage(input=2000, output=500)) == pytest.approx(0.0045)
    assert usage.total == 4_000_000
