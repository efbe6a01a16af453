"""The part of an AgentDeployment's status the budget watcher owns, and the Events that go with it. Pure.

Owned keys: ``errorBudget``, ``spend``, ``freeze``, ``circuits``, ``circuitsSummary`` and the conditions
``ErrorBudgetHealthy``, ``Frozen``, ``CircuitsClosed`` and ``PrometheusReachable`` (merged into the
shared ``conditions`` list with ``shepherd.status.set_conditions``, which keeps the others).

To keep the fleet's writes cheap, numbers are rounded (percent to 0.1, burn rates to 0.01) and
``evaluatedAt`` (of ``errorBudget`` and ``spend``) alone does not justify a write: ``needs_write``
ignores it until it is older than the refresh period.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shepherd import status as core_status
from shepherd.api import ConditionStatus, CostBudget, ErrorBudgetPolicy, FreezeLevel
from shepherd.budget import policy
from shepherd.budget.snapshot import Snapshot
from shepherd.status import ConditionUpdate, EventSpec

OWNED_KEYS = ("errorBudget", "spend", "freeze", "circuits", "circuitsSummary", "conditions")
OWNED_CONDITIONS = (
    core_status.FROZEN,
    core_status.ERROR_BUDGET_HEALTHY,
    core_status.CIRCUITS_CLOSED,
    core_status.PROMETHEUS_REACHABLE,
)


@dataclass(frozen=True)
class Reachability:
    """Whether this resource's budget could be read: ok, or a CamelCase reason and a message."""

    ok: bool
    reason: str = "QueriesSucceeded"
    message: str = ""


@dataclass(frozen=True)
class Update:
    status: dict[str, Any]  # the new values of OWNED_KEYS
    events: list[EventSpec] = field(default_factory=list)
    lifted: bool = False  # the freeze level went down (a held change may now roll out)


def _circuits(
    previous: list[Mapping[str, Any]], observed: Mapping[str, str], at: str
) -> tuple[list[dict[str, Any]], list[EventSpec]]:
    before = {c.get("name"): c for c in previous}
    out, events = [], []
    for name, state in observed.items():
        old = before.get(name)
        since = old.get("since") if old and old.get("state") == state else at
        out.append({"name": name, "state": state, "since": since})
        old_state = (old or {}).get("state", "closed")
        if state == "open" and old_state != "open":
            events.append(
                EventSpec("Warning", "CircuitOpen", f"{circuit_kind(name)} circuit {name} is open.")
            )
        elif state == "closed" and old_state != "closed":
            events.append(
                EventSpec("Normal", "CircuitClosed", f"{circuit_kind(name)} circuit {name} closed again.")
            )
    for name, old in before.items():
        if name not in observed and old.get("state") != "closed":
            text = f"{circuit_kind(name)} circuit {name} no longer reported."
            events.append(EventSpec("Normal", "CircuitClosed", text))
    return out, events


def circuit_kind(name: str) -> str:
    """`Tool` for a wrapped tool's circuit (`tool:<name>`), `LLM` for a model's (`<provider>:<model>`)."""
    return "Tool" if name.startswith("tool:") else "LLM"


def circuits_summary(circuits: list[Mapping[str, Any]]) -> str:
    if not circuits:
        return "none"
    bad = [c for c in circuits if c.get("state") != "closed"]
    if not bad:
        return "closed"
    opened = sum(1 for c in bad if c.get("state") == "open")
    half = len(bad) - opened
    parts = [f"{opened}/{len(circuits)} open"] if opened else []
    if half:
        parts.append(f"{half}/{len(circuits)} half-open")
    return ", ".join(parts)


