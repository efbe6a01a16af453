"""A real `helm install` / `upgrade` / `uninstall` of charts/shepherd on the local control plane.

kwok makes the operator Pod Running and Ready without running it (the operator process itself is
exercised by the operator's own integration tests), so this proves what the chart declares: the
API server accepts every object, the Deployment becomes Available, the CRD is established, the
ServiceAccount holds the operator's permissions, upgrades roll and uninstall cleans up.

Helm never deletes what it installed from crds/: after `helm uninstall` the CRD (and so every
AgentDeployment) stays. That is documented in NOTES.txt and the chart README.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shepherd import crd

CHART = Path(__file__).resolve().parents[3] / "charts" / "shepherd"
CRD_NAME = crd.CRD_NAME


def _install(kube, release: str, namespace: str, *args: str) -> None:
    kube.helm(
        "upgrade", "--install", release, str(CHART), "--namespace", namespace,
        "--wait", "--timeout", "180s", *args,
    )  # fmt: skip


def _deployment(kube, namespace: str, name: str) -> dict:
    return kube.get("deployment", name, namespace=namespace)


def _available(deployment: dict) -> bool:
    conditions = deployment.get("status", {}).get("conditions", [])
    return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)


def _release_objects(kube, namespace: str, release: str) -> list[str]:
    selector = f"app.kubernetes.io/instance={release}"
    kinds = "deployments,services,serviceaccounts,configmaps,secrets"
    out = kube.kubectl("get", kinds, "-n", namespace, "-l", selector, "-o", "name").stdout.split()
    cluster = kube.kubectl(
        "get",
        "clusterroles,clusterrolebindings,validatingwebhookconfigurations",
        "-l",
        selector,
        "-o",
        "name",
    ).stdout.split()
    return out + cluster


def _can(kube, namespace: str, service_account: str, verb: str, resource: str) -> bool:
    result = kube.kubectl(
        "auth", "can-i", verb, resource, "--all-namespaces",
        f"--as=system:serviceaccount:{namespace}:{service_account}", check=False,
    )  # fmt: skip
    return result.stdout.strip() == "yes"


def test_install_upgrade_uninstall(kube):
    namespace = kube.namespace("chart")
    release = "shepherd"
    _install(kube, release, namespace)

    deployment = _deployment(kube, namespace, release)
    assert _available(deployment)
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":0.1.0")
    established = kube.get("crd", CRD_NAME)["status"]["conditions"]
    assert any(c["type"] == "Established" and c["status"] == "True" for c in established)
    assert kube.get("configmap", "shepherd-fleet", namespace=namespace)["metadata"]["labels"][
        "grafana_dashboard"
    ]

    # The ServiceAccount holds what the operator needs, and no more than that for, e.g., Secrets:
    # watched (a rotation rolls the Pods), created and completed (the managed Redis' passwords),
    # never replaced or deleted.
    assert _can(kube, namespace, release, "patch", "agentdeployments.shepherd.dev/status")
    assert _can(kube, namespace, release, "patch", "deployments.apps")
    assert _can(kube, namespace, release, "watch", "secrets")
    assert not _can(kube, namespace, release, "update", "secrets")
    assert not _can(kube, namespace, release, "delete", "secrets")

    # The CRD the chart installed accepts an AgentDeployment (the apiserver applies its schema).
    apps = kube.namespace("chart-apps")
    kube.apply(
        {
            "apiVersion": "shepherd.dev/v1alpha1",
            "kind": "AgentDeployment",
            "metadata": {"name": "demo"},
            "spec": {},
        },
        namespace=apps,
    )
    stored = kube.get("agentdeployment", "demo", namespace=apps)
    assert stored["spec"]["redis"]["managed"]["storage"] == "1Gi"  # defaults from the CRD schema
    assert "slo" not in stored["spec"]  # left to the operator's platform defaults (chart defaults.slo)

    # helm upgrade with changed values: the operator rolls with the new defaults, boards go away.
    _install(
        kube, release, namespace,
        "--set", "defaults.prometheusUrl=http://prometheus.monitoring:9090",
        "--set", "dashboards.enabled=false",
        "--set", "image.tag=0.1.1",
    )  # fmt: skip
    deployment = _deployment(kube, namespace, release)
    assert _available(deployment)
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SHEPHERD_PROMETHEUS_URL"] == "http://prometheus.monitoring:9090"
    assert container["image"].endswith(":0.1.1")
    assert kube.get("configmap", "shepherd-fleet", namespace=namespace, check=False) is None
    history = json.loads(kube.helm("history", release, "-n", namespace, "-o", "json").stdout)
    assert [h["revision"] for h in history] == [1, 2]

    # helm uninstall: nothing of the release is left but the CRD (and the resources it holds).
    kube.helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s")
    assert _release_objects(kube, namespace, release) == []
    assert kube.get("crd", CRD_NAME) is not None
    assert kube.get("agentdeployment", "demo", namespace=apps) is not None


@pytest.mark.parametrize("values", ["monitoring-on", "webhook-selfsigned", "minimal"])
def test_ci_values_install(kube, values):
    """Each ci/*-values.yaml installs (cert-manager's is left out: cert-manager is not installed)."""
    if values == "monitoring-on":
        kube.install_upstream_crds()
    namespace = kube.namespace("chart-ci")
    release = f"shepherd-{values}"
    _install(kube, release, namespace, f"--values={CHART / 'ci' / f'{values}-values.yaml'}")
    assert _available(_deployment(kube, namespace, release))
    if values == "monitoring-on":
        rules = kube.get("prometheusrules", namespace=namespace)["items"]
        assert sorted(r["metadata"]["name"] for r in rules) == [f"{release}-operator", f"{release}-slo"]
        assert kube.get("servicemonitor", release, namespace=namespace) is not None
    if values == "webhook-selfsigned":
        webhook = kube.get("validatingwebhookconfiguration", f"{release}-webhook")
        assert webhook["webhooks"][0]["clientConfig"]["service"]["namespace"] == namespace
    kube.helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s")
    assert _release_objects(kube, namespace, release) == []
