"""How a run ended, as the SLIs see it: one outcome and, for failures, one reason from a bounded set.

Outcomes (``agent_runs_total{outcome}``, DESIGN "Metrics contract"):

- ``success``; ``interrupted`` (paused at a human-in-the-loop interrupt): good events;
- ``error``, ``timeout``: bad events, whatever HTTP status carried the run;
- ``cancelled`` (stopped by its caller, a newer run on the thread, a closed stream): not an event;
- ``refused``: Shepherd's own token or spend budget refused the run's next model call. Not an
  event, for the reason a 429 is not one: the service did what it was configured to do, and a
  budget that runs out must not also freeze rollouts.

Reasons (failures only): the first that applies along the exception's cause chain.

- an exception may name its reason itself with a ``shepherd_reason`` attribute (the run engine
  marks lost workers ``worker_lost``; a degraded answer is ``llm_unavailable``);
- LLM errors: ``llm_rate_limited`` and ``llm_timeout`` when every model failed that way, else
  ``llm_unavailable`` (provider errors, overload, open circuits, refused requests) — also when a
  tool called the model;
- ``tool_error``: the exception came out of a LangChain tool (``BaseTool.run``/``arun``);
- ``graph_error``: anything else the graph raised. ``timeout`` is the reason of every
  ``timeout`` run (the run deadline passed).

Pure functions plus ``record_run``, so every run engine counts runs the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType

import anthropic
from langchain_core.tools import BaseTool

from agent_service.llm.errors import AllModelsFailedError, BudgetExceededError, LLMError
from agent_service.observability.metrics import RUN_DURATION, RUNS

REASONS = (
    "llm_unavailable",
    "llm_rate_limited",
    "llm_timeout",
    "tool_error",
    "graph_error",
    "timeout",
    "worker_lost",
)
#: Outcomes that are SLI events (the others are neither good nor bad).
EVENT_OUTCOMES = frozenset({"success", "interrupted", "error", "timeout"})
BAD_OUTCOMES = frozenset({"error", "timeout"})

_TOOL_CODE = frozenset({BaseTool.run.__code__, BaseTool.arun.__code__})
_CHAIN_LIMIT = 16


def run_outcome(status: str, *, paused: bool = False, error: BaseException | None = None) -> str:
    """The outcome of a run that ended with LangGraph run ``status``.

    ``paused``: it stopped at an interrupt with nodes still to run. LangGraph's status for a run
    cancelled by its caller is ``interrupted``, which is the outcome ``cancelled`` here.
    """
    if status == "success":
        return "interrupted" if paused else "success"
    if status == "interrupted":
        return "cancelled"
    if status == "timeout":
        return "timeout"
    if error is not None and any(isinstance(e, BudgetExceededError) for e in _chain(error)):
        return "refused"
    return "error"


def failure_reason(error: BaseException) -> str:
    """The reason of a run that failed with ``error`` (see the module docstring)."""
    chain = list(_chain(error))
    for cause in chain:
        marked = getattr(cause, "shepherd_reason", None)
        if marked in REASONS:
            return marked
    for cause in chain:
        if (reason := _llm_reason(cause)) is not None:
            return reason
    if any(_raised_in_tool(cause.__traceback__) for cause in chain):
        return "tool_error"
    return "graph_error"


def classify_run(
    status: str,
    *,
    paused: bool = False,
    error: BaseException | None = None,
    lost: bool = False,
    degraded: str | None = None,
) -> tuple[str, str]:
    """``(outcome, reason)`` of a run; ``lost``: it was stopped because its worker went away;
    ``degraded``: the reason of a run answered with the degraded reply (a failure to the SLIs)."""
    if degraded and status == "success":  # paused or not: the caller got the degraded reply
        return "error", degraded
    outcome = run_outcome(status, paused=paused, error=error)
    if outcome == "cancelled" and lost:
        return "error", "worker_lost"
    if outcome == "timeout":
        return outcome, "timeout"
    if outcome == "error":
        return outcome, failure_reason(error) if error is not None else "graph_error"
    return outcome, ""


def record_run(outcome: str, reason: str, seconds: float) -> None:
    """Count one ended run; its duration (accepted to finished) only when it is an SLI event."""
    RUNS.labels(outcome, reason).inc()
    if outcome in EVENT_OUTCOMES:
        RUN_DURATION.observe(max(0.0, seconds))


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _llm_reason(error: BaseException) -> str | None:
    if isinstance(error, AllModelsFailedError):
        # Each model's own error; a bare TimeoutError there is the attempt's deadline.
        reasons = {
            "llm_timeout" if isinstance(e, TimeoutError) else _llm_reason(e) or "llm_unavailable"
            for e in error.errors.values()
        }
        return reasons.pop() if len(reasons) == 1 else "llm_unavailable"
    if isinstance(error, BudgetExceededError):
        return None  # a refusal, not a failure (run_outcome says "refused")
    if isinstance(error, anthropic.RateLimitError) or (
        isinstance(error, anthropic.APIStatusError) and error.status_code == 429
    ):
        return "llm_rate_limited"
    if isinstance(error, anthropic.APITimeoutError):
        return "llm_timeout"
    if isinstance(error, LLMError | anthropic.APIError):
        return "llm_unavailable"
    return None


def _raised_in_tool(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        if traceback.tb_frame.f_code in _TOOL_CODE:
            return True
        traceback = traceback.tb_next
    return False


def _export_every_outcome() -> None:
    """Every (outcome, reason) series at 0 from the start: rate() sees the first failed run at
    once, instead of one scrape later when a new series would only start."""
    for outcome in ("success", "interrupted", "cancelled", "refused"):
        RUNS.labels(outcome, "")
    for reason in REASONS:
        RUNS.labels("timeout" if reason == "timeout" else "error", reason)


_export_every_outcome()
