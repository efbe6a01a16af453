"""Every transition of the error-budget policy state machine, and the hold decisions."""

from __future__ import annotations

import datetime as dt

import pytest
from shepherd.api import ErrorBudgetPolicy, FreezeLevel
from shepherd.budget import policy
from shepherd.budget.policy import Budget, PolicyState, decide_hold, evaluate

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
POLICY = ErrorBudgetPolicy.model_validate(
    {
        "steps": [
            {"consumedPercent": 50, "action": "Notify"},
            {"consumedPercent": 75, "action": "FreezeNonCritical"},
            {"consumedPercent": 90, "action": "FreezeAll"},
        ],
        "recovery": {"quietPeriod": "5m", "requirePostmortem": True},
    }
)
HOT = {"5m": 14.0, "1h": 3.0}
QUIET = {"5m": 0.2, "1h": 0.9}


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def step(state: PolicyState, consumed: float, burns=QUIET, minutes: float = 0, postmortem=None):
    return evaluate(state, POLICY, Budget(consumed, burns), postmortem=postmortem, now=at(minutes))


def frozen(level: FreezeLevel, step_index: int, quiet_since: str | None = None) -> PolicyState:
    return PolicyState(level, step_index, policy.rfc3339(T0), "why", quiet_since)


def test_target_picks_the_highest_step_and_strictest_level():
    assert policy.target(POLICY, 10) == (None, FreezeLevel.none)
    assert policy.target(POLICY, 50) == (0, FreezeLevel.none)
    assert policy.target(POLICY, 80) == (1, FreezeLevel.non_critical)
    assert policy.target(POLICY, 150) == (2, FreezeLevel.all)
    # A Notify step above a freeze step keeps the freeze level.
    mixed = ErrorBudgetPolicy.model_validate(
        {
            "steps": [
                {"consumedPercent": 20, "action": "FreezeAll"},
                {"consumedPercent": 60, "action": "Notify"},
            ]
        }
    )
    assert policy.target(mixed, 70) == (1, FreezeLevel.all)


def test_no_data_changes_nothing():
    state = frozen(FreezeLevel.all, 2)
    result = evaluate(state, POLICY, None, postmortem="x", now=at(100))
    assert result.state == state
    assert result.transitions == []


def test_below_every_step_is_quiet():
    result = step(PolicyState(), 10)
    assert result.state == PolicyState()
    assert result.transitions == []


def test_notify_step_emits_a_warning_and_does_not_freeze():
    result = step(PolicyState(), 55, HOT)
    assert result.state.level == FreezeLevel.none
    assert result.state.step == 0
    [t] = result.transitions
    assert (t.kind, t.event_type, t.to_level) == ("ErrorBudgetNotify", "Warning", FreezeLevel.none)
    assert "Notify" in t.message
    # Staying on the same step is not a new transition.
    assert step(result.state, 60, HOT).transitions == []


def test_crossing_a_freeze_step_freezes_non_critical():
    result = step(PolicyState(step=0), 80, HOT, minutes=1)
    assert result.state.level == FreezeLevel.non_critical
    assert result.state.step == 1
    assert result.state.since == policy.rfc3339(at(1))
    assert "80.0% consumed >= 75%" in result.state.reason
    [t] = result.transitions
    assert (t.kind, t.event_type, t.from_level, t.to_level) == (
        "RolloutsFrozen",
        "Warning",
        FreezeLevel.none,
        FreezeLevel.non_critical,
    )


def test_jumping_straight_to_freeze_all():
    result = step(PolicyState(), 95, HOT)
    assert (result.state.level, result.state.step) == (FreezeLevel.all, 2)
    assert [t.kind for t in result.transitions] == ["RolloutsFrozen"]


def test_escalation_from_non_critical_to_all():
    result = step(frozen(FreezeLevel.non_critical, 1), 92, HOT)
    assert result.state.level == FreezeLevel.all
    [t] = result.transitions
    assert (t.from_level, t.to_level) == (FreezeLevel.non_critical, FreezeLevel.all)


def test_higher_step_with_same_level_is_a_notify_transition():
    mixed = ErrorBudgetPolicy.model_validate(
        {
            "steps": [
                {"consumedPercent": 20, "action": "FreezeAll"},
                {"consumedPercent": 60, "action": "Notify"},
            ]
        }
    )
    state = PolicyState(FreezeLevel.all, 0, "t", "r")
    result = evaluate(state, mixed, Budget(70, HOT), postmortem=None, now=T0)
    assert (result.state.level, result.state.step) == (FreezeLevel.all, 1)
    assert [t.kind for t in result.transitions] == ["ErrorBudgetNotify"]


