"""Circuits, from the live service to the resource: a live `agent-service` with the chain anthropic ->
bedrock -> openai (the fakes, real SDKs) runs a graph whose armoured tool times out
(graphs/flaky_tools.py). Anthropic is down, so its circuit opens and Bedrock answers; the tool is
retried and its circuit opens. A real Prometheus scrapes the process with the Pod's labels; the
operator's budget watcher writes every circuit into the AgentDeployment's status on the real apiserver
(status.circuits, the CIRCUITS column, CircuitsClosed, Warning Events).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shepherd import api
from shepherd.budget.gate import FreezeGate
from shepherd.budget.watcher import BudgetWatcher
from shepherd.kube import KubeClient
from shepherd.reconcile import Reconciler

from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import ACCESS_KEY, SECRET_KEY, FakeBedrock
from tests.fakes.openai_server import FakeOpenAI
from tests.harness.cluster import Cluster
from tests.harness.prometheus import PrometheusServer
from tests.integration.service.conftest import launch

from .conftest import condition, eventually, reasons

NAME = "flaky"
CIRCUIT = "tool:slow_search"
PRIMARY, SECOND, THIRD = "claude-sonnet-4-5", "anthropic.claude-haiku-4-5-v1:0", "gpt-4o-mini"
SEARCH = {"tool_use": {"name": "slow_search", "input": {"query": "slo"}}}


@pytest.fixture
def service(redis_url: str, tmp_path: Path) -> Iterator[str]:
    anthropic, bedrock, openai = FakeAnthropic().start(), FakeBedrock().start(), FakeOpenAI().start()
    anthropic.state.add_faults({"kind": "status", "status": 503, "times": 1000})
    bedrock.state.add_replies(SEARCH, {"text": "Search is down."}, SEARCH, {"text": "Still down."})
    chain = [
        {"provider": "anthropic", "model": PRIMARY, "base_url": anthropic.url},
        {"provider": "bedrock", "model": SECOND, "region": bedrock.region, "base_url": bedrock.url},
        {"provider": "openai", "model": THIRD, "base_url": f"{openai.url}/v1"},
    ]
    env = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"flaky-{uuid.uuid4().hex[:8]}",
        "AGENT_GRAPH": "flaky_tools:build_graph",
        "LLM_CHAIN": json.dumps(chain),
        "LLM_CHAIN_0_API_KEY": "test-key",
        "LLM_CHAIN_1_AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "LLM_CHAIN_1_AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "LLM_CHAIN_2_API_KEY": openai.api_key,
        "LLM_MAX_RETRIES": "0",
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "CIRCUIT_RECOVERY_SECONDS": "600",
    }
    service = launch(tmp_path, **env)
    url = service.url
    yield url
    process = service.process
    process.stop()
    for fake in (anthropic, bedrock, openai):
        fake.stop()
    assert "retrying tool slow_search" in process.log_path.read_text(), "the timed-out call was retried"
    assert anthropic.state.models() == [PRIMARY], "its circuit opened after the first failure"
    assert openai.request_count == 0


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
    assert f'agent_circuit_state{{circuit="anthropic:{PRIMARY}"}} 2.0' in metrics
    assert f'agent_circuit_state{{circuit="bedrock:{SECOND}"}} 0.0' in metrics
    assert 'agent_tool_calls_total{outcome="timeout",tool="slow_search"} 1.0' in metrics
    assert 'agent_tool_calls_total{outcome="circuit_open",tool="slow_search"} 1.0' in metrics

    async def circuit_on_status() -> dict | None:
        await watcher.evaluate()
        got = await kube_client.get(api.API_VERSION, api.PLURAL, ns, NAME)
        status = got.body.get("status") or {}
        return got.body if status.get("circuitsSummary") == "2/4 open" else None

    obj = await eventually(circuit_on_status, within=60, what="the tool circuit on the resource")
    assert sorted((c["name"], c["state"]) for c in obj["status"]["circuits"]) == [
        (f"anthropic:{PRIMARY}", "open"),
        (f"bedrock:{SECOND}", "closed"),
        (f"openai:{THIRD}", "closed"),
        (CIRCUIT, "open"),
    ]
    assert condition(obj, "CircuitsClosed")["reason"] == "CircuitOpen"
    assert CIRCUIT in condition(obj, "CircuitsClosed")["message"]
    row = kube.kubectl("get", "agd", NAME, "-n", ns).stdout.splitlines()
    assert "2/4 open" in row[1]
    assert "CircuitOpen" in reasons(kube, ns, NAME)
    messages = [
        e["message"] for e in kube.get("events", namespace=ns)["items"] if e["reason"] == "CircuitOpen"
    ]
    assert f"Tool circuit {CIRCUIT} is open." in messages
    assert f"LLM circuit anthropic:{PRIMARY} is open." in messages
