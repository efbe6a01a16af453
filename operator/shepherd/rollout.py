"""Canary rollouts, step by step: which release each agent Deployment runs and how many Pods (pure).

A workload change is a new *release* when the Pod template differs (its release digest, see
``shepherd.render.workload``); a replicas-only change is not. The release number is the
resource's generation when the change was first seen, and every agent Pod carries it
(``shepherd.dev/release``).

With ``spec.rollout.strategy: canary`` a new release first runs in a second Deployment
(``<name>-canary``) beside the stable one, behind the one Service: at step ``i`` the canary has
``ceil(replicas * weight_i / 100)`` Pods (at least 1) and the stable Deployment the rest, so the
weight is a Pod ratio, as fine-grained as the replica count allows (4 replicas: 25 % steps). With
an autoscaler the stable Deployment keeps the autoscaler's count and the canary gets that share of
it on top. Each step lasts its ``pause``; after the last one the stable Deployment takes the new
release (a rolling update) and the canary goes away. Where the rollout is, is kept in
``status.rollout`` (phase, step, since): a restarted operator continues from there.

A freeze that blocks the change keeps a canary from starting (``Held``); one already under way
stays at its step until the freeze lifts.

The budget watcher compares the canary's SLIs with the stable release's
(``shepherd.budget.canary``) and records a failure in ``status.canaryAnalysis``; the canary is then
``Aborted``: no Pod, the stable release on every Pod, the change pending until the spec changes
again (a new release) or ``shepherd.dev/rollout-retry`` takes a new value (the same release, from
its first step).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from shepherd.api import AgentDeployment, RolloutPhase, RolloutStrategy, duration_seconds
from shepherd.budget.policy import parse_time, rfc3339
from shepherd.render.workload import release_digest, release_of

#: Any new value restarts an aborted canary of the same spec at its first step.
RETRY_ANNOTATION = "shepherd.dev/rollout-retry"


def _failure(verdict: dict[str, Any] | None, release: int, started: dt.datetime) -> str | None:
    """The budget watcher's failure of this canary (not of an earlier try of it), or None."""
    verdict = verdict or {}
    at = parse_time(verdict.get("at"))
    if verdict.get("verdict") != "Failed" or verdict.get("release") != release or at is None or at < started:
        return None
    return f"Canary release {release} aborted: {verdict.get('reason', '')}".strip()


def _passed(verdict: dict[str, Any] | None, release: int, step: int, since: dt.datetime) -> bool:
    """Whether the budget watcher passed this step of this canary (during it)."""
    verdict = verdict or {}
    at = parse_time(verdict.get("at"))
    return (
        (verdict.get("verdict"), verdict.get("release"), verdict.get("step")) == ("Passed", release, step)
        and at is not None
        and at >= since
    )


@dataclass(frozen=True)
class Plan:
    """What the reconcile renders and holds, and what status.rollout says."""

    #: Release label of the stable Deployment as rendered.
    release: int
    #: Replicas of the stable Deployment instead of spec.replicas (None: as rendered).
    stable_replicas: int | None = None
    #: Keep the live stable Deployment and ConfigMap as they are (a canary runs the new spec).
    hold_stable: bool = False
    #: Pods of the canary Deployment; None: no canary wanted (an existing one is pruned).
    canary_replicas: int | None = None
    #: Release label of the canary's Pods.
    canary_release: int | None = None
    #: ``status.rollout`` (None with the rolling strategy).
    status: dict[str, Any] | None = None
    #: Reconcile again after this many seconds (the step's pause ends).
    requeue_after: float | None = None


def _stable(resource: AgentDeployment, release: int, reason: str) -> Plan:
    if resource.spec.rollout.strategy != RolloutStrategy.canary:
        return Plan(release=release)
    status = {
        "phase": RolloutPhase.stable.value,
        "release": release,
        "stableRelease": release,
        "weight": 100,
        "reason": reason,
        "summary": RolloutPhase.stable.value,
    }
    return Plan(release=release, status=status)


def canary_replicas(
    resource: AgentDeployment, weight: int, stable_live_replicas: int | None
) -> tuple[int, int | None]:
    """(canary Pods, stable Pods or None when an autoscaler owns them) at ``weight`` percent."""
    if resource.spec.autoscaling is not None:
        base = stable_live_replicas or 0
        return max(1, math.ceil(base * weight / 100)), None
    total = resource.spec.replicas
    if total == 0:
        return 0, 0
    canary = min(total, max(1, math.ceil(total * weight / 100)))
    return canary, total - canary


