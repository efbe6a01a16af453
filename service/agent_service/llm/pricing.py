"""The one pricing table: USD per million tokens, by model family, and the cost of one call.

Prices are Anthropic's published list prices for the 4.x families (https://www.anthropic.com/pricing);
cache writes cost 1.25x input (5-minute TTL) and cache reads 0.1x input. A model is priced by the
longest family its name contains (so Bedrock's `us.anthropic.claude-sonnet-4-5-...-v1:0` and Vertex's
`claude-sonnet-4-5@20250929` are priced as Claude Sonnet); an unknown model is priced like the most
expensive family, so the cost budget errs towards refusing rather than overspending. A chain entry's
`pricing` (spec.model.pricing) replaces the table for that entry: self-hosted or discounted models.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    """USD per million tokens; cache prices default to Anthropic's ratios of the input price."""

    input: float
    output: float
    cache_read_price: float | None = None
    cache_write_price: float | None = None

    @property
    def cache_write(self) -> float:
        return self.input * 1.25 if self.cache_write_price is None else self.cache_write_price

    @property
    def cache_read(self) -> float:
        return self.input * 0.1 if self.cache_read_price is None else self.cache_read_price


PRICES_PER_MTOK: dict[str, Price] = {
    "claude-opus": Price(input=5.0, output=25.0),
    "claude-sonnet": Price(input=3.0, output=15.0),
    "claude-haiku": Price(input=1.0, output=5.0),
    "stub": Price(input=0.0, output=0.0),
}
_MOST_EXPENSIVE = max(PRICES_PER_MTOK.values(), key=lambda p: p.output)


@dataclass(frozen=True)
class Usage:
    """Token counts of one call, named like the `kind` label of agent_llm_tokens_total."""

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def total(self) -> int:
        return self.input + self.output + self.cache_read + self.cache_write

    def as_kinds(self) -> dict[str, int]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
        }


def price_of(model: str) -> Price:
    family = max((f for f in PRICES_PER_MTOK if f in model), key=len, default=None)
    return PRICES_PER_MTOK[family] if family else _MOST_EXPENSIVE


def cost_usd(model: str, usage: Usage, override: Price | None = None) -> float:
    price = override or price_of(model)
    return (
        usage.input * price.input
        + usage.output * price.output
        + usage.cache_read * price.cache_read
        + usage.cache_write * price.cache_write
    ) / 1_000_000
