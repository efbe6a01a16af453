"""The FreezeGate as the reconcile's verdict provider, on the in-memory API: overrides and scaling."""

from __future__ import annotations

from typing import Any

from shepherd import api
from shepherd.budget.gate import FreezeGate, OverrideLedger
from shepherd.budget.policy import OverrideUse
from shepherd.reconcile import Reconciler

from tests.unit.operator.fake_kube import FakeKube

NS = "team-a"
OVERRIDE = {"shepherd.dev/freeze-override": "hotfix INC-7"}


def frozen(level: str = "All", released: int = 1, used: list | None = None) -> dict[str, Any]:
    return {
        "freeze": {"level": level, "reason": "budget 95% consumed", "overridesUsed": used or []},
        "released": {"generation": released, "image": "agent:1"},
    }


def body(generation: int, image: str = "agent:1", replicas: int = 2, annotations=None, status=None) -> dict:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {
            "name": "demo",
            "namespace": NS,
            "uid": "owner-uid",
            "generation": generation,
            "annotations": dict(annotations or {}),
        },
        "spec": {"image": image, "replicas": replicas, "redis": {"external": {"url": "redis://r:6379/0"}}},
        "status": status or {},
    }


def deployment(kube: FakeKube) -> dict[str, Any]:
    return kube.objects[("deployments", NS, "demo")]


def image(kube: FakeKube) -> str:
    return deployment(kube)["spec"]["template"]["spec"]["containers"][0]["image"]


async def test_override_passes_one_rollout_even_before_status_records_it():
    kube, gate = FakeKube(), FreezeGate()
    woken: list[bool] = []
    gate.ledger.on_record = lambda: woken.append(True)
    rec = Reconciler(kube, verdicts=gate)
    await rec.reconcile(body(1))
    await rec.reconcile(body(2, "agent:2", annotations=OVERRIDE, status=frozen()))
    assert image(kube) == "agent:2"
    assert woken == [True]
    [use] = gate.ledger.get("owner-uid")
    assert (use["generation"], use["reason"]) == (2, "hotfix INC-7")
    # Reconciling the same generation again is the same rollout: no second use.
    await rec.reconcile(body(2, "agent:2", annotations=OVERRIDE, status=frozen(released=2)))
    assert len(gate.ledger.get("owner-uid")) == 1
    # The next change with the same override is held, though status has not recorded the use yet.
    await rec.reconcile(body(3, "agent:3", annotations=OVERRIDE, status=frozen(released=2)))
    assert image(kube) == "agent:2"
    pending = kube.status_patches[-1]["pending"]
    assert pending["generation"] == 3
    assert "was used for generation 2" in pending["reason"]


async def test_scaling_passes_a_freeze_and_a_real_change_does_not():
    kube = FakeKube()
    rec = Reconciler(kube, verdicts=FreezeGate())
    await rec.reconcile(body(1))
    await rec.reconcile(body(2, replicas=5, status=frozen()))
    assert deployment(kube)["spec"]["replicas"] == 5
    await rec.reconcile(body(3, "agent:9", replicas=5, status=frozen(released=2)))
    assert image(kube) == "agent:1"
    assert "rollouts frozen (All)" in kube.status_patches[-1]["pending"]["reason"]


async def test_not_frozen_status_means_no_hold():
    kube = FakeKube()
    rec = Reconciler(kube, verdicts=FreezeGate())
    await rec.reconcile(body(1))
    await rec.reconcile(body(2, "agent:2", status={"freeze": {"level": "None"}}))
    assert image(kube) == "agent:2"


def test_ledger_settles_what_status_holds():
    ledger = OverrideLedger()
    ledger.record("u", OverrideUse(2, "r", "t"))
    ledger.record("u", OverrideUse(3, "s", "t"))
    ledger.settle("u", [{"generation": 2, "reason": "r", "at": "t"}])
    assert ledger.get("u") == [{"generation": 3, "reason": "s", "at": "t"}]
    ledger.settle("u", [{"generation": 3, "reason": "s"}])
    assert ledger.get("u") == []
