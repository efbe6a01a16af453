"""``shepherd-operator --leader-elect``: wait for the Lease (``shepherd.leader``), then run the operator.

One asyncio loop for the whole process, so the health endpoint answering proves that loop alive:

* ``/healthz`` (liveness) answers 200 while the process runs, leader or candidate;
* ``/readyz`` (readiness) answers 200 only while this process leads, so the operator's Service (its
  webhook, its ServiceMonitor) reaches the leader alone. The chart runs the replicas with the
  ``Recreate`` strategy, whose rollouts never wait for a candidate to become ready.

SIGTERM while waiting ends the process at once; while leading, kopf stops the operator (cleanup
handlers run) and the Lease is released. A lost Lease ends the process at once, with status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import urllib.parse
from collections.abc import Awaitable, Callable

import aiohttp.web
from prometheus_client import Gauge

from shepherd.kube import KubeClient
from shepherd.leader import LeaderElector, LeaseSettings

log = logging.getLogger(__name__)

LEADER = Gauge("shepherd_operator_leader", "1 while this operator process holds the leader Lease")


async def serve_health(url: str, leading: Callable[[], bool]) -> aiohttp.web.AppRunner:
    """``/healthz`` and ``/readyz`` on the host and port of ``url`` (e.g. http://0.0.0.0:8080/healthz)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.port:
        raise ValueError(f"--liveness {url!r}: expected http://HOST:PORT/PATH")

    async def healthz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"leading": leading()})

    async def readyz(_: aiohttp.web.Request) -> aiohttp.web.Response:
        ready = leading()
        return aiohttp.web.json_response({"leading": ready}, status=200 if ready else 503)

    app = aiohttp.web.Application()
    app.add_routes([aiohttp.web.get(parts.path or "/healthz", healthz), aiohttp.web.get("/readyz", readyz)])
    runner = aiohttp.web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, parts.hostname or "0.0.0.0", parts.port).start()
    return runner


async def _first(*aws: Awaitable[object]) -> asyncio.Task[object]:
    """Runs ``aws`` until the first one finishes; cancels the others and returns the finished one."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return done.pop()


async def run(settings: LeaseSettings, operate: Callable[[], Awaitable[None]], health_url: str | None) -> int:
    """Candidate, then leader: returns the process's exit status."""
    client = KubeClient.from_environment(max_connections=2)  # never queued behind the reconciles
    elector = LeaderElector(client, settings)
    health = await serve_health(health_url, lambda: elector.leading) if health_url else None
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    try:
        log.info("candidate for Lease %s/%s as %s", settings.namespace, settings.name, settings.identity)
        acquired = asyncio.ensure_future(elector.acquire())
        if await _first(acquired, stopping.wait()) is not acquired:
            return 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)  # kopf installs its own and stops gracefully on them
        LEADER.set(1)
        holding = asyncio.ensure_future(elector.hold())
        finished = await _first(holding, operate())
        if finished is holding:
            log.critical("lost Lease %s/%s: exiting (one operator writes)", settings.namespace, settings.name)
            logging.shutdown()
            os._exit(1)  # at once: the next leader may take the Lease as soon as it expires
        await elector.release()
        finished.result()  # kopf's own failure, if any, once the Lease is free
        return 0
    finally:
        LEADER.set(0)
        if health is not None:
            await health.cleanup()
        await client.close()
