"""One periodic resync loop for the whole fleet (drift repair, status refresh).

A kopf timer would be one task per resource *and* makes kopf put a finalizer on every
AgentDeployment (so deletion would hang while the operator is down). Instead one task started at
operator start-up lists the AgentDeployments in scope every ``interval`` seconds and reconciles
each, a bounded number at a time. A no-op reconcile only reads, so an idle fleet costs reads only.
``after`` then gets the round's list (the fleet-wide SLO rules are kept in line from there).
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from shepherd import api, lanes
from shepherd.kube import KubeClient, KubeError, path_for

log = logging.getLogger(__name__)


async def list_agentdeployments(client: KubeClient, namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """Every AgentDeployment in scope: one LIST per plain namespace, or one cluster-wide LIST."""
    globbed = not namespaces or any(set(ns) & set("*?[") for ns in namespaces)
    scopes: list[str | None] = [None] if globbed else list(namespaces)
    items: list[dict[str, Any]] = []
    for scope in scopes:
        got = await client.request("GET", path_for(api.API_VERSION, api.PLURAL, scope))
        if not got.ok:
            raise KubeError(f"list {api.PLURAL}: {got.status_code} {got.message}")
        for item in (got.body or {}).get("items") or []:
            ns = (item.get("metadata") or {}).get("namespace", "")
            if globbed and namespaces and not any(fnmatch.fnmatch(ns, p) for p in namespaces):
                continue
            item.setdefault("apiVersion", api.API_VERSION)
            item.setdefault("kind", api.KIND)
            items.append(item)
    return items


class Resync:
    """Reconciles every AgentDeployment in scope each ``interval`` seconds (``concurrency`` at once)."""

    def __init__(
        self,
        client: KubeClient,
        run: Callable[[dict[str, Any]], Awaitable[Any]],
        *,
        interval: float,
        namespaces: Sequence[str] = (),
        concurrency: int = 8,
        after: Callable[[list[dict[str, Any]]], Awaitable[Any]] | None = None,
    ) -> None:
        self.client, self.run, self.interval = client, run, interval
        self.after = after
        self.namespaces = list(namespaces)
        self.concurrency = concurrency
        self._task: asyncio.Task[None] | None = None

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._loop(), name="shepherd-resync")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def once(self) -> int:
        """One round (in the ``RESYNC`` lane: events go first); returns how many resources were
        reconciled without an error."""
        with lanes.use(lanes.Lane.RESYNC):
            return await self._round()

    async def _round(self) -> int:
        items = await list_agentdeployments(self.client, self.namespaces)
        gate = asyncio.Semaphore(self.concurrency)

        async def one(body: dict[str, Any]) -> bool:
            async with gate:
                try:
                    await self.run(body)
                    return True
                except Exception:  # one resource's failure must not stop the round
                    meta = body.get("metadata") or {}
                    log.exception("resync of %s/%s failed", meta.get("namespace"), meta.get("name"))
                    return False

        done = sum(await asyncio.gather(*(one(b) for b in items)))
        if self.after is not None:
            try:
                await self.after(items)
            except Exception:
                log.exception("after resync round failed")
        return done

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.once()
            except KubeError as exc:
                log.warning("resync round skipped: %s", exc)
