"""Request ids, HTTP metrics by route template, JSON access logs and traces, on the real app."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from agent_service.graphs.reference_agent import build_graph
from agent_service.llm.chat_model import AnthropicChatModel
from agent_service.llm.client import LLMConfig, ResilientLLM
from agent_service.observability.logging import JsonFormatter
from agent_service.observability.tracing import configure_tracing, graph_callbacks
from agent_service.settings import Settings
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.app_client import app_client
from tests.fakes.prom import scrape


async def test_request_id_is_echoed_or_generated(redis_url: str) -> None:
    async with app_client(redis_url) as (_, client):
        echoed = await client.get("/healthz", headers={"X-Request-ID": "req-123.abc"})
        assert echoed.headers["x-request-id"] == "req-123.abc"
        generated = await client.get("/healthz")
        assert len(generated.headers["x-request-id"]) == 32
        forged = await client.get("/healthz", headers={"X-Request-ID": "evil\tinjected line"})
        assert forged.headers["x-request-id"] != "evil\tinjected line"


async def test_http_metrics_use_route_templates_and_skip_probes(redis_url: str) -> None:
    async with app_client(redis_url) as (app, client):
        before = await scrape(app)
        await client.get("/threads/11111111-1111-1111-1111-111111111111")
        await client.get("/threads/22222222-2222-2222-2222-222222222222")
        await client.get("/definitely/not/a/route")
        await client.get("/healthz")
        after = await scrape(app)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert delta("agent_http_requests_total", route="/threads/{thread_id}", method="GET", code="404") == 2
    assert delta("agent_http_request_duration_seconds_count", route="/threads/{thread_id}", method="GET") == 2
    assert delta("agent_http_requests_total", route="unmatched", method="GET", code="404") == 1
    assert not any(
        name == "agent_http_requests_total" and ("route", "/healthz") in labels for name, labels in after
    )
    assert after.value("agent_inflight_requests") == 0


@pytest.fixture
def access_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("agent_service.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


async def test_access_log_is_json_with_request_id_route_and_no_secrets(
    redis_url: str, access_lines: io.StringIO
) -> None:
    async with app_client(redis_url) as (_, client):
        await client.get(
            "/threads/33333333-3333-3333-3333-333333333333?email=carol@example.com",
            headers={"X-Request-ID": "trace-me", "Authorization": "Bearer sk-ant-secret-value-123456"},
        )
    (line,) = [json.loads(raw) for raw in access_lines.getvalue().splitlines()]
    assert line["request_id"] == "trace-me"
    assert line["msg"] == "GET /threads/{thread_id} 404"
    assert line["status"] == 404
    assert line["duration_ms"] >= 0
    assert "carol@example.com" not in access_lines.getvalue()
    assert "sk-ant-secret" not in access_lines.getvalue()


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    """The process-wide tracer provider can be set once: this module installs an in-memory one."""
    exporter = InMemorySpanExporter()
    provider = configure_tracing(Settings(), exporter=exporter)
    assert isinstance(provider, TracerProvider)
    return exporter


def finished(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    trace.get_tracer_provider().force_flush()
    return list(exporter.get_finished_spans())


async def test_request_span_named_by_route(redis_url: str, spans: InMemorySpanExporter) -> None:
    async with app_client(redis_url, otel_exporter_otlp_endpoint="http://127.0.0.1:4318") as (_, client):
        await client.get("/assistants/agent", headers={"X-Request-ID": "span-req"})
    (span,) = [s for s in finished(spans) if s.attributes.get("request.id") == "span-req"]
    assert span.name == "GET /assistants/{assistant_id}"
    assert span.attributes["http.route"] == "/assistants/{assistant_id}"
    assert span.attributes["http.response.status_code"] == 200


async def test_graph_nodes_and_llm_calls_get_spans(spans: InMemorySpanExporter) -> None:
    fake = FakeAnthropic().start()
    try:
        fake.state.add_replies(
            {"tool_use": {"name": "search_notes", "input": {"query": "slo"}}}, {"text": "Done."}
        )
        llm = ResilientLLM(LLMConfig(routes=(fake.route("claude-haiku-4-5"),)))
        spans.clear()
        await AnthropicChatModel(llm=llm).ainvoke([HumanMessage("trace me")])
        # The reference graph (stub model) run with the callbacks the executor adds to every run.
        await (
            build_graph(Settings())
            .compile(checkpointer=InMemorySaver())
            .ainvoke(
                {"messages": [("user", "What is an SLO?")]},
                {"configurable": {"thread_id": "traced"}, "callbacks": graph_callbacks()},
            )
        )
    finally:
        fake.stop()
    recorded = finished(spans)
    names = [s.name for s in recorded]
    (llm_span,) = [s for s in recorded if s.name == "llm.messages"]
    assert llm_span.attributes["gen_ai.request.model"] == "claude-haiku-4-5"
    assert llm_span.attributes["llm.outcome"] == "success"
    assert llm_span.attributes["gen_ai.usage.input_tokens"] > 0
    assert llm_span.attributes["gen_ai.usage.output_tokens"] > 0
    assert names.count("graph.node model") == 2
    assert names.count("graph.node tools") == 1
    (tool_span,) = [s for s in recorded if s.name == "tool search_notes"]
    (tools_node,) = [s for s in recorded if s.name == "graph.node tools"]
    assert tool_span.parent.span_id == tools_node.context.span_id, "a tool's span is its node's child"
    assert tool_span.attributes["tool.name"] == "search_notes"


async def test_runs_through_the_api_get_node_spans(redis_url: str, spans: InMemorySpanExporter) -> None:
    async with app_client(redis_url, otel_exporter_otlp_endpoint="http://127.0.0.1:4318") as (_, client):
        spans.clear()
        question = {"messages": [{"role": "user", "content": "What is an SLO?"}]}
        response = await client.post("/runs/wait", json={"assistant_id": "agent", "input": question})
        assert response.status_code == 200, response.text
    names = [s.name for s in finished(spans)]
    assert "graph.node model" in names
    assert "POST /runs/wait" in names
