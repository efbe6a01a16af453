"""What every fake provider shares: faults, scripted replies, the record of requests, the control API
and a uvicorn runner on a free loopback port.

Faults are queued and consumed one per request, optionally only for one model:

    POST /_control/faults  {"faults": [{"kind": "status", "status": 529, "times": 3, "model": "m"}]}
    kinds: status (status, retry_after, retry_after_ms), latency (seconds, then a normal answer),
           hang (seconds, then a normal answer), malformed_stream
    POST /_control/replies {"replies": [{"tool_use": {"name": "search", "input": {}}}, {"text": "hi"}]}
    POST /_control/limits  {"max_input_tokens": 5000}  (larger requests get the provider's 400)
    GET  /_control/requests -> {"count": n, "models": [...], "max_in_flight": n};  POST /_control/reset
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_TEXT = "The fake model says hello."


def input_tokens(messages: Any) -> int:
    """Deterministic usage: a quarter of the messages' JSON size, like a tokenizer would roughly count."""
    return len(json.dumps(messages)) // 4 + 1


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
            self.max_input_tokens: int | None = None

    def add_faults(self, *faults: dict[str, Any]) -> None:
        with self._lock:
            self.faults.extend({"times": 1, **fault} for fault in faults)

    def add_replies(self, *replies: dict[str, Any]) -> None:
        with self._lock:
            self.replies.extend(replies)

    def take(
        self, body: dict[str, Any], model: str | None = None
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """Record the request (under `model` when the protocol has it in the URL); return the fault
        (if any) and the reply it gets."""
        model = model or body.get("model")
        with self._lock:
            self.requests.append({**body, "model": model})
            fault = next((f for f in self.faults if f.get("model") in (None, model)), None)
            if fault:
                fault["times"] -= 1
                if fault["times"] <= 0:
                    self.faults.remove(fault)
            reply = self.replies.pop(0) if self.replies and not _is_failure(fault) else {"text": DEFAULT_TEXT}
            return fault, reply

    def too_long(self, messages: Any) -> str | None:
        """The provider's complaint when the messages exceed the configured input limit."""
        limit, used = self.max_input_tokens, input_tokens(messages)
        return f"prompt is too long: {used} tokens > {limit} maximum" if limit and used > limit else None

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def models(self) -> list[str]:
        with self._lock:
            return [r.get("model") or "" for r in self.requests]


def _is_failure(fault: dict[str, Any] | None) -> bool:
    return bool(fault) and fault["kind"] in ("status", "malformed_stream")


async def wait_unless_disconnected(request: Request, seconds: float) -> None:
    """Sleep, but give up when the client has gone (a timed-out SDK call), so shutdown is never held up."""
    # The body is read already, so the next ASGI message can only be the client's disconnect.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(request.receive(), seconds)


async def delay_for(fault: dict[str, Any] | None, request: Request) -> None:
    if fault and fault["kind"] in ("latency", "hang"):
        await wait_unless_disconnected(request, fault["seconds"])


def retry_headers(fault: dict[str, Any]) -> dict[str, str]:
    headers = {}
    if "retry_after" in fault:
        headers["retry-after"] = str(fault["retry_after"])
    if "retry_after_ms" in fault:
        headers["retry-after-ms"] = str(fault["retry_after_ms"])
    return headers


def control_routes(state: FakeState) -> list[Route]:
    async def faults(request: Request) -> Response:
        state.add_faults(*(await request.json())["faults"])
        return JSONResponse({"ok": True})

    async def replies(request: Request) -> Response:
        state.add_replies(*(await request.json())["replies"])
        return JSONResponse({"ok": True})

    async def limits(request: Request) -> Response:
        state.max_input_tokens = (await request.json()).get("max_input_tokens")
        return JSONResponse({"ok": True})

    async def requests(_: Request) -> Response:
        models = state.models()
        return JSONResponse({"count": len(models), "models": models, "max_in_flight": state.max_in_flight})

    async def reset(_: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    return [
        Route("/_control/faults", faults, methods=["POST"]),
        Route("/_control/replies", replies, methods=["POST"]),
        Route("/_control/limits", limits, methods=["POST"]),
        Route("/_control/requests", requests, methods=["GET"]),
        Route("/_control/reset", reset, methods=["POST"]),
    ]


def counted(state: FakeState, handler: Any) -> Any:
    """`handler` with the request counted as in flight while it runs."""

    async def wrapped(request: Request) -> Response:
        state.enter()
        try:
            return await handler(request)
        finally:
            state.leave()

    return wrapped


class FakeServer:
    """A fake's Starlette app on 127.0.0.1 in a background thread; `url` is its base URL."""

    def __init__(self, app: Starlette, state: FakeState, name: str) -> None:
        self.state = state
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=name, daemon=True)
        self.url = ""

    def start(self) -> Any:
        self._thread.start()
        for _ in range(500):  # up to 5 s for the socket to be bound
            if self._server.started:
                break
            threading.Event().wait(0.01)
        else:
            raise RuntimeError(f"{self._thread.name} did not start")
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    @property
    def request_count(self) -> int:
        return len(self.state.models())
