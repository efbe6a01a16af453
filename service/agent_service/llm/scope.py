"""Which run an LLM call belongs to, across the hop from a graph's own SDK client to the gateway.

At a run's start its callbacks (agent_service/callbacks.py) open a `RunScope`: the run's request
context (tenant, request id, tokens so far, degraded mark) registered in this process under a random
key, and that key put into the OpenTelemetry baggage of the run's context. Every HTTP request the
graph then makes carries it: the anthropic SDK propagates the context itself, the httpx2
instrumentation installed at start-up (`instrument_http_clients`) does for the openai SDK and any
other httpx2 client. The gateway, another task of the same process, finds the run's context by the
key. Around each LangChain model call the callbacks add the call's LangChain run id, so the gateway
can say which calls it served (and the callbacks do not count them twice).

Baggage holds only random ids, never a tenant or a user: it also travels to any other host a graph
calls. The gateway reads it and never forwards it.

The ids are set in the current context and never detached: LangChain runs callbacks and the calls
they bracket in different contexts (tasks), where a detach fails. A key outliving its run is harmless:
it is unregistered when the run ends, and the next run (or model call) in that context sets its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from opentelemetry import baggage, context
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from agent_service.observability.context import RequestContext

RUN_KEY = "shepherd.run"
CALL_KEY = "shepherd.llm_call"
_baggage = W3CBaggagePropagator()
_trace_context = TraceContextTextMapPropagator()


@dataclass
class RunScope:
    key: str
    request: RequestContext
    run_id: str
    #: LangChain run ids of the model calls the gateway served.
    gateway_calls: set[str] = field(default_factory=set)


_open: dict[str, RunScope] = {}


def open_scope(request: RequestContext, run_id: str) -> RunScope:
    """Register the run and put its key into the current context's baggage."""
    scope = RunScope(uuid.uuid4().hex, request, run_id)
    _open[scope.key] = scope
    context.attach(baggage.set_baggage(RUN_KEY, scope.key))
    return scope


def close_scope(scope: RunScope) -> None:
    _open.pop(scope.key, None)


def mark_call(call_id: str) -> None:
    """Name the model call about to be made in the baggage of what it sends."""
    context.attach(baggage.set_baggage(CALL_KEY, call_id))


def scope_of(headers: Mapping[str, str]) -> tuple[RunScope | None, str | None]:
    """The run scope and model call named by a request's baggage (None when absent or unknown)."""
    carried = _baggage.extract(headers)
    key, call = baggage.get_baggage(RUN_KEY, carried), baggage.get_baggage(CALL_KEY, carried)
    return _open.get(str(key)) if key else None, str(call) if call else None


def trace_parent(headers: Mapping[str, str]) -> context.Context:
    """The caller's trace context alone (no baggage), to parent the gateway's spans."""
    return _trace_context.extract(headers)
