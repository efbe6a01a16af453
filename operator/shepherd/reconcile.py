"""One reconcile: desired = render(spec, policy verdict); apply; status.

The error-budget policy (``shepherd.budget``, another module) decides whether rollouts are frozen;
it reaches this module as a ``VerdictProvider`` — a function from the resource to a ``Verdict`` —
so the reconcile never queries Prometheus itself. Rule and dashboard content reaches the monitoring
renderer the same way, through a ``ContentProvider`` (default: the generated per-deployment board).

A status that only says a rollout is under way (``Progressing=True``, ``Ready`` unchanged or not yet
reported, nothing worth an Event) waits up to ``settle_seconds`` for the rollout to finish, each
newer observation replacing the one waiting: a Deployment that becomes ready within that time gets
one status write (Ready, rollout complete) instead of three, and no Event for a Ready=False that
was never reported. Anything else (Ready changing, a problem, a held change, a transition that is
an Event) is written at once, and so is the waiting status when its time is up (with the time it
was observed). Until then ``observedGeneration`` is the previous one (or absent on a new resource),
which is how Kubernetes readers (``kubectl wait``, kstatus, Argo CD) tell a status still in progress.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from shepherd import api, apply, credentials, lanes, rollout, status
from shepherd.api import AgentDeployment, FreezeLevel
from shepherd.budget.policy import scaling_only
from shepherd.kube import KubeClient, KubeError, Outcome
from shepherd.render import canary, render_all, secret_hash, service_env, workload
from shepherd.render.common import config_name, redis_auth_name
from shepherd.render.monitoring import MonitoringContent, MonitoringLabels, dashboard_content
from shepherd.render.secret_hash import NO_DIGESTS, SecretDigests

log = logging.getLogger(__name__)

CHANGE_CLASS_ANNOTATION = "shepherd.dev/change-class"
FREEZE_OVERRIDE_ANNOTATION = "shepherd.dev/freeze-override"


@dataclass(frozen=True)
class Verdict:
    """The error-budget policy's answer for one resource; the default lets everything through."""

    level: FreezeLevel = FreezeLevel.none
    reason: str = ""

    def blocks(self, resource: AgentDeployment) -> str | None:
        """Why a workload change of ``resource`` must wait, or None if it may roll out."""
        if self.level == FreezeLevel.none:
            return None
        if resource.annotations.get(FREEZE_OVERRIDE_ANNOTATION):
            return None
        critical = resource.annotations.get(CHANGE_CLASS_ANNOTATION) == "critical"
        if self.level == FreezeLevel.non_critical and critical:
            return None
        return f"rollouts frozen ({self.level.value}): {self.reason}".rstrip(": ")


NOT_FROZEN = Verdict()
VerdictProvider = Callable[[AgentDeployment], Verdict]
ContentProvider = Callable[[AgentDeployment], MonitoringContent]

_MONITORING_KINDS = {"PodMonitor", "PrometheusRule", "ScaledObject"}
#: Ready reasons of operator-only problems (see ``_reconcile``): a child event re-runs the full check.
PROBLEM_REASONS = frozenset(
    {"InvalidSpec", "InvalidGraph", "SecretMissing", "SecretUnreadable", "SecretKeyMissing", "ApplyFailed"}
)


@dataclass
class _Waiting:
    """A status held back by ``settle_seconds``: the newest outcome, when it was seen, and the timer."""

    body: dict[str, Any]
    outcome: status.Outcome
    observed_at: str
    timer: asyncio.TimerHandle


