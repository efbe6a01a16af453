"""The whole story as a platform team lives it: apply the CRD and one AgentDeployment, the operator
renders it, kwok runs its Pods, the bridge runs the real agent-service processes exactly as rendered,
a user talks to the agent through the official LangGraph SDK across two replicas sharing Redis,
Prometheus scrapes the service with the resource's labels, and deleting the resource cleans up."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph_sdk import get_client
from shepherd import crd

from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess
from tests.harness.podbridge import PodBridge
from tests.harness.processes import wait_until
from tests.harness.prometheus import PrometheusServer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "basic.yaml"


def _ready(kube: Cluster, namespace: str, name: str) -> dict | None:
    obj = kube.get("agentdeployment", name, namespace, check=False)
    conditions = {c["type"]: c for c in (obj or {}).get("status", {}).get("conditions", [])}
    ready = conditions.get("Ready", {})
    if ready.get("status") == "True" and ready.get("observedGeneration") == obj["metadata"]["generation"]:
        return obj
    return None


@pytest.fixture
def story(kube: Cluster, redis_url: str, prometheus: PrometheusServer, tmp_path: Path):
    kube.apply_crds(crd.CRD_PATH)
    kube.install_upstream_crds()
    kube.ensure_persistent_volumes(40)
    namespace = kube.namespace("e2e")
    operator = OperatorProcess(kube.kubeconfig, namespace, tmp_path / "operator.log").start()
    bridge = PodBridge(
        kube, namespace, tmp_path / "pods", prometheus, endpoint_overrides={"REDIS_URL": redis_url}
    )
    yield namespace, bridge
    bridge.stop()
    operator.stop()


async def test_apply_use_observe_and_delete_an_agent(
    kube: Cluster, prometheus: PrometheusServer, story
) -> None:
    namespace, bridge = story
    kube.kubectl("apply", "-n", namespace, "-f", str(EXAMPLE))
    wait_until(lambda: _ready(kube, namespace, "basic"), timeout=180, what="AgentDeployment basic Ready")
    listing = kube.kubectl("get", "agd", "-n", namespace).stdout
    assert "basic" in listing
    assert "2/2" in listing, listing

    first, second = bridge.wait_serving(2, timeout=120)[:2]
    a = get_client(url=f"http://127.0.0.1:{first.port}")
    b = get_client(url=f"http://127.0.0.1:{second.port}")

    thread = await a.threads.create(metadata={"team": "e2e"})
    question = {"messages": [{"role": "user", "content": "What is an error budget? Look it up."}]}
    chunks = [
        c async for c in a.runs.stream(thread["thread_id"], "agent", input=question, stream_mode="values")
    ]
    assert any(c.event == "values" for c in chunks)

    # The second replica continues the thread from the checkpoints in the shared Redis.
    state = await b.threads.get_state(thread["thread_id"])
    before = len(state["values"]["messages"])
    assert before >= 2
    follow_up = {"messages": [{"role": "user", "content": "And what is 2 + 3 * 4?"}]}
    await b.runs.wait(thread["thread_id"], "agent", input=follow_up)
    after = (await a.threads.get_state(thread["thread_id"]))["values"]["messages"]
    assert len(after) > before
    assert "14" in str(after[-1]["content"])

    # Prometheus scraped both processes with the resource's labels.
    selector = f'namespace="{namespace}",agentdeployment="basic"'
    query = f"sum by (pod) (agent_http_requests_total{{{selector}}})"
    wait_until(lambda: len(prometheus.query(query)) == 2, timeout=60, what="both pods scraped")
    assert {r["metric"]["pod"] for r in prometheus.query(query)} == {first.name, second.name}

    kube.kubectl("delete", "agd", "basic", "-n", namespace, "--wait=true", "--timeout=60s")
    wait_until(
        lambda: not kube.get("deployments", namespace=namespace)["items"],
        timeout=60,
        what="the agent Deployment to be garbage-collected",
    )
