"""The budget watcher: ONE loop for the whole fleet.

Every ``interval`` seconds (``SHEPHERD_BUDGET_INTERVAL``, default 30) it

1. lists every AgentDeployment (one LIST, or one per watched namespace);
2. asks each Prometheus in use (the operator default ``SHEPHERD_PROMETHEUS_URL``, or a resource's
   ``spec.monitoring.prometheusUrl``) the fixed query set of ``shepherd.budget.snapshot`` — six
   queries per Prometheus, whatever the number of resources;
3. runs the policy and composes the budget-owned status of each resource (``report``) and writes it
   only when something changed, with the resource's ``resourceVersion`` as a precondition so a
   concurrent write of the reconcile is never overwritten with stale conditions (on conflict the
   resource is re-read and recomputed);
4. posts the Events of the transitions, and when a freeze is lowered and a change is pending,
   runs the reconcile of that resource at once, so the held change rolls out by itself.

Prometheus unreachable, a refused query, or no series at all: every resource of that Prometheus gets
``PrometheusReachable=False`` with the reason, and nothing else moves — a freeze stays. Any other
error is logged and the loop goes on at the next interval (no crash loop).

Exported metrics (the operator's ``/metrics``): ``shepherd_prometheus_up{prometheus}``,
``shepherd_budget_queries_total``, ``shepherd_budget_evaluations_total``,
``shepherd_budget_evaluation_queries`` (queries of the last evaluation; constant in the fleet size)
``shepherd_budget_status_writes_total`` and ``shepherd_agentdeployment_freeze_level{namespace,
agentdeployment}`` (0 None, 1 NonCritical, 2 All; the dashboards draw it).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import fnmatch
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from shepherd import api
from shepherd.budget import policy, report
from shepherd.budget.gate import OverrideLedger
from shepherd.budget.prometheus import PrometheusClient, PrometheusEmptyError, PrometheusError, Sample
from shepherd.budget.snapshot import Key, Snapshot, parse, queries
from shepherd.kube import KubeClient, KubeError, Outcome, path_for
from shepherd.reconcile import _event
from shepherd.status import EventSpec

log = logging.getLogger(__name__)

DEFAULT_PROMETHEUS_URL = "http://prometheus-operated.monitoring.svc:9090"
DEFAULT_INTERVAL = 30.0
#: ``evaluatedAt`` alone triggers a write only when older than this (seconds).
DEFAULT_REFRESH = 300.0

PROMETHEUS_UP = Gauge(
    "shepherd_prometheus_up", "1 if the budget watcher's last query set succeeded", ["prometheus"]
)
QUERIES_TOTAL = Counter("shepherd_budget_queries", "PromQL queries sent by the budget watcher")
EVALUATIONS_TOTAL = Counter("shepherd_budget_evaluations", "Budget watcher evaluations of the fleet")
EVALUATION_QUERIES = Gauge(
    "shepherd_budget_evaluation_queries", "Queries sent by the last evaluation (constant in fleet size)"
)
STATUS_WRITES = Counter("shepherd_budget_status_writes", "Status patches written by the budget watcher")
FREEZE_LEVEL = Gauge(
    "shepherd_agentdeployment_freeze_level",
    "Rollout freeze of an AgentDeployment (status.freeze.level): 0 None, 1 NonCritical, 2 All",
    ["namespace", "agentdeployment"],
)


def watcher_enabled() -> bool:
    """``SHEPHERD_BUDGET_WATCHER``: ``1`` on, ``0`` off; unset or ``auto``: on when a Prometheus is set.

    "Set" means ``SHEPHERD_PROMETHEUS_URL`` (the chart sets it), so an operator started without a
    Prometheus does not mark every resource ``PrometheusReachable=False``.
    """
    mode = os.environ.get("SHEPHERD_BUDGET_WATCHER", "auto").lower()
    if mode == "auto":
        return bool(os.environ.get("SHEPHERD_PROMETHEUS_URL"))
    return mode not in ("0", "false", "off")


def settings_from_env() -> dict[str, Any]:
    return {
        "interval": float(os.environ.get("SHEPHERD_BUDGET_INTERVAL", DEFAULT_INTERVAL)),
        "refresh": float(os.environ.get("SHEPHERD_BUDGET_REFRESH", DEFAULT_REFRESH)),
        "prometheus_url": os.environ.get("SHEPHERD_PROMETHEUS_URL", DEFAULT_PROMETHEUS_URL),
        "timeout": float(os.environ.get("SHEPHERD_PROMETHEUS_TIMEOUT", "10")),
    }


@dataclass
class FleetReading:
    """One Prometheus' answer for the fleet: snapshots, or why there are none."""

    snapshots: dict[Key, Snapshot] = field(default_factory=dict)
    reachability: report.Reachability = field(default_factory=lambda: report.Reachability(True))


