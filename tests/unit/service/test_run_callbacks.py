"""The callbacks every run gets: tool metrics for any tool, model calls counted once, the run's scope.
(Tool spans: tests/integration/service/test_observability_http.py.)"""

from __future__ import annotations

import uuid

from agent_service.callbacks import RunCallbacks
from agent_service.llm import scope
from agent_service.observability.context import RequestContext, enter_request
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from opentelemetry import baggage

from tests.fakes.prom import scrape

seen: list[tuple[str | None, str | None]] = []


def graph(tool_name: str, model: GenericFakeChatModel):
    @tool(tool_name)
    async def plain(text: str) -> str:
        """A tool with no armour at all."""
        seen.append((baggage.get_baggage(scope.RUN_KEY), baggage.get_baggage(scope.CALL_KEY)))
        return text.upper()

    async def call_model(state: MessagesState) -> dict:
        return {"messages": [await model.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode([plain]))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition)
    builder.add_edge("tools", "model")
    return builder.compile()


class ToolCallingFake(GenericFakeChatModel):
    def bind_tools(self, tools, **kwargs):
        return self


def replies(tool_name: str) -> ToolCallingFake:
    calls = [{"name": tool_name, "args": {"text": "hi"}, "id": "c1"}]
    return ToolCallingFake(messages=iter([AIMessage("", tool_calls=calls), AIMessage("done")]))


async def test_an_unwrapped_tool_gets_metrics_and_a_span_and_the_run_its_scope() -> None:
    name = f"shout_{uuid.uuid4().hex[:6]}"
    enter_request(RequestContext(request_id="r1", tenant="acme"))
    seen.clear()
    await graph(name, replies(name)).ainvoke(
        {"messages": [("user", "shout hi")]}, {"callbacks": [RunCallbacks()]}
    )

    metrics = await scrape()
    assert metrics.value("agent_tool_calls_total", tool=name, outcome="success") == 1
    assert metrics.value("agent_tool_duration_seconds_count", tool=name) == 1
    ((run_key, _),) = seen
    assert run_key is not None, "the run's key is in the baggage of everything the run does"
    assert scope.scope_of({"baggage": f"{scope.RUN_KEY}={run_key}"})[0] is None, "closed with the run"


async def test_model_calls_outside_the_gateway_are_counted_from_what_langchain_reports() -> None:
    name = f"echo_{uuid.uuid4().hex[:6]}"
    model = replies(name)
    before = (await scrape()).value(
        "agent_llm_requests_total", provider="toolcallingfake", model="unknown", outcome="success"
    )
    await graph(name, model).ainvoke({"messages": [("user", "x")]}, {"callbacks": [RunCallbacks()]})
    after = (await scrape()).value(
        "agent_llm_requests_total", provider="toolcallingfake", model="unknown", outcome="success"
    )
    assert after - before == 2, "both model calls, once each"
