"""The default graph: a small research assistant that answers with the help of two local tools.

model node ──(tool calls?)──> tools node ──> model node ... ──> END
Tools are deterministic and offline, so the agent runs the same on any machine. They wear the tool
armour (agent_service.tools.armoured): a deadline, retries and a circuit each; a tool that stays
unavailable answers the model with the reason instead of failing the run.
"""

from __future__ import annotations

import ast
import operator

from langchain_core.messages import SystemMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from agent_service.llm import build_chat_model
from agent_service.settings import Settings
from agent_service.tools import ToolUnavailableError, armoured

SYSTEM_PROMPT = (
    "You are a careful research assistant. Use search_notes to look facts up and calculator for "
    "arithmetic; cite the note you used. Say so when the notes do not cover a question."
)

NOTES = {
    "langgraph": "LangGraph builds stateful agents as graphs of nodes that share a typed state.",
    "redis": "Redis is an in-memory data store; the service keeps thread checkpoints in it.",
    "slo": "A service level objective is a target for a service level indicator over a time window.",
    "error budget": "The error budget is 1 - SLO target: the share of requests allowed to fail.",
    "circuit breaker": "A circuit breaker stops calling a failing dependency until it has recovered.",
}

_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def _evaluate(node: ast.AST) -> float:
    # Walk the parsed expression ourselves: eval() on model output would run arbitrary code.
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        if isinstance(node.op, ast.Pow) and abs(_evaluate(node.right)) > 100:
            raise ValueError("exponent too large")
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.operand))
    raise ValueError(f"unsupported expression element: {type(node).__name__}")


# Coroutine tools: a sync tool runs in a worker thread per call, a cost that shows under load.
@tool
@armoured(timeout_seconds=2)
async def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / % ** and parentheses, e.g. '(2 + 3) * 4'."""
    try:
        return str(_evaluate(ast.parse(expression, mode="eval")))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as error:
        return f"error: {error}"


@tool
@armoured(timeout_seconds=5, retries=2)
async def search_notes(query: str) -> str:
    """Search the research notes for a topic and return the matching notes."""
    words = query.lower()
    found = [f"[{topic}] {text}" for topic, text in NOTES.items() if topic in words or words in topic]
    return "\n".join(found) or f"no notes about {query!r}"


TOOLS = [calculator, search_notes]


def build_graph(settings: Settings) -> StateGraph:
    model = build_chat_model(settings).bind_tools(TOOLS)

    async def call_model(state: MessagesState) -> dict:
        reply = await model.ainvoke([SystemMessage(SYSTEM_PROMPT), *state["messages"]])
        return {"messages": [reply]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", call_model)
    builder.add_node("tools", ToolNode(TOOLS, handle_tool_errors=ToolUnavailableError))
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", tools_condition, {"tools": "tools", END: END})
    builder.add_edge("tools", "model")
    return builder
