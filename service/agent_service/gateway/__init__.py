"""The LLM gateway: Anthropic Messages and OpenAI Chat Completions routes, on 127.0.0.1 only, that
serve a graph's own SDK clients (ChatAnthropic, ChatOpenAI, init_chat_model, the raw SDKs) from the
AgentDeployment's fallback chain, through the same resilient client as Shepherd's own chat model.

At start-up the service binds the gateway to a loopback port (LLM_GATEWAY_PORT; 0, the default, picks a
free one) and points the SDKs at it in its own environment, before the graph is loaded:
ANTHROPIC_BASE_URL=http://127.0.0.1:<port>, OPENAI_BASE_URL=http://127.0.0.1:<port>/v1, and
placeholder ANTHROPIC_API_KEY / OPENAI_API_KEY (the real keys are the chain's, LLM_CHAIN_<i>_*). A
variable the Pod already sets (spec.env) is left alone. Being on loopback, the gateway is reachable
from inside the Pod only; it has no auth, and its requests are not API traffic (not in the SLI).

Every call is served by the chain whatever model the graph names: the AgentDeployment decides which
models answer (the answer's `model` says which did). The run and its tenant come from the request's
baggage (llm/scope.py). Errors are the protocol's own, with `x-should-retry: false`: the chain has
retried already, the graph's SDK must not multiply that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import uvicorn

from agent_service.gateway.app import create_gateway_app
from agent_service.llm.client import ResilientLLM

log = logging.getLogger(__name__)
#: What the graph's SDKs send as their key: the gateway ignores it, the chain holds the real ones.
PLACEHOLDER_KEY = "shepherd-llm-gateway"


class _EmbeddedServer(uvicorn.Server):
    """Uvicorn sharing the service's event loop; the main server owns the process's signals."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


class Gateway:
    def __init__(self, llm: ResilientLLM, port: int = 0) -> None:
        config = uvicorn.Config(
            create_gateway_app(llm),
            host="127.0.0.1",
            port=port,
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task | None = None
        self.url = ""

    async def start(self) -> str:
        """Listen; returns the base URL. Raises if the port cannot be bound."""
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the LLM gateway stopped while starting")
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        log.info("LLM gateway listening on %s", self.url)
        return self.url

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task

    def point_sdks_here(self) -> None:
        """Graph-built SDK clients read these at construction: set them unless the Pod did."""
        defaults = {
            "ANTHROPIC_BASE_URL": self.url,
            "OPENAI_BASE_URL": f"{self.url}/v1",
            "ANTHROPIC_API_KEY": PLACEHOLDER_KEY,
            "OPENAI_API_KEY": PLACEHOLDER_KEY,
        }
        for name, value in defaults.items():
            os.environ.setdefault(name, value)
