"""Canary planning (``shepherd.rollout``) and the canary Deployment's rendering, pure."""

from __future__ import annotations

import datetime as dt

from shepherd import rollout
from shepherd.render import canary, render_all, workload
from shepherd.render.monitoring import MonitoringContent

from .conftest import make_resource

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
CANARY = {"strategy": "canary", "steps": [{"weight": 10, "pause": "30s"}, {"weight": 50, "pause": "1m"}]}


def _resource(generation: int = 3, **spec):
    resource = make_resource({"replicas": 10, "rollout": CANARY, **spec})
    resource.metadata["generation"] = generation
    return resource


def _live(resource, release: int) -> dict:
    """The Deployment ``resource`` renders, as if it ran with ``release``."""
    return workload.deployment(resource, release=release)


def _digest(resource) -> str:
    return workload.release_digest(workload.deployment(resource)) or ""


def _plan(resource, stable, canary_live=None, current=None, now=T0, blocked=None):
    return rollout.plan(resource, _digest(resource), stable, canary_live, current, now, blocked)


def test_a_new_resource_runs_its_generation_on_one_deployment():
    plan = _plan(_resource(generation=1), stable=None)
    assert (plan.release, plan.canary_replicas, plan.hold_stable) == (1, None, False)
    assert plan.status["phase"] == "Stable"
    assert plan.status["summary"] == "Stable"


def test_a_replicas_only_change_keeps_the_release():
    old = _resource(generation=2)
    new = _resource(generation=5, replicas=4)
    plan = _plan(new, stable=_live(old, 2))
    assert plan.release == 2
    assert plan.canary_replicas is None


def test_rolling_strategy_takes_the_new_release_at_once():
    old = make_resource({"image": "agent:1"})
    new = make_resource({"image": "agent:2"})
    new.metadata["generation"] = 7
    plan = _plan(new, stable=_live(old, 3))
    assert (plan.release, plan.canary_replicas, plan.status) == (7, None, None)


def test_a_canary_starts_at_its_first_step_holding_the_stable_release():
    stable = _live(_resource(generation=2, image="agent:1"), 2)
    plan = _plan(_resource(generation=4, image="agent:2"), stable)
    assert plan.hold_stable
    assert plan.release == 2
    assert (plan.canary_release, plan.canary_replicas, plan.stable_replicas) == (4, 1, 9)
    assert plan.status["phase"] == "Progressing"
    assert plan.status["step"] == 0
    assert plan.status["summary"] == "Progressing 10%"
    assert plan.requeue_after == 30


def _running(new, now, current):
    stable = _live(_resource(generation=2, image="agent:1"), 2)
    canary_live = render_all(new, MonitoringContent(), plan=_plan(new, stable)).workload[-1]
    return _plan(new, stable, canary_live, current, now)


def test_the_canary_moves_on_when_the_pause_is_over_and_then_promotes():
    new = _resource(generation=4, image="agent:2")
    first = _plan(new, _live(_resource(generation=2, image="agent:1"), 2))
    same = _running(new, T0 + dt.timedelta(seconds=10), first.status)
    assert same.status == first.status
    assert same.requeue_after == 20
    second = _running(new, T0 + dt.timedelta(seconds=30), first.status)
    assert (second.status["step"], second.canary_replicas, second.stable_replicas) == (1, 5, 5)
    assert second.requeue_after == 60
    done = _running(new, T0 + dt.timedelta(seconds=95), second.status)
    assert (done.release, done.canary_replicas, done.hold_stable) == (4, None, False)
    assert done.status["phase"] == "Stable"
    assert "promoted" in done.status["reason"]


def test_a_newer_spec_restarts_the_canary_at_its_first_step():
    new = _resource(generation=4, image="agent:2")
    first = _plan(new, _live(_resource(generation=2, image="agent:1"), 2))
    stale_canary = render_all(new, MonitoringContent(), plan=first).workload[-1]
    newer = _resource(generation=6, image="agent:3")
    plan = _plan(newer, _live(_resource(generation=2, image="agent:1"), 2), stale_canary, first.status)
    assert (plan.canary_release, plan.status["step"]) == (6, 0)


def test_a_freeze_keeps_a_canary_from_starting():
    plan = _plan(
        _resource(generation=4, image="agent:2"), _live(_resource(image="agent:1"), 2), blocked="frozen"
    )
    assert plan.canary_replicas is None
    assert plan.status["phase"] == "Held"
    assert plan.release == 4  # the new spec is what the freeze holds


def test_with_an_autoscaler_the_canary_takes_its_share_of_the_autoscalers_count():
    autoscaled = {"autoscaling": {"minReplicas": 2, "maxReplicas": 20}}
    stable = _live(_resource(generation=2, image="agent:1", **autoscaled), 2)
    stable["spec"]["replicas"] = 7  # what the HPA set
    plan = _plan(_resource(generation=4, image="agent:2", **autoscaled), stable)
    assert (plan.canary_replicas, plan.stable_replicas) == (1, None)
    assert rollout.canary_replicas(_resource(**autoscaled), 50, 7) == (4, None)


