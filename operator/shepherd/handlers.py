"""Thin kopf handlers with explicit ids; all work happens in ``shepherd.reconcile``.

* ``configure`` (startup): kopf settings in one place, the shared ``Reconciler`` in ``memo``, and
  the fleet's one budget watcher task (``shepherd.budget.watcher``; ``SHEPHERD_BUDGET_WATCHER=0``
  turns it off); the reconcile asks ``shepherd.budget.gate.FreezeGate`` whether a change is held.
* ``reconcile`` (resume + create + update of an AgentDeployment): one function for all three.
* resync: one loop for the fleet (``shepherd.resync``, started by ``configure``), every
  ``SHEPHERD_RESYNC_SECONDS`` (300): drift repair and status refresh; a no-op sends no writes.
* fleet SLO rules (``shepherd.fleetrules``): one PrometheusRule per SLO window in use, in
  ``SHEPHERD_NAMESPACE``; synced after each resync round and after a reconcile that changes the set
  of windows (compared in memory: no API call otherwise).
* extra labels for monitoring objects (``shepherd.monitoring_labels``): parsed from the environment
  by ``shepherd.__main__`` before kopf starts (a bad value stops the process there) and handed to
  the reconciler and the fleet rules through ``MONITORING_LABELS``.
* ``child-deployment`` (event on Deployments labelled managed-by=shepherd): replica counts reach
  the owner's status as Pods become ready, and a deleted/edited Deployment is repaired at once.
  The owner's body comes from ``track`` (an event handler keeping the latest bodies: no GET).
* kopf's diff base and handler progress live in memory (``shepherd.kopfstate``): no PATCH of them.
* a rollout's status waits ``SHEPHERD_STATUS_SETTLE_SECONDS`` (15) to settle (``shepherd.reconcile``).

* ``referenced-secret`` (event on Secrets): a Secret that AgentDeployments reference (the Secret
  names ``track`` keeps per resource, recomputed when its generation changes) was created, changed
  or deleted: they are reconciled at once, so a rotation rolls their Pods (the Pod templates hash
  the keys they read) and a Secret that was missing brings them up without waiting for the resync.

Deleting an AgentDeployment needs no handler (and so no finalizer): its children carry a
controller ownerReference and the garbage collector removes them even while the operator is down.
``forget`` (event: the resource is gone) only drops what this process remembers of it.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from typing import Any

import kopf
from pydantic import ValidationError

from shepherd import api, lanes, metrics, webhook
from shepherd.apply import ApplyError
from shepherd.budget.gate import FreezeGate
from shepherd.budget.watcher import BudgetWatcher, watcher_enabled
from shepherd.budget.watcher import settings_from_env as watcher_settings
from shepherd.fleetrules import FleetRules
from shepherd.kopfstate import MemoryDiffBase, MemoryProgress
from shepherd.kube import KubeClient, KubeError
from shepherd.reconcile import Reconciler
from shepherd.render import redis, service_env
from shepherd.render.common import MANAGED_BY, OWNER_LABEL
from shepherd.render.monitoring import NO_LABELS, MonitoringLabels
from shepherd.resync import Resync

RESYNC_SECONDS = float(os.environ.get("SHEPHERD_RESYNC_SECONDS", "300"))
#: How long a status that only reports a rollout under way waits for the rollout to finish.
STATUS_SETTLE_SECONDS = float(os.environ.get("SHEPHERD_STATUS_SETTLE_SECONDS", "15"))
ANNOTATION_PREFIX = "shepherd.dev"
RESOURCE = (api.GROUP, api.VERSION, api.PLURAL)
#: Namespaces (glob patterns allowed) the operator serves; empty = all. Set by ``shepherd.__main__``.
NAMESPACES: list[str] = []
#: Extra labels for the PodMonitors and fleet PrometheusRules. Set by ``shepherd.__main__``.
MONITORING_LABELS: MonitoringLabels = NO_LABELS


@kopf.on.startup(id="configure")
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # A silently dead watch is re-established instead of leaving resources unreconciled.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # The initial listing (every resource and Deployment) in pages, not one response held at once.
    settings.watching.chunk_size = 500
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # kopf's bookkeeping under Shepherd's own annotation prefix.
    # kopf's bookkeeping in memory; its one annotation (a retry's touch) under Shepherd's prefix.
    settings.persistence.progress_storage = memo.progress = MemoryProgress(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = memo.diffbase = MemoryDiffBase()
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    # Shepherd posts its own Events on condition transitions; kopf only posts warnings and errors.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "shepherd-operator"
    webhook_ca = webhook.configure(settings)  # optional freeze admission webhook (SHEPHERD_WEBHOOK_ENABLED)
    client = KubeClient.from_environment()
    await webhook.publish_ca(client, webhook_ca)  # chart selfSigned mode: the caBundle
    # The error-budget policy reaches the reconcile as a verdict provider; the budget watcher is one
    # task for the whole fleet (not a per-resource timer), started here and cancelled at cleanup.
    gate = FreezeGate()
    memo.reconciler = Reconciler(
        client,
        verdicts=gate,
        labels=MONITORING_LABELS,
        settle_seconds=STATUS_SETTLE_SECONDS,
        # Canary steps wait for the watcher's analysis where it runs (else for their pauses alone).
        analysis_gated=watcher_enabled(),
    )
    # Every AgentDeployment seen, for the shepherd_slo_* objectives served on /metrics; and its
    # latest body, for the child events (``track``).
    memo.resources = metrics.ResourceCache()
    memo.owners = {}
    memo.secret_users = {}  # (namespace, name) -> (generation, names of the Secrets its Pods read)
    metrics.register_objectives(memo.resources)
    # One resync loop for the fleet (a kopf timer would add a task and a finalizer per resource).
    # The fleet's SLO rules: one PrometheusRule per window in use (None without SHEPHERD_NAMESPACE).
    memo.fleet_rules = FleetRules.from_environment(client, labels=MONITORING_LABELS.prometheus_rule)
    memo.resync = Resync(
        client,
        lambda body: _counted(memo, body),
        interval=RESYNC_SECONDS,
        namespaces=list(NAMESPACES),
        concurrency=memo.reconciler.concurrency,  # enough at once for their LISTs to be shared
        after=lambda items: _after_resync(memo, items),
    )
    memo.resync.start()
    if watcher_enabled():
        memo.budget_watcher = BudgetWatcher(
            client,
            reconcile=memo.reconciler.reconcile,
            ledger=gate.ledger,
            namespaces=list(NAMESPACES),
            **watcher_settings(),
        )
        memo.budget_watcher.start()


webhook.register()  # its handler, registered only when the webhook is enabled


@kopf.on.cleanup(id="close-client")
async def close_client(memo: kopf.Memo, **_: Any) -> None:
    watcher = getattr(memo, "budget_watcher", None)
    if watcher is not None:
        await watcher.stop()
    resync = getattr(memo, "resync", None)
    if resync is not None:
        await resync.stop()
    reconciler = getattr(memo, "reconciler", None)
    if reconciler is not None:
        await reconciler.client.close()


async def _counted(memo: Any, body: Any, *, first_time: bool = False) -> dict[str, Any]:
    """Reconcile with the metrics and the objectives cache kept up to date."""
    body = dict(body)
    meta = body.get("metadata") or {}
    labels = (meta.get("namespace", ""), meta.get("name", ""))
    memo.resources.put(body)
    metrics.RECONCILE_TOTAL.labels(*labels).inc()
    errors = metrics.RECONCILE_ERRORS.labels(*labels)  # exported at 0 so the error rate is 0, not absent
    try:
        result = await memo.reconciler.reconcile(body, first_time=first_time)
    except Exception:
        errors.inc()
        raise
    await _fleet_rules(memo)  # only writes when this resource brought or removed a window
    return result


async def _fleet_rules(memo: Any, *, force: bool = False) -> None:
    fleet = getattr(memo, "fleet_rules", None)
    if fleet is not None:
        await fleet.sync(memo.resources.values(), force=force)


async def _after_resync(memo: Any, items: list[dict[str, Any]]) -> None:
    """The round's LIST is the truth: forget resources deleted unseen, then sync the fleet rules."""
    listed = {(item.get("metadata") or {}).get("uid") for item in items}
    for cached in memo.resources.values():
        if cached["metadata"].get("uid") not in listed:
            _forget(memo, cached["metadata"]["uid"])
    await _fleet_rules(memo, force=True)


