"""Graphs that build their own models get the armour with no code change.

A live `agent-service` serves the template-style graph (graphs/template_agent.py: `init_chat_model`
built by the graph, a plain `@tool`) with an AgentDeployment-like chain anthropic -> openai (LLM_CHAIN,
keys as LLM_CHAIN_<i>_API_KEY) against the fakes. Its ChatAnthropic / ChatOpenAI reach the service's
loopback gateway, are counted once, fail over along the chain, meet the token budget, and end
degraded when every model fails. The tests of this module share one service and run in order: the
last ones take the providers down.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.integration.service.conftest import ServiceProcess, launch

PRIMARY, FALLBACK = "claude-sonnet-gateway", "gpt-gateway"
DEGRADED = "The assistant is busy right now; please try again in a minute."
BUDGET = 2000  # tokens per request: a normal question fits, a very long one does not


@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeAnthropic, FakeOpenAI]]:
    anthropic, openai = FakeAnthropic().start(), FakeOpenAI().start()
    yield anthropic, openai
    anthropic.stop()
    openai.stop()


@pytest.fixture(scope="module")
def service(
    fakes: tuple[FakeAnthropic, FakeOpenAI], redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    anthropic, openai = fakes
    chain = [
        {"provider": "anthropic", "model": PRIMARY, "base_url": anthropic.url},
        {"provider": "openai", "model": FALLBACK, "base_url": f"{openai.url}/v1"},
    ]
    env = {
        "AGENT_GRAPH": "template_agent:graph",
        "LLM_CHAIN": json.dumps(chain),
        "LLM_CHAIN_0_API_KEY": "test-key",
        "LLM_CHAIN_1_API_KEY": openai.api_key,
        "LLM_MAX_RETRIES": "0",
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "CIRCUIT_RECOVERY_SECONDS": "600",
        "TOKEN_BUDGET_PER_REQUEST": str(BUDGET),
        "LLM_DEGRADED_REPLY": DEGRADED,
    }
    service = launch(
        tmp_path_factory.mktemp("gateway"),
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=f"gateway-{uuid.uuid4().hex[:8]}",
        **env,
    )
    yield service
    assert service.stop() == 0


def run(service: ServiceProcess, question: str, model: str | None = None) -> httpx.Response:
    body = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": question}]}}
    if model:
        body["config"] = {"configurable": {"model": model}}
    return httpx.post(f"{service.url}/runs/wait", json=body, timeout=60)


def metric(service: ServiceProcess, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(service.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def test_own_models_and_tools_are_measured_once(service: ServiceProcess, fakes: tuple) -> None:
    anthropic, openai = fakes
    anthropic.state.reset()
    anthropic.state.add_replies(
        {"tool_use": {"name": "lookup_weather", "input": {"city": "Oslo"}}}, {"text": "Sunny."}
    )

    response = run(service, "What is the weather in Oslo?")

    assert response.status_code == 200, response.text
    messages = response.json()["messages"]
    assert messages[-1]["content"] == "Sunny."
    assert messages[2]["content"] == "It is sunny in Oslo.", "the unwrapped tool ran"
    assert anthropic.state.models() == [PRIMARY, PRIMARY], "the chain decides the model, not the graph"
    assert anthropic.state.requests[1]["messages"][-1]["content"][0]["type"] == "tool_result"
    success = {"provider": "anthropic", "model": PRIMARY, "outcome": "success"}
    assert metric(service, "agent_llm_requests_total", **success) == 2
    assert metric(service, "agent_llm_tokens_total", provider="anthropic", model=PRIMARY, kind="input") > 0
    assert metric(service, "agent_llm_cost_usd_total", provider="anthropic", model=PRIMARY) > 0
    graph_named = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    assert metric(service, "agent_llm_requests_total", **graph_named) == 0, "counted once, by the gateway"
    assert metric(service, "agent_tool_calls_total", tool="lookup_weather", outcome="success") == 1
    assert metric(service, "agent_tool_duration_seconds_count", tool="lookup_weather") == 1
    assert openai.request_count == 0


def test_chat_openai_streams_through_the_gateway(service: ServiceProcess, fakes: tuple) -> None:
    anthropic, _ = fakes
    anthropic.state.reset()
    body = {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": "hello"}]},
        "config": {"configurable": {"model": "openai/gpt-4o-mini"}},
        "stream_mode": ["messages-tuple"],
    }
    with httpx.stream("POST", f"{service.url}/runs/stream", json=body, timeout=60) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]

    tokens = [
        json.loads(line[6:])[0].get("content", "") for line in lines if line.startswith('data: [{"content"')
    ]
    assert "".join(tokens).strip() == "The fake model says hello."
    assert len([t for t in tokens if t]) >= 5, "streamed token by token, Anthropic events as OpenAI chunks"
    assert anthropic.state.models() == [PRIMARY], "ChatOpenAI was served by the chain's primary (Claude)"


def test_the_token_budget_refuses_a_graphs_own_call(service: ServiceProcess, fakes: tuple) -> None:
    anthropic, openai = fakes
    anthropic.state.reset()
    before = metric(service, "agent_token_budget_exhausted_total", scope="request")

    response = run(service, "tell me " * (BUDGET * 2))

    assert response.status_code == 200
    assert "budget exhausted" in response.text, response.text
    assert anthropic.request_count == openai.request_count == 0, "refused before anything was sent"
    assert metric(service, "agent_token_budget_exhausted_total", scope="request") == before + 1


def test_the_primary_s_outage_fails_over_along_the_chain(service: ServiceProcess, fakes: tuple) -> None:
    anthropic, openai = fakes
    anthropic.state.reset()
    anthropic.state.add_faults({"kind": "status", "status": 529, "times": 1000})

    answers = [run(service, "hello there").json()["messages"][-1]["content"] for _ in range(2)]

    assert answers == ["The fake model says hello."] * 2
    assert anthropic.state.models() == [PRIMARY], "its circuit opened: the second run skipped it"
    assert openai.state.models() == [FALLBACK, FALLBACK]
    assert metric(service, "agent_circuit_state", circuit=f"anthropic:{PRIMARY}") == 2
    assert metric(service, "agent_circuit_state", circuit=f"openai:{FALLBACK}") == 0
    assert (
        metric(service, "agent_llm_requests_total", provider="openai", model=FALLBACK, outcome="success") == 2
    )


def test_every_model_down_ends_degraded(service: ServiceProcess, fakes: tuple) -> None:
    _, openai = fakes
    openai.state.add_faults({"kind": "status", "status": 503, "times": 1000})
    failed = dict(outcome="error", reason="llm_unavailable")
    before = metric(service, "agent_runs_total", **failed)

    response = run(service, "hello again")

    assert response.status_code == 200
    assert response.json()["messages"][-1]["content"] == DEGRADED
    assert response.headers["x-shepherd-degraded"] == "llm_unavailable"
    assert metric(service, "agent_runs_total", **failed) == before + 1, "a bad event of the SLI"
    joined = httpx.get(f"{service.url}{response.headers['content-location']}/join", timeout=30)
    assert joined.headers["x-shepherd-degraded"] == "llm_unavailable"
    record = service.get(response.headers["content-location"]).json()
    assert (record["status"], record["degraded"]) == ("success", "llm_unavailable")
