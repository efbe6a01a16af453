"""What keeps the operator cheap at fleet scale: shared LISTs, statuses that wait for a rollout to
settle, and kopf's diff base in memory (against the in-memory API; the benchmark measures the rest)."""

from __future__ import annotations

import asyncio
import copy

import kopf
import pytest
from shepherd.apply import ChildLister
from shepherd.kopfstate import MemoryDiffBase, MemoryProgress
from shepherd.kube import KubeError
from shepherd.reconcile import Reconciler
from shepherd.render.all import CHILD_KINDS

from .fake_kube import FakeKube
from .test_operator_reconcile import NS, SEEN, body

#: Kinds the operator lists per reconcile.
KINDS = len(CHILD_KINDS)


def named(name: str, status: dict | None = None) -> dict:
    obj = body({}, status=status)
    obj["metadata"].update(name=name, uid=f"uid-{name}")
    return obj


async def test_reconciles_at_the_same_time_share_one_list_per_kind():
    kube = FakeKube()
    rec = Reconciler(kube)
    names = [f"a{i}" for i in range(20)]
    await asyncio.gather(*(rec.reconcile(named(n), first_time=True) for n in names))  # no LISTs
    kube.counts.clear()
    results = await asyncio.gather(*(rec.reconcile(named(n, status=SEEN)) for n in names))
    # The first two are sent at once (two batches in flight at most), the 18 others wait for one;
    # each reconcile also reads its managed Redis' password Secret (shepherd.credentials).
    assert kube.counts["GET"] == 3 * KINDS + len(names)
    assert all(r["applied"] == [] for r in results)  # each saw its own children: nothing to apply
    assert kube.writes == 20  # the status of each (first seen "reconciled"), no child write


async def test_a_failed_batch_list_reaches_every_reconcile_in_it():
    class Failing(FakeKube):
        async def list(self, api_version, plural, namespace, selector):
            raise KubeError("GET deployments: HTTP 503")

    lister = ChildLister(Failing())
    outcomes = await asyncio.gather(lister(NS, "a"), lister(NS, "b"), return_exceptions=True)
    assert [type(o) for o in outcomes] == [KubeError, KubeError]


async def test_batches_are_per_namespace_and_bounded():
    kube = FakeKube()
    lister = ChildLister(kube, max_batch=4, in_flight=1)
    await asyncio.gather(*(lister(NS, f"a{i}") for i in range(8)), lister("other", "b"))
    # NS: a0 at once, a1-a4 once full, a5-a7 when a batch returns; "other" at once, on its own.
    assert kube.counts["GET"] == 4 * KINDS


async def test_a_rollout_that_settles_in_time_is_one_status_write_and_no_event():
    kube = FakeKube()
    rec = Reconciler(kube, settle_seconds=30)
    await rec.reconcile(body({}), first_time=True)
    assert kube.status_patches == []  # "rolling out, 0/2 ready" waits
    kube.mark_deployment_ready(NS, "demo")
    deployment = copy.deepcopy(kube.objects[("deployments", NS, "demo")])
    kube.counts.clear()
    assert await rec.refresh_from_deployment(body({}), deployment) == {"refreshed": True}
    assert kube.counts["GET"] == 0  # this process reconciled the generation: no read of the owner
    [written] = kube.status_patches
    conditions = {c["type"]: (c["status"], c["reason"]) for c in written["conditions"]}
    assert conditions["Ready"] == ("True", "AllPodsReady")
    assert conditions["Progressing"] == ("False", "RolloutComplete")
    assert written["observedGeneration"] == 1
    assert kube.events == []  # Ready was never reported False: no transition to announce


async def test_a_rollout_that_does_not_settle_is_reported_when_its_time_is_up():
    kube = FakeKube()
    rec = Reconciler(kube, settle_seconds=0.05)
    await rec.reconcile(body({}), first_time=True)
    assert kube.status_patches == []
    await asyncio.sleep(0.2)
    [waited] = kube.status_patches
    assert waited["ready"] == "0/2"
    assert {c["type"]: c["reason"] for c in waited["conditions"]}["Progressing"] == "RollingOut"
    kube.mark_deployment_ready(NS, "demo")
    deployment = copy.deepcopy(kube.objects[("deployments", NS, "demo")])
    await rec.refresh_from_deployment(body({}, status=waited), deployment)
    assert kube.status_patches[-1]["ready"] == "2/2"
    assert [(e["type"], e["reason"]) for e in kube.events] == [("Normal", "AllPodsReady")]


