"""Fleet SLO rules (one PrometheusRule per window in use), the per-resource dashboard and PodMonitor,
with the chart's extra monitoring labels, end to end."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess
from tests.harness.processes import wait_until

from .conftest import RESYNC_SECONDS

REPO = Path(__file__).resolve().parents[3]
BASIC = yaml.safe_load((REPO / "examples" / "basic.yaml").read_text())
SELECTOR = "app.kubernetes.io/managed-by=shepherd,app.kubernetes.io/component=slo-fleet-rules"
#: What the chart's prometheusRules.labels / podMonitors.labels pass (kube-prometheus-stack selects on
#: `release`); the clashing component label must lose to Shepherd's, or the selector above would miss.
RULE_LABELS = {"release": "kps", "app.kubernetes.io/component": "user"}
POD_MONITOR_LABELS = {"release": "kps-pods"}


def _agd(name: str, window: str) -> dict:
    body = copy.deepcopy(BASIC)
    body["metadata"] = {"name": name}
    body["spec"]["slo"]["window"] = window
    return body


def _fleet_rules(kube: Cluster, namespace: str) -> dict[str, dict]:
    items = kube.kubectl("get", "prometheusrules", "-n", namespace, "-l", SELECTOR, "-o", "json").stdout
    return {r["metadata"]["name"]: r for r in json.loads(items)["items"]}


def test_fleet_rules_per_window_and_preset_dashboard(
    kube: Cluster, crd_installed, upstream_crds, tmp_path: Path
):
    ns, home = kube.namespace("fleet"), kube.namespace("shepherd")
    # start_operator's env has no SHEPHERD_NAMESPACE: this test starts its operator itself.
    op = OperatorProcess(
        kube.kubeconfig,
        ns,
        tmp_path / "operator.log",
        env={
            "SHEPHERD_RESYNC_SECONDS": RESYNC_SECONDS,
            "SHEPHERD_METRICS_PORT": "0",
            "SHEPHERD_NAMESPACE": home,
            "SHEPHERD_PROMETHEUS_RULE_LABELS": json.dumps(RULE_LABELS),
            "SHEPHERD_POD_MONITOR_LABELS": json.dumps(POD_MONITOR_LABELS),
        },
    )
    op.start()
    try:
        kube.apply(_agd("monthly", "30d"), _agd("hourly", "1h"), namespace=ns)

        def two_windows() -> dict[str, dict] | None:
            rules = _fleet_rules(kube, home)
            return rules if sorted(rules) == ["shepherd-slo-1h", "shepherd-slo-30d"] else None

        rules = wait_until(two_windows, timeout=90, what="two fleet PrometheusRules", interval=0.5)
        for window in ("30d", "1h"):
            rule = rules[f"shepherd-slo-{window}"]
            assert rule["metadata"]["labels"]["shepherd.dev/slo-window"] == window
            assert rule["metadata"]["labels"]["release"] == "kps"
            groups = {g["name"] for g in rule["spec"]["groups"]}
            assert {f"shepherd-slo-{window}", f"shepherd-slo-{window}-steps"} <= groups
        pod_monitor = wait_until(
            lambda: kube.get("podmonitor", "monthly", ns, check=False),
            timeout=60,
            what="PodMonitor",
            interval=0.5,
        )
        assert pod_monitor["metadata"]["labels"]["release"] == "kps-pods"
        assert pod_monitor["metadata"]["labels"]["shepherd.dev/agentdeployment"] == "monthly"
        # No per-resource PrometheusRule in the resources' namespace.
        assert (
            json.loads(kube.kubectl("get", "prometheusrules", "-n", ns, "-o", "json").stdout)["items"] == []
        )

        def board() -> dict | None:
            cm = kube.get("configmap", "monthly-dashboard", ns, check=False)
            return json.loads(cm["data"][f"{ns}-monthly.json"]) if cm else None

        dashboard = wait_until(board, timeout=60, what="dashboard ConfigMap", interval=0.5)
        committed = json.loads((REPO / "dashboards" / "shepherd-agentdeployment.json").read_text())
        assert dashboard["panels"] == committed["panels"]
        assert dashboard["uid"] != committed["uid"]
        assert f"{ns}/monthly" in dashboard["title"]
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["namespace"]["current"]["value"] == ns
        assert variables["agentdeployment"]["current"]["value"] == "monthly"

        kube.kubectl("delete", "agentdeployment", "hourly", "-n", ns, "--wait=true", "--timeout=60s")
        wait_until(
            lambda: sorted(_fleet_rules(kube, home)) == ["shepherd-slo-30d"],
            timeout=60,
            what="the 1h rule pruned",
            interval=0.5,
        )
    except BaseException:
        print(op.log_path.read_text(errors="replace")[-8000:])
        raise
    finally:
        op.stop()
