"""Run outcomes and failure reasons: what the SLIs count, classified from real exceptions."""

from __future__ import annotations

import anthropic
import httpx
import pytest
from agent_service.llm.errors import (
    AllModelsFailedError,
    BudgetExceededError,
    CircuitOpenError,
    ProviderRequestError,
)
from agent_service.observability.outcomes import (
    REASONS,
    classify_run,
    failure_reason,
    record_run,
    run_outcome,
)
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from prometheus_client import REGISTRY

REQUEST = httpx.Request("POST", "http://127.0.0.1/v1/messages")


def status_error(code: int) -> anthropic.APIStatusError:
    response = httpx.Response(code, request=REQUEST)
    error_class = anthropic.RateLimitError if code == 429 else anthropic.InternalServerError
    return error_class(f"fake {code}", response=response, body=None)


def raised(error: BaseException, *, cause: BaseException | None = None) -> BaseException:
    """``error`` as the graph sees it: raised (with a traceback), optionally from ``cause``."""
    try:
        raise error from cause
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("status", "paused", "outcome"),
    [
        ("success", False, "success"),
        ("success", True, "interrupted"),  # stopped at interrupt(): a human-in-the-loop pause
        ("interrupted", False, "cancelled"),  # LangGraph's status of a run its caller cancelled
        ("timeout", False, "timeout"),
        ("error", False, "error"),
    ],
)
def test_outcome_of_each_langgraph_status(status: str, paused: bool, outcome: str) -> None:
    assert run_outcome(status, paused=paused) == outcome


def test_reason_only_for_failures_and_worker_lost_for_a_run_stopped_by_shutdown() -> None:
    assert classify_run("success") == ("success", "")
    assert classify_run("success", paused=True) == ("interrupted", "")
    assert classify_run("success", degraded="llm_unavailable") == ("error", "llm_unavailable")
    assert classify_run("interrupted") == ("cancelled", "")
    assert classify_run("interrupted", lost=True) == ("error", "worker_lost")
    assert classify_run("timeout") == ("timeout", "timeout")
    assert classify_run("error", error=raised(ValueError("bad state"))) == ("error", "graph_error")


def test_a_budget_refusal_is_refused_not_a_failure_even_when_wrapped() -> None:
    refusal = raised(BudgetExceededError("deployment_day_usd", 5.0, 5.0))
    wrapped = raised(RuntimeError("node failed"), cause=refusal)
    assert classify_run("error", error=refusal) == ("refused", "")
    assert classify_run("error", error=wrapped) == ("refused", "")


@pytest.mark.parametrize(
    ("errors", "reason"),
    [
        ({"a": status_error(429), "b": status_error(429)}, "llm_rate_limited"),
        ({"a": TimeoutError(), "b": anthropic.APITimeoutError(REQUEST)}, "llm_timeout"),
        ({"a": status_error(529), "b": status_error(529)}, "llm_unavailable"),
        ({"a": status_error(429), "b": TimeoutError()}, "llm_unavailable"),  # mixed: unavailable
        (
            {"a": CircuitOpenError("anthropic:a", 3), "b": CircuitOpenError("anthropic:b", 3)},
            "llm_unavailable",
        ),
    ],
)
def test_every_model_of_the_chain_failing(errors: dict[str, Exception], reason: str) -> None:
    assert failure_reason(raised(AllModelsFailedError(errors))) == reason


def test_provider_errors_outside_the_resilient_client() -> None:
    assert failure_reason(raised(status_error(429))) == "llm_rate_limited"
    assert failure_reason(raised(anthropic.APITimeoutError(REQUEST))) == "llm_timeout"
    assert failure_reason(raised(ProviderRequestError("m: 400 bad"))) == "llm_unavailable"