async def _run(memo: kopf.Memo, body: Any, *, first_time: bool = False) -> dict[str, Any]:
    try:
        return await _counted(memo, body, first_time=first_time)
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=10) from exc
    except ApplyError as exc:  # a refused child: retried on the next spec change or resync
        raise kopf.PermanentError(str(exc)) from exc


@kopf.on.resume(*RESOURCE, id="reconcile")
@kopf.on.create(*RESOURCE, id="reconcile")
@kopf.on.update(*RESOURCE, id="reconcile")
async def reconcile(body: kopf.Body, reason: str, memo: kopf.Memo, **_: Any) -> None:
    with lanes.use(lanes.for_cause(reason, body)):  # a restart's resumes queue behind new work
        await _run(memo, body, first_time=reason == "create")


@kopf.on.event(
    "apps",
    "v1",
    "deployments",
    id="child-deployment",
    labels={"app.kubernetes.io/managed-by": MANAGED_BY, OWNER_LABEL: kopf.PRESENT},
)
async def child_deployment(
    type: str | None, body: kopf.Body, namespace: str, memo: kopf.Memo, **_: Any
) -> None:
    owner = memo.owners.get((namespace, body.metadata.labels.get(OWNER_LABEL)))
    if owner is None:
        return  # owner gone (GC follows) or not seen yet (its own resume or create reconciles it)
    if type == "DELETED":
        await _run(memo, owner)  # drift: recreate it now
        return
    try:
        # The cached body may predate our own status write: the reconciler knows (``_freshest``).
        await memo.reconciler.refresh_from_deployment(owner, dict(body))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=10) from exc


