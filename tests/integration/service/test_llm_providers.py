"""The fallback chain across providers, each through its real SDK against its fake (tests/fakes/):
anthropic (Anthropic API), bedrock (SigV4-signed, event-stream), vertex (google-auth tokens) and openai
(Chat Completions). Failover on outage, 429 and timeout; circuits per provider and model; tokens and
cost on the entry that answered; context that fits; the response cache in a real Redis; degraded replies.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest
from agent_service.llm.budget import BudgetPolicy
from agent_service.llm.chat_model import AnthropicChatModel
from agent_service.llm.circuit import CircuitPolicy, CircuitState
from agent_service.llm.client import DEGRADED_REASON, LLMConfig, ResilientLLM
from agent_service.llm.errors import AllModelsFailedError, ContextTooLongError
from agent_service.llm.fit import Overflow
from agent_service.llm.pricing import Price
from agent_service.llm.retry import RetryPolicy
from agent_service.llm.routes import ModelRoute
from agent_service.observability.context import RequestContext, current_request, enter_request
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from redis.asyncio import Redis

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import FakeBedrock
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.prom import scrape
from tests.fakes.vertex_server import FakeVertex

QUESTION = [HumanMessage("What is an SLO?")]
OUTAGE = {"kind": "status", "status": 503, "times": 1000}


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, object]]:
    servers = {
        "anthropic": FakeAnthropic(),
        "bedrock": FakeBedrock(),
        "vertex": FakeVertex(),
        "openai": FakeOpenAI(),
    }
    for server in servers.values():
        server.start()
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(autouse=True)
def clean(fakes: dict) -> None:
    for server in fakes.values():
        server.state.reset()
    enter_request(RequestContext(request_id=uuid.uuid4().hex, tenant=f"t-{uuid.uuid4().hex[:6]}"))


def unique(name: str) -> str:
    """Model names unique per test, so each test's metric series start at zero."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


class Chain:
    """A chat model over `routes`, retry sleeps recorded instead of waited."""

    def __init__(self, routes: tuple[ModelRoute, ...], redis: Redis | None = None, **config: object) -> None:
        self.sleeps: list[float] = []
        defaults = {
            "timeout_seconds": 5.0,
            "retry": RetryPolicy(1, 0.1, 1.0),
            "circuit": CircuitPolicy(5, 30, 1),
        }
        self.llm = ResilientLLM(
            LLMConfig(routes=routes, **{**defaults, **config}), redis=redis, sleep=self._sleep
        )
        self.model = AnthropicChatModel(llm=self.llm)
        self.routes = routes

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def circuit(self, index: int) -> CircuitState:
        return self.llm.circuits.get(self.routes[index].circuit).state


def three(fakes: dict) -> tuple[ModelRoute, ModelRoute, ModelRoute]:
    return (
        fakes["anthropic"].route(unique("claude-sonnet-4-5")),
        fakes["bedrock"].route(unique("us.anthropic.claude-haiku-4-5-v1:0")),
        fakes["openai"].route(unique("gpt-4o-mini")),
    )


async def test_an_outage_fails_over_to_the_next_provider_which_is_charged(fakes: dict) -> None:
    anthropic, bedrock, _openai = routes = three(fakes)
    fakes["anthropic"].state.add_faults(OUTAGE)
    chain = Chain(routes)

    reply = await chain.model.ainvoke(QUESTION)

    assert reply.content == "The fake model says hello."
    assert reply.response_metadata["model_name"] == bedrock.model
    assert fakes["anthropic"].request_count == 2, "one attempt and one retry"
    assert fakes["bedrock"].state.models() == [bedrock.model]
    assert fakes["openai"].request_count == 0
    metrics = await scrape()
    assert (
        metrics.value(
            "agent_llm_requests_total", provider="anthropic", model=anthropic.model, outcome="error"
        )
        == 2
    )
    assert (
        metrics.value("agent_llm_requests_total", provider="bedrock", model=bedrock.model, outcome="success")
        == 1
    )
    assert (
        metrics.value("agent_llm_tokens_total", provider="bedrock", model=bedrock.model, kind="output") == 5
    )
    assert metrics.value("agent_llm_cost_usd_total", provider="bedrock", model=bedrock.model) > 0
    assert (
        metrics.value("agent_llm_tokens_total", provider="anthropic", model=anthropic.model, kind="output")
        == 0
    )
    assert current_request().tokens_used > 0, "the answer counts against the request's budget"


