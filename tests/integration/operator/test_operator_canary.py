"""Canary rollouts on the real control plane: two Deployments behind one Service, promoted step by
step by the operator process, which continues a canary after a restart and leaves nothing behind."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.harness.audit import AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import PRODUCTION_RESYNC, exists, get_agd, wait_ready

NAME = "canary"
CANARY = f"{NAME}-canary"


def manifest(steps: list[dict[str, Any]], image: str = "agent:1", replicas: int = 4) -> str:
    return json.dumps(
        {
            "apiVersion": "shepherd.dev/v1alpha1",
            "kind": "AgentDeployment",
            "metadata": {"name": NAME},
            "spec": {
                "image": image,
                "replicas": replicas,
                "redis": {"external": {"url": "redis://redis.data:6379/0"}},
                "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
                "rollout": {"strategy": "canary", "steps": steps},
            },
        }
    )


@pytest.fixture
def ns(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("canary")


def rollout(kube: Cluster, ns: str) -> dict[str, Any]:
    return (get_agd(kube, ns, NAME) or {}).get("status", {}).get("rollout") or {}


def pods_by_release(kube: Cluster, ns: str) -> dict[str, int]:
    """Running agent Pods the Service selects, counted by their shepherd.dev/release label."""
    selector = kube.get("service", NAME, ns)["spec"]["selector"]
    label = ",".join(f"{k}={v}" for k, v in selector.items())
    pods = json.loads(kube.kubectl("get", "pods", "-n", ns, "-l", label, "-o", "json").stdout)["items"]
    counts: dict[str, int] = {}
    for pod in pods:
        if pod["status"].get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp"):
            release = pod["metadata"]["labels"].get("shepherd.dev/release", "")
            counts[release] = counts.get(release, 0) + 1
    return counts


def image_of(kube: Cluster, ns: str, name: str) -> str:
    return kube.get("deployment", name, ns)["spec"]["template"]["spec"]["containers"][0]["image"]


def test_a_canary_promotes_step_by_step_to_the_stable_release(kube: Cluster, ns: str, start_operator) -> None:
    # The production resync (300 s): the steps move by the operator's own timers, not by a resync.
    start_operator(ns, resync=PRODUCTION_RESYNC)
    steps = [{"weight": 25, "pause": "2s"}, {"weight": 50, "pause": "2s"}]
    kube.kubectl("apply", "-n", ns, "-f", "-", input=manifest(steps))
    wait_ready(kube, ns, NAME)
    assert rollout(kube, ns)["phase"] == "Stable"
    wait_until(lambda: pods_by_release(kube, ns) == {"1": 4}, timeout=60, what="4 Pods of release 1")

    audit = AuditCounter(kube.audit_log)
    kube.kubectl("apply", "-n", ns, "-f", "-", input=manifest(steps, image="agent:2"))
    seen: list[tuple[str, int | None, int]] = []

    def promoted() -> bool:
        state = rollout(kube, ns)
        entry = (state.get("phase", ""), state.get("step"), state.get("weight", 0))
        if not seen or seen[-1] != entry:
            seen.append(entry)
        return state.get("phase") == "Stable" and state.get("release") == 2

    wait_until(promoted, timeout=120, what="the canary promoted", interval=0.2)
    assert ("Progressing", 0, 25) in seen, seen
    assert ("Progressing", 1, 50) in seen, seen
    wait_until(lambda: not exists(kube, "deployment", CANARY, ns), timeout=60, what="the canary removed")
    wait_until(lambda: pods_by_release(kube, ns) == {"2": 4}, timeout=60, what="4 Pods of release 2")
    assert image_of(kube, ns, NAME) == "agent:2"
    obj = wait_ready(kube, ns, NAME)
    assert obj["status"]["released"]["image"] == "agent:2"
    assert "pending" not in obj["status"]
    reasons = {e["reason"] for e in kube.get("events", namespace=ns)["items"]}
    assert {"CanaryStep", "CanaryPromoted"} <= reasons
    # The operator's writes of the whole canary (for BENCHMARKS.md): per step and for the promotion.
    writes = audit.writes(ns)
    print(f"\nCANARY-WRITES {len(writes)} writes for 2 steps and the promotion: {sorted(writes)}")


def test_mid_canary_restart_continues_and_deletion_leaves_nothing(
    kube: Cluster, ns: str, start_operator
) -> None:
    op = start_operator(ns)  # resync every 2 s: the no-write proof below sees several rounds
    long = [{"weight": 25, "pause": "1h"}, {"weight": 50, "pause": "1h"}]
    kube.kubectl("apply", "-n", ns, "-f", "-", input=manifest(long))
    wait_ready(kube, ns, NAME)
    kube.kubectl("apply", "-n", ns, "-f", "-", input=manifest(long, image="agent:2"))
    wait_until(
        lambda: pods_by_release(kube, ns) == {"1": 3, "2": 1},
        timeout=60,
        what="3 stable Pods and 1 canary Pod",
    )
    state = rollout(kube, ns)
    assert (state["phase"], state["step"], state["weight"], state["release"]) == ("Progressing", 0, 25, 2)
    assert image_of(kube, ns, NAME) == "agent:1"
    assert image_of(kube, ns, CANARY) == "agent:2"
    table = kube.kubectl("get", "agd", NAME, "-n", ns).stdout.splitlines()
    assert "ROLLOUT" in table[0].split(), table
    assert "Progressing 25%" in table[1], table
    pending = get_agd(kube, ns, NAME)["status"]["pending"]
    assert pending["image"] == "agent:2"
    assert "Canary release 2" in pending["reason"]

    # Reconciled again and again mid-canary: no writes.
    audit = AuditCounter(kube.audit_log)
    wait_until(lambda: audit.reads(ns) >= 3 * 11, timeout=60, what="three resync rounds", interval=0.5)
    assert audit.writes(ns) == []

    # Restarted mid-canary: the same step of the same release, from the same moment, no writes.
    op.kill()
    audit.mark()
    start_operator(ns)
    wait_until(lambda: audit.reads(ns) >= 2 * 11, timeout=60, what="two resync rounds", interval=0.5)
    assert audit.writes(ns) == []
    assert rollout(kube, ns) == state
    # It continues where it was: shorter pauses (not a new release) take it on from step 1.
    short = [{"weight": 25, "pause": "1s"}, {"weight": 50, "pause": "1h"}]
    kube.kubectl("apply", "-n", ns, "-f", "-", input=manifest(short, image="agent:2"))
    wait_until(lambda: rollout(kube, ns).get("step") == 1, timeout=60, what="step 2")
    assert rollout(kube, ns)["release"] == 2
    wait_until(lambda: pods_by_release(kube, ns) == {"1": 2, "2": 2}, timeout=60, what="2 and 2 Pods")

    # Deleted mid-canary: both Deployments, both ConfigMaps and every other child go.
    kube.kubectl("delete", "agentdeployment", NAME, "-n", ns, "--wait=true", "--timeout=60s")

    def leftovers() -> str:
        return kube.kubectl(
            "get", "deployment,replicaset,pod,configmap,service,pdb,serviceaccount", "-n", ns,
            "-l", "app.kubernetes.io/managed-by=shepherd", "-o", "name",
        ).stdout.strip()  # fmt: skip

    wait_until(lambda: leftovers() == "", timeout=90, what="nothing left", interval=0.5)
