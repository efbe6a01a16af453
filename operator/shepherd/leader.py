"""Leader election for an HA pair of operators: one ``coordination.k8s.io`` Lease, as client-go does.

Every replica runs ``shepherd-operator --leader-elect``; the one holding the Lease runs the operator
(kopf, the resync loop, the budget watcher, the fleet rules, the webhook); the others wait, serve
``/healthz`` and ``/metrics``, and answer ``/readyz`` with 503, so a Service sends its traffic (the
webhook's) to the leader only.

* A candidate reads the Lease every ``retry_period``. It takes it when it is free (no holder: the
  leader let it go on shutdown) or when the holder has not renewed it for ``lease_duration`` by the
  candidate's own clock (the time it last saw the record change: no clock comparison between
  machines). Taking and renewing are updates with the Lease's ``resourceVersion``: of two candidates,
  one wins, the other gets a conflict.
* The leader renews every ``retry_period``. When it could not renew for ``renew_deadline`` (shorter
  than ``lease_duration``) it has lost the Lease and the process exits at once (status 1, restarted
  as a candidate), before any other candidate may take it: two operators never write at once.
* On SIGTERM the leader stops the operator, then releases the Lease (no holder, duration 1 s) so
  the next candidate takes over at its next read instead of waiting out the lease.

Why a Lease and not kopf's peering: peering pauses the *handlers* of lower-priority operators but
not an operator's own tasks (Shepherd's resync loop and budget watcher would keep writing from both
replicas), operators of equal priority all pause, and a killed peer is noticed only when its
keep-alive lifetime runs out (60 s by default); peering exists to pause deployed operators while a
developer runs one locally. Why not the ``kubernetes`` package's ``leaderelection``: it is
thread-based over the synchronous client and its global configuration, and it never releases the
Lease, so every operator upgrade would wait out a whole lease duration.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from shepherd.kube import KubeClient, KubeError, Outcome, path_for

log = logging.getLogger(__name__)

LEASE_API = "coordination.k8s.io/v1"


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str = "shepherd-operator"
    identity: str = ""
    lease_duration: float = 10.0
    renew_deadline: float = 7.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not self.namespace:
            raise ValueError("leader election needs a namespace for its Lease (SHEPHERD_NAMESPACE)")
        if not self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs retry period < renew deadline < lease duration, got "
                f"{self.retry_period} / {self.renew_deadline} / {self.lease_duration} s "
                "(SHEPHERD_LEADER_RETRY_SECONDS, SHEPHERD_LEADER_RENEW_SECONDS, "
                "SHEPHERD_LEADER_LEASE_SECONDS)"
            )

    @classmethod
    def from_environment(cls) -> LeaseSettings:
        """``SHEPHERD_NAMESPACE`` (the chart's release namespace), ``SHEPHERD_LEADER_LEASE`` (name),
        ``SHEPHERD_POD_NAME`` (identity, else host name and pid) and the three durations."""

        def seconds(variable: str, default: float) -> float:
            raw = os.environ.get(variable, "")
            try:
                return float(raw) if raw else default
            except ValueError:
                raise ValueError(f"{variable}={raw!r} is not a number of seconds") from None

        return cls(
            namespace=os.environ.get("SHEPHERD_NAMESPACE", ""),
            name=os.environ.get("SHEPHERD_LEADER_LEASE", "shepherd-operator"),
            identity=os.environ.get("SHEPHERD_POD_NAME") or f"{socket.gethostname()}-{os.getpid()}",
            lease_duration=seconds("SHEPHERD_LEADER_LEASE_SECONDS", cls.lease_duration),
            renew_deadline=seconds("SHEPHERD_LEADER_RENEW_SECONDS", cls.renew_deadline),
            retry_period=seconds("SHEPHERD_LEADER_RETRY_SECONDS", cls.retry_period),
        )


def _micro_time(moment: dt.datetime) -> str:
    """A Kubernetes MicroTime."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Takes, keeps and lets go of one Lease (see the module docstring)."""

    def __init__(
        self,
        client: KubeClient,
        settings: LeaseSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.client, self.settings = client, settings
        self._clock, self._now = clock, now
        self._path = path_for(LEASE_API, "leases", settings.namespace, settings.name)
        #: The Lease as last read or written, and when (our clock) its record last changed.
        self._lease: dict[str, Any] | None = None
        self._observed: tuple[tuple[Any, ...], float] | None = None
        self.leading = False

    async def acquire(self) -> None:
        """Returns once this process holds the Lease."""
        while True:  # polling: the holder's renewals are what a candidate waits to stop
            if await self._try_acquire():
                break
            await asyncio.sleep(self.settings.retry_period)
        self.leading = True
        log.info("leading: holding Lease %s/%s as %s", self.settings.namespace, self.settings.name, self._me)

    async def hold(self) -> None:
        """Renews the Lease every retry period; returns when it could not for ``renew_deadline``."""
        renewed = self._clock()
        while True:
            await asyncio.sleep(self.settings.retry_period)
            try:
                if await self._renew():
                    renewed = self._clock()
                    continue
            except KubeError as exc:
                log.warning("renewing Lease %s: %s", self.settings.name, exc)
            if self._clock() - renewed >= self.settings.renew_deadline:
                self.leading = False
                return

    async def release(self) -> None:
        """Let the Lease go (on shutdown), so the next candidate need not wait for it to expire."""
        if not self.leading or self._lease is None:
            return
        self.leading = False
        spec = dict(self._lease.get("spec") or {})
        spec.update(holderIdentity=None, leaseDurationSeconds=1, renewTime=_micro_time(self._now()))
        with contextlib.suppress(KubeError):
            got = await self._put({**self._lease, "spec": {k: v for k, v in spec.items() if v is not None}})
            if got.ok:
                log.info("released Lease %s/%s", self.settings.namespace, self.settings.name)

    # ------------------------------------------------------------------------------------------

    @property
    def _me(self) -> str:
        return self.settings.identity

    def _spec(self, acquire_time: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self._me,
            "leaseDurationSeconds": max(1, round(self.settings.lease_duration)),
            "acquireTime": acquire_time,
            "renewTime": _micro_time(self._now()),
            "leaseTransitions": transitions,
        }

    async def _put(self, lease: dict[str, Any]):
        got = await self.client.request("PUT", self._path, body=lease)
        if got.ok and got.body:
            self._lease = got.body
            self._observe(got.body)
        return got

    def _observe(self, lease: dict[str, Any]) -> float:
        """When (our clock) the Lease's record last changed, as far as we saw."""
        spec = lease.get("spec") or {}
        record = (spec.get("holderIdentity"), spec.get("renewTime"), spec.get("leaseTransitions"))
        if self._observed is None or self._observed[0] != record:
            self._observed = (record, self._clock())
        return self._observed[1]

    async def _try_acquire(self) -> bool:
        try:
            got = await self.client.request("GET", self._path)
            if got.outcome is Outcome.NOT_FOUND:
                return await self._create()
            if not got.ok or not got.body:
                log.warning("reading Lease %s: %s %s", self.settings.name, got.status_code, got.message)
                return False
            lease = got.body
            changed = self._observe(lease)
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_duration)
            if holder and holder != self._me and self._clock() - changed < duration:
                return False  # held, and renewed recently enough by what we saw
            transitions = int(spec.get("leaseTransitions") or 0) + (holder != self._me)
            now = _micro_time(self._now())
            taken = await self._put({**lease, "spec": self._spec(now, transitions)})
            return taken.ok
        except KubeError as exc:
            log.warning("acquiring Lease %s: %s", self.settings.name, exc)
            return False

    async def _create(self) -> bool:
        now = _micro_time(self._now())
        lease = {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": self.settings.name, "namespace": self.settings.namespace},
            "spec": self._spec(now, 0),
        }
        got = await self.client.request(
            "POST", path_for(LEASE_API, "leases", self.settings.namespace), body=lease
        )
        if got.ok and got.body:
            self._lease = got.body
            self._observe(got.body)
        return got.ok  # a conflict: another candidate created it first

    async def _renew(self) -> bool:
        """One renewal from the Lease as we last wrote it; on a conflict, re-read it: still ours?"""
        for _attempt in range(2):
            assert self._lease is not None  # (set by acquire)
            spec = self._lease.get("spec") or {}
            got = await self._put({**self._lease, "spec": {**spec, "renewTime": _micro_time(self._now())}})
            if got.outcome is not Outcome.CONFLICT:
                return got.ok
            fresh = await self.client.request("GET", self._path)
            if not (
                fresh.ok and fresh.body and (fresh.body.get("spec") or {}).get("holderIdentity") == self._me
            ):
                return False
            self._lease = fresh.body
        return False
