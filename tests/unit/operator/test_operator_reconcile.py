"""Reconcile against an in-memory API: zero-write no-ops, pruning, drift, holds, operator-only problems."""

from __future__ import annotations

import copy

import pytest
from shepherd import api, apply
from shepherd.api import FreezeLevel
from shepherd.reconcile import Reconciler, Verdict

from .fake_kube import FakeKube

NS = "team-a"
#: The status of a resource reconciled before (a first reconcile skips the LISTs).
SEEN = {"observedGeneration": 1}


def body(
    spec: dict, generation: int = 1, status: dict | None = None, annotations: dict | None = None
) -> dict:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {
            "name": "demo",
            "namespace": NS,
            "uid": "owner-uid",
            "generation": generation,
            "annotations": annotations or {},
        },
        "spec": spec,
        "status": status or {},
    }


def kinds(kube: FakeKube) -> set[str]:
    return {f"{p}/{n}" for p, _, n in kube.objects}


async def test_create_then_noop_sends_zero_writes():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    assert "deployments/demo" in kinds(kube)
    assert "statefulsets/demo-redis" in kinds(kube)
    status = kube.status_patches[-1]
    kube.mark_deployment_ready(NS, "demo")
    kube.counts.clear()
    await rec.reconcile(body({}, status=status))  # status changes: replicas now ready
    merged = {**status, **kube.status_patches[-1]}
    assert merged["ready"] == "2/2"
    kube.counts.clear()
    await rec.reconcile(body({}, status=merged))
    assert kube.writes == 0, kube.counts