async def test_rate_limits_move_along_the_chain_to_openai(fakes: dict) -> None:
    anthropic, bedrock, openai = routes = three(fakes)
    # A retry-after beyond the backoff cap ends the retries of that entry at once.
    for name in ("anthropic", "bedrock"):
        fakes[name].state.add_faults({"kind": "status", "status": 429, "retry_after": 30, "times": 10})
    chain = Chain(routes)

    reply = await chain.model.ainvoke(QUESTION)

    assert reply.response_metadata["model_name"] == openai.model
    assert chain.sleeps == []
    metrics = await scrape()
    for route in (anthropic, bedrock):
        labels = {"provider": str(route.provider), "model": route.model}
        assert metrics.value("agent_llm_requests_total", **labels, outcome="rate_limited") == 1
    assert metrics.value("agent_llm_tokens_total", provider="openai", model=openai.model, kind="input") > 0


async def test_a_hanging_provider_times_out_and_the_next_answers_streaming(fakes: dict) -> None:
    anthropic, bedrock, _openai = routes = three(fakes)
    fakes["anthropic"].state.add_faults({"kind": "hang", "seconds": 30, "times": 10})
    fakes["bedrock"].state.add_replies({"tool_use": {"name": "search_notes", "input": {"query": "slo"}}})
    chain = Chain(routes, timeout_seconds=0.5, retry=RetryPolicy(0, 0.1, 1.0))

    chunks = [chunk async for chunk in chain.model.astream(QUESTION)]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk

    assert merged.tool_calls[0]["name"] == "search_notes"
    assert merged.tool_calls[0]["args"] == {"query": "slo"}
    assert fakes["bedrock"].request_count == 1
    metrics = await scrape()
    assert (
        metrics.value(
            "agent_llm_requests_total", provider="anthropic", model=anthropic.model, outcome="timeout"
        )
        == 1
    )
    assert (
        metrics.value("agent_llm_requests_total", provider="bedrock", model=bedrock.model, outcome="success")
        == 1
    )


async def test_openai_streams_text_and_tool_calls_through_the_chain(fakes: dict) -> None:
    route = fakes["openai"].route(unique("gpt-4o"))
    fakes["openai"].state.add_replies({"tool_use": {"name": "calculator", "input": {"expression": "2+2"}}})
    chain = Chain((route,))

    chunks = [chunk async for chunk in chain.model.astream(QUESTION)]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    text = "".join([c.content async for c in chain.model.astream(QUESTION)])

    assert merged.tool_calls[0]["args"] == {"expression": "2+2"}
    assert text.strip() == "The fake model says hello."
    sent = fakes["openai"].state.requests[0]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    metrics = await scrape()
    assert metrics.value("agent_llm_tokens_total", provider="openai", model=route.model, kind="output") == 15


async def test_vertex_answers_with_tokens_google_auth_minted(fakes: dict) -> None:
    vertex = fakes["vertex"].route(unique("claude-sonnet-4-5@20250929"))
    chain = Chain((vertex, fakes["openai"].route(unique("gpt-4o"))))

    reply = await chain.model.ainvoke(QUESTION)
    text = "".join([c.content async for c in chain.model.astream(QUESTION)])

    assert reply.response_metadata["model_name"] == vertex.model
    assert text.strip() == "The fake model says hello."
    assert fakes["vertex"].tokens, "google-auth exchanged the service account key for a token"
    assert fakes["openai"].request_count == 0


async def test_bad_bedrock_credentials_fall_over_and_open_only_that_circuit(fakes: dict) -> None:
    bedrock = fakes["bedrock"].route(unique("anthropic.claude-v1:0"), secret_key="not-the-secret")
    openai = fakes["openai"].route(unique("gpt-4o"))
    chain = Chain((bedrock, openai), circuit=CircuitPolicy(1, 30, 1))

    reply = await chain.model.ainvoke(QUESTION)

    assert reply.response_metadata["model_name"] == openai.model
    assert chain.circuit(0) is CircuitState.OPEN, "the fake refused the signature (403)"
    assert chain.circuit(1) is CircuitState.CLOSED


