"""Our SSE frames decode with the SDK's own decoder, messages included."""

from __future__ import annotations

from agent_service.api.runs import _sse
from agent_service.runs.events import Event
from agent_service.serialization import dumps, to_jsonable
from langchain_core.messages import AIMessage
from langgraph.types import Interrupt
from langgraph_sdk.sse import SSEDecoder


def test_a_frame_decodes_to_one_stream_part_with_the_data():
    message = AIMessage("hello", id="m-1")
    frame = _sse(Event(7, "messages|tools:1", dumps([message, {"langgraph_node": "model"}])))
    decoder = SSEDecoder()
    parts = [p for p in (decoder.decode(line) for line in frame.split(b"\n")) if p is not None]
    (part,) = parts
    assert decoder.last_event_id == "7"  # what a reconnect sends back as Last-Event-ID
    assert part.event == "messages|tools:1"
    assert part.data[0]["content"] == "hello"
    assert part.data[0]["type"] == "ai"
    assert part.data[1] == {"langgraph_node": "model"}


def test_graph_objects_become_plain_json():
    value = to_jsonable({"__interrupt__": (Interrupt(value="approve?", id="i-1"),), "tags": {"a"}})
    (interrupt,) = value["__interrupt__"]
    assert (interrupt["value"], interrupt["id"]) == ("approve?", "i-1")
    assert value["tags"] == ["a"]
