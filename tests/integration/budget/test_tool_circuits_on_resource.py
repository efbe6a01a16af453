"""A tool's circuit, from the live service to the resource: a live `agent-service` runs a graph whose
armoured tool times out (graphs/flaky_tools.py); the tool is retried and its circuit opens in the
process's `agent_circuit_state{circuit="tool:slow_search"}`; a real Prometheus scrapes it with the
Pod's labels; the operator's budget watcher writes it into the AgentDeployment's status on the real
apiserver (status.circuits, the CIRCUITS column, CircuitsClosed, a Warning Event).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shepherd import api
from shepherd.budget.gate import FreezeGate
from shepherd.budget.watcher import BudgetWatcher
from shepherd.kube import KubeClient
from shepherd.reconcile import Reconciler

from tests.harness.cluster import Cluster
from tests.harness.processes import ManagedProcess, free_port
from tests.harness.prometheus import PrometheusServer

from .conftest import condition, eventually, reasons

NAME = "flaky"
CIRCUIT = "tool:slow_search"
GRAPHS = Path(__file__).parents[1] / "service" / "graphs"
AGENT_SERVICE = Path(sys.executable).parent / "agent-service"


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"flaky-{port}",
        "AGENT_GRAPH": "flaky_tools:build_graph",
        "PYTHONPATH": os.pathsep.join([str(GRAPHS), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("ANTHROPIC_API_KEY", None)
    process = ManagedProcess(
        f"agent-service-{port}",
        [str(AGENT_SERVICE), "--host", "127.0.0.1", "--port", str(port)],
        tmp_path,
        env=env,
    ).start()
    url = f"http://127.0.0.1:{port}"
    process.wait_ready(lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, timeout=120)
    yield url
    process.stop()
    assert "retrying tool slow_search" in process.log_path.read_text(), "the timed-out call was retried"


async def test_an_open_tool_circuit_shows_on_the_resource(
    kube: Cluster,
    crd_installed: None,
    kube_client: KubeClient,
    own_prometheus: PrometheusServer,
    service: str,
) -> None:
    ns = kube.namespace("toolcircuit")
    own_prometheus.set_targets(
        [{"targets": [service.removeprefix("http://")], "labels": {"namespace": ns, "agentdeployment": NAME}}]
    )
    gate = FreezeGate()
    rec = Reconciler(kube_client, verdicts=gate)
    watcher = BudgetWatcher(
        kube_client, prometheus_url=own_prometheus.url, interval=0.5, refresh=3600, namespaces=[ns],
        reconcile=rec.reconcile, ledger=gate.ledger,
    )  # fmt: skip
    manifest = {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": NAME},
        "spec": {
            "replicas": 1,
            "redis": {"external": {"url": "redis://127.0.0.1:6379/0"}},
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
        },
    }
    kube.apply(manifest, namespace=ns)
    await rec.reconcile((await kube_client.get(api.API_VERSION, api.PLURAL, ns, NAME)).body)

    question = {
        "assistant_id": "agent",
        "input": {"messages": [{"role": "user", "content": "search for slo"}]},
    }
    async with httpx.AsyncClient(base_url=service, timeout=30) as http:
        for _ in range(2):  # the first call times out twice (the circuit opens), the second fails fast
            assert (await http.post("/runs/wait", json=question)).status_code == 200
        metrics = (await http.get("/metrics")).text
    assert f'agent_circuit_state{{circuit="{CIRCUIT}"}} 2.0' in metrics
    assert 'agent_tool_calls_total{outcome="timeout",tool="slow_search"} 1.0' in metrics
    assert 'agent_tool_calls_total{outcome="circuit_open",tool="slow_search"} 1.0' in metrics

    async def circuit_on_status() -> dict | None:
        await watcher.evaluate()
        got = await kube_client.get(api.API_VERSION, api.PLURAL, ns, NAME)
        status = got.body.get("status") or {}
        return got.body if status.get("circuitsSummary") == "1/1 open" else None

    obj = await eventually(circuit_on_status, within=60, what="the tool circuit on the resource")
    assert [(c["name"], c["state"]) for c in obj["status"]["circuits"]] == [(CIRCUIT, "open")]
    assert condition(obj, "CircuitsClosed")["reason"] == "CircuitOpen"
    assert CIRCUIT in condition(obj, "CircuitsClosed")["message"]
    row = kube.kubectl("get", "agd", NAME, "-n", ns).stdout.splitlines()
    assert "1/1 open" in row[1]
    assert "CircuitOpen" in reasons(kube, ns, NAME)
    messages = [
        e["message"] for e in kube.get("events", namespace=ns)["items"] if e["reason"] == "CircuitOpen"
    ]
    assert f"Tool circuit {CIRCUIT} is open." in messages
