"""A fake Anthropic Messages API for tests: the real `anthropic` SDK talks to it through `base_url`.

POST /v1/messages answers like the real API (JSON, or SSE with message_start, content_block_start/delta/stop,
message_delta with usage, message_stop), with text or tool_use blocks. Faults, scripted replies, limits and
the record of requests: tests/fakes/control.py. The message and event builders here are shared by the fakes
of the other Claude endpoints (Bedrock, Vertex).

In tests use `FakeAnthropic` (runs uvicorn in a thread on a free loopback port); standalone:
`python -m tests.fakes.anthropic_server --port 8765`.
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from agent_service.llm.routes import Credentials, ModelRoute, ProviderName
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.fakes.control import (
    DEFAULT_TEXT,
    FakeServer,
    FakeState,
    control_routes,
    counted,
    delay_for,
    input_tokens,
    retry_headers,
)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}


def message(body: dict[str, Any], reply: dict[str, Any], model: str) -> dict[str, Any]:
    if "tool_use" in reply:
        tool = reply["tool_use"]
        content = [
            {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:12]}",
                "name": tool["name"],
                "input": tool.get("input", {}),
            }
        ]
        stop_reason, output_tokens = "tool_use", 10
    else:
        text = reply.get("text", DEFAULT_TEXT)
        content = [{"type": "text", "text": text}]
        stop_reason, output_tokens = "end_turn", len(text.split())
    return {
        "id": f"msg_{uuid.uuid4().hex[:16]}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens(body.get("messages", [])),
            "output_tokens": output_tokens,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def events(message: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The Messages API stream of `message`: text word by word, tool input in two JSON halves."""
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield {"type": "message_start", "message": start}
    yield {"type": "ping"}
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield {
                "type": "content_block_start",
                "index": index,
                "content_block": {"type": "text", "text": ""},
            }
            for word in block["text"].split(" "):
                yield {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": word + " "},
                }
        else:
            yield {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
            arguments = json.dumps(block["input"])
            for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": part}
                yield {"type": "content_block_delta", "index": index, "delta": delta}
        yield {"type": "content_block_stop", "index": index}
    yield {
        "type": "message_delta",
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
        "usage": {"output_tokens": message["usage"]["output_tokens"]},
    }
    yield {"type": "message_stop"}


def anthropic_error(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": "error", "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": text}}
    return JSONResponse(body, status_code=status, headers=headers)


async def sse_events(message: dict[str, Any], malformed: bool) -> AsyncIterator[str]:
    if malformed:
        yield "event: message_start\ndata: {this is not json\n\n"
        return
    for item in events(message):
        yield f"event: {item['type']}\ndata: {json.dumps(item)}\n\n"


async def answer_claude(
    request: Request,
    state: FakeState,
    body: dict[str, Any],
    model: str,
    stream: bool,
    write_stream: Any,
    write_error: Any = None,
) -> Response:
    """A Claude answer, with the queued fault if any; `write_stream` frames the events for the wire,
    `write_error(status, text, headers)` the endpoint's errors (default: the Anthropic API's)."""
    write_error = write_error or anthropic_error
    fault, reply = state.take(body, model)
    await delay_for(fault, request)
    kind = fault["kind"] if fault else None
    if kind == "status":
        return write_error(fault["status"], f"fake {fault['status']}", retry_headers(fault))
    if complaint := state.too_long(body.get("messages", [])):
        return write_error(400, complaint)
    answer = message(body, reply, model)
    if not stream:
        return JSONResponse(answer, headers={"request-id": answer["id"]})
    return write_stream(answer, kind == "malformed_stream")


def create_app(state: FakeState) -> Starlette:
    async def messages(request: Request) -> Response:
        body = await request.json()

        def sse(answer: dict[str, Any], malformed: bool) -> Response:
            return StreamingResponse(
                sse_events(answer, malformed),
                media_type="text/event-stream",
                headers={"request-id": answer["id"]},
            )

        return await answer_claude(request, state, body, body["model"], bool(body.get("stream")), sse)

    return Starlette(
        routes=[Route("/v1/messages", counted(state, messages), methods=["POST"]), *control_routes(state)]
    )


class FakeAnthropic(FakeServer):
    """The fake Anthropic API; `url` is the SDK's base_url."""

    def __init__(self) -> None:
        state = FakeState()
        super().__init__(create_app(state), state, "fake-anthropic")

    def route(self, model: str) -> ModelRoute:
        """A chain entry for `model` served by this fake."""
        return ModelRoute(
            ProviderName.anthropic, model, self.url, credentials=Credentials(api_key="test-key")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(create_app(FakeState()), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