async def test_circuits_per_provider_open_and_close(fakes: dict) -> None:
    anthropic, bedrock, openai = routes = three(fakes)
    for name in ("anthropic", "bedrock"):
        fakes[name].state.add_faults(OUTAGE)
    # 4 s to half-open: long enough that a busy machine cannot reach it between the steps below.
    chain = Chain(routes, retry=RetryPolicy(0, 0.1, 1.0), circuit=CircuitPolicy(2, 4.0, 1))

    for _ in range(2):
        assert (await chain.model.ainvoke(QUESTION)).response_metadata["model_name"] == openai.model
    assert [chain.circuit(i) for i in range(3)] == [CircuitState.OPEN, CircuitState.OPEN, CircuitState.CLOSED]
    metrics = await scrape()
    assert metrics.value("agent_circuit_state", circuit=anthropic.circuit) == 2
    assert metrics.value("agent_circuit_state", circuit=bedrock.circuit) == 2
    assert metrics.value("agent_circuit_state", circuit=openai.circuit) == 0

    await chain.model.ainvoke(QUESTION)
    assert (fakes["anthropic"].request_count, fakes["bedrock"].request_count) == (2, 2), (
        "open circuits send nothing"
    )

    for name in ("anthropic", "bedrock"):
        fakes[name].state.reset()
    deadline = time.monotonic() + 10
    while chain.circuit(0) is not CircuitState.HALF_OPEN:
        assert time.monotonic() < deadline, "circuit never half-opened"
        await asyncio.sleep(0.05)
    reply = await chain.model.ainvoke(QUESTION)
    assert reply.response_metadata["model_name"] == anthropic.model
    assert chain.circuit(0) is CircuitState.CLOSED
    assert chain.circuit(1) is CircuitState.HALF_OPEN, "bedrock was not needed, so not probed yet"
    assert (await scrape()).value("agent_circuit_state", circuit=anthropic.circuit) == 0


async def test_pricing_override_prices_a_self_hosted_model(fakes: dict) -> None:
    route = fakes["openai"].route(unique("llama-3-70b"))
    priced = ModelRoute(route.provider, route.model, route.base_url, credentials=route.credentials,
                        price=Price(input=1_000_000.0, output=2_000_000.0))  # fmt: skip
    await Chain((priced,)).model.ainvoke(QUESTION)

    metrics = await scrape()
    tokens_in = metrics.value("agent_llm_tokens_total", provider="openai", model=route.model, kind="input")
    tokens_out = metrics.value("agent_llm_tokens_total", provider="openai", model=route.model, kind="output")
    assert metrics.value("agent_llm_cost_usd_total", provider="openai", model=route.model) == pytest.approx(
        tokens_in * 1 + tokens_out * 2
    ), "a dollar per input token and two per output token, as the override says"


def long_thread(turns: int) -> list:
    """`turns` exchanges: a question, a tool call, its result, an answer."""
    messages: list = []
    for i in range(turns):
        messages += [
            HumanMessage(f"question {i}: " + "words " * 20),
            AIMessage(
                "", tool_calls=[{"name": "search_notes", "args": {"query": f"q{i}"}, "id": f"call_{i}"}]
            ),
            ToolMessage("result " * 20, tool_call_id=f"call_{i}"),
            AIMessage(f"answer {i}: " + "text " * 20),
        ]
    return [*messages, HumanMessage("and the last question?")]


async def test_a_300_turn_thread_is_trimmed_under_the_limit_keeping_tool_pairs(fakes: dict) -> None:
    fakes["anthropic"].state.max_input_tokens = 20_000  # the fake refuses longer prompts, as the API does
    route = fakes["anthropic"].route(unique("claude-sonnet-4-5"))
    limited = ModelRoute(route.provider, route.model, route.base_url, credentials=route.credentials,
                         max_input_tokens=20_000)  # fmt: skip

    reply = await Chain((limited,)).model.ainvoke(long_thread(300))

    assert reply.content == "The fake model says hello."
    (sent,) = fakes["anthropic"].state.requests
    turns = sent["messages"]
    assert 0 < len(turns) < 600
    assert turns[0]["role"] == "user"
    assert turns[0]["content"][0]["type"] == "text", "starts a fresh exchange, not with a tool result"
    assert turns[-1]["content"][0]["text"] == "and the last question?"
    calls = [b["id"] for t in turns for b in t["content"] if b["type"] == "tool_use"]
    results = [b["tool_use_id"] for t in turns for b in t["content"] if b["type"] == "tool_result"]
    assert calls == results, "every tool call kept has its result, and no result lost its call"