async def test_drift_is_repaired():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    del kube.objects[("configmaps", NS, "demo-config")]
    kube.objects[("deployments", NS, "demo")]["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    await rec.reconcile(body({}))
    assert ("configmaps", NS, "demo-config") in kube.objects
    image = kube.objects[("deployments", NS, "demo")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == api.DEFAULT_AGENT_IMAGE


async def test_switches_prune_unwanted_children():
    kube = FakeKube()
    rec = Reconciler(kube)
    hpa = {"autoscaling": {"engine": "hpa"}}
    await rec.reconcile(body(hpa))
    assert "horizontalpodautoscalers/demo" in kinds(kube)
    keda = {
        "autoscaling": {"engine": "keda"},
        "monitoring": {"prometheusUrl": "http://prom:9090"},
        "redis": {"external": {"url": "redis://r:6379/0"}},
    }
    await rec.reconcile(body(keda, generation=2, status=SEEN))
    names = kinds(kube)
    assert "scaledobjects/demo" in names
    assert "horizontalpodautoscalers/demo" not in names
    assert "statefulsets/demo-redis" not in names
    assert "services/demo-redis" not in names


async def test_foreign_objects_are_never_pruned():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    stray = copy.deepcopy(kube.objects[("configmaps", NS, "demo-config")])
    stray["metadata"]["name"] = "someone-elses"
    stray["metadata"]["ownerReferences"][0]["uid"] = "other-uid"
    kube.objects[("configmaps", NS, "someone-elses")] = stray
    await rec.reconcile(body({}))
    assert ("configmaps", NS, "someone-elses") in kube.objects


async def test_missing_monitoring_crds_become_a_condition():
    kube = FakeKube(absent_groups=("monitoring.coreos.com",))
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    assert "deployments/demo" in kinds(kube)
    conds = {c["type"]: c for c in kube.status_patches[-1]["conditions"]}
    assert conds["MonitoringReady"]["status"] == "False"
    assert conds["MonitoringReady"]["reason"] == "MonitoringCRDMissing"
    assert any(e["reason"] == "MonitoringCRDMissing" and e["type"] == "Warning" for e in kube.events)


async def test_missing_secret_keeps_last_release_and_warns():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    before = copy.deepcopy(kube.objects)
    spec = {"model": {"provider": "anthropic", "apiKeySecretRef": {"name": "anthropic", "key": "api-key"}}}
    await rec.reconcile(body(spec, generation=2))
    assert kube.objects == before  # nothing applied: the running release stays
    conds = {c["type"]: c for c in kube.status_patches[-1]["conditions"]}
    assert (conds["Ready"]["status"], conds["Ready"]["reason"]) == ("False", "SecretMissing")
    assert conds["Ready"]["message"].startswith("spec.model.apiKeySecretRef: Secret"), "names the field"
    assert kube.events[-1]["type"] == "Warning"
    kube.secrets[(NS, "anthropic")] = {"api-key": "c2stYW50"}
    await rec.reconcile(body(spec, generation=2))
    env = kube.objects[("deployments", NS, "demo")]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["name"] == "LLM_CHAIN_0_API_KEY"


async def test_invalid_graph_is_an_operator_only_problem():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({"graph": "agents.class:graph"}))
    assert "deployments/demo" not in kinds(kube)
    ready = kube.status_patches[-1]["conditions"][0]
    assert (ready["type"], ready["status"], ready["reason"]) == ("Ready", "False", "InvalidGraph")


@pytest.mark.parametrize(
    ("level", "annotations", "held"),
    [
        (FreezeLevel.all, {}, True),
        (FreezeLevel.non_critical, {}, True),
        (FreezeLevel.non_critical, {"shepherd.dev/change-class": "critical"}, False),
        (FreezeLevel.all, {"shepherd.dev/change-class": "critical"}, True),
        (FreezeLevel.all, {"shepherd.dev/freeze-override": "hotfix INC-1"}, False),
        (FreezeLevel.none, {}, False),
    ],
)
async def test_freeze_holds_the_workload(level, annotations, held):
    kube = FakeKube()
    verdict = Verdict(level=level, reason="budget 80% consumed")
    rec = Reconciler(kube, verdicts=lambda _r: verdict)
    await rec.reconcile(body({}))  # a new resource gets its workload even when frozen
    await rec.reconcile(
        body({"image": "registry/agent:2"}, generation=2, annotations=annotations, status=SEEN)
    )
    image = kube.objects[("deployments", NS, "demo")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert (image == api.DEFAULT_AGENT_IMAGE) is held
    last = kube.status_patches[-1]
    if held:
        assert last["pending"]["generation"] == 2
        assert any(c["reason"] == "FrozenByErrorBudget" for c in last["conditions"])


def test_contains_ignores_server_defaults_and_quantity_spelling():
    want = {"spec": {"cpu": "1", "mem": "1Gi", "list": [{"a": 1}]}}
    live = {"spec": {"cpu": "1000m", "mem": "1Gi", "list": [{"a": 1, "b": 2}], "extra": True}}
    assert apply.contains(live, want)
    assert not apply.contains({"spec": {"cpu": "2"}}, {"spec": {"cpu": "1"}})
    assert not apply.contains({"spec": {"list": [1, 2]}}, {"spec": {"list": [1]}})


def test_stamped_hash_is_stable_and_changes_with_content():
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}}
    a, b = apply.stamped(obj), apply.stamped(apply.stamped(obj))
    assert a == b
    changed = apply.stamped({**obj, "data": {"a": "2"}})
    key = apply.INPUT_HASH_ANNOTATION
    assert a["metadata"]["annotations"][key] != changed["metadata"]["annotations"][key]


async def test_child_deployment_event_updates_status_without_listing():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    status = kube.status_patches[-1]
    kube.mark_deployment_ready(NS, "demo")
    kube.counts.clear()
    dep = copy.deepcopy(kube.objects[("deployments", NS, "demo")])
    assert await rec.refresh_from_deployment(body({}, status=status), dep) == {"refreshed": True}
    assert kube.counts["GET"] == 0  # no LIST of children
    assert kube.counts["PATCH"] == 1  # the status only: nothing applied
    assert kube.status_patches[-1]["ready"] == "2/2"


async def test_child_deployment_drift_falls_back_to_full_reconcile():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    status = kube.status_patches[-1]
    dep = kube.objects[("deployments", NS, "demo")]
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "evil:1"
    result = await rec.refresh_from_deployment(body({}, status=status), copy.deepcopy(dep))
    assert "applied" in result
    image = kube.objects[("deployments", NS, "demo")]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == api.DEFAULT_AGENT_IMAGE


async def test_spec_the_model_rejects_is_reported_not_applied():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}))
    assert kinds(kube) == set()
    ready = kube.status_patches[-1]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "minReplicas" in ready["message"]


