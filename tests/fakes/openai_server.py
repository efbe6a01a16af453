"""A fake OpenAI Chat Completions endpoint: the official `openai` SDK (and ChatOpenAI) talk to it.

POST /v1/chat/completions answers a chat.completion (text or tool_calls, usage), or streams
chat.completion.chunk events (`data: {...}`, a usage chunk when stream_options.include_usage, then
`data: [DONE]`). POST /v1/embeddings answers bag-of-words vectors (EMBEDDING_DIMS, unit length:
texts that share words are near), for the store's semantic search. A bearer key is required when
the fake has one (self-hosted servers take none).
Errors have OpenAI's shape and codes. Faults, replies and limits: tests/fakes/control.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

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

API_KEY = "sk-fake-openai"
EMBEDDING_DIMS = 64
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_api_key", 404: "model_not_found",
                429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}  # fmt: skip


def openai_error(status: int, text: str, headers: dict[str, str] | None = None) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "server_error")
    body = {"error": {"message": text, "type": kind, "param": None, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def _completion(body: dict[str, Any], reply: dict[str, Any]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if "tool_use" in reply:
        tool = reply["tool_use"]
        arguments = json.dumps(tool.get("input", {}))
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:12]}", "type": "function",
                                  "function": {"name": tool["name"], "arguments": arguments}}]  # fmt: skip
        finish, output = "tool_calls", 10
    else:
        message["content"] = reply.get("text", DEFAULT_TEXT)
        finish, output = "stop", len(message["content"].split())
    prompt = input_tokens(body.get("messages", []))
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:16]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt + output},
    }


def _chunks(completion: dict[str, Any], include_usage: bool) -> Iterator[dict[str, Any]]:
    base = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
    choice = completion["choices"][0]

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""})
    for word in (choice["message"]["content"] or "").split(" "):
        if word:
            yield chunk({"content": word + " "})
    for index, call in enumerate(choice["message"].get("tool_calls") or []):
        arguments = call["function"]["arguments"]
        opened = {"index": index, "id": call["id"], "type": "function",
                  "function": {"name": call["function"]["name"], "arguments": ""}}  # fmt: skip
        yield chunk({"tool_calls": [opened]})
        for part in (arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": part}}]})
    yield chunk({}, choice["finish_reason"])
    if include_usage:
        yield {**base, "choices": [], "usage": completion["usage"]}


async def _sse(completion: dict[str, Any], include_usage: bool, malformed: bool) -> AsyncIterator[str]:
    if malformed:
        yield "data: {this is not json\n\n"
        return
    for item in _chunks(completion, include_usage):
        yield f"data: {json.dumps(item)}\n\n"
    yield "data: [DONE]\n\n"


def create_app(state: FakeState, api_key: str | None) -> Starlette:
    async def completions(request: Request) -> Response:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return openai_error(401, "Incorrect API key provided.")
        body = await request.json()
        fault, reply = state.take(body)
        await delay_for(fault, request)
        kind = fault["kind"] if fault else None
        if kind == "status":
            return openai_error(fault["status"], f"fake {fault['status']}", retry_headers(fault))
        if complaint := state.too_long(body.get("messages", [])):
            return openai_error(400, complaint)
        completion = _completion(body, reply)
        if not body.get("stream"):
            return JSONResponse(completion)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = _sse(completion, include_usage, kind == "malformed_stream")
        return StreamingResponse(events, media_type="text/event-stream")

    async def embeddings(request: Request) -> Response:
        if api_key and request.headers.get("authorization") != f"Bearer {api_key}":
            return openai_error(401, "Incorrect API key provided.")
        body = await request.json()
        fault, _ = state.take(body)
        if fault and fault["kind"] == "status":
            return openai_error(fault["status"], f"fake {fault['status']}", retry_headers(fault))
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(t)} for i, t in enumerate(texts)
        ]
        usage = {"prompt_tokens": sum(len(t.split()) for t in texts), "total_tokens": 0}
        return JSONResponse({"object": "list", "data": data, "model": body["model"], "usage": usage})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", counted(state, completions), methods=["POST"]),
            Route("/v1/embeddings", counted(state, embeddings), methods=["POST"]),
            *control_routes(state),
        ]
    )


def bag_of_words(text: str) -> list[float]:
    """A deterministic unit vector whose cosine similarity to another means shared words."""
    vector = [0.0] * EMBEDDING_DIMS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % EMBEDDING_DIMS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class FakeOpenAI(FakeServer):
    def __init__(self, api_key: str | None = API_KEY) -> None:
        state = FakeState()
        self.api_key = api_key
        super().__init__(create_app(state, api_key), state, "fake-openai")

    def route(self, model: str) -> ModelRoute:
        credentials = Credentials(api_key=self.api_key)
        return ModelRoute(ProviderName.openai, model, f"{self.url}/v1", credentials=credentials)