def compute(
    current: Mapping[str, Any],
    *,
    generation: int,
    budget_policy: ErrorBudgetPolicy,
    snapshot: Snapshot | None,
    reachability: Reachability,
    annotations: Mapping[str, str],
    overrides: list[Mapping[str, Any]],
    now: dt.datetime,
    cost_budget: CostBudget | None = None,
) -> Update:
    """The new budget-owned status from the current status and this evaluation's observations."""
    at = policy.rfc3339(now)
    state = policy.PolicyState.from_status(current)
    usable = snapshot is not None and snapshot.has_budget and reachability.ok
    budget = (
        policy.Budget(snapshot.consumed_percent, snapshot.burn_rates)  # type: ignore[arg-type,union-attr]
        if usable
        else None
    )
    result = policy.evaluate(
        state, budget_policy, budget, postmortem=annotations.get(policy.POSTMORTEM_ANNOTATION), now=now
    )
    new_state = result.state
    events = [EventSpec(t.event_type, t.kind, t.message) for t in result.transitions]

    old_budget = dict(current.get("errorBudget") or {})
    if usable:
        assert snapshot is not None
        assert snapshot.remaining_percent is not None
        error_budget: dict[str, Any] = {
            "consumedPercent": round(100.0 - snapshot.remaining_percent, 1),
            "remainingPercent": round(snapshot.remaining_percent, 1),
            "burnRates": [{"window": w, "rate": round(r, 2)} for w, r in snapshot.burn_rates.items()],
            "evaluatedAt": at,
        }
    else:
        error_budget = {k: v for k, v in old_budget.items() if k != "activeStep"}
    if new_state.step is not None:
        error_budget["activeStep"] = new_state.step

    old_freeze = dict(current.get("freeze") or {})
    freeze: dict[str, Any] = {"level": new_state.level.value}
    if new_state.since:
        freeze["since"] = new_state.since
    if new_state.reason and new_state.level != FreezeLevel.none:
        freeze["reason"] = new_state.reason
    if new_state.quiet_since and new_state.level != FreezeLevel.none:
        freeze["quietSince"] = new_state.quiet_since
    if result.waiting:
        freeze["waiting"] = result.waiting
    used = policy.merge_overrides(old_freeze.get("overridesUsed") or [], overrides)
    known = {(u.get("generation"), u.get("reason")) for u in old_freeze.get("overridesUsed") or []}
    for use in used:
        if (use.get("generation"), use.get("reason")) not in known:
            events.append(
                EventSpec(
                    "Warning",
                    "FreezeOverridden",
                    f"Generation {use.get('generation')} rolled out through the "
                    f"{state.level.value} freeze: {policy.FREEZE_OVERRIDE_ANNOTATION}={use.get('reason')!r}.",
                )
            )
    if used:
        freeze["overridesUsed"] = used
    history = policy.append_history(old_freeze.get("history") or [], result.transitions)
    if history:
        freeze["history"] = history

    if reachability.ok and snapshot is not None:
        circuits, circuit_events = _circuits(current.get("circuits") or [], snapshot.circuits, at)
        events += circuit_events
    elif reachability.ok:  # Prometheus answered and has no circuit series for this resource
        circuits, circuit_events = _circuits(current.get("circuits") or [], {}, at)
        events += circuit_events
    else:
        circuits = list(current.get("circuits") or [])

    top_reason = snapshot.top_failure_reason if usable and snapshot is not None else None
    updates = _conditions(
        new_state, result.waiting, budget_policy, error_budget, circuits, reachability, top_reason
    )
    conditions = core_status.set_conditions(current.get("conditions") or [], updates, generation, at)
    old_reach = core_status.condition(dict(current), core_status.PROMETHEUS_REACHABLE)
    if not reachability.ok and (old_reach is None or old_reach.get("status") != "False"):
        events.append(EventSpec("Warning", reachability.reason, reachability.message))
    elif reachability.ok and old_reach is not None and old_reach.get("status") == "False":
        events.append(EventSpec("Normal", "PrometheusReachable", "Reading the error budget again."))

    new = {
        "errorBudget": error_budget,
        "spend": _spend(current.get("spend"), snapshot, reachability, cost_budget or CostBudget(), at),
        "freeze": freeze,
        "circuits": circuits,
        "circuitsSummary": circuits_summary(circuits),
        "conditions": conditions,
    }
    lifted = policy.RANK[new_state.level] < policy.RANK[state.level]
    return Update(new, events, lifted)


def _spend(
    old: Mapping[str, Any] | None,
    snapshot: Snapshot | None,
    reachability: Reachability,
    cost_budget: CostBudget,
    at: str,
) -> dict[str, Any] | None:
    """Spend today and this month, and their share of the budgets; kept as it was without data."""
    if not reachability.ok or snapshot is None or snapshot.spend_today is None:
        return dict(old) if old else None
    spend: dict[str, Any] = {"todayUsd": round(snapshot.spend_today, 4)}
    month = snapshot.spend_month if snapshot.spend_month is not None else snapshot.spend_today
    spend["monthUsd"] = round(max(month, snapshot.spend_today), 4)
    if cost_budget.usd_per_day:
        spend["todayPercent"] = round(100 * spend["todayUsd"] / cost_budget.usd_per_day, 1)
    if cost_budget.usd_per_month:
        spend["monthPercent"] = round(100 * spend["monthUsd"] / cost_budget.usd_per_month, 1)
    spend["evaluatedAt"] = at
    return spend


def _with_reason(text: str, top_reason: tuple[str, float] | None) -> str:
    if top_reason is None:
        return text + "."
    reason, share = top_reason
    return f"{text}; top failure reason: {reason} ({share:.0%} of failed runs)."


