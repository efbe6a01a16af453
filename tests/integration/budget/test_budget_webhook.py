"""The optional admission webhook, served by the operator process over TLS with its own certificate."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from shepherd import webhook
from shepherd.kube import KubeClient

from tests.harness.cluster import Cluster
from tests.harness.processes import ManagedProcess, free_port, wait_until
from tests.harness.prometheus import PrometheusServer

from .conftest import SeriesTarget
from .test_budget_watcher import NAME, manifest

OPERATOR_BIN = Path(sys.executable).parent / "shepherd-operator"


def test_frozen_change_is_rejected_at_apply_time(
    kube: Cluster, crd_installed: None, own_prometheus: PrometheusServer, series: SeriesTarget, tmp_path: Path
) -> None:
    ns = kube.namespace("webhook")
    port = free_port()
    operator = ManagedProcess(
        "operator",
        [str(OPERATOR_BIN), "--namespace", ns, "--verbose"],
        tmp_path,
        {
            "KUBECONFIG": str(kube.kubeconfig),
            "SHEPHERD_PROMETHEUS_URL": own_prometheus.url,
            "SHEPHERD_BUDGET_INTERVAL": "0.5",
            "SHEPHERD_WEBHOOK_ENABLED": "true",
            "SHEPHERD_WEBHOOK_HOST": "127.0.0.1",
            "SHEPHERD_WEBHOOK_PORT": str(port),
        },
    )
    operator.env.pop("KUBERNETES_SERVICE_HOST", None)
    series.set_budget(ns, NAME, 0.95, {"5m": 0.1})
    operator.start()
    try:
        kube.apply(manifest(), namespace=ns)

        def status() -> dict:
            return kube.get("agentdeployment", NAME, ns)["status"]

        def frozen() -> bool:
            conds = {c["type"]: c["status"] for c in status().get("conditions", [])}
            return conds.get("Frozen") == "True"

        wait_until(lambda: "errorBudget" in status(), timeout=60, what="budget read", interval=0.3)
        config = wait_until(
            lambda: kube.get("validatingwebhookconfiguration", webhook.WEBHOOK_CONFIGURATION, check=False),
            timeout=60,
            what="webhook configuration",
            interval=0.3,
        )
        [hook] = config["webhooks"]
        assert hook["failurePolicy"] == "Ignore"
        assert hook["clientConfig"]["url"].startswith(f"https://127.0.0.1:{port}/")
        assert hook["clientConfig"]["caBundle"]

        series.set_budget(ns, NAME, 0.15, {"5m": 20.0})
        wait_until(frozen, timeout=60, what="Frozen=True", interval=0.3)

        def patch(doc: dict):
            return kube.kubectl(
                "patch", "agentdeployment", NAME, "-n", ns, "--type=merge", "-p", json.dumps(doc), check=False
            )

        refused = patch({"spec": {"image": "registry.test/agent:2"}})
        assert refused.returncode != 0
        assert "denied the request" in refused.stderr
        assert "rollouts frozen (NonCritical)" in refused.stderr
        assert kube.get("agentdeployment", NAME, ns)["spec"]["image"] == "registry.test/agent:1"

        assert patch({"spec": {"replicas": 3}}).returncode == 0  # scaling is never blocked
        critical = {"metadata": {"annotations": {"shepherd.dev/change-class": "critical"}}}
        assert patch(critical).returncode == 0
        assert patch({"spec": {"image": "registry.test/agent:2"}}).returncode == 0  # critical passes
    finally:
        operator.stop()
        kube.kubectl("delete", "validatingwebhookconfiguration", webhook.WEBHOOK_CONFIGURATION, check=False)


async def test_self_signed_ca_is_published_into_the_charts_configuration(
    kube: Cluster, kube_client: KubeClient, tmp_path: Path, monkeypatch
) -> None:
    """Chart selfSigned mode: the chart owns the configuration, the operator fills its caBundle."""
    name = "shepherd-test-webhook"
    kube.apply(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": "agentdeployments.shepherd.dev",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Ignore",
                    "clientConfig": {"url": "https://127.0.0.1:1/validate-agentdeployment"},
                    "rules": [],
                }
            ],
        }
    )
    try:
        cert, _ = webhook.self_signed(["shepherd.shepherd-system.svc"], tmp_path)
        monkeypatch.setenv("SHEPHERD_WEBHOOK_CONFIGURATION", name)
        await webhook.publish_ca(kube_client, cert.read_bytes())
        [hook] = kube.get("validatingwebhookconfiguration", name)["webhooks"]
        assert base64.b64decode(hook["clientConfig"]["caBundle"]) == cert.read_bytes()
        assert hook["clientConfig"]["url"].endswith("/validate-agentdeployment")  # the rest is the chart's
    finally:
        kube.kubectl("delete", "validatingwebhookconfiguration", name, check=False)
