"""The benchmark's echo graph: one node answering the last message, so the server is what is measured."""

from langgraph.graph import START, MessagesState, StateGraph


def echo(state: MessagesState) -> dict:
    return {"messages": [("ai", state["messages"][-1].content)]}


builder = StateGraph(MessagesState)
builder.add_node("echo", echo)
builder.add_edge(START, "echo")
graph = builder.compile()
