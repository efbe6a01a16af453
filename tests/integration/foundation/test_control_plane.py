"""The local control plane is a real one: scheduling, kwok readiness, CRDs, watches, GC and RBAC."""

from __future__ import annotations

import kubernetes
import pytest

from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "main", "image": "example.invalid/app:1"}]},
            },
        },
    }


def test_deployment_becomes_ready_through_kwok(kube: Cluster) -> None:
    namespace = kube.namespace()
    kube.apply(deployment("web", 3), namespace=namespace)

    def ready() -> bool:
        status = kube.get("deployment", "web", namespace)["status"]
        return status.get("readyReplicas") == 3

    wait_until(ready, timeout=90, what="Deployment web to have 3 ready replicas")
    pods = kube.get("pods", namespace=namespace)["items"]
    assert len(pods) == 3
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["spec"].get("nodeName", "").startswith("kwok-node-") for p in pods), "scheduler placed them"


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.harness.shepherd.dev"},
    "spec": {
        "group": "harness.shepherd.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["size"],
                                "properties": {"size": {"type": "integer", "minimum": 1}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def test_custom_resource_is_created_read_and_watched(kube: Cluster) -> None:
    kube.apply(WIDGET_CRD)
    kube.kubectl("wait", "--for=condition=Established", "--timeout=30s", "crd/widgets.harness.shepherd.dev")
    namespace = kube.namespace()
    api = kubernetes.client.CustomObjectsApi(kube.api_client)
    group = ("harness.shepherd.dev", "v1", namespace, "widgets")
    widget = {
        "apiVersion": "harness.shepherd.dev/v1",
        "kind": "Widget",
        "metadata": {"name": "w"},
        "spec": {"size": 2},
    }
    created = api.create_namespaced_custom_object(*group, widget)
    assert api.get_namespaced_custom_object(*group, "w")["spec"] == {"size": 2}

    # Watching from the create's resourceVersion replays every later event, so there is no race.
    stream = kubernetes.watch.Watch().stream(
        api.list_namespaced_custom_object,
        *group,
        resource_version=created["metadata"]["resourceVersion"],
        timeout_seconds=30,
    )
    api.patch_namespaced_custom_object(*group, "w", {"spec": {"size": 5}})
    event = next(stream)
    assert (event["type"], event["object"]["spec"]["size"]) == ("MODIFIED", 5)

    with pytest.raises(kubernetes.client.ApiException) as rejected:
        api.create_namespaced_custom_object(
            "harness.shepherd.dev",
            "v1",
            namespace,
            "widgets",
            {**widget, "metadata": {"name": "bad"}, "spec": {"size": 0}},
        )
    assert rejected.value.status == 422
    assert "spec.size" in rejected.value.body


def test_deleting_an_owner_garbage_collects_its_dependents(kube: Cluster) -> None:
    namespace = kube.namespace()
    kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}, namespace=namespace)
    owner = kube.get("configmap", "owner", namespace)
    reference = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    dependents = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"child-{i}", "ownerReferences": [reference]},
        }
        for i in range(3)
    ]
    kube.apply(*dependents, namespace=namespace)
    kube.kubectl("delete", "configmap", "owner", "-n", namespace, "--wait=true")

    def collected() -> bool:
        names = {item["metadata"]["name"] for item in kube.get("configmaps", namespace=namespace)["items"]}
        return not names & {"child-0", "child-1", "child-2"}

    wait_until(collected, timeout=60, what="the garbage collector to delete the dependents")


def test_unauthorised_serviceaccount_is_forbidden(kube: Cluster) -> None:
    namespace = kube.namespace()
    kube.kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    kube.kubectl(
        "create", "role", "read-configmaps", "--verb=get,list", "--resource=configmaps", "-n", namespace
    )
    kube.kubectl(
        "create",
        "rolebinding",
        "nobody-reads",
        "--role=read-configmaps",
        f"--serviceaccount={namespace}:nobody",
        "-n",
        namespace,
    )
    as_nobody = kube.kubeconfig_for_serviceaccount(namespace, "nobody")

    allowed = kube.kubectl("get", "configmaps", "-n", namespace, kubeconfig=as_nobody, check=False)
    assert allowed.returncode == 0, allowed.stderr
    for forbidden_args in (
        ("get", "secrets", "-n", namespace),
        ("create", "configmap", "x", "-n", namespace),
        ("get", "nodes"),
    ):
        result = kube.kubectl(*forbidden_args, kubeconfig=as_nobody, check=False)
        assert result.returncode != 0
        assert "forbidden" in result.stderr.lower()
        assert f"system:serviceaccount:{namespace}:nobody" in result.stderr


def test_upstream_prometheusrule_crd_rejects_a_malformed_rule_group(kube: Cluster) -> None:
    kube.install_upstream_crds()
    namespace = kube.namespace()
    good = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "good"},
        "spec": {"groups": [{"name": "g", "rules": [{"record": "shepherd:test", "expr": "vector(1)"}]}]},
    }
    kube.apply(good, namespace=namespace)
    assert kube.get("prometheusrule", "good", namespace)["spec"]["groups"][0]["name"] == "g"

    # Straight to the apiserver (no kubectl client-side check): the CRD's own schema must refuse it.
    malformed = {**good, "metadata": {"name": "bad"}, "spec": {"groups": [{"rules": [{"alert": "NoExpr"}]}]}}
    api = kubernetes.client.CustomObjectsApi(kube.api_client)
    with pytest.raises(kubernetes.client.ApiException) as rejected:
        api.create_namespaced_custom_object(
            "monitoring.coreos.com", "v1", namespace, "prometheusrules", malformed
        )
    assert rejected.value.status == 422
    assert "spec.groups[0].name: Required value" in rejected.value.body
    assert "spec.groups[0].rules[0].expr: Required value" in rejected.value.body


def test_upstream_keda_and_monitor_crds_are_served(kube: Cluster) -> None:
    kube.install_upstream_crds()
    resources = kube.kubectl("api-resources", "--api-group=keda.sh", "-o", "name").stdout.split()
    assert "scaledobjects.keda.sh" in resources
    resources = kube.kubectl(
        "api-resources", "--api-group=monitoring.coreos.com", "-o", "name"
    ).stdout.split()
    assert {"podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com"} <= set(resources)
