"""Stable loopback addresses for bridged Pods, as a Service gives them in a cluster.

Each AgentDeployment gets one port on 127.0.0.1 for the life of `make dev`; every connection to it
is forwarded, byte for byte (HTTP, SSE streams alike), to one of the deployment's serving Pods in
turn. Pods come and go with rollouts; the port stays, so a printed URL keeps working.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Callable

#: Ports of the serving Pods of one AgentDeployment, asked at each new connection.
Backends = Callable[[], list[int]]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            writer.close()


class ServiceProxies:
    """Loopback ports forwarding to backends, served by one event loop in a background thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._servers: dict[str, asyncio.Server] = {}
        self._thread = threading.Thread(target=self._loop.run_forever, name="service-proxies", daemon=True)
        self._thread.start()

    def ensure(self, name: str, port: int, backends: Backends) -> None:
        """Serve ``name`` on ``port`` (once; later calls for the same name do nothing)."""
        if name in self._servers:
            return
        turn = itertools.count()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            ports = backends()
            if not ports:
                writer.close()
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", ports[next(turn) % len(ports)]
                )
            except OSError:
                writer.close()
                return
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))

        future = asyncio.run_coroutine_threadsafe(asyncio.start_server(handle, "127.0.0.1", port), self._loop)
        self._servers[name] = future.result(timeout=10)

    def stop(self) -> None:
        for server in self._servers.values():
            self._loop.call_soon_threadsafe(server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
