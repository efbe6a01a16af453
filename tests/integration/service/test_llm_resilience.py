"""The resilient client against the fake Anthropic server (real SDK over HTTP) and a real Redis.

Retries and backoff, circuit breaking, fallback, timeouts, malformed streams, budgets; each checked in
what the fake server received and in the scraped /metrics.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from agent_service.graphs.reference_agent import build_graph
from agent_service.llm import build_chat_model
from agent_service.llm.budget import BudgetPolicy
from agent_service.llm.chat_model import AnthropicChatModel
from agent_service.llm.circuit import CircuitPolicy, CircuitState
from agent_service.llm.client import LLMConfig, ResilientLLM
from agent_service.llm.errors import AllModelsFailedError, BudgetExceededError, ProviderRequestError
from agent_service.llm.retry import RetryPolicy
from agent_service.observability.context import RequestContext, enter_request
from agent_service.settings import Settings
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from redis.asyncio import Redis

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.prom import scrape

QUESTION = [HumanMessage("What is an SLO?")]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_fake(fake: FakeAnthropic) -> None:
    fake.state.reset()


class Harness:
    """A chat model on the fake server whose retry sleeps are recorded instead of waited."""

    def __init__(
        self, fake: FakeAnthropic, models: tuple[str, ...], redis: Redis | None = None, **config: object
    ) -> None:
        self.sleeps: list[float] = []
        defaults = {
            "timeout_seconds": 5.0,
            "retry": RetryPolicy(2, 0.2, 1.0),
            "circuit": CircuitPolicy(5, 30, 1),
        }
        routes = tuple(fake.route(model) for model in models)
        self.llm = ResilientLLM(
            LLMConfig(routes=routes, **{**defaults, **config}), redis=redis, sleep=self._sleep
        )
        self.model = AnthropicChatModel(llm=self.llm)

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def circuit(self, model: str) -> CircuitState:
        return self.llm.circuits.get(f"anthropic:{model}").state


def unique(name: str) -> str:
    """Model names unique per test, so each test's metric series start at zero."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_retries_retryable_errors_with_growing_jittered_backoff(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    fake.state.add_faults({"kind": "status", "status": 529, "times": 1}, {"kind": "status", "status": 500})
    harness = Harness(fake, (model,))

    reply = await harness.model.ainvoke(QUESTION)

    assert reply.content == "The fake model says hello."
    assert fake.state.models() == [model] * 3
    assert 0.1 <= harness.sleeps[0] <= 0.2
    assert 0.2 <= harness.sleeps[1] <= 0.4
    metrics = await scrape()
    assert metrics.value("agent_llm_requests_total", provider="anthropic", model=model, outcome="error") == 2
    assert (
        metrics.value("agent_llm_requests_total", provider="anthropic", model=model, outcome="success") == 1
    )
    assert metrics.value("agent_llm_tokens_total", provider="anthropic", model=model, kind="output") == 5
    assert metrics.value("agent_llm_cost_usd_total", provider="anthropic", model=model) > 0
    assert metrics.value("agent_llm_request_duration_seconds_count", provider="anthropic", model=model) == 3


