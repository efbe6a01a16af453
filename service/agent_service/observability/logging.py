"""JSON logs on stdout, one object per line, with the request id, and PII masked before anything is written.

`RequestContextMiddleware` accepts a well-formed `X-Request-ID` (or makes one), echoes it on the response,
puts it on the request context that every log line reads, and writes one access line per request
(method, route template, status, duration; never headers or bodies, so no credentials).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_service.observability.context import RequestContext, current_request, enter_request
from agent_service.observability.metrics import route_template
from agent_service.observability.pii import mask_pii

access_log = logging.getLogger("agent_service.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # anything else could forge log lines or headers
# Record attributes that are not "extra" fields (uvicorn's color_message repeats msg with ANSI codes).
_NOT_EXTRAS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """Message, extras and exception text are masked as one string: nothing unmasked reaches the stream."""

    def format(self, record: logging.LogRecord) -> str:
        context = current_request()
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": context.request_id,
            "tenant": context.tenant,
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _NOT_EXTRAS)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return mask_pii(json.dumps(entry, default=str))


def configure_logging(level: str = "INFO") -> None:
    """Route the root logger (and uvicorn's, which has its own handlers) through one JSON handler."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # Our access line replaces uvicorn's (which would log raw paths and no request id).
    logging.getLogger("uvicorn.access").disabled = True


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        offered = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"").decode("latin-1")
        request_id = offered if _REQUEST_ID.match(offered) else uuid.uuid4().hex
        context = RequestContext(request_id=request_id)
        enter_request(context)
        status = 500
        start = time.perf_counter()

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                if context.degraded:  # a run answered with the degraded reply (llm/client.py)
                    headers.append((b"x-shepherd-degraded", context.degraded.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "%s %s %d",
                    scope["method"],
                    route_template(scope),
                    status,
                    extra={"duration_ms": round((time.perf_counter() - start) * 1000, 2), "status": status},
                )