def test_notify_step_clears_when_budget_recovers_and_burn_is_quiet():
    state = PolicyState(step=0)
    assert step(state, 40, HOT).transitions == []  # still burning: no flapping back
    result = step(state, 40, QUIET)
    assert result.state.step is None
    assert [(t.kind, t.event_type) for t in result.transitions] == [("ErrorBudgetRecovered", "Normal")]


def test_frozen_and_still_burning_stays_frozen_without_a_quiet_clock():
    state = frozen(FreezeLevel.non_critical, 1, quiet_since=policy.rfc3339(at(-30)))
    result = step(state, 40, HOT, minutes=10)
    assert result.state.level == FreezeLevel.non_critical
    assert result.state.quiet_since is None  # a burn >= 1 resets the clock
    assert result.transitions == []
    assert "burn rate still >= 1" in result.waiting


def test_frozen_at_target_level_starts_the_quiet_clock_but_does_not_lift():
    state = frozen(FreezeLevel.non_critical, 1)
    result = step(state, 80, QUIET, minutes=3)
    assert result.state.level == FreezeLevel.non_critical
    assert result.state.quiet_since == policy.rfc3339(at(3))
    assert result.transitions == []


def test_freeze_waits_for_the_quiet_period():
    state = frozen(FreezeLevel.non_critical, 1)
    first = step(state, 30, QUIET, minutes=1)
    assert first.state.quiet_since == policy.rfc3339(at(1))
    assert first.transitions == []
    assert "quiet period" in first.waiting
    still = step(first.state, 30, QUIET, minutes=5.9)
    assert still.state.level == FreezeLevel.non_critical
    assert still.transitions == []


def test_freeze_lifts_after_the_quiet_period():
    state = frozen(FreezeLevel.non_critical, 1, quiet_since=policy.rfc3339(at(1)))
    result = step(state, 30, QUIET, minutes=6)
    assert result.state == PolicyState(FreezeLevel.none, None, policy.rfc3339(at(6)), None, None)
    [t] = result.transitions
    assert (t.kind, t.event_type, t.from_level, t.to_level) == (
        "FreezeLifted",
        "Normal",
        FreezeLevel.non_critical,
        FreezeLevel.none,
    )


def test_lift_lands_on_the_notify_step_when_budget_is_still_above_it():
    state = frozen(FreezeLevel.non_critical, 1, quiet_since=policy.rfc3339(at(0)))
    result = step(state, 60, QUIET, minutes=6)
    assert (result.state.level, result.state.step) == (FreezeLevel.none, 0)


def test_freeze_all_needs_the_postmortem_when_required():
    state = frozen(FreezeLevel.all, 2, quiet_since=policy.rfc3339(at(0)))
    waiting = step(state, 10, QUIET, minutes=10)
    assert waiting.state.level == FreezeLevel.all
    assert waiting.transitions == []
    assert policy.POSTMORTEM_ANNOTATION in waiting.waiting
    lifted = step(state, 10, QUIET, minutes=10, postmortem="https://wiki/pm/1")
    assert lifted.state.level == FreezeLevel.none
    assert [t.kind for t in lifted.transitions] == ["FreezeLifted"]


def test_freeze_all_lowers_to_non_critical_without_postmortem_need():
    no_pm = POLICY.model_copy(
        update={"recovery": POLICY.recovery.model_copy(update={"require_postmortem": False})}
    )
    state = frozen(FreezeLevel.all, 2, quiet_since=policy.rfc3339(at(0)))
    result = evaluate(state, no_pm, Budget(80, QUIET), postmortem=None, now=at(6))
    assert (result.state.level, result.state.step) == (FreezeLevel.non_critical, 1)
    assert [t.kind for t in result.transitions] == ["FreezeLowered"]


def test_state_round_trips_through_status_and_unknown_level_is_strict():
    status = {
        "freeze": {"level": "NonCritical", "since": "s", "reason": "r", "quietSince": "q"},
        "errorBudget": {"activeStep": 1},
    }
    assert PolicyState.from_status(status) == PolicyState(FreezeLevel.non_critical, 1, "s", "r", "q")
    assert PolicyState.from_status({}) == PolicyState()
    assert PolicyState.from_status({"freeze": {"level": "Bogus"}}).level == FreezeLevel.all