async def test_gives_up_after_max_retries(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    fake.state.add_faults({"kind": "status", "status": 503, "times": 10})
    harness = Harness(fake, (model,))

    with pytest.raises(AllModelsFailedError):
        await harness.model.ainvoke(QUESTION)

    assert fake.request_count == 3, "one attempt and two retries"
    assert len(harness.sleeps) == 2


async def test_honours_retry_after_and_counts_rate_limited(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    fake.state.add_faults({"kind": "status", "status": 429, "retry_after": 0.9})
    harness = Harness(fake, (model,))

    await harness.model.ainvoke(QUESTION)

    assert harness.sleeps == [0.9]
    metrics = await scrape()
    assert (
        metrics.value("agent_llm_requests_total", provider="anthropic", model=model, outcome="rate_limited")
        == 1
    )


async def test_a_retry_after_longer_than_the_backoff_cap_moves_on_to_the_fallback(
    fake: FakeAnthropic,
) -> None:
    primary, fallback = unique("claude-sonnet"), unique("claude-haiku")
    fake.state.add_faults({"kind": "status", "status": 429, "retry_after": 30, "model": primary})
    harness = Harness(fake, (primary, fallback))

    reply = await harness.model.ainvoke(QUESTION)

    assert reply.response_metadata["model_name"] == fallback
    assert fake.state.models() == [primary, fallback]
    assert harness.sleeps == []


@pytest.mark.parametrize("status", [400, 413, 422])
async def test_request_errors_are_neither_retried_nor_sent_to_fallbacks(
    fake: FakeAnthropic, status: int
) -> None:
    primary, fallback = unique("claude-sonnet"), unique("claude-haiku")
    fake.state.add_faults({"kind": "status", "status": status})
    harness = Harness(fake, (primary, fallback), circuit=CircuitPolicy(1, 30, 1))

    with pytest.raises(ProviderRequestError):
        await harness.model.ainvoke(QUESTION)

    assert fake.state.models() == [primary]
    assert harness.circuit(primary) is CircuitState.CLOSED, "our bad request says nothing about the provider"


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_an_entry_refused_by_its_provider_falls_over_unretried(
    fake: FakeAnthropic, status: int
) -> None:
    """A revoked key or a model not deployed there says nothing about the next entry of the chain."""
    primary, fallback = unique("claude-sonnet"), unique("claude-haiku")
    fake.state.add_faults({"kind": "status", "status": status, "model": primary})
    harness = Harness(fake, (primary, fallback), circuit=CircuitPolicy(1, 30, 1))

    reply = await harness.model.ainvoke(QUESTION)

    assert reply.response_metadata["model_name"] == fallback
    assert fake.state.models() == [primary, fallback], "not retried"
    assert harness.sleeps == []
    assert harness.circuit(primary) is CircuitState.OPEN, "the refusal counts against the entry"


async def test_a_hanging_call_times_out_and_is_retried(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    fake.state.add_faults({"kind": "hang", "seconds": 30})
    harness = Harness(fake, (model,), timeout_seconds=0.5)

    reply = await harness.model.ainvoke(QUESTION)

    assert reply.content == "The fake model says hello."
    assert fake.request_count == 2
    metrics = await scrape()
    assert (
        metrics.value("agent_llm_requests_total", provider="anthropic", model=model, outcome="timeout") == 1
    )


async def test_circuit_opens_fails_fast_half_opens_and_closes(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    circuit = f"anthropic:{model}"
    fake.state.add_faults({"kind": "status", "status": 500, "times": 3})
    # 2 s to half-open: long enough that a busy machine cannot reach it between the steps below.
    harness = Harness(fake, (model,), retry=RetryPolicy(0, 0.1, 1.0), circuit=CircuitPolicy(3, 2.0, 1))

    for _ in range(3):
        with pytest.raises(AllModelsFailedError):
            await harness.model.ainvoke(QUESTION)
    assert harness.circuit(model) is CircuitState.OPEN
    assert (await scrape()).value("agent_circuit_state", circuit=circuit) == 2

    with pytest.raises(AllModelsFailedError) as refused:
        await harness.model.ainvoke(QUESTION)
    assert fake.request_count == 3, "an open circuit sends nothing"
    assert 0 < refused.value.retry_after <= 2.0
    metrics = await scrape()
    assert (
        metrics.value("agent_llm_requests_total", provider="anthropic", model=model, outcome="circuit_open")
        == 1
    )

    deadline = time.monotonic() + 10
    while harness.circuit(model) is not CircuitState.HALF_OPEN:
        assert time.monotonic() < deadline, "circuit never half-opened"
        await asyncio.sleep(0.05)
    assert (await scrape()).value("agent_circuit_state", circuit=circuit) == 1

    await harness.model.ainvoke(QUESTION)
    assert harness.circuit(model) is CircuitState.CLOSED
    assert fake.request_count == 4
    assert (await scrape()).value("agent_circuit_state", circuit=circuit) == 0


async def test_fallback_model_serves_while_the_primary_circuit_is_open(fake: FakeAnthropic) -> None:
    primary, fallback = unique("claude-sonnet"), unique("claude-haiku")
    fake.state.add_faults({"kind": "status", "status": 529, "times": 100, "model": primary})
    harness = Harness(
        fake, (primary, fallback), retry=RetryPolicy(1, 0.1, 1.0), circuit=CircuitPolicy(2, 60, 1)
    )

    first = await harness.model.ainvoke(QUESTION)
    assert first.response_metadata["model_name"] == fallback
    assert harness.circuit(primary) is CircuitState.OPEN

    second = await harness.model.ainvoke(QUESTION)
    assert second.response_metadata["model_name"] == fallback
    assert fake.state.models() == [primary, primary, fallback, fallback], "the open primary is skipped"
    metrics = await scrape()
    assert (
        metrics.value("agent_llm_requests_total", provider="anthropic", model=primary, outcome="circuit_open")
        == 1
    )
    assert (
        metrics.value("agent_llm_requests_total", provider="anthropic", model=fallback, outcome="success")
        == 2
    )


async def test_streaming_yields_tokens_tool_calls_and_usage(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    fake.state.add_replies(
        {"tool_use": {"name": "search_notes", "input": {"query": "slo"}}}, {"text": "An SLO is a target."}
    )
    harness = Harness(fake, (model,))
    ttft_before = (await scrape()).value("agent_ttft_seconds_count")

    chunks = [chunk async for chunk in harness.model.astream(QUESTION)]
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.tool_calls == [
        {
            "name": "search_notes",
            "args": {"query": "slo"},
            "id": merged.tool_calls[0]["id"],
            "type": "tool_call",
        }
    ]
    text_chunks = [c.content async for c in harness.model.astream(QUESTION) if c.content]
    assert "".join(text_chunks).strip() == "An SLO is a target."
    assert len(text_chunks) == 5, "one chunk per streamed word"

    metrics = await scrape()
    assert metrics.value("agent_ttft_seconds_count") == ttft_before + 2
    assert (
        metrics.value("agent_llm_requests_total", provider="anthropic", model=model, outcome="success") == 2
    )
    assert metrics.value("agent_llm_tokens_total", provider="anthropic", model=model, kind="input") > 0


async def test_a_malformed_stream_is_retried_before_the_first_token(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    fake.state.add_faults({"kind": "malformed_stream"})
    harness = Harness(fake, (model,))

    text = "".join([c.content async for c in harness.model.astream(QUESTION)])

    assert text.strip() == "The fake model says hello."
    assert fake.request_count == 2
    metrics = await scrape()
    assert metrics.value("agent_llm_requests_total", provider="anthropic", model=model, outcome="error") == 1


async def test_per_request_budget_refuses_before_sending(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    harness = Harness(fake, (model,), budget=BudgetPolicy(tokens_per_request=40))
    exhausted_before = (await scrape()).value("agent_token_budget_exhausted_total", scope="request")
    enter_request(RequestContext(request_id="r1", tenant=unique("tenant")))

    await harness.model.ainvoke(QUESTION)
    with pytest.raises(BudgetExceededError) as refused:
        await harness.model.ainvoke(QUESTION)

    assert refused.value.status_code == 429
    assert fake.request_count == 1, "the refused call never reached the provider"
    metrics = await scrape()
    assert metrics.value("agent_token_budget_exhausted_total", scope="request") == exhausted_before + 1


async def test_daily_tenant_budget_is_shared_through_redis(fake: FakeAnthropic, redis_url: str) -> None:
    model, tenant, other = unique("claude-sonnet"), unique("tenant"), unique("tenant")
    redis = Redis.from_url(redis_url)
    # Two replicas (two clients) of one tenant share the day's count.
    replica_a = Harness(fake, (model,), redis=redis, budget=BudgetPolicy(tokens_per_day=30))
    replica_b = Harness(fake, (model,), redis=redis, budget=BudgetPolicy(tokens_per_day=30))
    enter_request(RequestContext(request_id="a", tenant=tenant))
    await replica_a.model.ainvoke(QUESTION)

    with pytest.raises(BudgetExceededError) as refused:
        await replica_b.model.ainvoke(QUESTION)
    assert refused.value.scope == "tenant_day_tokens"
    assert 0 < refused.value.retry_after <= 86400
    assert fake.request_count == 1

    enter_request(RequestContext(request_id="b", tenant=other))
    await replica_b.model.ainvoke(QUESTION)
    assert fake.request_count == 2, "another tenant has its own budget"
    await redis.aclose()


async def test_daily_cost_budget_refuses_once_spent(fake: FakeAnthropic, redis_url: str) -> None:
    model, tenant = unique("claude-opus"), unique("tenant")
    redis = Redis.from_url(redis_url)
    harness = Harness(fake, (model,), redis=redis, budget=BudgetPolicy(usd_per_day=0.0001))
    enter_request(RequestContext(request_id="c", tenant=tenant))

    await harness.model.ainvoke(QUESTION)
    with pytest.raises(BudgetExceededError) as refused:
        await harness.model.ainvoke(QUESTION)

    assert refused.value.scope == "tenant_day_usd"
    assert fake.request_count == 1
    assert (await scrape()).value("agent_token_budget_exhausted_total", scope="tenant_day_usd") >= 1
    await redis.aclose()


async def test_daily_budget_fails_open_when_redis_is_down(fake: FakeAnthropic, free_port: int) -> None:
    model = unique("claude-sonnet")
    dead_redis = Redis.from_url(f"redis://127.0.0.1:{free_port}/0", socket_connect_timeout=0.5)
    harness = Harness(fake, (model,), redis=dead_redis, budget=BudgetPolicy(tokens_per_day=1))
    before = (await scrape()).value("agent_fail_open_total", component="budget")

    reply = await harness.model.ainvoke(QUESTION)

    assert reply.content
    assert (await scrape()).value("agent_fail_open_total", component="budget") == before + 2  # check + charge


async def test_faults_switch_over_the_control_endpoint(fake: FakeAnthropic) -> None:
    model = unique("claude-sonnet")
    harness = Harness(fake, (model,), timeout_seconds=5.0)
    async with httpx.AsyncClient(base_url=fake.url) as control:
        faults = [{"kind": "status", "status": 500}, {"kind": "latency", "seconds": 0.2}]
        assert (await control.post("/_control/faults", json={"faults": faults})).status_code == 200

        await harness.model.ainvoke(QUESTION)
        record = (await control.get("/_control/requests")).json()
        assert (record["count"], record["models"]) == (2, [model, model])
        assert len(harness.sleeps) == 1, "the 500 was retried; the slow answer within the deadline was not"

        await control.post("/_control/reset")
        assert (await control.get("/_control/requests")).json()["count"] == 0


async def test_reference_agent_streams_through_the_real_sdk(fake: FakeAnthropic) -> None:
    """build_chat_model with an API key: the reference graph's tool loop and LangGraph's messages stream."""
    settings = Settings(
        anthropic_api_key="test-key", anthropic_base_url=fake.url, llm_model=unique("claude-sonnet")
    )
    assert isinstance(build_chat_model(settings), AnthropicChatModel)
    fake.state.add_replies(
        {"tool_use": {"name": "search_notes", "input": {"query": "error budget"}}},
        {"text": "Budgets are 1 - SLO."},
    )
    graph = build_graph(settings).compile(checkpointer=InMemorySaver())

    tokens: list[tuple[str, str]] = []
    async for message, metadata in graph.astream(
        {"messages": [("user", "What is an error budget?")]},
        {"configurable": {"thread_id": "t1"}},
        stream_mode="messages",
    ):
        if message.content:
            tokens.append((metadata["langgraph_node"], message.content))

    model_text = "".join(text for node, text in tokens if node == "model")
    tool_text = "".join(text for node, text in tokens if node == "tools")
    assert model_text.strip() == "Budgets are 1 - SLO."
    assert "[error budget]" in tool_text
    sent_tools = [t["name"] for t in fake.state.requests[0]["tools"]]
    assert sent_tools == ["calculator", "search_notes"]
    assert fake.state.requests[1]["messages"][-1]["content"][0]["type"] == "tool_result"


@pytest.mark.parametrize(("limit", "expected_peak"), [(1, 1), (3, 3)])
async def test_concurrent_calls_are_bounded(fake: FakeAnthropic, limit: int, expected_peak: int) -> None:
    fake.state.add_faults({"kind": "latency", "seconds": 0.3, "times": 3})
    harness = Harness(fake, (unique("claude-sonnet"),), max_concurrency=limit)

    await asyncio.gather(*(harness.model.ainvoke(QUESTION) for _ in range(3)))

    assert fake.request_count == 3
    assert fake.state.max_in_flight == expected_peak