def release_for(generation: int, digest: str, stable: dict[str, Any] | None) -> int:
    """The release of a spec at ``generation`` whose Pod template has ``digest``, one Deployment
    (``stable``, live or None) running: the live one's when it runs that template (a replicas-only
    change, a rollback to it), else the generation."""
    live = release_of(stable)
    return live if live is not None and release_digest(stable) == digest else generation


def plan(
    resource: AgentDeployment,
    digest: str,
    stable: dict[str, Any] | None,
    canary: dict[str, Any] | None,
    current: dict[str, Any] | None,
    now: dt.datetime,
    blocked: str | None = None,
    verdict: dict[str, Any] | None = None,
    gated: bool = False,
) -> Plan:
    """The plan for ``resource`` whose rendered Pod template has ``digest``, given the live stable
    and canary Deployments (None when absent), ``current`` status.rollout, ``blocked`` (why a
    freeze holds workload changes, or None) and ``verdict`` (status.canaryAnalysis, the budget
    watcher's); ``gated``: a step advances only once the watcher passed it (it runs), not on its
    pause alone."""
    generation = resource.generation
    stable_release = release_of(stable)
    if stable_release is None or release_digest(stable) == digest:
        return _stable(resource, release_for(generation, digest, stable), "The only release runs.")
    if resource.spec.rollout.strategy != RolloutStrategy.canary:
        return Plan(release=generation)
    current = current or {}
    running = canary is not None and release_digest(canary) == digest
    release = (release_of(canary) or generation) if running else generation
    if blocked and not running:
        status = {
            "phase": RolloutPhase.held.value,
            "release": release,
            "stableRelease": stable_release,
            "weight": 0,
            "reason": f"The canary waits: {blocked}",
            "summary": RolloutPhase.held.value,
        }
        return Plan(release=release, status=status)
    retry = resource.annotations.get(RETRY_ANNOTATION)
    same = (
        running
        and current.get("release") == release
        and current.get("phase") in (RolloutPhase.progressing, RolloutPhase.aborted)
        and current.get("retry") == retry
    )
    started = (parse_time(current.get("started")) if same else None) or now
    base = {"release": release, "stableRelease": stable_release, "started": rfc3339(started)}
    if retry is not None:
        base["retry"] = retry
    failed = _failure(verdict, release, started)
    if (same and current.get("phase") == RolloutPhase.aborted) or failed:
        reason = failed or current.get("reason") or "The canary's analysis failed."
        status = {**base, "phase": RolloutPhase.aborted.value, "weight": 0, "reason": reason}
        status["step"] = int(current.get("step") or 0) if same else 0  # the step it was aborted at
        status["summary"] = RolloutPhase.aborted.value
        total = None if resource.spec.autoscaling is not None else resource.spec.replicas
        return Plan(
            release=stable_release,
            stable_replicas=total,
            hold_stable=True,
            canary_replicas=0,
            canary_release=release,
            status=status,
        )
    steps = resource.spec.rollout.steps
    step = int(current.get("step") or 0) if same else 0
    since = (parse_time(current.get("since")) if same else None) or now
    requeue: float | None = None
    if step < len(steps) and not blocked:
        left = since.timestamp() + duration_seconds(steps[step].pause) - now.timestamp()
        judged = not gated or _passed(verdict, release, step, since)
        if left <= 0 and judged:
            step, since = step + 1, now
            left = duration_seconds(steps[step].pause) if step < len(steps) else 0
        requeue = left if left > 0 else None  # not passed yet: the watcher's verdict reconciles it
    if step >= len(steps):  # promoted: the stable Deployment takes the release, the canary goes
        return _stable(resource, release, f"Release {release} promoted after {len(steps)} canary steps.")
    weight = steps[step].weight
    pods, stable_pods = canary_replicas(resource, weight, (stable.get("spec") or {}).get("replicas"))
    reason = (
        f"Canary release {release} on {pods} Pod(s) next to release {stable_release} "
        f"(step {step + 1} of {len(steps)}, weight {weight}%)"
    )
    if blocked:
        reason += f"; held at this step: {blocked}"
    status = {
        **base,
        "phase": RolloutPhase.progressing.value,
        "step": step,
        "weight": weight,
        "since": rfc3339(since),
        "reason": reason,
        "summary": f"{RolloutPhase.progressing.value} {weight}%",
    }
    return Plan(
        release=stable_release,
        stable_replicas=stable_pods,
        hold_stable=True,
        canary_replicas=pods,
        canary_release=release,
        status=status,
        requeue_after=requeue,
    )
