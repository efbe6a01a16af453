"""Conditions: observedGeneration, CamelCase reasons, lastTransitionTime kept while unchanged."""

from __future__ import annotations

from shepherd import status
from shepherd.api import ConditionStatus
from shepherd.status import ConditionUpdate, Outcome, WorkloadObservation

READY_OBS = WorkloadObservation(
    exists=True, desired=2, replicas=2, ready=2, updated=2, available=2, observed=True, image="img:1"
)


def test_last_transition_time_kept_when_status_unchanged():
    first = status.set_conditions(
        [], [ConditionUpdate("Ready", ConditionStatus.false, "NoPodReady")], 1, "T1"
    )
    second = status.set_conditions(
        first, [ConditionUpdate("Ready", ConditionStatus.false, "PodsNotReady")], 2, "T2"
    )
    assert second[0]["lastTransitionTime"] == "T1"
    assert second[0]["observedGeneration"] == 2
    assert second[0]["reason"] == "PodsNotReady"
    third = status.set_conditions(
        second, [ConditionUpdate("Ready", ConditionStatus.true, "AllPodsReady")], 2, "T3"
    )
    assert third[0]["lastTransitionTime"] == "T3"


def test_other_writers_conditions_are_kept():
    current = [{"type": "Frozen", "status": "True", "reason": "BudgetBurn", "lastTransitionTime": "T0"}]
    new = status.set_conditions(
        current, [ConditionUpdate("Ready", ConditionStatus.true, "AllPodsReady")], 1, "T1"
    )
    assert [c["type"] for c in new] == ["Ready", "Frozen"]


def test_ready_status_and_printer_fields():
    new = status.compute({}, Outcome(4, READY_OBS, applied_image="img:1"), timestamp="T")
    conds = {c["type"]: c for c in new["conditions"]}
    assert conds["Ready"]["status"] == "True"
    assert conds["Ready"]["reason"] == "AllPodsReady"
    assert conds["Progressing"]["status"] == "False"
    assert all(c["observedGeneration"] == 4 for c in new["conditions"])
    assert new["ready"] == "2/2"
    assert new["image"] == "img:1"
    assert new["observedGeneration"] == 4
    assert new["released"] == {"generation": 4, "image": "img:1", "since": "T"}


def test_recompute_is_a_noop_patch():
    first = status.compute({}, Outcome(4, READY_OBS, applied_image="img:1"), timestamp="T")
    second = status.compute(first, Outcome(4, READY_OBS, applied_image="img:1"), timestamp="T-later")
    assert status.patch_for(first, second) is None
    assert status.events_for(first, second) == []


def test_problem_gives_ready_false_and_warning_event():
    new = status.compute({}, Outcome(2, READY_OBS, problem=("SecretMissing", "Secret a/b does not exist.")))
    ready = status.condition(new, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretMissing")
    assert "does not exist" in ready["message"]
    events = status.events_for({}, new)
    assert events[0].type == "Warning"
    assert events[0].reason == "SecretMissing"


def test_rollout_in_progress():
    obs = WorkloadObservation(exists=True, desired=3, replicas=3, ready=1, updated=1, observed=True)
    new = status.compute({}, Outcome(1, obs))
    assert status.condition(new, "Ready")["reason"] == "PodsNotReady"
    assert status.condition(new, "Progressing")["status"] == "True"
