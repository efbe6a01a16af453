"""Rotating a referenced Secret rolls the Pods: the operator process watches Secrets, the Pod
templates hash the keys they read, the Deployment controller rolls (kwok runs the Pods). Also the
managed Redis' own password: a deleted key is regenerated and both Redis and the agents roll."""

from __future__ import annotations

from typing import Any

import pytest
from shepherd.render.secret_hash import SECRETS_HASH_ANNOTATION

from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import PRODUCTION_RESYNC, wait_ready
from .redis_pods import agent, auth

NAME = "rotating"
TOKEN = {"name": "EXTRA_TOKEN", "secretKeyRef": {"name": "agent-token", "key": "token"}}


@pytest.fixture
def ns(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("rotation")


def secret(value: str, other: str = "same") -> dict[str, Any]:
    meta = {"name": "agent-token"}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": meta,
        "stringData": {"token": value, "other": other},
    }


def template_hash(kube: Cluster, ns: str, kind: str, name: str) -> str:
    template = kube.get(kind, name, ns)["spec"]["template"]
    return template["metadata"]["annotations"][SECRETS_HASH_ANNOTATION]


def rolled(kube: Cluster, ns: str, before: str) -> bool:
    """The Deployment's template changed and every Pod runs it (the rollout is over)."""
    dep = kube.get("deployment", NAME, ns)
    status = dep.get("status") or {}
    replicas = dep["spec"]["replicas"]
    return (
        dep["spec"]["template"]["metadata"]["annotations"][SECRETS_HASH_ANNOTATION] != before
        and status.get("observedGeneration") == dep["metadata"]["generation"]
        and status.get("updatedReplicas") == replicas == status.get("readyReplicas")
        and status.get("replicas") == replicas
    )


def test_rotating_a_referenced_secret_rolls_the_agent_pods(kube: Cluster, ns: str, start_operator) -> None:
    # The production resync (300 s): only the Secret watch can make this happen in time.
    start_operator(ns, resync=PRODUCTION_RESYNC)
    kube.apply(
        secret("one"),
        agent(NAME, {"external": {"url": "redis://r:6379/0"}}, replicas=2, env=[TOKEN]),
        namespace=ns,
    )
    wait_ready(kube, ns, NAME)
    first = template_hash(kube, ns, "deployment", NAME)

    kube.apply(secret("one", other="changed"), namespace=ns)  # a key the Pods do not read
    kube.apply(secret("two", other="changed"), namespace=ns)
    wait_until(lambda: rolled(kube, ns, first), timeout=60, what="the rotation rolled out", interval=0.3)
    second = template_hash(kube, ns, "deployment", NAME)
    pods = kube.kubectl("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=agent", "-o", "json")
    assert '"' + second + '"' in pods.stdout
    # Only the rotated key counts: the digest is the one the value "two" gives, whatever "other" is.
    kube.apply(secret("two", other="again"), namespace=ns)
    wait_ready(kube, ns, NAME)
    assert template_hash(kube, ns, "deployment", NAME) == second


def test_a_deleted_redis_password_is_regenerated_and_both_sides_roll(
    kube: Cluster, ns: str, start_operator
) -> None:
    start_operator(ns, resync=PRODUCTION_RESYNC)
    kube.apply(agent(NAME, {"managed": {}}), namespace=ns)
    wait_ready(kube, ns, NAME)
    before = auth(kube, ns, NAME)
    agents, redis_pod = (
        template_hash(kube, ns, "deployment", NAME),
        template_hash(kube, ns, "statefulset", f"{NAME}-redis"),
    )
    patch = '[{"op": "remove", "path": "/data/agent"}]'
    kube.kubectl("patch", "secret", f"{NAME}-redis-auth", "-n", ns, "--type=json", "-p", patch)
    wait_until(lambda: "agent" in auth(kube, ns, NAME), timeout=60, what="a new agent password")
    after = auth(kube, ns, NAME)
    assert after["agent"] != before["agent"]
    assert {k: after[k] for k in ("exporter", "backup")} == {k: before[k] for k in ("exporter", "backup")}
    wait_until(lambda: rolled(kube, ns, agents), timeout=60, what="the agents rolled")
    assert template_hash(kube, ns, "statefulset", f"{NAME}-redis") != redis_pod
