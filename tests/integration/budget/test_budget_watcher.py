"""The budget watcher, policy and hold against a real apiserver (kwok) and a real Prometheus.

The Prometheus series are synthetic (a prometheus_client target whose values the test sets, turned
into the ``shepherd:`` recording-rule names by a rule file), so every policy step is reached on
demand; the reconcile is the real ``Reconciler`` with the ``FreezeGate`` verdict provider.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from shepherd import api
from shepherd.budget.gate import FreezeGate
from shepherd.budget.watcher import FREEZE_LEVEL, PROMETHEUS_UP, BudgetWatcher
from shepherd.kube import KubeClient
from shepherd.reconcile import Reconciler

from tests.harness.cluster import Cluster
from tests.harness.prometheus import PrometheusServer

from .conftest import SeriesTarget, condition, eventually, reasons

NAME = "support"
CIRCUIT = "anthropic/claude-sonnet-4-5"


def manifest(name: str = NAME, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {
            "image": "registry.test/agent:1",
            "replicas": 1,
            "redis": {"external": {"url": "redis://127.0.0.1:6379/0"}},
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
            "errorBudgetPolicy": {
                "steps": [
                    {"consumedPercent": 50, "action": "Notify"},
                    {"consumedPercent": 75, "action": "FreezeNonCritical"},
                    {"consumedPercent": 90, "action": "FreezeAll"},
                ],
                "recovery": {"quietPeriod": "2s"},
            },
            **extra,
        },
    }


async def body(client: KubeClient, ns: str, name: str = NAME) -> dict[str, Any]:
    got = await client.get(api.API_VERSION, api.PLURAL, ns, name)
    assert got.ok, got.message
    return got.body


def deployment_image(kube: Cluster, ns: str, name: str = NAME) -> str:
    dep = kube.get("deployment", name, ns)
    return dep["spec"]["template"]["spec"]["containers"][0]["image"]


def patch(kube: Cluster, ns: str, doc: dict[str, Any]) -> None:
    kube.kubectl("patch", "agentdeployment", NAME, "-n", ns, "--type=merge", "-p", json.dumps(doc))


@pytest.fixture
def ns(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("budget")


async def test_freeze_hold_override_outage_and_lift(
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
    kube.apply(manifest(), namespace=ns)
    await rec.reconcile(await body(kube_client, ns))
    assert deployment_image(kube, ns) == "registry.test/agent:1"

    async def status_when(predicate) -> dict[str, Any] | None:
        result = await watcher.evaluate()
        assert result.queries == 6  # the fixed query set, whatever the fleet
        obj = await body(kube_client, ns)
        return obj if predicate(obj.get("status") or {}) else None

    # Healthy: budget read, not frozen, BUDGET LEFT column.
    series.set_budget(ns, NAME, 0.95, {"5m": 0.1, "1h": 0.2})
    series.circuit.labels(ns, NAME, CIRCUIT).set(0)
    obj = await eventually(
        lambda: status_when(lambda s: (s.get("errorBudget") or {}).get("remainingPercent") == 95.0),
        within=60,
        what="errorBudget from Prometheus",
    )
    assert condition(obj, "ErrorBudgetHealthy")["status"] == "True"
    assert condition(obj, "PrometheusReachable")["status"] == "True"
    assert condition(obj, "Frozen")["status"] == "False"
    assert obj["status"]["freeze"]["level"] == "None"
    assert obj["status"]["circuitsSummary"] == "closed"
    row = kube.kubectl("get", "agd", NAME, "-n", ns).stdout.splitlines()
    header = row[0].split()
    assert {"BUDGET", "FREEZE", "CIRCUITS"} <= set(header)
    assert "95" in row[1]
    assert "None" in row[1]
    assert "closed" in row[1]

    # Budget burns past 75 %: NonCritical freeze; a circuit opens.
    series.set_budget(ns, NAME, 0.15, {"5m": 20.0, "1h": 9.0})
    series.circuit.labels(ns, NAME, CIRCUIT).set(2)
    obj = await eventually(
        lambda: status_when(lambda s: (s.get("freeze") or {}).get("level") == "NonCritical"),
        within=30,
        what="NonCritical freeze",
    )
    assert condition(obj, "Frozen")["status"] == "True"
    assert condition(obj, "Frozen")["observedGeneration"] == 1
    assert FREEZE_LEVEL.labels(ns, NAME)._value.get() == 1
    assert condition(obj, "ErrorBudgetHealthy")["reason"] == "PolicyStepReached"
    await eventually(
        lambda: status_when(lambda s: s.get("circuitsSummary") == "1/1 open"), within=30, what="circuit open"
    )
    obj = await body(kube_client, ns)
    assert condition(obj, "CircuitsClosed")["reason"] == "CircuitOpen"
    assert obj["status"]["circuits"][0]["name"] == CIRCUIT
    assert {"RolloutsFrozen", "CircuitOpen"} <= set(reasons(kube, ns, NAME))

    # A spec change is held: the Deployment keeps the running release; status and an Event say why.
    patch(kube, ns, {"spec": {"image": "registry.test/agent:2"}})
    await rec.reconcile(await body(kube_client, ns))
    assert deployment_image(kube, ns) == "registry.test/agent:1"
    obj = await body(kube_client, ns)
    assert obj["status"]["pending"]["generation"] == 2
    assert obj["status"]["pending"]["image"] == "registry.test/agent:2"
    assert "NonCritical" in obj["status"]["pending"]["reason"]
    assert "FrozenByErrorBudget" in reasons(kube, ns, NAME)

    # A critical change passes a NonCritical freeze.
    patch(kube, ns, {"metadata": {"annotations": {"shepherd.dev/change-class": "critical"}}})
    await rec.reconcile(await body(kube_client, ns))
    assert deployment_image(kube, ns) == "registry.test/agent:2"
    assert "pending" not in (await body(kube_client, ns))["status"]

    # Past 90 %: FreezeAll; critical no longer passes, the override passes exactly one rollout.
    series.set_budget(ns, NAME, 0.05, {"5m": 30.0, "1h": 12.0})
    await eventually(
        lambda: status_when(lambda s: (s.get("freeze") or {}).get("level") == "All"),
        within=30,
        what="FreezeAll",
    )
    patch(kube, ns, {"spec": {"image": "registry.test/agent:3"}})
    await rec.reconcile(await body(kube_client, ns))
    assert deployment_image(kube, ns) == "registry.test/agent:2"
    patch(kube, ns, {"metadata": {"annotations": {"shepherd.dev/freeze-override": "hotfix INC-7"}}})
    await rec.reconcile(await body(kube_client, ns))
    assert deployment_image(kube, ns) == "registry.test/agent:3"
    obj = await eventually(
        lambda: status_when(lambda s: (s.get("freeze") or {}).get("overridesUsed")),
        within=30,
        what="override",
    )
    [used] = obj["status"]["freeze"]["overridesUsed"]
    assert (used["generation"], used["reason"]) == (obj["metadata"]["generation"], "hotfix INC-7")
    assert "FreezeOverridden" in reasons(kube, ns, NAME)
    # Scaling is never held.
    patch(kube, ns, {"spec": {"replicas": 2}})
    await rec.reconcile(await body(kube_client, ns))
    assert kube.get("deployment", NAME, ns)["spec"]["replicas"] == 2
    # The same override does not pass a second rollout.
    patch(kube, ns, {"spec": {"image": "registry.test/agent:4"}})
    await rec.reconcile(await body(kube_client, ns))
    assert deployment_image(kube, ns) == "registry.test/agent:3"
    obj = await body(kube_client, ns)
    assert "was used for generation" in obj["status"]["pending"]["reason"]
    # A scale-up while that change is held: the replicas change, the held image does not.
    patch(kube, ns, {"spec": {"replicas": 3}})
    await rec.reconcile(await body(kube_client, ns))
    assert kube.get("deployment", NAME, ns)["spec"]["replicas"] == 3
    assert deployment_image(kube, ns) == "registry.test/agent:3"
    assert (await body(kube_client, ns))["status"]["pending"]["image"] == "registry.test/agent:4"

    # Prometheus dies: PrometheusReachable=False, the freeze stays, the loop keeps going.
    own_prometheus.stop()
    watcher.start()
    before = watcher.evaluations
    try:

        async def unreachable() -> dict[str, Any] | None:
            obj = await body(kube_client, ns)
            ok = (
                watcher.evaluations >= before + 3
                and condition(obj, "PrometheusReachable")["status"] == "False"
            )
            return obj if ok else None

        obj = await eventually(unreachable, within=30, what="PrometheusReachable=False over 3 evaluations")
        assert condition(obj, "PrometheusReachable")["reason"] == "PrometheusUnreachable"
        assert obj["status"]["freeze"]["level"] == "All"
        assert condition(obj, "Frozen")["status"] == "True"
        assert PROMETHEUS_UP.labels(own_prometheus.url)._value.get() == 0
        assert "PrometheusUnreachable" in reasons(kube, ns, NAME)
        assert deployment_image(kube, ns) == "registry.test/agent:3"
        own_prometheus.start()

        async def reachable() -> dict[str, Any] | None:
            obj = await body(kube_client, ns)
            return obj if condition(obj, "PrometheusReachable")["status"] == "True" else None

        await eventually(reachable, within=60, what="PrometheusReachable=True after restart")
        assert PROMETHEUS_UP.labels(own_prometheus.url)._value.get() == 1

        # Recovery: burn stops and the budget is back; after the quiet period the freeze lifts and
        # the held change rolls out by itself (the watcher re-runs the reconcile).
        series.set_budget(ns, NAME, 0.99, {"5m": 0.0, "1h": 0.1})
        series.circuit.labels(ns, NAME, CIRCUIT).set(0)

        async def lifted() -> dict[str, Any] | None:
            # The Deployment is applied before the reconcile writes its status: wait for both.
            obj = await body(kube_client, ns)
            done = (
                obj["status"]["freeze"]["level"] == "None"
                and deployment_image(kube, ns).endswith(":4")
                and "pending" not in obj["status"]
            )
            return obj if done else None

        obj = await eventually(lifted, within=60, what="freeze lifted and held change rolled out")
    finally:
        await watcher.stop()
    assert condition(obj, "Frozen")["status"] == "False"
    assert obj["status"]["circuitsSummary"] == "closed"
    kinds = [h["kind"] for h in obj["status"]["freeze"]["history"]]
    assert kinds[-1] == "FreezeLifted"
    assert "RolloutsFrozen" in kinds
    assert {"FreezeLifted", "CircuitClosed"} <= set(reasons(kube, ns, NAME))


async def test_queries_per_evaluation_do_not_grow_with_the_fleet(
    kube: Cluster, ns: str, kube_client: KubeClient, own_prometheus: PrometheusServer, series: SeriesTarget
) -> None:
    watcher = BudgetWatcher(kube_client, prometheus_url=own_prometheus.url, namespaces=[ns])
    try:
        kube.apply(manifest("a0"), namespace=ns)
        one = await watcher.evaluate()
        kube.apply(*[manifest(f"a{i}") for i in range(1, 12)], namespace=ns)
        many = await watcher.evaluate()
        assert (one.resources, many.resources) == (1, 12)
        assert one.queries == many.queries == 6
        # Nothing changed since: a second pass writes nothing.
        again = await watcher.evaluate()
        assert again.writes == 0
    finally:
        await watcher.stop()
