"""Status of an AgentDeployment: conditions, printer-column fields and the Events that go with them.

Pure functions: they take the live status and observations, and return the new status (a dict in
the CRD's camelCase shape). Writing it, and posting Events, is the reconciler's job.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from shepherd.api import AgentDeploymentStatus, Condition, ConditionStatus

READY = "Ready"
PROGRESSING = "Progressing"
FROZEN = "Frozen"
ERROR_BUDGET_HEALTHY = "ErrorBudgetHealthy"
CIRCUITS_CLOSED = "CircuitsClosed"
PROMETHEUS_REACHABLE = "PrometheusReachable"
#: Operator-specific: whether every wanted monitoring object could be created.
MONITORING_READY = "MonitoringReady"
#: Ready's reason when the agent container exits at start-up (``start_failure``).
AGENT_START_FAILED = "AgentStartFailed"

#: Keys of ``status`` this module owns; others (errorBudget, freeze, circuits, ...) are left alone.
OWNED_KEYS = (
    "observedGeneration",
    "conditions",
    "replicas",
    "readyReplicas",
    "ready",
    "image",
    "released",
    "pending",
    "monitoring",
    "rollout",
)


def now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ConditionUpdate:
    """A condition to set: type, True/False/Unknown, a CamelCase reason and a human message."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


def set_conditions(
    current: list[dict[str, Any]], updates: list[ConditionUpdate], generation: int, timestamp: str
) -> list[dict[str, Any]]:
    """Merge ``updates`` into ``current``; ``lastTransitionTime`` moves only when the status changes.

    Conditions not in ``updates`` are kept as they are (other writers own them, e.g. ``Frozen``).
    """
    by_type = {c.get("type"): dict(c) for c in current}
    for update in updates:
        old = by_type.get(update.type)
        changed = old is None or old.get("status") != update.status.value
        cond = Condition(
            type=update.type,
            status=update.status,
            reason=update.reason,
            message=update.message,
            observed_generation=generation,
            last_transition_time=timestamp if changed else old.get("lastTransitionTime", timestamp),
        )
        by_type[update.type] = cond.model_dump(by_alias=True, mode="json", exclude_none=True)
    return [by_type[t] for t in sorted(by_type, key=_condition_order)]


_ORDER = [
    READY,
    PROGRESSING,
    FROZEN,
    ERROR_BUDGET_HEALTHY,
    CIRCUITS_CLOSED,
    PROMETHEUS_REACHABLE,
    MONITORING_READY,
]


def _condition_order(kind: str) -> tuple[int, str]:
    return (_ORDER.index(kind) if kind in _ORDER else len(_ORDER), kind)


