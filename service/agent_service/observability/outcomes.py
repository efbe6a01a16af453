"""How a run ended, as the SLIs see it: an outcome and, for failures, one reason from a bounded set.

Outcomes (``agent_runs_total{outcome}``): ``success``; ``interrupted`` (paused at a
human-in-the-loop interrupt: a good event); ``cancelled`` (stopped by the caller: not an event);
``error`` and ``timeout`` (bad events, whatever HTTP status carried the run).
"""

from __future__ import annotations

import anthropic

from agent_service.llm.errors import AllModelsFailedError, CircuitOpenError, LLMError

REASONS = (
    "llm_unavailable",
    "llm_rate_limited",
    "llm_timeout",
    "tool_error",
    "graph_error",
    "timeout",
    "worker_lost",
)


def run_outcome(status: str, *, paused: bool = False) -> str:
    """The outcome of a run that ended with LangGraph run ``status``."""
    if status == "success":
        return "interrupted" if paused else "success"
    if status == "interrupted":  # LangGraph's status for a run cancelled by its caller
        return "cancelled"
    return status if status in ("error", "timeout") else "error"


def _causes(error: BaseException) -> list[BaseException]:
    found, current = [], error
    while current is not None and len(found) < 10:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _llm_reason(error: BaseException) -> str | None:
    if isinstance(error, AllModelsFailedError):
        reasons = {_llm_reason(e) for e in error.errors.values()}
        return (
            "llm_rate_limited"
            if reasons == {"llm_rate_limited"}
            else ("llm_timeout" if reasons == {"llm_timeout"} else "llm_unavailable")
        )
    if isinstance(error, anthropic.RateLimitError):
        return "llm_rate_limited"
    if isinstance(error, anthropic.APITimeoutError | TimeoutError):
        return "llm_timeout"
    if isinstance(error, CircuitOpenError | LLMError | anthropic.APIError):
        return "llm_unavailable"
    return None


def failure_reason(error: BaseException) -> str:
    """The reason of a run that failed with ``error`` (LLM errors wrapped by a tool count as LLM).

    An exception may name its reason itself with a ``shepherd_reason`` attribute (one of ``REASONS``)."""
    causes = _causes(error)
    for cause in causes:
        if getattr(cause, "shepherd_reason", None) in REASONS:
            return cause.shepherd_reason  # type: ignore[attr-defined]
    for cause in causes:
        if (reason := _llm_reason(cause)) is not None and not isinstance(cause, TimeoutError):
            return reason
    if any(type(cause).__name__ == "ToolException" for cause in causes):
        return "tool_error"
    return "graph_error"