async def test_refuse_mode_refuses_before_sending(fakes: dict) -> None:
    route = fakes["anthropic"].route(unique("claude-sonnet-4-5"))
    limited = ModelRoute(route.provider, route.model, route.base_url, credentials=route.credentials,
                         max_input_tokens=2_000)  # fmt: skip

    with pytest.raises(ContextTooLongError, match="maxInputTokens"):
        await Chain((limited,), overflow=Overflow.refuse).model.ainvoke(long_thread(50))

    assert fakes["anthropic"].request_count == 0


async def test_the_cache_answers_repeated_deterministic_calls_never_across_tenants(
    fakes: dict, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url)
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    route = fakes["anthropic"].route(unique("claude-sonnet-4-5"))
    llm = ResilientLLM(LLMConfig(routes=(route,), cache_ttl_seconds=60), redis=redis, key_prefix=prefix)
    deterministic = AnthropicChatModel(llm=llm, temperature=0)
    before = await scrape()

    first = await deterministic.ainvoke(QUESTION)
    again = await deterministic.ainvoke(QUESTION)
    streamed = "".join([c.content async for c in deterministic.astream(QUESTION)])
    assert fakes["anthropic"].request_count == 1, "the repeats were answered from the cache"
    assert again.content == first.content == streamed.strip()

    enter_request(RequestContext(request_id="other", tenant=f"other-{uuid.uuid4().hex[:6]}"))
    await deterministic.ainvoke(QUESTION)
    assert fakes["anthropic"].request_count == 2, "another tenant never reads this tenant's answers"
    await AnthropicChatModel(llm=llm, temperature=0.7).ainvoke(QUESTION)
    await AnthropicChatModel(llm=llm, temperature=0.7).ainvoke(QUESTION)
    assert fakes["anthropic"].request_count == 4, "calls that are not deterministic are never cached"

    after = await scrape()
    assert (
        after.value("agent_llm_cache_total", result="hit")
        - before.value("agent_llm_cache_total", result="hit")
        == 2
    )
    assert (
        after.value("agent_llm_cache_total", result="miss")
        - before.value("agent_llm_cache_total", result="miss")
        == 2
    )
    keys = [key.decode() async for key in redis.scan_iter(f"{prefix}:llmcache:*")]
    assert len(keys) == 2, "one answer per tenant"
    assert 0 < await redis.ttl(keys[0]) <= 60
    await redis.aclose()


async def test_the_degraded_reply_answers_when_every_model_fails(fakes: dict) -> None:
    routes = three(fakes)
    for name in ("anthropic", "bedrock", "openai"):
        fakes[name].state.add_faults(OUTAGE)
    chain = Chain(routes, retry=RetryPolicy(0, 0.1, 1.0), degraded_reply="We are busy; please retry shortly.")

    reply = await chain.model.ainvoke(QUESTION)
    streamed = "".join([c.content async for c in chain.model.astream(QUESTION)])

    assert reply.content == "We are busy; please retry shortly." == streamed.strip()
    assert reply.response_metadata["degraded"] is True
    assert current_request().degraded == DEGRADED_REASON, "the run engine reads this mark"
    with pytest.raises(AllModelsFailedError):
        await Chain(routes, retry=RetryPolicy(0, 0.1, 1.0)).model.ainvoke(QUESTION)


async def test_budget_counts_the_provider_that_answered(fakes: dict) -> None:
    anthropic, bedrock, _ = three(fakes)
    fakes["anthropic"].state.add_faults(OUTAGE)
    chain = Chain(
        (anthropic, bedrock), budget=BudgetPolicy(tokens_per_request=40), retry=RetryPolicy(0, 0.1, 1.0)
    )

    await chain.model.ainvoke(QUESTION)
    with pytest.raises(Exception, match="budget exhausted"):
        await chain.model.ainvoke(QUESTION)
    assert fakes["bedrock"].request_count == 1
