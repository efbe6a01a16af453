"""A real HTTP server on loopback that records the webhook deliveries it receives."""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    deliveries: list[Delivery] = field(default_factory=list)
    #: Answer this status to the first ``failures`` deliveries (then 200), to exercise retries.
    failures: int = 0
    failure_status: int = 503
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    failing = receiver.failures > 0
                    receiver.failures -= 1 if failing else 0
                    if not failing:
                        receiver.deliveries.append(Delivery(dict(self.headers.items()), body))
                self.send_response(receiver.failure_status if failing else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def by_run(self) -> dict[str, list[Delivery]]:
        with self.lock:
            found: dict[str, list[Delivery]] = {}
            for delivery in self.deliveries:
                found.setdefault(delivery.payload["run_id"], []).append(delivery)
            return found
