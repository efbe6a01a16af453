"""The operator under its own ServiceAccount, bound to the ClusterRole from shepherd.rbac (RBAC enforced)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from shepherd import rbac

from tests.harness.audit import AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import exists, wait_ready

REPO = Path(__file__).resolve().parents[3]
BASIC = REPO / "examples" / "basic.yaml"
NAME = "basic"


def test_full_scenario_under_the_generated_cluster_role(
    kube: Cluster, crd_installed, upstream_crds, start_operator
):
    ns = kube.namespace("rbac")
    suffix = uuid.uuid4().hex[:6]
    role_name = f"shepherd-operator-{suffix}"
    kube.kubectl("create", "serviceaccount", "shepherd-operator", "-n", ns)
    kube.apply(
        rbac.cluster_role(role_name),
        rbac.cluster_role_binding(ns, "shepherd-operator", name=role_name, role=role_name),
    )
    kubeconfig = kube.kubeconfig_for_serviceaccount(ns, "shepherd-operator")
    user = f"system:serviceaccount:{ns}:shepherd-operator"

    def rbac_effective() -> bool:  # the authorizer's cache takes a moment to see new bindings
        return all(
            kube.kubectl("auth", "can-i", verb, resource, "-n", ns, f"--as={user}", check=False).returncode
            == 0
            for verb, resource in [
                ("list", "configmaps"),
                ("patch", "agentdeployments.shepherd.dev/status"),
                ("delete", "scaledobjects.keda.sh"),
            ]
        )

    wait_until(rbac_effective, timeout=30, what="RBAC bindings in effect", interval=0.5)
    try:
        op = start_operator(ns, kubeconfig=kubeconfig)
        kube.kubectl("apply", "-n", ns, "-f", str(BASIC))
        wait_ready(kube, ns, NAME)
        for kind, name in [
            ("statefulset", f"{NAME}-redis"),
            ("podmonitors.monitoring.coreos.com", NAME),
            ("configmap", f"{NAME}-dashboard"),
        ]:
            assert exists(kube, kind, name, ns), f"{kind}/{name}"

        kube.kubectl("delete", "service", NAME, "-n", ns)
        wait_until(
            lambda: exists(kube, "service", NAME, ns), timeout=60, what="Service repaired", interval=0.5
        )

        patch = {"spec": {"autoscaling": {"engine": "hpa"}}}
        kube.kubectl("patch", "agd", NAME, "-n", ns, "--type=merge", "-p", json.dumps(patch))
        wait_until(lambda: exists(kube, "hpa", NAME, ns), timeout=60, what="HPA", interval=0.5)
        patch = {
            "spec": {"autoscaling": {"engine": "keda"}, "monitoring": {"prometheusUrl": "http://prom:9090"}}
        }
        kube.kubectl("patch", "agd", NAME, "-n", ns, "--type=merge", "-p", json.dumps(patch))
        wait_until(lambda: not exists(kube, "hpa", NAME, ns), timeout=60, what="HPA pruned", interval=0.5)
        assert exists(kube, "scaledobjects.keda.sh", NAME, ns)
        wait_ready(kube, ns, NAME)

        audit = AuditCounter(kube.audit_log)
        wait_until(lambda: audit.reads(ns) >= 2 * 11, timeout=60, what="two resync rounds", interval=0.5)
        denied = [e for e in audit.entries(ns) if (e.get("responseStatus") or {}).get("code") == 403]
        assert denied == []
        refused = [line for line in op.log().splitlines() if " is forbidden: " in line]
        assert refused == [], "\n".join(refused)
    finally:
        kube.kubectl("delete", "clusterrolebinding,clusterrole", role_name, "--ignore-not-found", check=False)