async def test_deleting_resource_is_left_to_garbage_collection():
    kube = FakeKube()
    deleting = body({})
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert await Reconciler(kube).reconcile(deleting) == {"skipped": "deleting"}
    assert kube.counts == {}


async def test_resync_round_reconciles_every_resource_and_survives_failures():
    from shepherd.resync import Resync

    class Lister(FakeKube):
        async def request(self, method, path, **_):
            from shepherd.kube import Outcome, Result

            items = [body({}), {**body({}), "metadata": {"name": "bad", "namespace": NS, "uid": "u2"}}]
            return Result(Outcome.OK, 200, {"items": items})

    seen = []

    async def run(item):
        seen.append(item["metadata"]["name"])
        if item["metadata"]["name"] == "bad":
            raise RuntimeError("boom")

    assert await Resync(Lister(), run, interval=1).once() == 1
    assert sorted(seen) == ["bad", "demo"]


async def test_status_apply_leaves_the_other_writers_conditions_alone():
    """Our status is a server-side apply of our fields only: the watcher's are never sent back."""
    kube = FakeKube()
    theirs = {"type": "Frozen", "status": "False", "reason": "NotFrozen", "lastTransitionTime": "T0"}
    await Reconciler(kube).reconcile(body({}, status={"conditions": [theirs], "freeze": {"level": "None"}}))
    written = kube.status_patches[-1]
    assert {c["type"] for c in written["conditions"]} == {"Ready", "Progressing", "MonitoringReady"}
    assert "freeze" not in written


async def test_a_status_for_an_older_generation_is_never_written():
    kube = FakeKube()
    await Reconciler(kube).reconcile(body({}, generation=1, status={"observedGeneration": 2}))
    assert kube.status_patches == []


async def test_first_reconcile_skips_the_lists():
    kube = FakeKube()
    await Reconciler(kube).reconcile(body({}), first_time=True)
    assert kube.counts["GET"] == 1  # no LIST: the one read is of the managed Redis' password Secret
    assert "deployments/demo" in kinds(kube)


