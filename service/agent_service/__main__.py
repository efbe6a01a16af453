"""`agent-service` / `python -m agent_service`: serve the app with uvicorn and drain on SIGTERM;
`agent-service build`: an image of a LangGraph project (agent_service.build)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from agent_service.api.usage import local_usage_listener
from agent_service.app import create_app, drain
from agent_service.graphs.project import ProjectError
from agent_service.observability.logging import configure_logging
from agent_service.observability.tracing import configure_tracing, instrument_http_clients
from agent_service.settings import SettingsError, load_settings
from agent_service.startup import report_failure

# After the runs have drained, open connections (idle keep-alives) get this long to close.
CONNECTION_CLOSE_SECONDS = 5


class DrainingServer(uvicorn.Server):
    """First SIGTERM: readiness false, runs finish (or are cancelled after the grace), then exit.

    Uvicorn alone would stop accepting at once and cut long streams after its own timeout; here
    the listener stays open during the drain so probes can see readiness drop. A second signal
    exits immediately.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self.app = app
        self._drain_task: asyncio.Task | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        async with local_usage_listener(self.app.state.settings):  # GET /usage when auth is off
            await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM or self._drain_task is not None or self.should_exit:
            super().handle_exit(sig, frame)
            return
        loop = asyncio.get_event_loop()
        loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain_task = asyncio.ensure_future(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await drain(self.app.state.runtime)
        finally:
            self.should_exit = True


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["build"]:  # `agent-service build`: an image of a LangGraph project
        from agent_service.build import cli

        cli(argv[1:])
        return
    parser = argparse.ArgumentParser(prog="agent-service", description="Serve a LangGraph graph over HTTP.")
    parser.add_argument("--host", default="0.0.0.0", help="interface to listen on (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as error:
        print(error, file=sys.stderr)
        raise SystemExit(2) from None
    # Process-wide, so here and not in create_app: tests build many apps in one process.
    configure_logging(settings.log_level)
    configure_tracing(settings)
    instrument_http_clients()
    try:
        app = create_app(settings)
    except ProjectError as error:
        report_failure(settings, str(error))
        raise SystemExit(2) from None
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=CONNECTION_CLOSE_SECONDS,
        log_level=settings.log_level.lower(),
        log_config=None,  # keep our JSON handler (uvicorn would install its own text handlers)
        access_log=False,  # RequestContextMiddleware writes the access line, with request id and route
    )
    server = DrainingServer(config, app)
    server.run()
    if not server.started:  # the lifespan failed (a graph that does not import): uvicorn.run's exit code
        raise SystemExit(3)


if __name__ == "__main__":
    main()
