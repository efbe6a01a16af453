"""One SDK scenario, written once, run against any LangGraph Server API: `agent-service` and `langgraph dev`.

Each step records what a client observes, normalised to what both servers must agree on (ids,
timestamps and run ids left out); the test compares the two transcripts and checks the facts that
make them meaningful. The model is the fake Anthropic provider (tests/fakes): it records each
request, so the transcript also says which system prompt reached the model.
"""

from __future__ import annotations

from typing import Any

import httpx
from langgraph_sdk import get_client

from tests.fakes.anthropic_server import FakeAnthropic

Transcript = dict[str, Any]
CUSTOM_PROMPT = "You are the scenario's assistant. The time is {system_time}."


def _system_text(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else "".join(block.get("text", "") for block in system)


def _user(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _types(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


async def graph_metadata(url: str, graph_ids: list[str]) -> Transcript:
    """What needs no run: one default assistant per graph (the same ids on both servers), their
    schemas, a new thread's empty state and history."""
    client = get_client(url=url)
    transcript: Transcript = {}
    for graph_id in graph_ids:
        (assistant,) = await client.assistants.search(graph_id=graph_id)
        schemas = await client.assistants.get_schemas(assistant["assistant_id"])
        transcript[graph_id] = {
            "assistant_id": assistant["assistant_id"],
            "schemas": {
                kind: sorted((schemas.get(kind) or {}).get("properties") or {})
                for kind in (
                    "input_schema",
                    "output_schema",
                    "state_schema",
                    "context_schema",
                    "config_schema",
                )
            },
        }
    thread = await client.threads.create()
    state = await client.threads.get_state(thread["thread_id"])
    transcript["new_thread"] = {
        "status": thread["status"],
        "values": state["values"],
        "next": state["next"],
        "history": len(await client.threads.get_history(thread["thread_id"])),
    }
    return transcript


async def react_agent(url: str, fake: FakeAnthropic) -> Transcript:
    """The tool-calling template: runs with and without context, a streamed tool round trip, the
    thread's state and history, a stateless run's output, a refused body."""
    client = get_client(url=url)
    transcript: Transcript = {}
    thread_id = (await client.threads.create())["thread_id"]

    fake.state.reset()
    values = await client.runs.wait(thread_id, "agent", input=_user("hello"))
    transcript["without_context"] = {
        "messages": _types(values["messages"]),
        "answer": values["messages"][-1]["content"],
        "system": _system_text(fake.state.requests[-1]).split(".")[0],  # the schema default's first sentence
    }

    values = await client.runs.wait(
        thread_id, "agent", input=_user("again"), context={"system_prompt": CUSTOM_PROMPT, "not_declared": 1}
    )
    transcript["with_context"] = {
        "messages": _types(values["messages"]),
        "system": _system_text(fake.state.requests[-1]).split(" The time")[0],
    }

    # The model asks for the template's search tool with arguments it lacks: ToolNode answers with
    # an error message (no web search), and the model is called again with it.
    fake.state.add_replies({"tool_use": {"name": "search", "input": {}}}, {"text": "No search needed."})
    updates, final = [], None
    async for part in client.runs.stream(
        thread_id, "agent", input=_user("search something"), stream_mode=["updates", "values"]
    ):
        if part.event == "updates":
            updates.append(sorted(part.data))
        elif part.event == "values":
            final = part.data
    assert final is not None
    transcript["streamed_tool_round_trip"] = {
        "nodes": updates,
        "last_messages": _types(final["messages"][-4:]),
        "tool_status": next(m for m in final["messages"] if m["type"] == "tool").get("status"),
        "answer": final["messages"][-1]["content"],
    }

    state = await client.threads.get_state(thread_id)
    history = await client.threads.get_history(thread_id, limit=100)
    transcript["state"] = {"messages": _types(state["values"]["messages"]), "next": state["next"]}
    transcript["history"] = {
        "next": [h["next"] for h in history],
        "steps": [h["metadata"]["step"] for h in history],
    }

    stateless = await client.runs.wait(None, "agent", input=_user("no thread"))
    transcript["stateless_output_keys"] = sorted(stateless)

    try:
        await client.runs.wait(
            None,
            "agent",
            input=_user("both"),
            context={"model": "x"},
            config={"configurable": {"model": "y"}},
        )
        transcript["context_and_configurable"] = "accepted"
    except httpx.HTTPStatusError as error:
        transcript["context_and_configurable"] = (
            "refused" if 400 <= error.response.status_code < 500 else "5xx"
        )
    return transcript
