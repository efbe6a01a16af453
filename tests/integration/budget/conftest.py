"""Fixtures for the budget watcher on real components: CRD, a dedicated Prometheus, a series target."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from shepherd import crd
from shepherd.budget.gate import FreezeGate
from shepherd.budget.watcher import BudgetWatcher
from shepherd.kube import KubeClient
from shepherd.reconcile import Reconciler

from tests.harness import components
from tests.harness.cluster import Cluster
from tests.harness.processes import free_port
from tests.harness.prometheus import PrometheusServer

T = TypeVar("T")

#: Test rules: synthetic gauges recorded under the names the fleet rules produce (the watcher's contract).
RULES = {
    "groups": [
        {
            "name": "budget-watcher-test",
            "interval": "1s",
            "rules": [
                {
                    "record": "shepherd:slo_error_budget_remaining:ratio",
                    "expr": "max without (instance, job) (test_budget_remaining)",
                },
                {"record": "shepherd:slo_burn_rate", "expr": "max without (instance, job) (test_burn_rate)"},
            ],
        }
    ]
}


async def eventually(check: Callable[[], Awaitable[T | None]], *, within: float, what: str) -> T:
    """Poll ``check`` until it returns something truthy (bounded; no sleep used as synchronisation)."""
    deadline = time.monotonic() + within
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {within}s waiting for {what}; last: {last!r}")


@pytest.fixture(scope="session")
def crd_installed(kube: Cluster) -> None:
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd.CRD_PATH))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd.CRD_NAME}")


@pytest.fixture(scope="module")
def own_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A Prometheus of this module alone, so it can be killed and restarted."""
    server = components.start_prometheus(tmp_path_factory.mktemp("budget-prom"))
    rules = server.workdir / "budget-test-rules.yaml"
    rules.write_text(yaml.safe_dump(RULES, sort_keys=False))
    server.set_rule_files([rules])
    yield server
    server.stop()


class SeriesTarget:
    """A scrape target serving shepherd-style series whose values the test sets."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.remaining = Gauge(
            "test_budget_remaining",
            "budget left",
            ["namespace", "agentdeployment", "sli"],
            registry=self.registry,
        )
        self.burn = Gauge(
            "test_burn_rate",
            "burn rate",
            ["namespace", "agentdeployment", "sli", "window"],
            registry=self.registry,
        )
        self.circuit = Gauge(
            "agent_circuit_state",
            "circuit",
            ["namespace", "agentdeployment", "circuit"],
            registry=self.registry,
        )
        self.port = free_port()
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def set_budget(self, ns: str, name: str, remaining: float, burns: dict[str, float]) -> None:
        self.remaining.labels(ns, name, "availability").set(remaining)
        for window, rate in burns.items():
            self.burn.labels(ns, name, "availability", window).set(rate)

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def series(own_prometheus: PrometheusServer) -> Iterator[SeriesTarget]:
    target = SeriesTarget()
    own_prometheus.set_targets([{"targets": [f"127.0.0.1:{target.port}"], "labels": {}}])
    yield target
    target.close()


@pytest.fixture
async def kube_client(kube: Cluster) -> AsyncIterator[KubeClient]:
    cfg = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    client = KubeClient(cfg)
    yield client
    await client.close()


def events(kube: Cluster, ns: str, name: str) -> list[dict[str, Any]]:
    items = kube.get("events", namespace=ns)["items"]
    return [e for e in items if e["involvedObject"].get("name") == name]


def reasons(kube: Cluster, ns: str, name: str) -> list[str]:
    return [e["reason"] for e in events(kube, ns, name)]


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    raise AssertionError(f"no {kind} condition in {obj.get('status')}")


def gated_reconciler(client: KubeClient, prometheus_url: str, ns: str) -> tuple[Reconciler, BudgetWatcher]:
    """The real ``Reconciler`` with the ``FreezeGate`` verdicts, and a ``BudgetWatcher`` of ``ns``
    that reconciles through it (evaluated by the test, ``watcher.evaluate()``)."""
    gate = FreezeGate()
    rec = Reconciler(client, verdicts=gate)
    watcher = BudgetWatcher(
        client,
        prometheus_url=prometheus_url,
        interval=0.5,
        refresh=3600,
        namespaces=[ns],
        reconcile=rec.reconcile,
        ledger=gate.ledger,
    )
    return rec, watcher
