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


def _pod(name: str, container: dict, *, deleting: bool = False) -> dict:
    meta = {"name": name, **({"deletionTimestamp": "T"} if deleting else {})}
    return {"metadata": meta, "status": {"containerStatuses": [container]}}


CRASHING = {
    "name": "agent",
    "ready": False,
    "restartCount": 3,
    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
    "lastState": {
        "terminated": {
            "exitCode": 3,
            "reason": "Error",
            "message": "/app/langgraph.json: graphs.agent: './agent.py:graph':\n  no such file",
        }
    },
}


def test_start_failure_is_the_termination_message_of_a_crashing_agent_container():
    ok = {"name": "agent", "ready": True, "state": {"running": {}}}
    sidecar = {**CRASHING, "name": "otel-collector"}
    failure = status.start_failure([_pod("a-1", ok), _pod("a-2", sidecar), _pod("a-3", CRASHING)])
    assert failure == (
        "Pod a-3 container agent failed to start: "
        "/app/langgraph.json: graphs.agent: './agent.py:graph': no such file"
    )
    # Restarted and running again (not ready yet): the last run's message still says why.
    again = {**CRASHING, "state": {"running": {}}, "restartCount": 4}
    assert status.start_failure([_pod("a-3", again)]) == failure


def test_start_failure_ignores_healthy_deleted_and_cleanly_exited_pods():
    clean = {**CRASHING, "lastState": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    assert status.start_failure([_pod("a-1", clean), _pod("a-2", CRASHING, deleting=True)]) is None
    assert status.start_failure([_pod("a-1", {**CRASHING, "ready": True})]) is None
    assert status.start_failure([{"metadata": {"name": "pending"}, "status": {}}]) is None


def test_start_failure_without_message_names_the_exit_code_and_long_ones_are_trimmed():
    bare = {**CRASHING, "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}}
    assert status.start_failure([_pod("a-1", bare)]).endswith("failed to start: exit code 2 (Error)")
    long = {**CRASHING, "lastState": {"terminated": {"exitCode": 3, "message": "x" * 5000}}}
    failure = status.start_failure([_pod("a-1", long)])
    assert failure.endswith("x…")
    assert len(failure.split(": ", 1)[1]) == status.START_FAILURE_CHARS


def test_start_failure_sets_ready_false_with_one_warning_event():
    failing = WorkloadObservation(
        exists=True,
        desired=1,
        replicas=1,
        ready=0,
        updated=1,
        observed=True,
        image="img:1",
        start_failure="Pod a-1 container agent failed to start: langgraph.json: http.app: bad",
    )
    healthy = status.compute({}, Outcome(1, READY_OBS, applied_image="img:1"), timestamp="T")
    new = status.compute(healthy, Outcome(1, failing, applied_image="img:1"), timestamp="T2")
    ready = status.condition(new, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "AgentStartFailed")
    assert ready["message"] == "0/1 Pods ready. " + failing.start_failure
    events = status.events_for(healthy, new)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "AgentStartFailed", ready["message"])
    ]
    # The next reconcile sees the same: no write, no second Event.
    again = status.compute(new, Outcome(1, failing, applied_image="img:1"), timestamp="T3")
    assert status.patch_for(new, again) is None
    assert status.events_for(new, again) == []
    # Fixed: Ready again, as Normal news.
    fixed = status.compute(again, Outcome(2, READY_OBS, applied_image="img:2"), timestamp="T4")
    assert status.condition(fixed, "Ready")["reason"] == "AllPodsReady"
    assert [(e.type, e.reason) for e in status.events_for(again, fixed)] == [("Normal", "AllPodsReady")]


def test_a_new_release_that_crashes_beside_the_serving_one_stalls_progressing_not_ready():
    stalled = WorkloadObservation(
        exists=True,
        desired=2,
        replicas=3,
        ready=2,
        updated=1,
        available=2,
        observed=True,
        image="img:2",
        start_failure="Pod a-9 container agent failed to start: langgraph.json: graphs.agent: not found",
    )
    healthy = status.compute({}, Outcome(1, READY_OBS, applied_image="img:1"), timestamp="T")
    new = status.compute(healthy, Outcome(2, stalled, applied_image="img:2"), timestamp="T2")
    ready, progressing = status.condition(new, "Ready"), status.condition(new, "Progressing")
    assert (ready["status"], ready["reason"]) == ("True", "AllPodsReady")  # the old release serves
    assert (progressing["status"], progressing["reason"]) == ("False", "AgentStartFailed")
    assert progressing["message"] == "Rollout stalled at 1/2 Pods updated: " + stalled.start_failure
    events = status.events_for(healthy, new)
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "AgentStartFailed", progressing["message"])
    ]
    again = status.compute(new, Outcome(2, stalled, applied_image="img:2"), timestamp="T3")
    assert status.patch_for(new, again) is None
    assert status.events_for(new, again) == []