async def test_refused_child_is_reported_on_the_resource():
    from shepherd.apply import ApplyError
    from shepherd.kube import Outcome, Result

    class Refusing(FakeKube):
        async def apply(self, obj, plural, *, force=True):
            if obj["kind"] == "StatefulSet":
                self.counts["PATCH"] += 1
                return Result(Outcome.INVALID, 422, None, "spec: Forbidden: updates to statefulset spec")
            return await super().apply(obj, plural, force=force)

    kube = Refusing()
    with pytest.raises(ApplyError):
        await Reconciler(kube).reconcile(body({}))
    ready = kube.status_patches[-1]["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "ApplyFailed")
    assert "StatefulSet/demo-redis" in ready["message"]
    assert kube.events[-1]["type"] == "Warning"


async def test_child_event_with_a_stale_owner_body_reads_it_fresh():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    kube.owner = body({}, status=kube.status_patches[-1])  # what the apiserver has now
    kube.mark_deployment_ready(NS, "demo")
    dep = copy.deepcopy(kube.objects[("deployments", NS, "demo")])
    assert await rec.refresh_from_deployment(body({}), dep) == {"refreshed": True}  # index body: no status
    assert kube.status_patches[-1]["ready"] == "2/2"


async def test_an_older_deployment_snapshot_never_rolls_status_back():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    status = kube.status_patches[-1]
    kube.mark_deployment_ready(NS, "demo")
    newer = copy.deepcopy(kube.objects[("deployments", NS, "demo")])
    newer["metadata"]["resourceVersion"] = "10"
    older = copy.deepcopy(newer)
    older["metadata"]["resourceVersion"] = "5"
    older["status"]["readyReplicas"] = 0
    assert await rec.refresh_from_deployment(body({}, status=status), newer) == {"refreshed": True}
    assert await rec.refresh_from_deployment(body({}, status=status), older) == {
        "skipped": "older Deployment snapshot"
    }


async def test_child_event_after_our_own_status_write_needs_no_read():
    """The index body predates our status write; the copy that write returned is newer: no GET."""
    from shepherd.kube import Outcome, Result

    class Versioned(FakeKube):
        version = 10

        async def apply_status(self, api_version, kind, plural, namespace, name, status):
            await super().apply_status(api_version, kind, plural, namespace, name, status)
            Versioned.version += 1
            written = body({}, status=status)
            written["metadata"]["resourceVersion"] = str(Versioned.version)
            return Result(Outcome.OK, 200, written)

    kube = Versioned()
    rec = Reconciler(kube)
    stale = body({})
    stale["metadata"]["resourceVersion"] = "10"
    await rec.reconcile(copy.deepcopy(stale))
    reads = kube.counts["GET"]
    kube.mark_deployment_ready(NS, "demo")
    dep = copy.deepcopy(kube.objects[("deployments", NS, "demo")])
    assert await rec.refresh_from_deployment(copy.deepcopy(stale), dep) == {"refreshed": True}
    assert kube.counts["GET"] == reads
    assert kube.status_patches[-1]["ready"] == "2/2"


async def test_agent_pods_failing_to_start_are_read_by_selector_and_reported_once():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    status = kube.status_patches[-1]
    dep = kube.objects[("deployments", NS, "demo")]
    dep["status"] = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2}
    labels = dep["spec"]["selector"]["matchLabels"]
    message = "/app/langgraph.json: graphs.agent: './missing.py:graph': no such file"
    kube.objects[("pods", NS, "demo-abc")] = {
        "metadata": {"name": "demo-abc", "namespace": NS, "labels": labels},
        "status": {
            "containerStatuses": [
                {
                    "name": "agent",
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"exitCode": 2, "reason": "Error", "message": message}},
                }
            ]
        },
    }
    kube.objects[("pods", NS, "other")] = {  # not the Deployment's: never reported
        "metadata": {"name": "other", "namespace": NS, "labels": {"app": "other"}},
        "status": {"containerStatuses": [{"name": "agent", "lastState": {"terminated": {"exitCode": 1}}}]},
    }
    kube.counts.clear()
    await rec.refresh_from_deployment(body({}, status=status), copy.deepcopy(dep))
    assert kube.counts["GET"] == 1  # one LIST of the Deployment's Pods
    status = {**status, **kube.status_patches[-1]}
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "AgentStartFailed")
    assert ready["message"] == f"0/2 Pods ready. Pod demo-abc container agent failed to start: {message}"
    assert [(e["type"], e["reason"]) for e in kube.events] == [("Warning", "AgentStartFailed")]
    # A resync of the same state reads the Pods again, and writes nothing.
    kube.counts.clear()
    await rec.reconcile(body({}, status=status))
    assert kube.writes == 0, kube.counts
    assert len(kube.events) == 1


async def test_a_rollout_is_checked_for_crashing_pods_and_a_settled_fleet_is_not():
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}))
    status = kube.status_patches[-1]
    dep = kube.objects[("deployments", NS, "demo")]
    labels = dep["spec"]["selector"]["matchLabels"]
    settled = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2}
    dep["status"] = {**settled, "availableReplicas": 2}
    kube.counts.clear()
    await rec.refresh_from_deployment(body({}, status=status), copy.deepcopy(dep))
    assert kube.counts["GET"] == 0  # rolled out and ready: no Pod read
    # A rollout: the old Pods serve, the new one crashes.
    dep["status"] = {**settled, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}
    kube.objects[("pods", NS, "demo-new")] = {
        "metadata": {"name": "demo-new", "namespace": NS, "labels": labels},
        "status": {
            "containerStatuses": [
                {
                    "name": "agent",
                    "ready": False,
                    "lastState": {"terminated": {"exitCode": 2, "message": "bad"}},
                }
            ]
        },
    }
    kube.counts.clear()
    await rec.refresh_from_deployment(body({}, status=status), copy.deepcopy(dep))
    assert kube.counts["GET"] == 1
    conditions = {c["type"]: c for c in kube.status_patches[-1]["conditions"]}
    assert conditions["Ready"]["status"] == "True"
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == (
        "False",
        "AgentStartFailed",
    )
    assert conditions["Progressing"]["message"].endswith("Pod demo-new container agent failed to start: bad")