def condition(status: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


@dataclass(frozen=True)
class WorkloadObservation:
    """What the reconciler saw of the agent Deployment."""

    exists: bool = False
    desired: int = 0
    replicas: int = 0
    ready: int = 0
    updated: int = 0
    available: int = 0
    #: The Deployment controller has seen our latest spec (status.observedGeneration >= generation).
    observed: bool = False
    image: str | None = None
    #: Why the agent container of a Pod keeps exiting (``start_failure``); None when none does.
    start_failure: str | None = None

    @property
    def rolled_out(self) -> bool:
        """As `kubectl rollout status`: all Pods updated, no old Pod left, every updated Pod available."""
        return (
            self.exists
            and self.observed
            and self.updated >= self.desired
            and self.replicas <= self.updated
            and self.available >= self.updated
        )


def observe_deployment(live: dict[str, Any] | None) -> WorkloadObservation:
    """Read replica counts from a live Deployment (None when absent)."""
    if not live:
        return WorkloadObservation()
    spec, st = live.get("spec") or {}, live.get("status") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    return WorkloadObservation(
        exists=True,
        desired=int(spec.get("replicas", 1)),
        replicas=int(st.get("replicas", 0)),
        ready=int(st.get("readyReplicas", 0)),
        updated=int(st.get("updatedReplicas", 0)),
        available=int(st.get("availableReplicas", 0)),
        observed=int(st.get("observedGeneration", 0))
        >= int((live.get("metadata") or {}).get("generation", 0)),
        image=containers[0].get("image") if containers else None,
    )


#: What of a container's termination message goes on the Ready condition (the kubelet keeps 4 KiB).
START_FAILURE_CHARS = 1024
#: The container whose start-up failure is reported (``render.workload``'s agent container).
AGENT_CONTAINER = "agent"


def start_failure(pods: list[dict[str, Any]], container: str = AGENT_CONTAINER) -> str | None:
    """Why ``container`` of one of ``pods`` keeps failing, as its kubelet reports it; None if none does.

    A container that is not ready and whose current or last run ended with a non-zero exit code
    (``state.terminated``, or ``lastState.terminated`` while it waits in CrashLoopBackOff or runs
    again) failed to start: its termination message (what agent-service wrote to the
    terminationMessagePath, whitespace folded, trimmed to ``START_FAILURE_CHARS``), or the exit
    code and reason when there is none. Pods being deleted are skipped (an old release going away
    is not a failure).
    """
    for pod in sorted(pods, key=lambda p: (p.get("metadata") or {}).get("name", "")):
        if (pod.get("metadata") or {}).get("deletionTimestamp"):
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if cs.get("name") != container or cs.get("ready"):
                continue
            state, last = cs.get("state") or {}, cs.get("lastState") or {}
            ended = state.get("terminated") or last.get("terminated") or {}
            if int(ended.get("exitCode") or 0) == 0:
                continue
            message = " ".join((ended.get("message") or "").split())
            if not message:
                message = f"exit code {ended['exitCode']} ({ended.get('reason') or 'Error'})"
            if len(message) > START_FAILURE_CHARS:
                message = message[: START_FAILURE_CHARS - 1] + "…"
            # No restart count: it grows on every crash, and the status would be rewritten each time.
            return f"Pod {pod['metadata']['name']} container {container} failed to start: {message}"
    return None


@dataclass(frozen=True)
class Outcome:
    """The result of one reconcile, as the status needs it."""

    generation: int
    workload: WorkloadObservation
    #: An operator-only problem (missing Secret, invalid graph...): (CamelCase reason, message).
    problem: tuple[str, str] | None = None
    #: A spec change held back: (reason, message); the running release stays.
    held: tuple[str, str] | None = None
    #: Monitoring kinds wanted but absent from the cluster (no CRD).
    missing_monitoring: list[str] = field(default_factory=list)
    #: Image of the spec that was applied (None when nothing was applied this time).
    applied_image: str | None = None
    #: Image of the spec held back (with ``held``) or on the canary (with ``canary``).
    pending_image: str | None = None
    #: A canary of the spec runs next to the stable release: what it is doing (status.rollout.reason).
    canary: str | None = None
    #: ``status.rollout`` (canary strategy; None: absent).
    rollout: dict[str, Any] | None = None


def compute(current: dict[str, Any], outcome: Outcome, timestamp: str | None = None) -> dict[str, Any]:
    """The new status (only ``OWNED_KEYS`` change) from the current one and what reconcile saw."""
    timestamp = timestamp or now()
    gen, work = outcome.generation, outcome.workload
    updates: list[ConditionUpdate] = []
    if outcome.problem:
        reason, message = outcome.problem
        updates.append(ConditionUpdate(READY, ConditionStatus.false, reason, message))
        updates.append(
            ConditionUpdate(PROGRESSING, ConditionStatus.false, reason, "Rollout stopped: " + message)
        )
    elif not work.exists:
        updates.append(
            ConditionUpdate(READY, ConditionStatus.false, "DeploymentMissing", "Creating the agent.")
        )
        updates.append(ConditionUpdate(PROGRESSING, ConditionStatus.true, "Creating", "Creating the agent."))
    elif outcome.held:
        reason, message = outcome.held
        ready = work.ready >= max(work.desired, 1)
        updates.append(
            ConditionUpdate(
                READY,
                ConditionStatus.true if ready else ConditionStatus.false,
                "ReleaseRunning" if ready else "PodsNotReady",
                f"{work.ready}/{work.desired} Pods ready on the running release; {message}",
            )
        )
        updates.append(ConditionUpdate(PROGRESSING, ConditionStatus.false, reason, message))
    else:
        # Ready is availability (enough Pods serve, old release or new); Progressing is the rollout.
        if work.desired == 0:
            ready = ConditionUpdate(READY, ConditionStatus.true, "ScaledToZero", "0 Pods wanted.")
        elif work.ready >= work.desired:
            ready = ConditionUpdate(
                READY, ConditionStatus.true, "AllPodsReady", f"{work.ready}/{work.desired} Pods ready."
            )
        elif work.start_failure:
            ready = ConditionUpdate(
                READY,
                ConditionStatus.false,
                AGENT_START_FAILED,
                f"{work.ready}/{work.desired} Pods ready. {work.start_failure}",
            )
        else:
            reason = "NoPodReady" if work.ready == 0 else "PodsNotReady"
            ready = ConditionUpdate(
                READY, ConditionStatus.false, reason, f"{work.ready}/{work.desired} Pods ready."
            )
        updates.append(ready)
        if outcome.canary:
            updates.append(
                ConditionUpdate(PROGRESSING, ConditionStatus.true, "CanaryProgressing", outcome.canary)
            )
        elif work.rolled_out:
            updates.append(
                ConditionUpdate(
                    PROGRESSING, ConditionStatus.false, "RolloutComplete", "The latest spec runs."
                )
            )
        elif work.start_failure:
            # The new release crashes while the old one may still serve (Ready says which): the
            # rollout is stuck until the spec is fixed, as ProgressDeadlineExceeded would say later.
            updates.append(
                ConditionUpdate(
                    PROGRESSING,
                    ConditionStatus.false,
                    AGENT_START_FAILED,
                    f"Rollout stalled at {work.updated}/{work.desired} Pods updated: {work.start_failure}",
                )
            )
        else:
            updates.append(
                ConditionUpdate(
                    PROGRESSING,
                    ConditionStatus.true,
                    "RollingOut",
                    f"{work.updated}/{work.desired} Pods updated, {work.ready} ready.",
                )
            )
    if outcome.missing_monitoring:
        kinds = ", ".join(outcome.missing_monitoring)
        updates.append(
            ConditionUpdate(
                MONITORING_READY,
                ConditionStatus.false,
                "MonitoringCRDMissing",
                f"Skipped {kinds}: the CRD is not installed (install the Prometheus Operator / KEDA CRDs).",
            )
        )
    elif not outcome.problem:
        updates.append(
            ConditionUpdate(MONITORING_READY, ConditionStatus.true, "Created", "Monitoring objects exist.")
        )

    new = dict(current)
    new["conditions"] = set_conditions(current.get("conditions") or [], updates, gen, timestamp)
    new["observedGeneration"] = gen
    if work.exists:
        new["replicas"] = work.replicas
        new["readyReplicas"] = work.ready
        new["ready"] = f"{work.ready}/{work.desired}"
    if work.image:
        new["image"] = work.image
    if outcome.missing_monitoring:
        new["monitoring"] = list(outcome.missing_monitoring)
    else:
        new.pop("monitoring", None)
    released = current.get("released") or {}
    if outcome.applied_image is not None and not outcome.held and not outcome.canary and not outcome.problem:
        if released.get("generation") != gen or released.get("image") != outcome.applied_image:
            new["released"] = {"generation": gen, "image": outcome.applied_image, "since": timestamp}
        new.pop("pending", None)
    waiting = outcome.held[1] if outcome.held else outcome.canary
    if waiting and not outcome.problem:
        pending = current.get("pending") or {}
        since = pending.get("since") if pending.get("generation") == gen else timestamp
        new["pending"] = {"generation": gen, "since": since or timestamp, "reason": waiting}
        if outcome.pending_image:
            new["pending"]["image"] = outcome.pending_image
    if not outcome.problem:
        if outcome.rollout is None:
            new.pop("rollout", None)
        else:
            new["rollout"] = outcome.rollout
    # Validate against the model: a typo here would otherwise be pruned silently by the apiserver.
    AgentDeploymentStatus.model_validate({k: v for k, v in new.items() if k in OWNED_KEYS})
    return new


def patch_for(current: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    """A merge patch of ``status`` turning ``current`` into ``new`` (owned keys only); None if equal."""
    patch: dict[str, Any] = {}
    for key in OWNED_KEYS:
        if current.get(key) != new.get(key):
            patch[key] = new.get(key)
    return patch or None


#: Condition types this module sets (the others belong to the budget watcher).
OWNED_CONDITIONS = frozenset({READY, PROGRESSING, MONITORING_READY})


def applied(new: dict[str, Any]) -> dict[str, Any]:
    """Our part of ``new`` for a server-side apply: owned keys that are set, our conditions only.

    ``conditions`` is a map keyed by ``type`` in the CRD, so each condition has its own owner and
    the budget watcher's stay untouched; an owned key left out is removed (we owned it).
    """
    out = {k: new[k] for k in OWNED_KEYS if new.get(k) is not None}
    out["conditions"] = [c for c in new.get("conditions") or [] if c.get("type") in OWNED_CONDITIONS]
    return out


@dataclass(frozen=True)
class EventSpec:
    """An Event to post about the resource."""

    type: str  # Normal | Warning
    reason: str
    message: str


#: Ready reasons that are routine during a rollout: the condition says it, an Event would be noise.
_QUIET_READY_REASONS = frozenset({"NoPodReady", "PodsNotReady", "DeploymentMissing"})
#: False-status reasons that are good news, posted as Normal.
_NORMAL_FALSE_REASONS = frozenset({"RolloutComplete"})


def events_for(old: dict[str, Any], new: dict[str, Any]) -> list[EventSpec]:
    """Events for condition transitions (posted once per transition, not on every resync).

    A Progressing change that merely repeats Ready's reason (an operator-only problem) is not
    posted twice, and Progressing=True (a rollout started) is left to the Deployment's own Events.
    """
    events: list[EventSpec] = []
    ready = condition(new, READY) or {}
    for kind in (READY, PROGRESSING, MONITORING_READY):
        before, after = condition(old, kind), condition(new, kind)
        if after is None:
            continue
        if before and (before.get("status"), before.get("reason")) == (
            after.get("status"),
            after.get("reason"),
        ):
            continue
        reason = after.get("reason", "")
        if kind == READY and reason in _QUIET_READY_REASONS:
            continue
        if kind == PROGRESSING and (after["status"] == "True" or reason == ready.get("reason")):
            continue
        warning = after["status"] == "False" and reason not in _NORMAL_FALSE_REASONS
        if not warning and (before is None or kind == PROGRESSING):
            continue  # good news (first state, rollout progress) is in the conditions already
        events.append(EventSpec("Warning" if warning else "Normal", reason, after.get("message", "")))
    return events + _rollout_events(old.get("rollout") or {}, new.get("rollout") or {})


def _rollout_events(old: dict[str, Any], new: dict[str, Any]) -> list[EventSpec]:
    """A Normal Event per canary step and for the promotion (status.rollout transitions)."""
    moved = (old.get("phase"), old.get("release"), old.get("step")) != (
        new.get("phase"),
        new.get("release"),
        new.get("step"),
    )
    if not new or not moved:
        return []
    if new.get("phase") == "Progressing":
        return [EventSpec("Normal", "CanaryStep", new.get("reason", ""))]
    if new.get("phase") == "Stable" and old.get("phase") == "Progressing":
        return [EventSpec("Normal", "CanaryPromoted", new.get("reason", ""))]
    if new.get("phase") == "Held" and old.get("phase") != "Held":
        return [EventSpec("Normal", "CanaryHeld", new.get("reason", ""))]
    return []