def _conditions(
    state: policy.PolicyState,
    waiting: str | None,
    budget_policy: ErrorBudgetPolicy,
    error_budget: Mapping[str, Any],
    circuits: list[Mapping[str, Any]],
    reachability: Reachability,
    top_reason: tuple[str, float] | None = None,
) -> list[ConditionUpdate]:
    yes, no, unknown = ConditionStatus.true, ConditionStatus.false, ConditionStatus.unknown
    updates = []
    if reachability.ok:
        updates.append(
            ConditionUpdate(core_status.PROMETHEUS_REACHABLE, yes, "QueriesSucceeded", "Budget read.")
        )
    else:
        updates.append(
            ConditionUpdate(core_status.PROMETHEUS_REACHABLE, no, reachability.reason, reachability.message)
        )

    if state.level != FreezeLevel.none:
        message = f"Rollouts frozen ({state.level.value}) since {state.since}: {state.reason}."
        if waiting:
            message += f" Not lifted yet: {waiting}."
        if not reachability.ok:
            message += " Prometheus cannot be read; the freeze stays until it can."
        updates.append(ConditionUpdate(core_status.FROZEN, yes, "ErrorBudgetPolicy", message))
    else:
        updates.append(ConditionUpdate(core_status.FROZEN, no, "NotFrozen", "Rollouts are not frozen."))

    consumed = error_budget.get("consumedPercent")
    if not reachability.ok or consumed is None:
        why = reachability.reason if not reachability.ok else "NoBudgetData"
        text = reachability.message if not reachability.ok else "No SLI events in the SLO window yet."
        updates.append(ConditionUpdate(core_status.ERROR_BUDGET_HEALTHY, unknown, why, text))
    elif state.step is None:
        updates.append(
            ConditionUpdate(
                core_status.ERROR_BUDGET_HEALTHY,
                yes,
                "WithinBudget",
                _with_reason(
                    f"{consumed:g}% of the error budget consumed, below every policy step", top_reason
                ),
            )
        )
    else:
        updates.append(
            ConditionUpdate(
                core_status.ERROR_BUDGET_HEALTHY,
                no,
                "PolicyStepReached",
                _with_reason(policy.describe(budget_policy, state.step, float(consumed)), top_reason),
            )
        )

    bad = [c for c in circuits if c.get("state") != "closed"]
    if not reachability.ok and not circuits:
        updates.append(ConditionUpdate(core_status.CIRCUITS_CLOSED, unknown, reachability.reason, "Unknown."))
    elif bad:
        names = ", ".join(f"{c['name']} ({c['state']} since {c.get('since')})" for c in bad)
        reason = "CircuitOpen" if any(c.get("state") == "open" for c in bad) else "CircuitHalfOpen"
        updates.append(ConditionUpdate(core_status.CIRCUITS_CLOSED, no, reason, f"Not closed: {names}."))
    else:
        updates.append(
            ConditionUpdate(
                core_status.CIRCUITS_CLOSED,
                yes,
                "AllClosed" if circuits else "NoCircuits",
                "Every model and tool circuit is closed." if circuits else "No circuit reported.",
            )
        )
    return updates


def needs_write(
    current: Mapping[str, Any], new: Mapping[str, Any], now: dt.datetime, refresh_s: float
) -> bool:
    """Whether ``new`` differs from ``current`` in anything but a fresh ``evaluatedAt`` (or that is stale)."""

    def without_stamp(value: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: value.get(k) for k in OWNED_KEYS}
        for stamped in ("errorBudget", "spend"):
            out[stamped] = {k: v for k, v in (out[stamped] or {}).items() if k != "evaluatedAt"}
        out["conditions"] = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in (out["conditions"] or [])
        ]
        return out

    if without_stamp(current) != without_stamp(new):
        return True
    old_stamp = policy.parse_time((current.get("errorBudget") or {}).get("evaluatedAt"))
    new_stamp = (new.get("errorBudget") or {}).get("evaluatedAt")
    if new_stamp and old_stamp is None:
        return True
    fresh = new_stamp != (current.get("errorBudget") or {}).get("evaluatedAt")
    return fresh and old_stamp is not None and (now - old_stamp).total_seconds() >= refresh_s


def patch_for(current: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch turning the owned keys of ``current`` into ``new`` (None deletes a key)."""
    return _diff({k: current.get(k) for k in OWNED_KEYS}, {k: new.get(k) for k in OWNED_KEYS})


def _diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    patch: dict[str, Any] = {}
    for key in old.keys() | new.keys():
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, Mapping) and isinstance(after, Mapping):
            patch[key] = _diff(before, after)
        else:
            patch[key] = after  # lists replace wholesale; None deletes
    return patch
