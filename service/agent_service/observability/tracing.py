"""OpenTelemetry traces over OTLP/HTTP: a span per request, per graph node and per LLM call.

Off (the API's no-op tracer, near-zero cost) unless OTEL_EXPORTER_OTLP_ENDPOINT is set; the standard
OTEL_* variables (headers, sampler, resource attributes) are honoured by the SDK itself.
LLM call spans are made in llm/client.py; node spans by `GraphTracingCallback`, which the executor adds
to a run's callbacks (see `graph_callbacks`).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
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
    """A span per LangGraph node run (chains whose metadata names a `langgraph_node`).

    Synchronous and inline on purpose: an async handler called from a sync tool's worker thread makes
    LangChain start a fresh event loop per event (`_run_coros`), which cost more than the run itself
    under load; span start/end are cheap calls. Every event but the chain ones is ignored.
    """

    run_inline = True
    ignore_llm = ignore_chat_model = ignore_agent = ignore_retriever = True
    ignore_retry = ignore_custom_event = True

    def __init__(self) -> None:
        self._spans: dict[UUID, trace.Span] = {}

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        metadata: dict[str, Any] | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        node = (metadata or {}).get("langgraph_node")
        if node is None or name != node:  # only the node itself, not the runnables inside it
            return
        self._spans[run_id] = _tracer.start_span(
            f"graph.node {node}",
            attributes={"langgraph.node": node, "langgraph.step": (metadata or {}).get("langgraph_step", -1)},
        )

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        if span := self._spans.pop(run_id, None):
            span.end()

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if span := self._spans.pop(run_id, None):
            span.record_exception(error)
            span.set_status(trace.StatusCode.ERROR, str(error))
            span.end()


def graph_callbacks() -> list[BaseCallbackHandler]:
    """Callbacks to add to a run's config: node spans when tracing is on, nothing otherwise."""
    return [GraphTracingCallback()] if tracing_enabled() else []
