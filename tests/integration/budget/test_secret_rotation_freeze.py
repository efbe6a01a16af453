"""A Secret rotation is a critical change: it passes a FreezeNonCritical freeze (while the held
spec change stays held), and waits under FreezeAll. Real apiserver, real Prometheus, the real
``Reconciler`` with the ``FreezeGate`` verdicts (as in test_budget_watcher.py)."""

from __future__ import annotations

from typing import Any

import pytest
from shepherd.budget.gate import FreezeGate
from shepherd.budget.watcher import BudgetWatcher
from shepherd.kube import KubeClient
from shepherd.reconcile import Reconciler
from shepherd.render.secret_hash import SECRETS_HASH_ANNOTATION

from tests.harness.cluster import Cluster
from tests.harness.prometheus import PrometheusServer

from .conftest import SeriesTarget, eventually
from .test_budget_watcher import NAME, body, manifest, patch


@pytest.fixture
def ns(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("rotate")


TOKEN = {"name": "EXTRA_TOKEN", "secretKeyRef": {"name": "agent-token", "key": "token"}}


def _secret(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "agent-token"},
        "stringData": {"token": value},
    }


def _template(kube: Cluster, ns: str) -> tuple[str, str]:
    dep = kube.get("deployment", NAME, ns)["spec"]["template"]
    return dep["spec"]["containers"][0]["image"], dep["metadata"]["annotations"][SECRETS_HASH_ANNOTATION]


async def test_rotation_passes_a_non_critical_freeze_and_waits_under_freeze_all(
    kube: Cluster, ns: str, kube_client: KubeClient, own_prometheus: PrometheusServer, series: SeriesTarget
) -> None:
    gate = FreezeGate()
    rec = Reconciler(kube_client, verdicts=gate)
    watcher = BudgetWatcher(
        kube_client,
        prometheus_url=own_prometheus.url,
        interval=0.5,
        refresh=3600,
        namespaces=[ns],
        reconcile=rec.reconcile,
        ledger=gate.ledger,
    )

    async def level(wanted: str) -> dict[str, Any] | None:
        await watcher.evaluate()
        obj = await body(kube_client, ns)
        return obj if ((obj.get("status") or {}).get("freeze") or {}).get("level") == wanted else None

    kube.apply(_secret("one"), manifest(env=[TOKEN]), namespace=ns)
    await rec.reconcile(await body(kube_client, ns))
    image, first = _template(kube, ns)
    assert image == "registry.test/agent:1"

    series.set_budget(ns, NAME, 0.15, {"5m": 20.0, "1h": 9.0})
    await eventually(lambda: level("NonCritical"), within=30, what="NonCritical freeze")
    patch(kube, ns, {"spec": {"image": "registry.test/agent:2"}})
    await rec.reconcile(await body(kube_client, ns))
    assert _template(kube, ns) == ("registry.test/agent:1", first), "the spec change is held"

    kube.apply(_secret("two"), namespace=ns)
    await rec.reconcile(await body(kube_client, ns))
    image, second = _template(kube, ns)
    assert image == "registry.test/agent:1", "still held"
    assert second != first, "the rotation passed the NonCritical freeze"
    assert (await body(kube_client, ns))["status"]["pending"]["image"] == "registry.test/agent:2"
    await rec.reconcile(await body(kube_client, ns))
    assert _template(kube, ns) == ("registry.test/agent:1", second), "a second pass changes nothing"

    series.set_budget(ns, NAME, 0.05, {"5m": 30.0, "1h": 12.0})
    await eventually(lambda: level("All"), within=30, what="FreezeAll")
    kube.apply(_secret("three"), namespace=ns)
    await rec.reconcile(await body(kube_client, ns))
    assert _template(kube, ns) == ("registry.test/agent:1", second), "FreezeAll holds rotations too"