@dataclass
class Reconciler:
    """Holds the API client and the providers; ``reconcile`` is safe to call concurrently."""

    client: KubeClient
    verdicts: VerdictProvider = field(default=lambda _r: NOT_FROZEN)
    content: ContentProvider = field(default=dashboard_content)
    #: Extra labels for the monitoring children (the chart's, read at start-up).
    labels: MonitoringLabels = field(default_factory=MonitoringLabels)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    #: Full reconciles under way at once. kopf starts one per resource: 500 created together would
    #: otherwise each hold their rendered children and LIST results while waiting for one of the
    #: client's connections; beyond the connection count that buys memory, not speed. (Status
    #: refreshes from child events, one write each, do not wait behind them: they bring Ready.)
    #: Served by lane (``shepherd.lanes``): a new resource's reconcile does not wait for a
    #: restart's resumes, which hold at most three quarters of them.
    concurrency: int = 32
    #: resourceVersion of the newest agent Deployment seen per owner uid: older snapshots (events
    #: still queued after a reconcile read a newer one) must not roll the status back.
    _seen: dict[str, int] = field(default_factory=dict)
    #: (resourceVersion, generation, status) as our own last status write returned them, per uid:
    #: kopf's bodies (the handler's, the ``owners`` index) often predate that write; a status
    #: computed from them would start from stale values of our own fields (and a child event would
    #: GET the resource to see our own observedGeneration).
    _written: dict[str, tuple[int, int, dict[str, Any]]] = field(default_factory=dict)
    #: How long a status that only reports a rollout under way waits for the rollout to settle
    #: (see the module docstring); 0 writes every status at once.
    settle_seconds: float = 0.0
    _waiting: dict[str, _Waiting] = field(default_factory=dict)
    #: The generation whose children this process last applied (or found current), per uid.
    _reconciled: dict[str, int] = field(default_factory=dict)

    #: Secrets digests of each owner's last reconcile: a Deployment event is compared with them.
    _digests: dict[str, SecretDigests] = field(default_factory=dict)
    #: Now, for the canary steps' pauses (a test may move it).
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    #: A canary step advances only once the budget watcher passed it (``shepherd.rollout.plan``).
    analysis_gated: bool = False
    #: A reconcile due when a canary step's pause ends, per uid.
    _requeues: dict[str, asyncio.TimerHandle] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._slots = lanes.Slots(self.concurrency)
        self._children = apply.ChildLister(self.client)
        self._flushes: set[asyncio.Task[None]] = set()

    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def forget(self, uid: str) -> None:
        self._locks.pop(uid, None)
        self._digests.pop(uid, None)
        self._seen.pop(uid, None)
        self._written.pop(uid, None)
        self._reconciled.pop(uid, None)
        self._stop_waiting(uid)
        self._cancel_requeue(uid)

    def _freshest(self, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` with the status of our last write when that write is newer (a higher
        resourceVersion) and of the same generation (else ``body`` as it is: a newer spec needs
        its own reconcile, which reads what it needs)."""
        meta = body.get("metadata") or {}
        written = self._written.get(meta.get("uid", ""))
        theirs = _version(body)
        if written is None or theirs is None:
            return body
        version, generation, status_ = written
        if version <= theirs or generation != int(meta.get("generation", 0)):
            return body
        return {**body, "metadata": {**meta, "resourceVersion": str(version)}, "status": status_}

    def _newest(self, uid: str, deployment: dict[str, Any] | None) -> bool:
        """Record ``deployment``'s resourceVersion; False if a newer one was seen already."""
        version = _version(deployment)
        if version is None:
            return True  # not an etcd revision: cannot order, accept
        if version < self._seen.get(uid, 0):
            return False
        self._seen[uid] = version
        return True

    async def reconcile(self, body: dict[str, Any], *, first_time: bool = False) -> dict[str, Any]:
        """Reconcile one AgentDeployment body; returns a summary (for logs and tests).

        ``first_time`` (the create handler) skips listing children: see ``apply.sync``.
        """
        meta = body.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return {"skipped": "deleting"}  # garbage collection removes the children
        async with self._lock(meta.get("uid", "")), self._slots.hold(lanes.current()):
            return await self._reconcile(body, first_time=first_time)

    async def _reconcile(self, body: dict[str, Any], *, first_time: bool = False) -> dict[str, Any]:
        meta = body["metadata"]
        generation = int(meta.get("generation", 0))
        current_status = dict(body.get("status") or {})
        try:
            resource = api.parse(body)
        except ValidationError as exc:
            problem = ("InvalidSpec", _short(exc))
            await self._write_status(
                body,
                current_status,
                status.Outcome(generation, status.WorkloadObservation(), problem=problem),
            )
            return {"problem": problem}

        problem = api.graph_problem(resource.spec.graph) and (
            "InvalidGraph",
            api.graph_problem(resource.spec.graph),
        )
        secrets: dict[str, Any] = {}
        if not problem:
            problem, secrets = await self._read_secrets(resource)
        if problem:
            live, _ = await self._children(resource.namespace, resource.name)
            observation = status.observe_deployment(live.get(("Deployment", resource.name)))
            outcome = status.Outcome(generation, observation, problem=problem)
            await self._write_status(body, current_status, outcome)
            return {"problem": problem}

        if resource.spec.redis.managed is not None:
            secrets[redis_auth_name(resource)] = await credentials.ensure(self.client, resource)
        digests = secret_hash.digests(resource, secrets)
        self._digests[resource.uid] = digests
        verdict = self.verdicts(resource)
        block = verdict.blocks(resource)
        first = first_time and not current_status.get("observedGeneration")
        live, absent = ({}, set()) if first else await self._children(resource.namespace, resource.name)
        fresh_status = self._freshest(body).get("status") or {}
        plan = rollout.plan(
            resource,
            workload.release_digest(workload.deployment(resource, digests)) or "",
            live.get(("Deployment", resource.name)),
            live.get(("Deployment", canary.canary_name(resource))),
            fresh_status.get("rollout"),
            self.clock(),
            block,
            fresh_status.get("canaryAnalysis"),
            self.analysis_gated,
        )
        children = render_all(resource, self.content(resource), self.labels, digests, plan)
        workload_keys = {(o["kind"], o["metadata"]["name"]) for o in children.workload}
        stable_keys = {("Deployment", resource.name), ("ConfigMap", config_name(resource))}

        async def listed(_namespace: str, _name: str) -> tuple[apply.LiveChildren, set[str]]:
            return live, absent

        try:
            result = await apply.sync(
                self.client,
                namespace=resource.namespace,
                owner_name=resource.name,
                owner_uid=resource.uid,
                desired=children.all,
                first_time=first,
                lister=listed,
                # Scaling (a replicas-only difference) is never held; a rollback makes desired == live.
                # A canary holds the stable release (it still scales to its share).
                hold=lambda obj, live: (
                    (plan.hold_stable and (obj["kind"], obj["metadata"]["name"]) in stable_keys)
                    or (
                        bool(block)
                        and (obj["kind"], obj["metadata"]["name"]) in workload_keys
                        and not scaling_only(obj, live)
                    )
                ),
                # A Secret rotation is a critical change: it passes FreezeNonCritical.
                rotate_held=verdict.level == FreezeLevel.non_critical,
            )
        except apply.ApplyError as exc:
            # The apiserver refused a child (an immutable field, a webhook, RBAC): say so on the
            # resource, then let the caller decide about retries.
            live, _ = await self._children(resource.namespace, resource.name)
            observation = status.observe_deployment(live.get(("Deployment", resource.name)))
            outcome = status.Outcome(generation, observation, problem=("ApplyFailed", str(exc)))
            await self._write_status(body, current_status, outcome)
            raise
        live_deployment = result.objects.get(("Deployment", resource.name))
        self._newest(resource.uid, live_deployment)
        self._reconciled[resource.uid] = generation
        observation = await self._observe(resource.namespace, live_deployment)
        wanted_missing = [k for k in result.missing_kinds if k in _MONITORING_KINDS]
        stable_labels = {f"{kind}/{name}" for kind, name in stable_keys}
        frozen = [k for k in result.held if not (plan.hold_stable and k in stable_labels)]
        held = ("FrozenByErrorBudget", block) if frozen and block else None
        if (plan.status or {}).get("phase") == api.RolloutPhase.aborted:
            held = ("CanaryAborted", plan.status["reason"])  # a Warning Event, the change pending
        on_canary = plan.canary_replicas is not None and not held
        outcome = status.Outcome(
            generation,
            observation,
            held=held,
            missing_monitoring=wanted_missing,
            applied_image=None if held or on_canary else resource.spec.image,
            pending_image=resource.spec.image if held or on_canary else None,
            canary=(plan.status or {}).get("reason") if on_canary else None,
            rollout=plan.status,
        )
        await self._write_status(body, current_status, outcome)
        self._requeue_after(resource, plan.requeue_after)
        if result.writes:
            log.info(
                "%s/%s: applied %s, deleted %s",
                resource.namespace,
                resource.name,
                result.applied,
                result.deleted,
            )
        return {
            "applied": result.applied,
            "deleted": result.deleted,
            "held": result.held,
            "missing": result.missing_kinds,
        }

    async def refresh_from_deployment(
        self, body: dict[str, Any], deployment: dict[str, Any]
    ) -> dict[str, Any]:
        """Status from a child Deployment's event, without listing children (the common case).

        Does nothing while the owner's status is behind its spec (that generation's reconcile is
        still to run, and reads the Deployment itself). Falls back to a full ``reconcile`` when the
        event may mean more than a replica count: a problem or a held change is on record, or the
        live Deployment no longer contains what we would render (drift).
        """
        meta = body.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            return {"skipped": "deleting"}
        async with self._lock(meta.get("uid", "")):
            body = self._freshest(body)
            current = dict(body.get("status") or {})
            try:
                resource = api.parse(body)
            except ValidationError:
                resource = None
            uid = meta.get("uid", "")
            if (
                resource is not None
                and current.get("observedGeneration") != resource.generation
                and self._reconciled.get(uid) != resource.generation  # (its status may be waiting)
            ):
                # The indexed body may predate our own status write (we hold the lock now, so that
                # write is done): read it fresh. If this generation is really not reconciled yet,
                # its reconcile is queued (kopf retries it) and reads the Deployment itself.
                fresh = await self.client.get(api.API_VERSION, api.PLURAL, resource.namespace, resource.name)
                if not fresh.ok or not fresh.body:
                    return {"skipped": "owner gone"}
                body, current = fresh.body, dict(fresh.body.get("status") or {})
                if current.get("observedGeneration") != int(body["metadata"].get("generation", 0)):
                    return {"skipped": "generation not reconciled yet"}
            version = _version(deployment)
            if (
                version is not None
                and version == self._seen.get(uid)
                and resource is not None
                and self._reconciled.get(uid) == resource.generation
            ):
                return {"skipped": "Deployment snapshot already seen"}  # e.g. a restart's listing
            if not self._newest(uid, deployment):
                return {"skipped": "older Deployment snapshot"}
            ready = status.condition(current, status.READY) or {}
            if (
                resource is None
                or current.get("pending")
                or ready.get("reason") in PROBLEM_REASONS
                or not apply.contains(
                    deployment,
                    apply.stamped(
                        workload.deployment(
                            resource,
                            self._digests.get(resource.uid, NO_DIGESTS),
                            workload.release_of(deployment),
                        )
                    ),
                )
            ):
                return await self._reconcile(body)
            waiting = self._waiting.get(uid)
            if waiting is not None and waiting.outcome.generation == resource.generation:
                missing = list(waiting.outcome.missing_monitoring)
            else:
                missing = list(current.get("monitoring") or [])
            outcome = status.Outcome(
                resource.generation,
                await self._observe(resource.namespace, deployment),
                missing_monitoring=missing,
                applied_image=resource.spec.image,
                rollout=current.get("rollout"),  # a replica count does not move a rollout
            )
            await self._write_status(body, current, outcome)
            return {"refreshed": True}

    async def _observe(self, namespace: str, deployment: dict[str, Any] | None) -> status.WorkloadObservation:
        """The agent Deployment as the status needs it, with why its Pods fail to start, if they do.

        The Pods are read only while some exist and fewer are ready than wanted or a rollout is
        under way (the new release may crash while the old one serves), with one LIST by the
        Deployment's selector: never a Pod watch or cache, so a healthy, rolled-out fleet of
        thousands costs no Pod reads (nor does a Deployment just created).
        """
        observation = status.observe_deployment(deployment)
        settled = observation.ready >= observation.desired and observation.rolled_out
        if deployment is None or not observation.replicas or settled:
            return observation
        labels = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        got = await self.client.list("v1", "pods", namespace, selector)
        if not got.ok:  # the counts still say the Pods are not ready
            log.warning("%s: cannot list the agent Pods: %s %s", namespace, got.status_code, got.message)
            return observation
        failure = status.start_failure((got.body or {}).get("items") or [])
        return dataclasses.replace(observation, start_failure=failure)

    async def _read_secrets(self, resource: AgentDeployment) -> tuple[tuple[str, str] | None, dict[str, Any]]:
        """(the first missing Secret or key, named by the field that refers to it, or None; the data
        of the Secrets read, by name).

        The data feeds only the Pods' secrets digest (``shepherd.render.secret_hash``), never a log.
        """
        found: dict[str, Any] = {}
        for path, ref in service_env.referenced_secrets(resource):
            where = f"{path}: Secret {resource.namespace}/{ref.name}"
            if ref.name not in found:
                got = await self.client.get("v1", "secrets", resource.namespace, ref.name)
                if got.outcome is Outcome.NOT_FOUND:
                    return ("SecretMissing", f"{where} does not exist."), found
                if not got.ok:
                    return ("SecretUnreadable", f"{where}: {got.message}"), found
                found[ref.name] = (got.body or {}).get("data") or {}
            if ref.key not in found[ref.name]:
                return ("SecretKeyMissing", f"{where} has no key {ref.key!r}."), found
        return None, found

    async def _write_status(
        self,
        body: dict[str, Any],
        current: dict[str, Any],
        outcome: status.Outcome,
        *,
        observed_at: str | None = None,
    ) -> None:
        """Write our part of the status if it changed, never clobbering another writer's.

        A server-side apply of our fields only (``status.applied``): the budget watcher's
        conditions are other entries of the same list map, and kopf's annotation patches touch
        metadata, so neither is a conflict and no ``resourceVersion`` precondition is sent. What
        our fields were is known here: ``_freshest`` starts from our own last write when kopf's
        body predates it, and a write for an older generation than one already written is dropped.
        A status that may settle waits (``_wait``); ``observed_at`` is the time of a waited one.
        """
        fresher = self._freshest(body)
        if fresher is not body:
            body, current = fresher, dict(fresher.get("status") or {})
        meta = body["metadata"]
        uid = meta.get("uid", "")
        written = self._written.get(uid)
        if (written and written[1] > outcome.generation) or int(
            current.get("observedGeneration") or 0
        ) > outcome.generation:
            return  # the spec moved on: the update handler reconciles it
        new = status.compute(current, outcome, observed_at)
        if status.patch_for(current, new) is None:
            self._stop_waiting(uid)
            return
        if observed_at is None and self._may_settle(current, new):
            self._wait(uid, body, outcome)
            return
        self._stop_waiting(uid)
        log.debug("%s/%s: status %s", meta["namespace"], meta["name"], new)
        res = await self.client.apply_status(
            api.API_VERSION, api.KIND, api.PLURAL, meta["namespace"], meta["name"], status.applied(new)
        )
        if res.outcome is Outcome.NOT_FOUND:
            return  # deleted meanwhile
        if not res.ok:
            raise KubeError(f"apply status: {res.status_code} {res.message}")
        live = (res.body or {}).get("status") or {}
        # A key we no longer set that an older merge patch of ours wrote is not removed by the
        # apply (that writer still owns it): remove it explicitly. Only our keys: no precondition.
        stale = {k: None for k in status.OWNED_KEYS if k not in new and k in live}
        if stale:
            res = await self.client.patch_status(
                api.API_VERSION, api.PLURAL, meta["namespace"], meta["name"], stale
            )
            if not res.ok and res.outcome is not Outcome.NOT_FOUND:
                raise KubeError(f"patch status: {res.status_code} {res.message}")
        version = _version(res.body)
        if version is not None and res.body is not None:
            generation = int(res.body["metadata"].get("generation", 0))
            self._written[uid] = (version, generation, res.body.get("status") or {})
        for event in status.events_for(current, new):
            await self.client.create_event(meta["namespace"], _event(body, event))

    # -- canary steps: a reconcile when a pause ends ------------------------------------------------

    def _requeue_after(self, resource: AgentDeployment, seconds: float | None) -> None:
        """Reconcile ``resource`` again in ``seconds`` (the resync would, later); None: no need."""
        self._cancel_requeue(resource.uid)
        if seconds is None:
            return
        loop = asyncio.get_running_loop()
        self._requeues[resource.uid] = loop.call_later(
            max(seconds, 0.0), self._requeue_later, resource.uid, resource.namespace, resource.name
        )

    def _cancel_requeue(self, uid: str) -> None:
        timer = self._requeues.pop(uid, None)
        if timer is not None:
            timer.cancel()

    def _requeue_later(self, uid: str, namespace: str, name: str) -> None:
        self._requeues.pop(uid, None)
        task = asyncio.create_task(self._requeue(namespace, name), name=f"rollout-{uid}")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _requeue(self, namespace: str, name: str) -> None:
        got = await self.client.get(api.API_VERSION, api.PLURAL, namespace, name)
        if not got.ok or not got.body:
            return  # deleted meanwhile
        try:
            await self.reconcile(got.body)
        except (KubeError, apply.ApplyError) as exc:  # the next event or resync retries it
            log.warning("%s/%s: canary step not reconciled: %s", namespace, name, exc)

    # -- statuses that wait for a rollout to settle ------------------------------------------------

    def _may_settle(self, current: dict[str, Any], new: dict[str, Any]) -> bool:
        """Whether ``new`` only reports a rollout under way (see the module docstring)."""
        if self.settle_seconds <= 0:
            return False
        progressing = status.condition(new, status.PROGRESSING) or {}
        if progressing.get("status") != "True" or status.events_for(current, new):
            return False
        if current.get("pending") != new.get("pending") or current.get("rollout") != new.get("rollout"):
            return False
        before, after = status.condition(current, status.READY), status.condition(new, status.READY) or {}
        return before is None or (before.get("status"), before.get("reason")) == (
            after.get("status"),
            after.get("reason"),
        )

    def _wait(self, uid: str, body: dict[str, Any], outcome: status.Outcome) -> None:
        waiting = self._waiting.get(uid)
        if waiting is not None:  # a newer observation; the time it may wait is not extended
            waiting.body, waiting.outcome, waiting.observed_at = body, outcome, status.now()
            return
        timer = asyncio.get_running_loop().call_later(self.settle_seconds, self._flush_later, uid)
        self._waiting[uid] = _Waiting(body, outcome, status.now(), timer)

    def _stop_waiting(self, uid: str) -> None:
        waiting = self._waiting.pop(uid, None)
        if waiting is not None:
            waiting.timer.cancel()

    def _flush_later(self, uid: str) -> None:
        task = asyncio.create_task(self._flush(uid), name=f"status-{uid}")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, uid: str) -> None:
        """The rollout did not settle in time: write the status it waited with."""
        async with self._lock(uid):
            waiting = self._waiting.pop(uid, None)
            if waiting is None:
                return  # written or superseded meanwhile
            body = waiting.body
            try:
                await self._write_status(
                    body, dict(body.get("status") or {}), waiting.outcome, observed_at=waiting.observed_at
                )
            except KubeError as exc:  # the next child event or resync writes it
                meta = body["metadata"]
                log.warning("%s/%s: status not written: %s", meta["namespace"], meta["name"], exc)


def _version(obj: dict[str, Any] | None) -> int | None:
    """An object's resourceVersion as a number (etcd's revision), None if it is not one."""
    try:
        return int(((obj or {}).get("metadata") or {}).get("resourceVersion", ""))
    except ValueError:
        return None


def _short(exc: ValidationError) -> str:
    errors = exc.errors()[:3]
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)


def _event(body: dict[str, Any], event: status.EventSpec) -> dict[str, Any]:
    meta = body["metadata"]
    timestamp = status.now()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        },
        "type": event.type,
        "reason": event.reason,
        "message": event.message[:1024],
        "source": {"component": "shepherd-operator"},
        "reportingComponent": "shepherd.dev/operator",
        "reportingInstance": "shepherd-operator",
        "firstTimestamp": timestamp,
        "lastTimestamp": timestamp,
        "count": 1,
    }