async def test_a_problem_is_written_at_once_and_ends_the_wait():
    kube = FakeKube()
    rec = Reconciler(kube, settle_seconds=30)
    await rec.reconcile(body({}), first_time=True)
    spec = {"model": {"provider": "anthropic", "apiKeySecretRef": {"name": "anthropic", "key": "k"}}}
    await rec.reconcile(body(spec, generation=2, status=SEEN))
    [written] = kube.status_patches
    ready = next(c for c in written["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "SecretMissing")
    assert rec._waiting == {}  # the generation-1 status will not be written after it


@pytest.mark.parametrize("settle", [0, 30])
async def test_a_status_change_of_ready_is_never_held(settle):
    """Scaling up: Ready goes False while the rollout runs; that is written at once."""
    kube = FakeKube()
    rec = Reconciler(kube, settle_seconds=settle)
    await rec.reconcile(body({}), first_time=True)
    kube.mark_deployment_ready(NS, "demo")
    await rec.refresh_from_deployment(body({}), copy.deepcopy(kube.objects[("deployments", NS, "demo")]))
    ready_status = kube.status_patches[-1]
    kube.status_patches.clear()
    await rec.reconcile(body({"replicas": 3}, generation=2, status=ready_status))
    ready = next(c for c in kube.status_patches[-1]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"  # (the fake's apply drops the Deployment's status: 0/3)


def _kopf_body(uid: str, spec: dict) -> kopf.Body:
    return kopf.Body({"metadata": {"uid": uid, "name": "demo", "namespace": NS}, "spec": spec})


def test_the_diff_base_is_kept_in_memory_and_forgotten_with_the_resource():
    storage = MemoryDiffBase()
    one = _kopf_body("u1", {"replicas": 1})
    assert storage.fetch(body=one) is None  # never handled: kopf calls it created
    patch = kopf.Patch()
    storage.store(body=one, patch=patch, essence=storage.build(body=one))
    assert not patch  # nothing is written to the resource
    assert storage.fetch(body=one) == {"spec": {"replicas": 1}}
    full = kopf.Body(
        {
            "metadata": {"uid": "u1", "labels": {"a": "1"}, "managedFields": [{"manager": "x"}]},
            "spec": {"replicas": 2},
            "status": {"ready": "1/1"},
        }
    )
    assert storage.build(body=full) == {"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 2}}
    storage.forget("u1")
    assert len(storage) == 0


async def test_a_waiting_status_that_cannot_be_written_is_left_to_the_next_event(caplog):
    class Down(FakeKube):
        async def apply_status(self, *args, **kwargs):
            raise KubeError("apply status: connection refused")

    kube = Down()
    rec = Reconciler(kube, settle_seconds=0.01)
    await rec.reconcile(body({}), first_time=True)
    await asyncio.sleep(0.1)  # the flush failed and logged; nothing raised into the loop
    assert rec._waiting == {}
    assert "status not written: apply status: connection refused" in caplog.text


def test_handler_progress_is_kept_in_memory_and_an_older_record_is_removed():
    storage = MemoryProgress(prefix="shepherd.dev")
    old = kopf.Body(
        {
            "metadata": {
                "uid": "u1",
                "name": "demo",
                "namespace": NS,
                "annotations": {"shepherd.dev/reconcile": '{"retries": 2}'},
            }
        }
    )
    assert storage.fetch(key="reconcile", body=old) == {"retries": 2}  # an older operator's record
    patch = kopf.Patch()
    storage.store(key="reconcile", record={"retries": 3}, body=old, patch=patch)
    assert not patch  # no annotation, no marker
    assert storage.fetch(key="reconcile", body=old) == {"retries": 3}
    storage.purge(key="reconcile", body=old, patch=patch)
    assert patch == {"metadata": {"annotations": {"shepherd.dev/reconcile": None}}}
    fresh = _kopf_body("u2", {})
    storage.store(key="reconcile", record={"retries": 1}, body=fresh, patch=kopf.Patch())
    storage.forget("u2")
    assert storage.fetch(key="reconcile", body=fresh) is None


async def test_a_deployment_snapshot_the_reconcile_saw_is_not_compared_again():
    """A restart lists the Deployments too: the one the resume compared needs no second look."""
    kube = FakeKube()
    rec = Reconciler(kube)
    await rec.reconcile(body({}), first_time=True)
    deployment = copy.deepcopy(kube.objects[("deployments", NS, "demo")])
    deployment["metadata"]["resourceVersion"] = "7"
    kube.objects[("deployments", NS, "demo")] = deployment
    await rec.reconcile(body({}, status=kube.status_patches[-1]))  # the resume: LISTs, sees version 7
    assert await rec.refresh_from_deployment(body({}), copy.deepcopy(deployment)) == {
        "skipped": "Deployment snapshot already seen"
    }
    deployment["metadata"]["resourceVersion"] = "8"  # something moved: looked at
    assert await rec.refresh_from_deployment(body({}), copy.deepcopy(deployment)) != {
        "skipped": "Deployment snapshot already seen"
    }