def test_history_is_bounded():
    transitions = step(PolicyState(), 95, HOT).transitions
    history: list[dict] = []
    for _ in range(policy.HISTORY_LIMIT + 3):
        history = policy.append_history(history, transitions)
    assert len(history) == policy.HISTORY_LIMIT
    assert history[-1]["kind"] == "RolloutsFrozen"
    assert history[-1]["toLevel"] == "All"


# --------------------------------------------------------------------------------------------- hold


def hold(level, annotations=None, generation=3, released=2, used=()):
    return decide_hold(
        level=level,
        reason="budget 80% consumed",
        annotations=annotations or {},
        generation=generation,
        released_generation=released,
        overrides_used=list(used),
        now=T0,
    )


CRITICAL = {policy.CHANGE_CLASS_ANNOTATION: "critical"}
OVERRIDE = {policy.FREEZE_OVERRIDE_ANNOTATION: "hotfix INC-7"}


@pytest.mark.parametrize(
    ("level", "annotations", "held", "passed_by"),
    [
        (FreezeLevel.none, {}, False, None),
        (FreezeLevel.non_critical, {}, True, None),
        (FreezeLevel.all, {}, True, None),
        (FreezeLevel.non_critical, CRITICAL, False, "critical"),
        (FreezeLevel.all, CRITICAL, True, None),
        (FreezeLevel.all, OVERRIDE, False, "override"),
        (FreezeLevel.non_critical, OVERRIDE, False, "override"),
        (FreezeLevel.all, {policy.FREEZE_OVERRIDE_ANNOTATION: "  "}, True, None),
    ],
)
def test_hold_decision(level, annotations, held, passed_by):
    decision = hold(level, annotations)
    assert (decision.held is not None) is held
    assert decision.passed_by == passed_by
    if held:
        assert f"rollouts frozen ({level.value})" in decision.held


def test_critical_change_does_not_use_up_an_override():
    decision = hold(FreezeLevel.non_critical, {**CRITICAL, **OVERRIDE})
    assert decision.held is None
    assert decision.override is None


def test_override_is_recorded_with_generation_and_reason():
    decision = hold(FreezeLevel.all, OVERRIDE, generation=3)
    assert decision.override == policy.OverrideUse(3, "hotfix INC-7", policy.rfc3339(T0))


def test_override_passes_the_same_generation_again_but_not_the_next():
    used = [{"generation": 3, "reason": "hotfix INC-7", "at": "t"}]
    again = hold(FreezeLevel.all, OVERRIDE, generation=3, used=used)
    assert again.held is None
    assert again.override is None
    nxt = hold(FreezeLevel.all, OVERRIDE, generation=4, released=3, used=used)
    assert "was used for generation 3" in nxt.held
    fresh = hold(FreezeLevel.all, {policy.FREEZE_OVERRIDE_ANNOTATION: "INC-8"}, generation=4, used=used)
    assert fresh.held is None
    assert fresh.override.reason == "INC-8"


def test_override_is_not_used_up_when_nothing_is_pending():
    decision = hold(FreezeLevel.all, OVERRIDE, generation=3, released=3)
    assert decision.held is None
    assert decision.override is None


def test_merge_overrides_dedupes_and_bounds():
    a = [{"generation": g, "reason": "r", "at": f"2026-01-01T00:00:{g:02d}Z"} for g in range(15)]
    merged = policy.merge_overrides(a, a[:3])
    assert len(merged) == policy.OVERRIDES_LIMIT
    assert merged[-1]["generation"] == 14


def _deployment(replicas=2, image="agent:1"):
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo", "annotations": {policy.INPUT_HASH_ANNOTATION: f"h{replicas}{image}"}},
        "spec": {
            "replicas": replicas,
            "template": {"spec": {"containers": [{"name": "agent", "image": image}]}},
        },
    }


def test_scaling_only_is_recognised():
    live = {**_deployment(2), "status": {"replicas": 2}}
    assert policy.scaling_only(_deployment(5), live)
    assert not policy.scaling_only(_deployment(5, image="agent:2"), live)
    assert not policy.scaling_only(_deployment(2, image="agent:2"), live)
    assert not policy.scaling_only(
        {"kind": "ConfigMap", "metadata": {}, "data": {"a": "1"}}, {"kind": "ConfigMap"}
    )
