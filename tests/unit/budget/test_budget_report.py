"""The budget-owned status: conditions, freeze, circuits, Events, and when a write is needed."""

from __future__ import annotations

import datetime as dt

from shepherd.api import AgentDeploymentStatus, CostBudget, ErrorBudgetPolicy
from shepherd.budget import report
from shepherd.budget.report import Reachability
from shepherd.budget.snapshot import Snapshot

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
POLICY = ErrorBudgetPolicy.model_validate(
    {
        "steps": [
            {"consumedPercent": 50, "action": "Notify"},
            {"consumedPercent": 75, "action": "FreezeNonCritical"},
            {"consumedPercent": 90, "action": "FreezeAll"},
        ],
        "recovery": {"quietPeriod": "1m"},
    }
)
OK = Reachability(True)
DOWN = Reachability(False, "PrometheusUnreachable", "http://prom: ConnectError")


def compute(current, snap, reach=OK, minutes=0.0, annotations=None, overrides=(), cost_budget=None):
    return report.compute(
        current,
        generation=4,
        budget_policy=POLICY,
        snapshot=snap,
        reachability=reach,
        annotations=annotations or {},
        overrides=list(overrides),
        now=T0 + dt.timedelta(minutes=minutes),
        cost_budget=cost_budget,
    )


def conds(status):
    return {c["type"]: c for c in status["conditions"]}


BURNING = Snapshot(
    remaining_percent=15.0, burn_rates={"5m": 20.0, "1h": 8.0}, circuits={"anthropic/m": "open"}
)
HEALTHY = Snapshot(remaining_percent=95.0, burn_rates={"5m": 0.1}, circuits={"anthropic/m": "closed"})


def test_healthy_resource():
    update = compute({}, HEALTHY)
    st = update.status
    assert st["errorBudget"]["remainingPercent"] == 95.0
    assert st["errorBudget"]["burnRates"] == [{"window": "5m", "rate": 0.1}]
    assert st["freeze"] == {"level": "None"}
    assert st["circuitsSummary"] == "closed"
    c = conds(st)
    assert (c["ErrorBudgetHealthy"]["status"], c["ErrorBudgetHealthy"]["reason"]) == ("True", "WithinBudget")
    assert (c["Frozen"]["status"], c["CircuitsClosed"]["status"]) == ("False", "True")
    assert c["PrometheusReachable"]["observedGeneration"] == 4
    assert update.events == []
    # The model (and so the CRD schema) accepts every field written.
    AgentDeploymentStatus.model_validate(st)


def test_burning_budget_freezes_and_opens_circuit_with_events():
    update = compute({}, BURNING)
    st = update.status
    assert st["freeze"]["level"] == "NonCritical"  # 85% consumed: the 75% step
    assert st["errorBudget"]["consumedPercent"] == 85.0
    assert st["errorBudget"]["activeStep"] == 1
    reasons = [e.reason for e in update.events]
    assert "RolloutsFrozen" in reasons
    assert "CircuitOpen" in reasons
    c = conds(st)
    assert (c["Frozen"]["status"], c["Frozen"]["reason"]) == ("True", "ErrorBudgetPolicy")
    assert (c["CircuitsClosed"]["status"], c["CircuitsClosed"]["reason"]) == ("False", "CircuitOpen")
    assert (c["ErrorBudgetHealthy"]["status"], c["ErrorBudgetHealthy"]["reason"]) == (
        "False",
        "PolicyStepReached",
    )
    assert st["circuitsSummary"] == "1/1 open"
    assert st["freeze"]["history"][-1]["kind"] == "RolloutsFrozen"
    AgentDeploymentStatus.model_validate(st)


def test_prometheus_down_keeps_the_freeze_and_says_why():
    frozen = compute({}, BURNING).status
    update = compute(frozen, None, DOWN, minutes=30)
    st = update.status
    assert st["freeze"] == frozen["freeze"]
    assert st["circuits"] == frozen["circuits"]
    assert st["errorBudget"]["evaluatedAt"] == frozen["errorBudget"]["evaluatedAt"]
    c = conds(st)
    assert (c["PrometheusReachable"]["status"], c["PrometheusReachable"]["reason"]) == (
        "False",
        "PrometheusUnreachable",
    )
    assert c["Frozen"]["status"] == "True"
    assert "freeze stays" in c["Frozen"]["message"]
    assert c["ErrorBudgetHealthy"]["status"] == "Unknown"
    assert [e.reason for e in update.events] == ["PrometheusUnreachable"]
    # Still down next time: no new Event, no write.
    again = compute(st, None, DOWN, minutes=31)
    assert again.events == []
    assert not report.needs_write(st, again.status, T0 + dt.timedelta(minutes=31), 300)
    back = compute(st, BURNING, OK, minutes=32)
    assert "PrometheusReachable" in [e.reason for e in back.events]


