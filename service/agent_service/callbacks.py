"""The callbacks every run gets (`run_callbacks()`, added to each run's config by the run engine).

One inline handler per run, for what LangChain reports whatever the graph:
- the run's scope (llm/scope.py): the run's request context reachable from the gateway, and the
  baggage that names the run and each model call in what the graph sends;
- tools: `agent_tool_calls_total{tool,outcome}` and `agent_tool_duration_seconds{tool}` for every
  tool call, wrapped or not (spans: observability/tracing.py);
- model calls that reached neither the gateway nor Shepherd's own chat model (a provider the gateway
  does not speak, a client with its own base URL): `agent_llm_requests_total`, duration, tokens and
  cost as LangChain reports them, and the request's token count. Retries, circuits, fallbacks and the
  daily budgets need the call to go through the gateway; the others are counted, not steered.

Inline and synchronous (like GraphTracingCallback): it runs in the caller's context, which is what
makes the baggage reach the model call's HTTP request, and costs a few dict operations per event.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import ToolMessage
from langchain_core.outputs import LLMResult

from agent_service.llm.pricing import Usage, cost_usd
from agent_service.llm.retry import outcome_of
from agent_service.llm.scope import RunScope, close_scope, mark_call, open_scope
from agent_service.observability.context import current_request
from agent_service.observability.metrics import (
    LLM_DURATION,
    LLM_REQUESTS,
    TOOL_CALLS,
    TOOL_DURATION,
    record_llm_usage,
)
from agent_service.tools.wrapper import tool_outcome

#: `_llm_type` of the models whose calls Shepherd's own client already accounts for.
_SHEPHERD_MODELS = frozenset({"shepherd-anthropic", "shepherd-stub"})


class _ModelCall:
    __slots__ = ("model", "provider", "started")

    def __init__(self, provider: str, model: str) -> None:
        self.provider, self.model = provider, model
        self.started = time.perf_counter()


class RunCallbacks(BaseCallbackHandler):
    run_inline = True
    ignore_retriever = ignore_retry = ignore_custom_event = True  # not ignore_agent: it gates tool events

    def __init__(self) -> None:
        self._scope: tuple[UUID, RunScope] | None = None
        self._calls: dict[UUID, _ModelCall] = {}
        self._tools: dict[UUID, tuple[str, float]] = {}

    # -- the run ---------------------------------------------------------------------------------

    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        if parent_run_id is None and self._scope is None:
            metadata = kwargs.get("metadata") or {}
            self._scope = (run_id, open_scope(current_request(), str(metadata.get("run_id", run_id))))

    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_run(run_id)

    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end_run(run_id)

    def _end_run(self, run_id: UUID) -> None:
        if self._scope is not None and self._scope[0] == run_id:
            close_scope(self._scope[1])
            self._scope = None

    # -- model calls -----------------------------------------------------------------------------

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._model_start(run_id, kwargs)

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._model_start(run_id, kwargs)

    def _model_start(self, run_id: UUID, kwargs: dict[str, Any]) -> None:
        if (kwargs.get("invocation_params") or {}).get("_type") in _SHEPHERD_MODELS:
            return
        metadata = kwargs.get("metadata") or {}
        provider = str(metadata.get("ls_provider") or "unknown")
        model = str(metadata.get("ls_model_name") or "unknown")
        mark_call(str(run_id))
        self._calls[run_id] = _ModelCall(provider, model)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        if (call := self._end_call(run_id)) is not None:
            self._account(call, "success", _usage(response))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if (call := self._end_call(run_id)) is not None:
            self._account(call, outcome_of(error), Usage())

    def _end_call(self, run_id: UUID) -> _ModelCall | None:
        call = self._calls.pop(run_id, None)
        if call is None:
            return None
        served = self._scope is not None and str(run_id) in self._scope[1].gateway_calls
        return None if served else call

    def _account(self, call: _ModelCall, outcome: str, usage: Usage) -> None:
        LLM_REQUESTS.labels(call.provider, call.model, outcome).inc()
        LLM_DURATION.labels(call.provider, call.model).observe(time.perf_counter() - call.started)
        record_llm_usage(call.provider, call.model, usage.as_kinds(), cost_usd(call.model, usage))
        (self._scope[1].request if self._scope else current_request()).tokens_used += usage.total

    # -- tools -----------------------------------------------------------------------------------

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: UUID, **kwargs: Any) -> None:
        name = (serialized or {}).get("name") or kwargs.get("name") or "unknown"
        self._tools[run_id] = (str(name), time.perf_counter())

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        failed = isinstance(output, ToolMessage) and output.status == "error"
        self._tool_done(run_id, "error" if failed else "success")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tool_done(run_id, tool_outcome(error))

    def _tool_done(self, run_id: UUID, outcome: str) -> None:
        if started := self._tools.pop(run_id, None):
            name, at = started
            TOOL_CALLS.labels(name, outcome).inc()
            TOOL_DURATION.labels(name).observe(time.perf_counter() - at)


def _usage(response: LLMResult) -> Usage:
    """Tokens as LangChain reports them (usage_metadata of the generated message)."""
    for generations in response.generations:
        for generation in generations:
            metadata = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if metadata:
                details = metadata.get("input_token_details") or {}
                cache_read, cache_write = details.get("cache_read", 0), details.get("cache_creation", 0)
                return Usage(
                    input=metadata["input_tokens"] - cache_read - cache_write,
                    output=metadata["output_tokens"],
                    cache_read=cache_read,
                    cache_write=cache_write,
                )
    return Usage()


def run_callbacks() -> list[BaseCallbackHandler]:
    """Callbacks to add to a run's config, one set per run."""
    return [RunCallbacks()]
