"""The gateway's routes: each request enters its run's context, then goes through the resilient client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from anthropic.types import Message, RawMessageStreamEvent
from opentelemetry import context
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from agent_service.llm.client import ResilientLLM
from agent_service.llm.errors import BudgetExceededError, ContextTooLongError, LLMError
from agent_service.llm.openai_format import (
    ChunksFromAnthropicEvents,
    from_openai_request,
    to_openai_completion,
)
from agent_service.llm.scope import scope_of, trace_parent
from agent_service.observability.context import RequestContext, current_request, enter_request

DEGRADED_HEADER = "x-shepherd-degraded"
_NO_RETRY = {"x-should-retry": "false"}


class BadRequestError(ValueError):
    """The request body is not one this route accepts; the message names what is wrong."""


def _enter_run(request: Request) -> None:
    """The caller's run context (tenant, token count, degraded mark) and trace parent, by its baggage."""
    scope, call = scope_of(request.headers)
    if scope is not None:
        if call:
            scope.gateway_calls.add(call)
        enter_request(scope.request)
    else:  # no run named (a graph called its model outside any run): the default tenant
        enter_request(RequestContext(request_id=request.headers.get("x-request-id", "gateway")))
    context.attach(trace_parent(request.headers))


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadRequestError(f"body is not JSON: {error}") from None
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise BadRequestError("body must be a JSON object with a `messages` list")
    return body


def _headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    headers = dict(extra or {})
    if current_request().degraded:
        headers[DEGRADED_HEADER] = current_request().degraded or ""
    return headers


async def _answer(
    llm: ResilientLLM,
    params: dict[str, Any],
    stream: bool,
    as_json: Callable[[Message], dict[str, Any]],
    as_sse: Callable[[AsyncIterator[RawMessageStreamEvent], RawMessageStreamEvent], AsyncIterator[str]],
) -> Response:
    if not stream:
        message = await llm.create(params)
        return JSONResponse(as_json(message), headers=_headers())
    events = llm.stream(params)
    first = await anext(events)  # failures before the first event are HTTP errors, not broken streams
    return StreamingResponse(
        as_sse(events, first), media_type="text/event-stream", headers=_headers({"cache-control": "no-store"})
    )


# ------------------------------------------------------------------------------ Anthropic Messages


def _anthropic_error(status: int, kind: str, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {**_NO_RETRY, **({"retry-after": str(max(1, round(retry_after)))} if retry_after else {})}
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def _anthropic_kind(error: LLMError) -> str:
    if isinstance(error, BudgetExceededError):
        return "rate_limit_error"
    if isinstance(error, ContextTooLongError) or error.status_code == 400:
        return "invalid_request_error"
    return "overloaded_error" if error.status_code == 503 else "api_error"


async def _anthropic_sse(
    events: AsyncIterator[RawMessageStreamEvent], first: RawMessageStreamEvent
) -> AsyncIterator[str]:
    def sse(item: RawMessageStreamEvent) -> str:
        return f"event: {item.type}\ndata: {item.model_dump_json(exclude_none=True)}\n\n"

    yield sse(first)
    try:
        async for item in events:
            yield sse(item)
    except LLMError as error:  # after the first token: the stream's own error event
        payload = {"type": "error", "error": {"type": _anthropic_kind(error), "message": str(error)}}
        yield f"event: error\ndata: {json.dumps(payload)}\n\n"


async def messages(request: Request) -> Response:
    _enter_run(request)
    try:
        body = await _body(request)
        if not isinstance(body.get("max_tokens"), int):
            raise BadRequestError("max_tokens: an integer is required")
    except BadRequestError as error:
        return _anthropic_error(400, "invalid_request_error", str(error))
    params = {k: v for k, v in body.items() if k not in ("model", "stream")}

    def as_json(message: Message) -> dict[str, Any]:
        return message.model_dump(mode="json", exclude_none=True)

    try:
        return await _answer(request.app.state.llm, params, bool(body.get("stream")), as_json, _anthropic_sse)
    except LLMError as error:
        return _anthropic_error(error.status_code, _anthropic_kind(error), str(error), error.retry_after)


# ------------------------------------------------------------------------------ OpenAI Chat Completions


def _openai_error(status: int, kind: str, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {**_NO_RETRY, **({"retry-after": str(max(1, round(retry_after)))} if retry_after else {})}
    body = {"error": {"message": message, "type": kind, "param": None, "code": kind}}
    return JSONResponse(body, status_code=status, headers=headers)


def _openai_kind(error: LLMError) -> str:
    if isinstance(error, BudgetExceededError):
        return "rate_limit_exceeded"
    if isinstance(error, ContextTooLongError):
        return "context_length_exceeded"
    return "invalid_request_error" if error.status_code == 400 else "server_error"


def _data(chunks: Iterable[dict[str, Any]]) -> str:
    return "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)


async def chat_completions(request: Request) -> Response:
    _enter_run(request)
    try:
        body = await _body(request)
        params = from_openai_request(body, request.app.state.llm.config.max_tokens)
    except (BadRequestError, KeyError, TypeError, ValueError) as error:
        return _openai_error(400, "invalid_request_error", f"unreadable request: {error}")
    writer = ChunksFromAnthropicEvents(
        include_usage=bool((body.get("stream_options") or {}).get("include_usage"))
    )

    async def as_sse(
        events: AsyncIterator[RawMessageStreamEvent], first: RawMessageStreamEvent
    ) -> AsyncIterator[str]:
        yield _data(writer.chunks(first))
        try:
            async for item in events:
                if text := _data(writer.chunks(item)):
                    yield text
        except LLMError as error:
            yield _data([{"error": {"message": str(error), "type": _openai_kind(error)}}])
        yield "data: [DONE]\n\n"

    try:
        return await _answer(
            request.app.state.llm, params, bool(body.get("stream")), to_openai_completion, as_sse
        )
    except LLMError as error:
        return _openai_error(error.status_code, _openai_kind(error), str(error), error.retry_after)


def create_gateway_app(llm: ResilientLLM) -> Starlette:
    app = Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ]
    )
    app.state.llm = llm
    return app
