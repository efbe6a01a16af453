"""Security headers on every response, plus headers that dependencies queue for the response (rate limits).

Pure ASGI: headers are appended to `http.response.start`, whatever produced the response (route, error
handler, streaming body), at the cost of one list extension per request.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# An API serves JSON and SSE, never pages: forbid framing, sniffing, referrers and any active content.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"()"),
    (b"cache-control", b"no-store"),
)
_HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")
_QUEUED = "shepherd.response_headers"


def add_response_headers(request: Request, headers: Mapping[str, str]) -> None:
    """Queue headers for this request's response (from a dependency, which cannot touch the response)."""
    queued = request.scope.setdefault(_QUEUED, [])
    queued.extend((name.lower().encode(), value.encode()) for name, value in headers.items())


class ResponseHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in SECURITY_HEADERS if h[0] not in present)
                # HSTS only means something over TLS (directly or behind a TLS-terminating proxy).
                if scope.get("scheme") == "https":
                    headers.append(_HSTS)
                headers.extend(scope.get(_QUEUED, ()))
            await send(message)

        await self.app(scope, receive, send_with_headers)