@kopf.on.event(*RESOURCE, id="track")
async def track(
    type: str | None, body: kopf.Body, namespace: str, name: str, uid: str, memo: kopf.Memo, **_: Any
) -> None:
    """The latest body of every AgentDeployment, from kopf's watch (no GET per child event), and
    forgetting a deleted one (deletions while the operator was down: the resync round).

    An event handler, not a kopf index: an index makes every object of the initial listing wait
    until all are indexed, each waiter woken at every one indexed (quadratic: most of a restart's
    CPU at 1,000 resources). A child event before its owner's just finds no owner; the owner's own
    resume reconciles it."""
    if type == "DELETED":
        _forget(memo, uid)
        await _fleet_rules(memo)
        return
    meta = {k: v for k, v in body.metadata.items() if k != "managedFields"}  # a third of a body, unused
    memo.owners[(namespace, name)] = copy.deepcopy({**body, "metadata": meta})
    generation = body.metadata.get("generation")
    known = memo.secret_users.get((namespace, name))
    if known is None or known[0] != generation:  # status writes change no Secret reference
        memo.secret_users[(namespace, name)] = (generation, _secret_names(dict(body)))


def _secret_names(body: dict[str, Any]) -> frozenset[str]:
    """The Secrets the Pods of one AgentDeployment read (their templates hash these keys' values)."""
    try:
        resource = api.parse(body)
    except ValidationError:
        return frozenset()
    refs = service_env.agent_secret_refs(resource)
    if resource.spec.redis.managed is not None:
        refs += redis.secret_refs(resource)
    return frozenset(ref.name for ref in refs)


@kopf.on.event("", "v1", "secrets", id="referenced-secret")
async def referenced_secret(type: str | None, namespace: str, name: str, memo: kopf.Memo, **_: Any) -> None:
    if type is None:
        return  # the initial listing: every resource is resumed (reconciled) at start-up anyway
    bodies = [
        memo.owners[key]
        for key, (_, secrets) in list(memo.secret_users.items())
        if key[0] == namespace and name in secrets and key in memo.owners
    ]
    # At once (the reconciler bounds how many run): a Secret shared by 50 resources must not roll
    # them one after the other.
    await asyncio.gather(*(_run(memo, owner) for owner in bodies))


def _forget(memo: Any, uid: str) -> None:
    for key, owner in list(memo.owners.items()):
        if owner["metadata"].get("uid") == uid:
            del memo.owners[key]
            memo.secret_users.pop(key, None)
    memo.reconciler.forget(uid)
    memo.resources.drop(uid)
    memo.diffbase.forget(uid)
    memo.progress.forget(uid)
