"""The error-budget policy: a small explicit state machine, and the hold decision. Pure: no I/O, no clock.

State (persisted in ``status.freeze`` and ``status.errorBudget.activeStep``, so it survives restarts):
the freeze ``level`` (None < NonCritical < All), the active ``step`` (index into
``errorBudgetPolicy.steps``), when the level began and why, and since when the burn has been quiet.

Transitions, evaluated on every watcher pass with the resource's budget snapshot:

====================  ==============================================  ======================
from                  when                                            to / Event
====================  ==============================================  ======================
any                   no budget data (Prometheus down, no series)     unchanged, no Event
level L               consumed reaches a step whose freeze level > L  that level, Warning
                                                                      ``RolloutsFrozen``
level L, step s       consumed reaches a higher step, same level      step, Warning
                      (a ``Notify`` step, or a second freeze step)    ``ErrorBudgetNotify``
not frozen, step s    consumed falls below step s, burn rates < 1      lower step, Normal
                                                                      ``ErrorBudgetRecovered``
frozen at L           consumed below L's step, every burn rate < 1     lower level, Normal
                      for ``quietPeriod``, and (leaving ``All`` with   ``FreezeLifted`` (to
                      ``requirePostmortem``) the postmortem annotation  None) or ``FreezeLowered``
frozen at L           a burn rate >= 1                                 quiet clock reset
====================  ==============================================  ======================

Hysteresis: a freeze begins as soon as the consumed budget crosses a step, but ends only when the
budget is back under the step *and* the burn has stayed below 1 (the budget is no longer being
spent faster than it accrues) for the quiet period. Losing Prometheus never lifts a freeze: with no
data nothing moves, and the quiet clock needs positive evidence.

The hold decision (``decide_hold``) answers, for one reconcile of a frozen resource, whether its
changed workload may roll out. Scaling and rollbacks never reach it (see ``scaling_only``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from shepherd.api import ErrorBudgetPolicy, FreezeLevel, PolicyAction, duration_seconds

POSTMORTEM_ANNOTATION = "shepherd.dev/postmortem"
CHANGE_CLASS_ANNOTATION = "shepherd.dev/change-class"
FREEZE_OVERRIDE_ANNOTATION = "shepherd.dev/freeze-override"
INPUT_HASH_ANNOTATION = "shepherd.dev/input-hash"

#: Status history entries kept (oldest dropped first).
HISTORY_LIMIT = 10
#: Overrides kept in ``status.freeze.overridesUsed``.
OVERRIDES_LIMIT = 10

RANK = {FreezeLevel.none: 0, FreezeLevel.non_critical: 1, FreezeLevel.all: 2}
ACTION_LEVEL = {
    PolicyAction.notify: FreezeLevel.none,
    PolicyAction.freeze_non_critical: FreezeLevel.non_critical,
    PolicyAction.freeze_all: FreezeLevel.all,
}


def rfc3339(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Budget:
    """What the policy needs of a snapshot."""

    consumed_percent: float
    burn_rates: Mapping[str, float] = field(default_factory=dict)

    @property
    def burning(self) -> bool:
        """Spending faster than the budget accrues in some window (burn rate >= 1)."""
        return any(rate >= 1.0 for rate in self.burn_rates.values())


@dataclass(frozen=True)
class PolicyState:
    level: FreezeLevel = FreezeLevel.none
    step: int | None = None
    since: str | None = None
    reason: str | None = None
    #: When every burn rate was last seen falling below 1 while frozen (None: not quiet).
    quiet_since: str | None = None

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> PolicyState:
        freeze = status.get("freeze") or {}
        budget = status.get("errorBudget") or {}
        try:
            level = FreezeLevel(freeze.get("level") or FreezeLevel.none.value)
        except ValueError:
            level = FreezeLevel.all  # an unknown level is treated as the strictest, never as none
        step = budget.get("activeStep")
        return cls(
            level=level,
            step=step if isinstance(step, int) else None,
            since=freeze.get("since"),
            reason=freeze.get("reason"),
            quiet_since=freeze.get("quietSince"),
        )


@dataclass(frozen=True)
class Transition:
    """One state change: it becomes an Event and a status history entry."""

    kind: str  # CamelCase: the Event reason
    event_type: str  # Normal | Warning
    from_level: FreezeLevel
    to_level: FreezeLevel
    step: int | None
    consumed_percent: float
    message: str
    at: str

    def history_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "at": self.at,
            "kind": self.kind,
            "fromLevel": self.from_level.value,
            "toLevel": self.to_level.value,
            "consumedPercent": round(self.consumed_percent, 2),
            "message": self.message,
        }
        if self.step is not None:
            entry["step"] = self.step
        return entry


@dataclass(frozen=True)
class Evaluation:
    state: PolicyState
    transitions: list[Transition]
    #: Why a lower target is not in force yet (quiet period running, postmortem missing); else None.
    waiting: str | None = None


def target(policy: ErrorBudgetPolicy, consumed: float) -> tuple[int | None, FreezeLevel]:
    """The highest step reached by ``consumed`` and the strictest freeze level of the steps reached."""
    step: int | None = None
    level = FreezeLevel.none
    for index, s in enumerate(policy.steps):
        if consumed >= s.consumed_percent:
            step = index
            candidate = ACTION_LEVEL[s.action]
            if RANK[candidate] > RANK[level]:
                level = candidate
    return step, level


def describe(policy: ErrorBudgetPolicy, step: int | None, consumed: float) -> str:
    if step is None:
        return f"error budget {consumed:.1f}% consumed, below every policy step"
    s = policy.steps[step]
    return (
        f"error budget {consumed:.1f}% consumed >= {s.consumed_percent:g}% "
        f"(step {step + 1}: {s.action.value})"
    )


def _rank_of(step: int | None) -> int:
    return -1 if step is None else step


def evaluate(
    state: PolicyState,
    policy: ErrorBudgetPolicy,
    budget: Budget | None,
    *,
    postmortem: str | None,
    now: dt.datetime,
) -> Evaluation:
    """The next state and the transitions taken (see the table in the module docstring)."""
    if budget is None:
        return Evaluation(state, [])
    at = rfc3339(now)
    consumed = budget.consumed_percent
    step, level = target(policy, consumed)
    why = describe(policy, step, consumed)

    def transition(kind: str, event_type: str, to: FreezeLevel, message: str) -> Transition:
        return Transition(kind, event_type, state.level, to, step, consumed, message, at)

    if RANK[level] > RANK[state.level]:
        new = PolicyState(level=level, step=step, since=at, reason=why, quiet_since=None)
        message = f"Rollouts frozen ({level.value}): {why}."
        return Evaluation(new, [transition("RolloutsFrozen", "Warning", level, message)])

    if _rank_of(step) > _rank_of(state.step):
        new = replace(state, step=step, quiet_since=None if budget.burning else state.quiet_since)
        action = policy.steps[step].action.value  # type: ignore[index]
        message = f"Error budget policy step reached ({action}): {why}."
        return Evaluation(new, [transition("ErrorBudgetNotify", "Warning", state.level, message)])

    if state.level == FreezeLevel.none:
        if _rank_of(step) < _rank_of(state.step) and not budget.burning:
            new = replace(state, step=step)
            return Evaluation(
                new, [transition("ErrorBudgetRecovered", "Normal", FreezeLevel.none, f"Recovered: {why}.")]
            )
        return Evaluation(state, [])

    # Frozen, and the budget asks for no more than the current level.
    quiet_since = None if budget.burning else (state.quiet_since or at)
    if RANK[level] == RANK[state.level]:
        return Evaluation(replace(state, quiet_since=quiet_since), [])
    quiet_start = parse_time(quiet_since)
    period = duration_seconds(policy.recovery.quiet_period)
    if quiet_start is None:
        waiting = "burn rate still >= 1; the quiet period has not started"
    elif (now - quiet_start).total_seconds() < period:
        waiting = (
            f"burn rates below 1 since {quiet_since}; lifting after the quiet period "
            f"({policy.recovery.quiet_period})"
        )
    elif policy.recovery.require_postmortem and state.level == FreezeLevel.all and not postmortem:
        waiting = f"quiet period over; waiting for the {POSTMORTEM_ANNOTATION} annotation"
    else:
        waiting = None
    if waiting:
        return Evaluation(replace(state, quiet_since=quiet_since), [], waiting)
    if level == FreezeLevel.none:
        new = PolicyState(level=level, step=step, since=at, reason=None, quiet_since=None)
        message = (
            f"Freeze lifted ({state.level.value} -> None): {why}; burn rates below 1 since {quiet_since}."
        )
        return Evaluation(new, [transition("FreezeLifted", "Normal", level, message)])
    new = PolicyState(level=level, step=step, since=at, reason=why, quiet_since=None)
    message = f"Freeze lowered ({state.level.value} -> {level.value}): {why}."
    return Evaluation(new, [transition("FreezeLowered", "Normal", level, message)])


def append_history(history: Iterable[Mapping[str, Any]], transitions: Iterable[Transition]) -> list[dict]:
    entries = [dict(h) for h in history] + [t.history_entry() for t in transitions]
    return entries[-HISTORY_LIMIT:]


# --------------------------------------------------------------------------------------------- hold


@dataclass(frozen=True)
class OverrideUse:
    generation: int
    reason: str
    at: str

    def as_status(self) -> dict[str, Any]:
        return {"generation": self.generation, "reason": self.reason, "at": self.at}


@dataclass(frozen=True)
class HoldDecision:
    """``held`` is the reason a change must wait (None: it may roll out); ``override`` a use to record."""

    held: str | None = None
    override: OverrideUse | None = None
    passed_by: str | None = None  # "critical" | "override" | None


def decide_hold(
    *,
    level: FreezeLevel,
    reason: str | None,
    annotations: Mapping[str, str],
    generation: int,
    released_generation: int | None,
    overrides_used: Iterable[Mapping[str, Any]],
    now: dt.datetime,
) -> HoldDecision:
    """May the workload of ``generation`` roll out under a freeze at ``level``?

    * not frozen: yes;
    * ``shepherd.dev/change-class: critical`` passes ``NonCritical`` (and consumes no override);
    * ``shepherd.dev/freeze-override: <reason>`` passes one rollout: the first generation rolled out
      with that reason uses it up (recorded as ``{generation, reason, at}``); the same generation
      may be reconciled again, a later generation with the same reason is held. A new reason is a
      new override. When the current generation is already released there is nothing to let
      through, and the override is not used up.
    """
    if level == FreezeLevel.none:
        return HoldDecision()
    if level == FreezeLevel.non_critical and annotations.get(CHANGE_CLASS_ANNOTATION) == "critical":
        return HoldDecision(passed_by="critical")
    held = f"rollouts frozen ({level.value}): {reason}" if reason else f"rollouts frozen ({level.value})"
    override = (annotations.get(FREEZE_OVERRIDE_ANNOTATION) or "").strip()
    if not override:
        return HoldDecision(held=held)
    if released_generation == generation:
        return HoldDecision()
    same = [u for u in overrides_used if u.get("reason") == override]
    if any(u.get("generation") == generation for u in same):
        return HoldDecision(passed_by="override")
    if same:
        used = max(int(u.get("generation", 0)) for u in same)
        return HoldDecision(
            held=f"{held}; override {override!r} was used for generation {used} "
            f"(set a new {FREEZE_OVERRIDE_ANNOTATION} reason to pass another rollout)"
        )
    return HoldDecision(override=OverrideUse(generation, override, rfc3339(now)), passed_by="override")


def scaling_only(desired: Mapping[str, Any], live: Mapping[str, Any]) -> bool:
    """Whether ``desired`` differs from ``live`` only in ``spec.replicas`` (scaling is never held).

    Autoscaling bounds live in the HPA/ScaledObject, which is not part of the held workload, and a
    rollback to the released spec makes ``desired`` equal ``live``, so neither is ever held.
    """
    from shepherd.apply import contains  # local: keeps this module importable without the applier
    from shepherd.render.workload import RELEASE_DIGEST_ANNOTATION

    # The release digest is a hash of the template, which is compared itself (the admission check
    # renders it without the Secrets' digests, so its own hash of it would differ).
    derived = (INPUT_HASH_ANNOTATION, RELEASE_DIGEST_ANNOTATION)

    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in obj.items() if k not in ("status",)}
        meta = dict(out.get("metadata") or {})
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in derived}
        meta["annotations"] = annotations
        out["metadata"] = meta
        if isinstance(out.get("spec"), dict):
            out["spec"] = {k: v for k, v in out["spec"].items() if k != "replicas"}
        return out

    if desired.get("kind") != "Deployment":
        return False
    return contains(strip(live), strip(desired))


def merge_overrides(*lists: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Union of override records by (generation, reason), oldest first, bounded."""
    seen: dict[tuple[int, str], dict[str, Any]] = {}
    for items in lists:
        for u in items:
            seen.setdefault((int(u.get("generation", 0)), str(u.get("reason", ""))), dict(u))
    merged = sorted(seen.values(), key=lambda u: (u.get("at") or "", u.get("generation", 0)))
    return merged[-OVERRIDES_LIMIT:]
