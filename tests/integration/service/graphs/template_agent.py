"""A ReAct agent written the way LangGraph's public templates write one, with no Shepherd import: the
graph builds its own chat model with `init_chat_model("<provider>/<model>")` on each call (the model
named in the run's configurable `model`), binds a plain `@tool`, and loops through a ToolNode.

Served by agent-service as AGENT_GRAPH=template_agent:graph, its calls must get Shepherd's armour
anyway: the gateway, the run callbacks (tests/integration/service/test_llm_gateway.py).
"""

from __future__ import annotations

from typing import Any, Literal

from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import tool
from langgraph.graph import MessagesState, StateGraph
from langgraph.prebuilt import ToolNode

SYSTEM_PROMPT = "You are a helpful assistant. Use the tools you have when they help."
DEFAULT_MODEL = "anthropic/claude-sonnet-4-5"


@tool
async def lookup_weather(city: str) -> str:
    """Look up today's weather in a city."""
    return f"It is sunny in {city}."


TOOLS = [lookup_weather]


def load_chat_model(fully_specified_name: str) -> BaseChatModel:
    """A chat model from a `provider/model` name."""
    provider, model = fully_specified_name.split("/", maxsplit=1)
    return init_chat_model(model, model_provider=provider)


async def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
    name = config.get("configurable", {}).get("model", DEFAULT_MODEL)
    model = load_chat_model(name).bind_tools(TOOLS)
    response = await model.ainvoke([{"role": "system", "content": SYSTEM_PROMPT}, *state["messages"]], config)
    return {"messages": [response]}


def route_model_output(state: MessagesState) -> Literal["__end__", "tools"]:
    return "tools" if state["messages"][-1].tool_calls else "__end__"


builder = StateGraph(MessagesState)
builder.add_node(call_model)
builder.add_node("tools", ToolNode(TOOLS))
builder.add_edge("__start__", "call_model")
builder.add_conditional_edges("call_model", route_model_output)
builder.add_edge("tools", "call_model")
graph = builder.compile()