@dataclass
class EvaluationResult:
    """What one pass did (for logs, tests and the benchmark)."""

    resources: int = 0
    queries: int = 0
    writes: int = 0
    conflicts: int = 0
    events: int = 0
    retriggered: list[str] = field(default_factory=list)
    readings: dict[str, FleetReading] = field(default_factory=dict)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BudgetWatcher:
    def __init__(
        self,
        client: KubeClient,
        *,
        prometheus_url: str = DEFAULT_PROMETHEUS_URL,
        interval: float = DEFAULT_INTERVAL,
        refresh: float = DEFAULT_REFRESH,
        timeout: float = 10.0,
        namespaces: list[str] | None = None,
        reconcile: Callable[[dict[str, Any]], Awaitable[Any]] | None = None,
        ledger: OverrideLedger | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.client = client
        self.default_url = prometheus_url.rstrip("/")
        self.interval = interval
        self.refresh = refresh
        self.timeout = timeout
        self.namespaces = namespaces or []
        self.reconcile = reconcile
        self.ledger = ledger or OverrideLedger()
        self.ledger.on_record = self.wake
        self.clock = clock
        self._clients: dict[str, PrometheusClient] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._levels: set[tuple[str, str]] = set()  # label sets of FREEZE_LEVEL this watcher set
        self.evaluations = 0
        self.last: EvaluationResult | None = None

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self.run(), name="shepherd-budget-watcher")
        return self._task

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for prom in self._clients.values():
            await prom.close()
        self._clients.clear()

    def wake(self) -> None:
        """Evaluate now instead of at the end of the interval (e.g. an override to record)."""
        self._wake.set()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.evaluate()
            except asyncio.CancelledError:
                raise
            except Exception:  # one bad pass must not end the loop: log it and try again next time
                log.exception("budget evaluation failed; retrying in %.0fs", self.interval)
            delay = max(0.0, self.interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()

    # ------------------------------------------------------------------------------ one pass

    def _prometheus(self, url: str) -> PrometheusClient:
        if url not in self._clients:
            self._clients[url] = PrometheusClient(url, timeout=self.timeout)
        return self._clients[url]

    async def read_fleet(self, url: str) -> tuple[FleetReading, int]:
        """The fixed query set against one Prometheus; returns the reading and the queries sent."""
        prom = self._prometheus(url)
        answers: dict[str, list[Sample]] = {}
        sent = 0
        try:
            for name, promql in queries(self.clock()).items():
                sent += 1
                answers[name] = await prom.query(promql)
            if not any(answers.values()):
                raise PrometheusEmptyError(
                    f"Prometheus at {url} answered but has no Shepherd budget or circuit series "
                    "(are the shepherd rules loaded and the agents scraped?)"
                )
        except PrometheusError as exc:
            PROMETHEUS_UP.labels(url).set(0)
            message = str(exc) or exc.__class__.__name__
            return FleetReading(reachability=report.Reachability(False, exc.reason, message[:1000])), sent
        finally:
            QUERIES_TOTAL.inc(sent)
        PROMETHEUS_UP.labels(url).set(1)
        return FleetReading(snapshots=parse(answers)), sent

    async def list_resources(self) -> list[dict[str, Any]]:
        """Every AgentDeployment in scope: one LIST per plain namespace, or one cluster-wide LIST."""
        globbed = not self.namespaces or any(set(ns) & set("*?[") for ns in self.namespaces)
        scopes: list[str | None] = [None] if globbed else list(self.namespaces)
        items: list[dict[str, Any]] = []
        for scope in scopes:
            got = await self.client.request("GET", path_for(api.API_VERSION, api.PLURAL, scope))
            if not got.ok:
                raise KubeError(f"list {api.PLURAL}: {got.status_code} {got.message}")
            for item in (got.body or {}).get("items") or []:
                ns = (item.get("metadata") or {}).get("namespace", "")
                if globbed and self.namespaces and not any(fnmatch.fnmatch(ns, p) for p in self.namespaces):
                    continue
                item.setdefault("apiVersion", api.API_VERSION)
                item.setdefault("kind", api.KIND)
                items.append(item)
        return items

    def _url_of(self, body: dict[str, Any]) -> str:
        url = ((body.get("spec") or {}).get("monitoring") or {}).get("prometheusUrl")
        return (url or self.default_url).rstrip("/")

    async def evaluate(self) -> EvaluationResult:
        """One pass over the fleet."""
        result = EvaluationResult()
        items = await self.list_resources()
        result.resources = len(items)
        urls = {self._url_of(b) for b in items} or {self.default_url}
        readings: dict[str, FleetReading] = {}
        for url in sorted(urls):
            readings[url], sent = await self.read_fleet(url)
            result.queries += sent
        result.readings = readings
        for body in items:
            if (body.get("metadata") or {}).get("deletionTimestamp"):
                continue
            try:
                await self._update(body, readings[self._url_of(body)], result)
            except KubeError as exc:
                meta = body.get("metadata") or {}
                log.warning("budget status of %s/%s: %s", meta.get("namespace"), meta.get("name"), exc)
        self._forget_levels({_key_of(b) for b in items})
        self.evaluations += 1
        EVALUATIONS_TOTAL.inc()
        EVALUATION_QUERIES.set(result.queries)
        self.last = result
        return result

    async def _update(self, body: dict[str, Any], reading: FleetReading, result: EvaluationResult) -> None:
        for _attempt in range(3):
            meta = body["metadata"]
            try:
                resource = api.parse(body)
            except ValidationError:
                return  # the reconcile reports an invalid spec; without a policy there is nothing to do
            snapshot = reading.snapshots.get((resource.namespace, resource.name))
            current = dict(body.get("status") or {})
            now = self.clock()
            update = report.compute(
                current,
                generation=resource.generation,
                budget_policy=resource.spec.error_budget_policy,
                cost_budget=resource.spec.cost_budget,
                snapshot=snapshot,
                reachability=reading.reachability,
                annotations=resource.annotations,
                overrides=self.ledger.get(resource.uid),
                now=now,
            )
            self._set_level(resource.namespace, resource.name, update.status["freeze"]["level"])
            if not report.needs_write(current, update.status, now, self.refresh):
                return
            patch = report.patch_for(current, update.status)
            got = await self.client.request(
                "PATCH",
                path_for(api.API_VERSION, api.PLURAL, resource.namespace, resource.name) + "/status",
                body={"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": patch},
                content_type="application/merge-patch+json",
            )
            if got.outcome is Outcome.NOT_FOUND:
                return
            if got.outcome is Outcome.CONFLICT:
                result.conflicts += 1
                fresh = await self.client.get(api.API_VERSION, api.PLURAL, resource.namespace, resource.name)
                if not fresh.ok or not fresh.body:
                    return
                body = fresh.body
                continue
            if not got.ok:
                raise KubeError(f"patch status: {got.status_code} {got.message}")
            STATUS_WRITES.inc()
            result.writes += 1
            self.ledger.settle(resource.uid, update.status["freeze"].get("overridesUsed") or [])
            for event in update.events:
                await self._post(got.body or body, event)
                result.events += 1
            if update.lifted and (got.body or {}).get("status", {}).get("pending") and self.reconcile:
                result.retriggered.append(f"{resource.namespace}/{resource.name}")
                try:
                    await self.reconcile(got.body)
                except Exception:  # the kopf handlers and the resync timer retry anyway
                    log.exception("reconcile after the freeze lifted failed for %s", resource.name)
            return

    def _set_level(self, namespace: str, name: str, level: str) -> None:
        FREEZE_LEVEL.labels(namespace, name).set(policy.RANK.get(api.FreezeLevel(level), 2))
        self._levels.add((namespace, name))

    def _forget_levels(self, present: set[tuple[str, str]]) -> None:
        for key in self._levels - present:
            with contextlib.suppress(KeyError):
                FREEZE_LEVEL.remove(*key)
        self._levels &= present

    async def _post(self, body: dict[str, Any], event: EventSpec) -> None:
        res = await self.client.create_event(body["metadata"]["namespace"], _event(body, event))
        if not res.ok:
            log.warning("event %s not posted: %s", event.reason, res.message)


def _key_of(body: dict[str, Any]) -> tuple[str, str]:
    meta = body.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")
