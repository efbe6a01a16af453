"""A graph that asks before it answers: `interrupt()` waits for the user's name (human in the loop)."""

from langgraph.graph import START, MessagesState, StateGraph
from langgraph.types import interrupt


def ask(state: MessagesState) -> dict:
    name = interrupt("What is your name?")
    return {"messages": [("ai", f"hello {name}")]}


builder = StateGraph(MessagesState)
builder.add_node("ask", ask)
builder.add_edge(START, "ask")
graph = builder.compile()
