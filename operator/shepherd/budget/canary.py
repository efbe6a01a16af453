"""A canary's analysis: its SLIs against the stable release's and the SLO (pure).

The fleet rules count every SLI's events and bad events per release over the rules'
``canaryWindow`` (``shepherd:release_sli_{events,errors}:increase{release}``); the budget watcher
reads them for the whole fleet in its query set and asks ``judge`` about each resource whose
canary runs. A canary fails on an SLI with at least ``analysis.minEvents`` events when

* its burn rate (bad-event ratio over the ratio the SLO allows) exceeds ``analysis.burnThreshold``, or
* its bad-event ratio exceeds the stable release's by ``analysis.factor`` while its burn rate is
  above 1 (it spends budget faster than the SLO allows: a stable release with no bad event at
  all does not make one bad event a failure).

Its bad events count against the resource's budget as every other event does. A step that has
seen ``minEvents`` on some SLI without failing has *passed* (``passed``): where the budget watcher
runs, a step advances only once its pause is over and it has passed, so a slow start of the
canary's Pods never promotes a release nobody has judged.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from shepherd.api import CanaryAnalysis, RolloutPhase, Slo
from shepherd.budget.policy import rfc3339

#: (events, bad events) per SLI of one release.
ReleaseCounts = Mapping[str, tuple[float, float]]


def allowed_ratios(slo: Slo) -> dict[str, float]:
    """The bad-event ratio each SLI's objective allows, by the ``sli`` label."""
    out = {"availability": 1 - slo.availability.target / 100}
    for name in ("latency", "ttft"):
        objective = getattr(slo, name)
        if objective is not None:
            out[name] = 1 - objective.target / 100
    return out


def judge(
    rollout: Mapping[str, Any] | None,
    analysis: CanaryAnalysis,
    slo: Slo,
    releases: Mapping[str, ReleaseCounts],
    now: dt.datetime,
) -> dict[str, Any] | None:
    """A failed verdict (``status.canaryAnalysis``) for the canary under way, or None."""
    rollout = rollout or {}
    if rollout.get("phase") != RolloutPhase.progressing:
        return None
    release = rollout.get("release")
    canary = releases.get(str(release)) or {}
    stable = releases.get(str(rollout.get("stableRelease"))) or {}
    for sli, allowed in allowed_ratios(slo).items():
        events, bad = canary.get(sli, (0.0, 0.0))
        if events < analysis.min_events or allowed <= 0:
            continue
        ratio = bad / events
        burn = ratio / allowed
        stable_events, stable_bad = stable.get(sli, (0.0, 0.0))
        stable_ratio = stable_bad / stable_events if stable_events > 0 else 0.0
        worse = ratio > analysis.factor * stable_ratio and burn > 1
        if burn > analysis.burn_threshold or worse:
            reason = (
                f"{sli}: {bad:.0f} bad of {events:.0f} events ({ratio:.1%}, burn rate {burn:.1f}) "
                f"against the stable release's {stable_ratio:.1%} (factor {analysis.factor:g}, "
                f"burn threshold {analysis.burn_threshold:g})"
            )
            return {"release": release, "verdict": "Failed", "sli": sli, "reason": reason, "at": rfc3339(now)}
    return None


def passed(
    rollout: Mapping[str, Any] | None,
    analysis: CanaryAnalysis,
    slo: Slo,
    releases: Mapping[str, ReleaseCounts],
    now: dt.datetime,
) -> dict[str, Any] | None:
    """A passed verdict for the step under way when an SLI of the canary has ``minEvents`` (call
    after ``judge`` found no failure), or None."""
    rollout = rollout or {}
    if rollout.get("phase") != RolloutPhase.progressing:
        return None
    counts = releases.get(str(rollout.get("release"))) or {}
    for sli in allowed_ratios(slo):
        events, bad = counts.get(sli, (0.0, 0.0))
        if events >= analysis.min_events:
            return {
                "release": rollout.get("release"),
                "verdict": "Passed",
                "step": rollout.get("step"),
                "sli": sli,
                "reason": f"{sli}: {bad:.0f} bad of {events:.0f} events",
                "at": rfc3339(now),
            }
    return None