def test_weight_is_a_pod_ratio_of_at_least_one_pod():
    resource = _resource(replicas=4)
    assert [rollout.canary_replicas(resource, w, None) for w in (1, 25, 30, 100)] == [
        (1, 3),
        (1, 3),
        (2, 2),
        (4, 0),
    ]
    assert rollout.canary_replicas(_resource(replicas=0), 50, None) == (0, 0)


def test_the_canary_deployment_is_the_new_spec_under_its_own_name_selector_and_config():
    new = _resource(generation=4, image="agent:2")
    plan = _plan(new, _live(_resource(generation=2, image="agent:1"), 2))
    objs = {
        (o["kind"], o["metadata"]["name"]): o for o in render_all(new, MonitoringContent(), plan=plan).all
    }
    dep = objs[("Deployment", canary.canary_name(new))]
    assert ("ConfigMap", canary.canary_config_name(new)) in objs
    assert dep["spec"]["replicas"] == 1
    assert dep["spec"]["selector"]["matchLabels"][canary.TRACK_LABEL] == "canary"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels[workload.RELEASE_LABEL] == "4"
    assert labels[canary.TRACK_LABEL] == "canary"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "agent:2"
    assert container["envFrom"] == [{"configMapRef": {"name": canary.canary_config_name(new)}}]
    assert workload.release_digest(dep) == _digest(new)
    stable = objs[("Deployment", new.name)]
    assert stable["spec"]["replicas"] == 9
    assert stable["spec"]["template"]["metadata"]["labels"][workload.RELEASE_LABEL] == "2"


def test_a_failed_analysis_aborts_the_canary_to_zero_and_it_stays_aborted():
    new = _resource(generation=4, image="agent:2")
    stable = _live(_resource(generation=2, image="agent:1"), 2)
    first = _plan(new, stable)
    canary_live = render_all(new, MonitoringContent(), plan=first).workload[-1]
    verdict = {
        "release": 4,
        "verdict": "Failed",
        "sli": "availability",
        "reason": "5 bad of 20",
        "at": "2026-01-01T00:00:05Z",
    }
    aborted = rollout.plan(
        new, _digest(new), stable, canary_live, first.status, T0 + dt.timedelta(seconds=6), None, verdict
    )
    assert (aborted.canary_replicas, aborted.stable_replicas, aborted.hold_stable) == (0, 10, True)
    assert aborted.status["phase"] == "Aborted"
    assert "5 bad of 20" in aborted.status["reason"]
    later = rollout.plan(
        new, _digest(new), stable, canary_live, aborted.status, T0 + dt.timedelta(hours=1), None, verdict
    )
    assert later.status == aborted.status  # no pause moves it on
    # A verdict from before this canary began (an earlier try) does not count.
    old = {**verdict, "at": "2025-12-31T23:59:00Z"}
    assert (
        rollout.plan(new, _digest(new), stable, canary_live, first.status, T0, None, old).status["phase"]
        == "Progressing"
    )


def test_a_retry_annotation_restarts_an_aborted_canary_at_its_first_step():
    new = _resource(generation=4, image="agent:2")
    stable = _live(_resource(generation=2, image="agent:1"), 2)
    first = _plan(new, stable)
    canary_live = render_all(new, MonitoringContent(), plan=first).workload[-1]
    aborted = {**first.status, "phase": "Aborted", "reason": "failed"}
    new.metadata["annotations"] = {rollout.RETRY_ANNOTATION: "1"}
    later = T0 + dt.timedelta(minutes=10)
    verdict = {
        "release": 4,
        "verdict": "Failed",
        "sli": "availability",
        "reason": "x",
        "at": "2026-01-01T00:00:05Z",
    }
    retried = rollout.plan(new, _digest(new), stable, canary_live, aborted, later, None, verdict)
    assert (retried.status["phase"], retried.status["step"], retried.canary_replicas) == ("Progressing", 0, 1)
    assert retried.status["retry"] == "1"


def test_where_the_watcher_runs_a_step_waits_for_its_analysis_to_pass():
    new = _resource(generation=4, image="agent:2")
    stable = _live(_resource(generation=2, image="agent:1"), 2)
    first = _plan(new, stable)
    canary_live = render_all(new, MonitoringContent(), plan=first).workload[-1]
    late = T0 + dt.timedelta(minutes=5)
    waiting = rollout.plan(new, _digest(new), stable, canary_live, first.status, late, None, None, gated=True)
    assert waiting.status["step"] == 0  # the pause is long over, but nobody judged the step
    assert waiting.requeue_after is None  # the watcher's verdict brings the next reconcile
    verdict = {
        "release": 4,
        "verdict": "Passed",
        "step": 0,
        "sli": "availability",
        "reason": "",
        "at": "2026-01-01T00:00:10Z",
    }
    moved = rollout.plan(
        new, _digest(new), stable, canary_live, first.status, late, None, verdict, gated=True
    )
    assert moved.status["step"] == 1
