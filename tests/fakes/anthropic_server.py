"""A fake Anthropic Messages API for tests: the real `anthropic` SDK talks to it through `base_url`.

POST /v1/messages answers like the real API (JSON, or SSE with message_start, content_block_start/delta/stop,
message_delta with usage, message_stop), with text or tool_use blocks. Faults are queued and consumed one per
request, optionally only for one model:

    POST /_control/faults  {"faults": [{"kind": "status", "status": 529, "times": 3, "model": "m"}]}
    kinds: status (status, retry_after, retry_after_ms), latency (seconds, then a normal answer),
           hang (seconds, then a normal answer), malformed_stream
    POST /_control/replies {"replies": [{"tool_use": {"name": "search", "input": {}}}, {"text": "hi"}]}
    GET  /_control/requests -> {"count": n, "models": [...], "max_in_flight": n};  POST /_control/reset

In tests use `FakeAnthropic` (runs uvicorn in a thread on a free loopback port); standalone:
`python -m tests.fakes.anthropic_server --port 8765`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from agent_service.llm.routes import Credentials, ModelRoute, ProviderName
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    503: "api_error",
    529: "overloaded_error",
}
DEFAULT_TEXT = "The fake model says hello."


class FakeState:
    """Faults, scripted replies and the record of requests; shared by the HTTP app and the test's handle."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.faults: list[dict[str, Any]] = []
            self.replies: list[dict[str, Any]] = []
            self.requests: list[dict[str, Any]] = []
            self.in_flight = self.max_in_flight = 0

    def add_faults(self, *faults: dict[str, Any]) -> None:
        with self._lock:
            self.faults.extend({"times": 1, **fault} for fault in faults)

    def add_replies(self, *replies: dict[str, Any]) -> None:
        with self._lock:
            self.replies.extend(replies)

    def take(self, body: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Record the request; return the fault (if any) and the reply it gets."""
        with self._lock:
            self.requests.append(body)
            fault = next((f for f in self.faults if f.get("model") in (None, body.get("model"))), None)
            if fault:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self.faults.remove(fault)
            reply = self.replies.pop(0) if self.replies and not _is_failure(fault) else {"text": DEFAULT_TEXT}
            return fault, reply

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def models(self) -> list[str]:
        with self._lock:
            return [r.get("model", "") for r in self.requests]


def _is_failure(fault: dict[str, Any] | None) -> bool:
    return bool(fault) and fault["kind"] in ("status", "malformed_stream")


def create_app(state: FakeState) -> Starlette:
    async def messages(request: Request) -> Response:
        state.enter()
        try:
            return await answer(request)
        finally:
            state.leave()

    async def answer(request: Request) -> Response:
        body = await request.json()
        fault, reply = state.take(body)
        kind = fault["kind"] if fault else None
        if kind in ("latency", "hang"):
            await _wait_unless_disconnected(request, fault["seconds"])
        if kind == "status":
            return _error(fault)
        message = _message(body, reply)
        if not body.get("stream"):
            return JSONResponse(message, headers={"request-id": message["id"]})
        events = _malformed_events(message) if kind == "malformed_stream" else _events(message)
        return StreamingResponse(
            events, media_type="text/event-stream", headers={"request-id": message["id"]}
        )

    async def control_faults(request: Request) -> Response:
        state.add_faults(*(await request.json())["faults"])
        return JSONResponse({"ok": True})

    async def control_replies(request: Request) -> Response:
        state.add_replies(*(await request.json())["replies"])
        return JSONResponse({"ok": True})

    async def control_requests(_: Request) -> Response:
        models = state.models()
        return JSONResponse({"count": len(models), "models": models, "max_in_flight": state.max_in_flight})

    async def control_reset(_: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/_control/faults", control_faults, methods=["POST"]),
            Route("/_control/replies", control_replies, methods=["POST"]),
            Route("/_control/requests", control_requests, methods=["GET"]),
            Route("/_control/reset", control_reset, methods=["POST"]),
        ]
    )


async def _wait_unless_disconnected(request: Request, seconds: float) -> None:
    """Sleep, but give up when the client has gone (a timed-out SDK call), so shutdown is never held up."""
    # The body is read already, so the next ASGI message can only be the client's disconnect.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(request.receive(), seconds)


def _error(fault: dict[str, Any]) -> Response:
    status = fault["status"]
    headers = {}
    if "retry_after" in fault:
        headers["retry-after"] = str(fault["retry_after"])
    if "retry_after_ms" in fault:
        headers["retry-after-ms"] = str(fault["retry_after_ms"])
    body = {
        "type": "error",
        "error": {"type": _ERROR_TYPES.get(status, "api_error"), "message": f"fake {status}"},
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _message(body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
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
    # Deterministic usage: a quarter of the request's JSON size, like a tokenizer would roughly count.
    input_tokens = len(json.dumps(body.get("messages", []))) // 4 + 1
    return {
        "id": f"msg_{uuid.uuid4().hex[:16]}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
        },
    }


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n"


async def _events(message: dict[str, Any]) -> AsyncIterator[str]:
    start = {**message, "content": [], "stop_reason": None, "usage": {**message["usage"], "output_tokens": 1}}
    yield _sse({"type": "message_start", "message": start})
    yield _sse({"type": "ping"})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield _sse(
                {"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}}
            )
            for word in block["text"].split(" "):
                delta = {"type": "text_delta", "text": word + " "}
                yield _sse({"type": "content_block_delta", "index": index, "delta": delta})
        else:
            yield _sse(
                {"type": "content_block_start", "index": index, "content_block": {**block, "input": {}}}
            )
            arguments = json.dumps(block["input"])
            for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
                delta = {"type": "input_json_delta", "partial_json": part}
                yield _sse({"type": "content_block_delta", "index": index, "delta": delta})
        yield _sse({"type": "content_block_stop", "index": index})
    yield _sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        }
    )
    yield _sse({"type": "message_stop"})


async def _malformed_events(message: dict[str, Any]) -> AsyncIterator[str]:
    yield "event: message_start\ndata: {this is not json\n\n"


class FakeAnthropic:
    """The fake server on 127.0.0.1 in a background thread; `url` is the SDK's base_url."""

    def __init__(self) -> None:
        self.state = FakeState()
        config = uvicorn.Config(
            create_app(self.state),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            timeout_graceful_shutdown=1,
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-anthropic", daemon=True)

    def start(self) -> FakeAnthropic:
        self._thread.start()
        for _ in range(500):  # up to 5 s for the socket to be bound
            if self._server.started:
                break
            threading.Event().wait(0.01)
        else:
            raise RuntimeError("fake Anthropic server did not start")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def request_count(self) -> int:
        return len(self.state.models())

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