def test_an_exception_can_name_its_own_reason() -> None:
    lost = RuntimeError("the worker holding this run is gone")
    lost.shepherd_reason = "worker_lost"  # type: ignore[attr-defined]
    assert failure_reason(raised(lost)) == "worker_lost"
    unknown = RuntimeError("x")
    unknown.shepherd_reason = "not-a-reason"  # type: ignore[attr-defined]
    assert failure_reason(raised(unknown)) == "graph_error", "only reasons of the bounded set count"
    assert set(REASONS) >= {"worker_lost", "tool_error", "graph_error"}


def _graph_calling(tool_fn) -> object:
    """A real LangGraph graph whose first node asks for ``tool_fn`` and whose ToolNode runs it."""

    def ask(_: MessagesState) -> dict:
        call = {"name": tool_fn.name, "args": {"query": "x"}, "id": "call-1"}
        return {"messages": [AIMessage("", tool_calls=[call])]}

    builder = StateGraph(MessagesState)
    builder.add_node("ask", ask)
    builder.add_node("tools", ToolNode([tool_fn], handle_tool_errors=False))
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "tools")
    return builder.compile()


async def run_failing(graph) -> BaseException:
    """The exception the graph's run ends with, as the run engine catches it."""
    try:
        await graph.ainvoke({"messages": [("user", "hi")]})
    except Exception as error:
        return error
    raise AssertionError("the graph did not fail")


async def test_an_exception_out_of_a_tool_is_a_tool_error() -> None:
    @tool
    async def lookup(query: str) -> str:
        """Look something up."""
        raise ConnectionError("the search backend is down")

    assert failure_reason(await run_failing(_graph_calling(lookup))) == "tool_error"


async def test_an_llm_failure_inside_a_tool_is_the_llms() -> None:
    @tool
    async def summarize(query: str) -> str:
        """Summarize with a model."""
        raise AllModelsFailedError({"m": status_error(429)})

    assert failure_reason(await run_failing(_graph_calling(summarize))) == "llm_rate_limited"


async def test_a_node_raising_is_a_graph_error() -> None:
    def broken(_: MessagesState) -> dict:
        raise KeyError("missing state key")

    builder = StateGraph(MessagesState)
    builder.add_node("broken", broken)
    builder.add_edge(START, "broken")
    assert failure_reason(await run_failing(builder.compile())) == "graph_error"


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_record_run_counts_every_run_and_times_only_sli_events() -> None:
    before = {
        "error": _sample("agent_runs_total", {"outcome": "error", "reason": "llm_unavailable"}),
        "cancelled": _sample("agent_runs_total", {"outcome": "cancelled", "reason": ""}),
        "timed": _sample("agent_run_duration_seconds_count"),
        "slow": _sample("agent_run_duration_seconds_bucket", {"le": "300.0"})
        - _sample("agent_run_duration_seconds_bucket", {"le": "120.0"}),
    }
    record_run("error", "llm_unavailable", 200.0)
    record_run("cancelled", "", 5.0)
    assert (
        _sample("agent_runs_total", {"outcome": "error", "reason": "llm_unavailable"}) == before["error"] + 1
    )
    assert _sample("agent_runs_total", {"outcome": "cancelled", "reason": ""}) == before["cancelled"] + 1
    assert _sample("agent_run_duration_seconds_count") == before["timed"] + 1, "cancelled runs are not timed"
    slow = _sample("agent_run_duration_seconds_bucket", {"le": "300.0"}) - _sample(
        "agent_run_duration_seconds_bucket", {"le": "120.0"}
    )
    assert slow == before["slow"] + 1, "200 s falls in the (120, 300] bucket"


def test_every_outcome_and_reason_is_exported_before_the_first_run() -> None:
    """So that rate() sees the first failure at once (a series that appears with it would not)."""
    for outcome, reason in [("success", ""), ("cancelled", ""), ("timeout", "timeout")] + [
        ("error", r) for r in REASONS if r != "timeout"
    ]:
        assert (
            REGISTRY.get_sample_value("agent_runs_total", {"outcome": outcome, "reason": reason}) is not None
        )
