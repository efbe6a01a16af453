"""A canary and the freeze: no canary starts while a FreezeNonCritical holds the change, a critical
change starts one. Real apiserver, real Prometheus, the real ``Reconciler`` with the
``FreezeGate`` verdicts and the ``BudgetWatcher`` (as in test_budget_watcher.py)."""

from __future__ import annotations

from typing import Any

import pytest
from shepherd.kube import KubeClient

from tests.harness.cluster import Cluster
from tests.harness.prometheus import PrometheusServer

from .conftest import SeriesTarget, eventually, gated_reconciler
from .test_budget_watcher import NAME, body, manifest, patch

CANARY = {"strategy": "canary", "steps": [{"weight": 25, "pause": "1h"}]}


@pytest.fixture
def ns(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("canary-freeze")


def _image(kube: Cluster, ns: str, name: str) -> str | None:
    dep = kube.get("deployment", name, ns, check=False)
    return dep["spec"]["template"]["spec"]["containers"][0]["image"] if dep else None


async def test_no_canary_starts_under_a_non_critical_freeze_unless_critical(
    kube: Cluster, ns: str, kube_client: KubeClient, own_prometheus: PrometheusServer, series: SeriesTarget
) -> None:
    rec, watcher = gated_reconciler(kube_client, own_prometheus.url, ns)

    async def frozen() -> dict[str, Any] | None:
        await watcher.evaluate()
        obj = await body(kube_client, ns)
        return obj if ((obj.get("status") or {}).get("freeze") or {}).get("level") == "NonCritical" else None

    doc = manifest()
    doc["spec"].update(replicas=4, rollout=CANARY)
    kube.apply(doc, namespace=ns)
    await rec.reconcile(await body(kube_client, ns))
    assert (await body(kube_client, ns))["status"]["rollout"]["phase"] == "Stable"

    series.set_budget(ns, NAME, 0.15, {"5m": 20.0, "1h": 9.0})
    await eventually(frozen, within=30, what="NonCritical freeze")
    patch(kube, ns, {"spec": {"image": "registry.test/agent:2"}})
    await rec.reconcile(await body(kube_client, ns))
    status = (await body(kube_client, ns))["status"]
    assert status["rollout"]["phase"] == "Held"
    assert "NonCritical" in status["rollout"]["reason"]
    assert status["pending"]["image"] == "registry.test/agent:2"
    assert _image(kube, ns, f"{NAME}-canary") is None, "no canary while frozen"
    assert _image(kube, ns, NAME) == "registry.test/agent:1"

    # A critical change passes FreezeNonCritical: it starts as a canary, the stable release stays.
    patch(kube, ns, {"metadata": {"annotations": {"shepherd.dev/change-class": "critical"}}})
    await rec.reconcile(await body(kube_client, ns))
    status = (await body(kube_client, ns))["status"]
    assert status["rollout"]["phase"] == "Progressing"
    assert _image(kube, ns, f"{NAME}-canary") == "registry.test/agent:2"
    assert kube.get("deployment", f"{NAME}-canary", ns)["spec"]["replicas"] == 1
    assert _image(kube, ns, NAME) == "registry.test/agent:1"
    assert kube.get("deployment", NAME, ns)["spec"]["replicas"] == 3
    again = await rec.reconcile(await body(kube_client, ns))
    assert (again["applied"], again["deleted"]) == ([], []), again  # a second pass writes nothing
