"""The operator as a process on the real control plane: create, ready, drift, switches, no-op, delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.audit import AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import condition, exists, get_agd, wait_ready

REPO = Path(__file__).resolve().parents[3]
BASIC = REPO / "examples" / "basic.yaml"
NAME = "basic"

AGENT_CHILDREN = [
    ("deployment", NAME),
    ("service", NAME),
    ("serviceaccount", NAME),
    ("configmap", f"{NAME}-config"),
    ("poddisruptionbudget", NAME),
]
REDIS_CHILDREN = [("statefulset", f"{NAME}-redis"), ("service", f"{NAME}-redis")]
MONITORING_CHILDREN = [
    ("podmonitors.monitoring.coreos.com", NAME),
    ("configmap", f"{NAME}-dashboard"),
]


def patch_spec(kube: Cluster, ns: str, spec: dict) -> None:
    kube.kubectl("patch", "agentdeployment", NAME, "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec}))


def wait_children(kube: Cluster, ns: str, children: list[tuple[str, str]], timeout: float = 60) -> None:
    for kind, name in children:
        wait_until(
            lambda k=kind, n=name: exists(kube, k, n, ns),
            timeout=timeout,
            what=f"{kind}/{name} in {ns}",
            interval=0.5,
        )


def wait_gone(kube: Cluster, ns: str, kind: str, name: str, timeout: float = 60) -> None:
    wait_until(
        lambda: not exists(kube, kind, name, ns), timeout=timeout, what=f"{kind}/{name} deleted", interval=0.5
    )


@pytest.fixture
def ns(kube: Cluster, crd_installed: None, upstream_crds: None) -> str:
    return kube.namespace("op")


def test_basic_example_end_to_end(kube: Cluster, ns: str, start_operator) -> None:
    start_operator(ns)
    kube.kubectl("apply", "-n", ns, "-f", str(BASIC))
    wait_children(kube, ns, AGENT_CHILDREN + REDIS_CHILDREN + MONITORING_CHILDREN)

    obj = wait_ready(kube, ns, NAME)
    assert obj["status"]["readyReplicas"] == 2
    assert obj["status"]["ready"] == "2/2"
    assert condition(obj, "Ready")["reason"] == "AllPodsReady"
    assert condition(obj, "Progressing")["status"] == "False"
    assert condition(obj, "MonitoringReady")["status"] == "True"
    assert not obj["metadata"].get("finalizers"), "deletion must not depend on the operator (GC only)"
    pods = kube.get("pods", namespace=ns)["items"]
    agent_pods = [p for p in pods if p["metadata"]["labels"].get("app.kubernetes.io/component") == "agent"]
    assert len(agent_pods) == 2
    assert all(p["status"]["phase"] == "Running" for p in agent_pods)

    table = kube.kubectl("get", "agd", NAME, "-n", ns).stdout.splitlines()
    header, row = table[0].split(), table[1]
    assert header[:3] == ["NAME", "READY", "IMAGE"]
    assert "FREEZE" in header
    assert "CIRCUITS" in header
    assert "2/2" in row
    assert "ghcr.io/shepherd-dev/agent-service:0.1.0" in row

    # Drift: a deleted child comes back, an edited field is put back.
    kube.kubectl("delete", "configmap", f"{NAME}-config", "-n", ns)
    kube.kubectl(
        "patch",
        "deployment",
        NAME,
        "-n",
        ns,
        "--type=json",
        "-p",
        json.dumps([{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "evil:1"}]),
    )
    wait_children(kube, ns, [("configmap", f"{NAME}-config")])

    def image_restored() -> bool:
        dep = kube.get("deployment", NAME, ns)
        return dep["spec"]["template"]["spec"]["containers"][0]["image"].startswith("ghcr.io/shepherd-dev/")

    wait_until(image_restored, timeout=60, what="Deployment image restored", interval=0.5)
    wait_ready(kube, ns, NAME)

    # A no-op resync sends zero writes (resync every 2 s: wait for several rounds of reads).
    audit = AuditCounter(kube.audit_log)
    wait_until(lambda: audit.reads(ns) >= 3 * 11, timeout=60, what="three resync rounds", interval=0.5)
    assert audit.writes(ns) == []

    # Autoscaling on with HPA: the Deployment keeps its 3 replicas through the hand-over (server-side
    # apply would drop a field its only owner stops sending, and the Deployment would fall to 1).
    patch_spec(kube, ns, {"replicas": 3})
    wait_until(
        lambda: kube.get("deployment", NAME, ns)["spec"]["replicas"] == 3, timeout=60, what="3 replicas"
    )
    patch_spec(kube, ns, {"autoscaling": {"engine": "hpa", "minReplicas": 2, "maxReplicas": 4}})
    wait_children(kube, ns, [("horizontalpodautoscaler", NAME)])
    generation = get_agd(kube, ns, NAME)["metadata"]["generation"]
    wait_until(
        lambda: get_agd(kube, ns, NAME)["status"].get("observedGeneration") == generation,
        timeout=60,
        what="the autoscaling generation reconciled",
    )
    shown = kube.kubectl("get", "deployment", NAME, "-n", ns, "-o", "json", "--show-managed-fields")
    deployment = json.loads(shown.stdout)
    assert deployment["spec"]["replicas"] == 3
    owners = {
        entry["manager"]
        for entry in deployment["metadata"]["managedFields"]
        if "f:replicas" in entry["fieldsV1"].get("f:spec", {})
    }
    assert "shepherd-handoff" in owners, owners
    # Then switched to KEDA: the HPA is deleted.
    patch_spec(
        kube, ns, {"autoscaling": {"engine": "keda"}, "monitoring": {"prometheusUrl": "http://prom:9090"}}
    )
    wait_children(kube, ns, [("scaledobjects.keda.sh", NAME)])
    wait_gone(kube, ns, "horizontalpodautoscaler", NAME)

    # Managed Redis switched to external: the StatefulSet and its Service go.
    patch_spec(kube, ns, {"redis": {"managed": None, "external": {"url": "redis://redis.data:6379/0"}}})
    wait_gone(kube, ns, "statefulset", f"{NAME}-redis")
    wait_gone(kube, ns, "service", f"{NAME}-redis")
    cm = kube.get("configmap", f"{NAME}-config", ns)
    assert cm["data"]["REDIS_URL"] == "redis://redis.data:6379/0"

    # Deleting the resource leaves nothing behind (garbage collection through ownerReferences).
    kube.kubectl("delete", "agentdeployment", NAME, "-n", ns, "--wait=true", "--timeout=60s")
    for kind, name in AGENT_CHILDREN + MONITORING_CHILDREN + [("scaledobjects.keda.sh", NAME)]:
        wait_gone(kube, ns, kind, name)
    leftovers = kube.kubectl(
        "get",
        "all,configmap,pdb,serviceaccount",
        "-n",
        ns,
        "-l",
        "app.kubernetes.io/managed-by=shepherd",
        "-o",
        "name",
    ).stdout.strip()
    assert leftovers == ""


def test_killed_mid_reconcile_then_restarted_is_idempotent(kube: Cluster, ns: str, start_operator) -> None:
    op = start_operator(ns)
    kube.kubectl("apply", "-n", ns, "-f", str(BASIC))
    wait_until(lambda: exists(kube, "serviceaccount", NAME, ns), timeout=60, what="first child", interval=0.1)
    op.kill()
    start_operator(ns)
    wait_children(kube, ns, AGENT_CHILDREN + REDIS_CHILDREN + MONITORING_CHILDREN)
    wait_ready(kube, ns, NAME)
    audit = AuditCounter(kube.audit_log)
    wait_until(lambda: audit.reads(ns) >= 2 * 11, timeout=60, what="two resync rounds", interval=0.5)
    assert audit.writes(ns) == []
    # One of each child: the restart created no duplicates.
    deployments = kube.get("deployments", namespace=ns)["items"]
    assert [d["metadata"]["name"] for d in deployments] == [NAME]


def test_operator_only_problem_keeps_last_release(kube: Cluster, ns: str, start_operator) -> None:
    start_operator(ns)
    kube.kubectl("apply", "-n", ns, "-f", str(BASIC))
    wait_ready(kube, ns, NAME)
    before = kube.get("deployment", NAME, ns)["metadata"]["generation"]
    patch_spec(
        kube,
        ns,
        {"model": {"provider": "anthropic", "apiKeySecretRef": {"name": "anthropic", "key": "api-key"}}},
    )

    def secret_missing() -> bool:
        cond = condition(get_agd(kube, ns, NAME), "Ready")
        return bool(cond and cond["status"] == "False" and cond["reason"] == "SecretMissing")

    wait_until(secret_missing, timeout=60, what="Ready=False SecretMissing", interval=0.5)
    assert kube.get("deployment", NAME, ns)["metadata"]["generation"] == before  # last good release runs
    events = kube.get("events", namespace=ns)["items"]
    assert any(e["type"] == "Warning" and e["reason"] == "SecretMissing" for e in events)

    kube.kubectl("create", "secret", "generic", "anthropic", "-n", ns, "--from-literal=api-key=sk-test")
    wait_ready(kube, ns, NAME)
    env = kube.get("deployment", NAME, ns)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["name"] == "LLM_CHAIN_0_API_KEY"
