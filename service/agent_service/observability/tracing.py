"""OpenTelemetry traces over OTLP/HTTP: a span per request, per graph node and per LLM call.

Off (the API's no-op tracer, near-zero cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set; the standard
OTEL_* variables (headers, sampler, resource attributes) are honoured by the SDK itself.
LLM call spans are made in llm/client.py; node and tool-call spans by `GraphTracingCallback`, which the
executor adds to a run's callbacks (see `graph_callbacks`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.observability.context import current_request
from agent_service.observability.metrics import route_template
from agent_service.settings import Settings

_tracer = trace.get_tracer("agent_service")


def configure_tracing(settings: Settings, exporter: SpanExporter | None = None) -> TracerProvider | None:
    """Install the global tracer provider when an endpoint (or, in tests, an exporter) is given."""
    if exporter is None and not settings.otel_exporter_otlp_endpoint:
        return None
    if exporter is None:
        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/")
        exporter = OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces")
    provider = TracerProvider(resource=Resource.create({"service.name": settings.otel_service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def instrument_http_clients() -> None:
    """Every httpx2 client of the process (the openai and anthropic SDKs', whoever built them) sends
    the current trace context and baggage: how a graph's own model calls name their run to the LLM
    gateway (llm/scope.py), and client spans when tracing is on."""
    instrumentor = HTTPX2ClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()


def tracing_enabled() -> bool:
    return isinstance(trace.get_tracer_provider(), TracerProvider)


class TracingMiddleware:
    """Pure ASGI server span per request, named by route template, with status and request id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with _tracer.start_as_current_span(
            f"{scope['method']} {scope['path']}", kind=trace.SpanKind.SERVER
        ) as span:

            async def send_recording_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(trace.StatusCode.ERROR)
                await send(message)

            try:
                await self.app(scope, receive, send_recording_status)
            finally:
                route = route_template(scope)
                context = current_request()
                span.update_name(f"{scope['method']} {route}")
                span.set_attributes(
                    {
                        "http.request.method": scope["method"],
                        "http.route": route,
                        "request.id": context.request_id,
                        "tenant": context.tenant,
                    }
                )


class GraphTracingCallback(BaseCallbackHandler):
    """A span per LangGraph node run (chains whose metadata names a `langgraph_node`) and per tool call,
    a tool's span the child of its node's.

    Synchronous and inline on purpose: an async handler called from a sync tool's worker thread makes
    LangChain start a fresh event loop per event (`_run_coros`), which cost more than the run itself
    under load; span start/end are cheap calls. Model and retriever events are ignored (not agent
    events: LangChain gates tool events by `ignore_agent`).
    """

    run_inline = True
    ignore_llm = ignore_chat_model = ignore_retriever = True
    ignore_retry = ignore_custom_event = True

    def __init__(self) -> None:
        self._spans: dict[UUID, trace.Span] = {}
        self._node_of: dict[UUID, trace.Span] = {}  # chain run -> span of the node it runs in

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        if node is None or name != node:  # not the node itself: remember which node it runs in
            if parent_run_id in self._node_of:
                self._node_of[run_id] = self._node_of[parent_run_id]
            return
        self._spans[run_id] = self._node_of[run_id] = _tracer.start_span(
            f"graph.node {node}",
            attributes={"langgraph.node": node, "langgraph.step": (metadata or {}).get("langgraph_step", -1)},
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "unknown"
        node = self._node_of.get(parent_run_id) if parent_run_id else None
        self._spans[run_id] = _tracer.start_span(
            f"tool {name}",
            context=trace.set_span_in_context(node) if node else None,
            attributes={"tool.name": name, "tool.call_id": kwargs.get("tool_call_id") or ""},
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, error)

    def _end(self, run_id: UUID, error: BaseException | None = None) -> None:
        self._node_of.pop(run_id, None)
        if span := self._spans.pop(run_id, None):
            if error is not None:
                span.record_exception(error)
                span.set_status(trace.StatusCode.ERROR, str(error))
            span.end()


def graph_callbacks() -> list[BaseCallbackHandler]:
    """Callbacks to add to a run's config: node spans when tracing is on, nothing otherwise."""
    return [GraphTracingCallback()] if tracing_enabled() else []