def test_lift_is_flagged_and_circuit_close_is_an_event():
    frozen = compute({}, BURNING).status
    quiet = Snapshot(remaining_percent=95.0, burn_rates={"5m": 0.0}, circuits={"anthropic/m": "closed"})
    first = compute(frozen, quiet, minutes=1)
    assert not first.lifted
    assert first.status["freeze"]["waiting"]
    assert "CircuitClosed" in [e.reason for e in first.events]
    done = compute(first.status, quiet, minutes=2.5)
    assert done.lifted
    assert done.status["freeze"]["level"] == "None"
    assert "FreezeLifted" in [e.reason for e in done.events]
    patch = report.patch_for(first.status, done.status)
    assert patch["freeze"]["reason"] is None  # merge patch deletes what is gone
    assert patch["freeze"]["waiting"] is None


def test_circuit_since_is_kept_while_the_state_holds():
    st = compute({}, BURNING).status
    later = compute(st, BURNING, minutes=5).status
    assert later["circuits"][0]["since"] == st["circuits"][0]["since"]


def test_override_use_is_recorded_once_with_an_event():
    frozen = compute({}, BURNING).status
    use = {"generation": 5, "reason": "INC-7", "at": "2026-01-01T12:01:00Z"}
    update = compute(frozen, BURNING, minutes=1, overrides=[use])
    assert update.status["freeze"]["overridesUsed"] == [use]
    assert [e.reason for e in update.events] == ["FreezeOverridden"]
    again = compute(update.status, BURNING, minutes=2, overrides=[use])
    assert again.events == []


def test_only_the_timestamp_changing_is_not_a_write_until_refresh():
    st = compute({}, HEALTHY).status
    nxt = compute(st, HEALTHY, minutes=1)
    assert nxt.status["errorBudget"]["evaluatedAt"] != st["errorBudget"]["evaluatedAt"]
    assert not report.needs_write(st, nxt.status, T0 + dt.timedelta(minutes=1), 300)
    assert report.needs_write(st, nxt.status, T0 + dt.timedelta(minutes=6), 300)
    moved = compute(st, Snapshot(remaining_percent=80.0, burn_rates={"5m": 0.1}), minutes=1)
    assert report.needs_write(st, moved.status, T0 + dt.timedelta(minutes=1), 300)


def test_other_writers_conditions_are_kept():
    current = {"conditions": [{"type": "Ready", "status": "True", "reason": "AllPodsReady", "message": ""}]}
    st = compute(current, HEALTHY).status
    assert conds(st)["Ready"]["reason"] == "AllPodsReady"


def test_the_budget_condition_names_the_top_failure_reason():
    failing = Snapshot(
        remaining_percent=15.0,
        burn_rates={"5m": 20.0},
        failure_reasons={"llm_unavailable": 0.009, "tool_error": 0.001},
    )
    message = conds(compute({}, failing).status)["ErrorBudgetHealthy"]["message"]
    assert message == (
        "error budget 85.0% consumed >= 75% (step 2: FreezeNonCritical); "
        "top failure reason: llm_unavailable (90% of failed runs)."
    )
    healthy = Snapshot(remaining_percent=95.0, failure_reasons={"tool_error": 0.0001})
    message = conds(compute({}, healthy).status)["ErrorBudgetHealthy"]["message"]
    assert message.endswith("below every policy step; top failure reason: tool_error (100% of failed runs).")
    assert conds(compute({}, HEALTHY).status)["ErrorBudgetHealthy"]["message"].endswith("policy step.")


def test_spend_today_and_this_month_with_their_share_of_the_budget():
    spending = Snapshot(remaining_percent=95.0, spend_today=12.34567, spend_month=301.5)
    budget = CostBudget(usd_per_day=50, usd_per_month=1000)
    st = compute({}, spending, cost_budget=budget).status
    assert st["spend"] == {
        "todayUsd": 12.3457,
        "monthUsd": 301.5,
        "todayPercent": 24.7,
        "monthPercent": 30.1,
        "evaluatedAt": "2026-01-01T12:00:00Z",
    }
    AgentDeploymentStatus.model_validate(st)
    # No budget: the spend alone. Prometheus down: the last reading stays.
    assert set(compute({}, spending).status["spend"]) == {"todayUsd", "monthUsd", "evaluatedAt"}
    assert compute(st, None, DOWN, minutes=5).status["spend"] == st["spend"]
    # Only the stamp moving is no reason to write.
    later = compute(st, spending, cost_budget=budget, minutes=1).status
    assert not report.needs_write(st, later, T0 + dt.timedelta(minutes=1), 300)
