"""Unit tests of the chart's switches: it → set → assert, as helm-unittest suites would."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from shepherd import rbac
from shepherd.api import DEFAULT_AGENT_IMAGE

from .conftest import CHART, helm_template

REPO = CHART.parents[1]
APP_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]


def _alerts(rule_doc: dict) -> dict[str, dict]:
    return {r["alert"]: r for g in rule_doc["spec"]["groups"] for r in g["rules"] if "alert" in r}


# ---------------------------------------------------------------------------------------- defaults


def test_defaults_render_the_operator_and_nothing_optional(render):
    docs = render()
    assert sorted(docs.kinds()) == sorted(
        [
            "ServiceAccount",
            "ClusterRole",
            "ClusterRoleBinding",
            "Role",
            "RoleBinding",
            "Service",
            "Deployment",
            "ConfigMap",
            "ConfigMap",
        ]
    )
    assert not docs.all("ValidatingWebhookConfiguration")
    assert not docs.all("ServiceMonitor")
    assert not docs.all("PrometheusRule")


def test_operator_deployment_is_an_elected_pair_recreated_and_restricted(render):
    docs = render()
    deployment = docs.one("Deployment", "shepherd")
    spec = deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = docs.container()
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] == {"cpu": "50m", "memory": "128Mi"}
    assert "--all-namespaces" in container["args"]
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert "--leader-elect" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 8081}
    assert pod["serviceAccountName"] == "shepherd"


def test_image_tag_defaults_to_app_version(render):
    assert render().container()["image"] == f"ghcr.io/shepherd-dev/shepherd-operator:{APP_VERSION}"
    assert render("--set", "image.tag=1.2.3").container()["image"].endswith(":1.2.3")
    digest = "sha256:" + "a" * 64
    assert render("--set", f"image.digest={digest}").container()["image"].endswith(f"@{digest}")
    assert render("--set", "image.pullPolicy=Always").container()["imagePullPolicy"] == "Always"


def test_defaults_reach_the_operator_as_environment(render):
    env = render().env()
    assert env["SHEPHERD_DEFAULT_AGENT_IMAGE"] == DEFAULT_AGENT_IMAGE
    assert "SHEPHERD_PROMETHEUS_URL" not in env  # unset: the operator's budget watcher stays off (auto)
    assert env["SHEPHERD_BUDGET_WATCHER"] == "auto"
    assert json.loads(env["SHEPHERD_DEFAULT_SLO"]) == {"window": "30d", "availability": {"target": 99.5}}
    steps = json.loads(env["SHEPHERD_DEFAULT_ERROR_BUDGET_POLICY"])["steps"]
    assert [s["action"] for s in steps] == ["Notify", "FreezeNonCritical", "FreezeAll"]
    assert env["SHEPHERD_METRICS_PORT"] == "8081"
    assert env["SHEPHERD_WEBHOOK_ENABLED"] == "false"

    env = render(
        "--set", "defaults.prometheusUrl=http://prom.monitoring:9090",
        "--set", "defaults.slo.window=7d",
        "--set", "defaults.agentImage=registry.example/agent:2",
    ).env()  # fmt: skip
    assert env["SHEPHERD_PROMETHEUS_URL"] == "http://prom.monitoring:9090"
    assert json.loads(env["SHEPHERD_DEFAULT_SLO"])["window"] == "7d"
    assert env["SHEPHERD_DEFAULT_AGENT_IMAGE"] == "registry.example/agent:2"
    assert render("--set", "operator.budgetWatcher=off").env()["SHEPHERD_BUDGET_WATCHER"] == "0"


def test_changing_defaults_rolls_the_operator(render):
    before = render().one("Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/defaults"]
    after = render("--set", "defaults.prometheusUrl=http://p:9090").one("Deployment")
    assert after["spec"]["template"]["metadata"]["annotations"]["checksum/defaults"] != before


def test_runbook_base_url_default_matches_the_rules():
    from shepherd.slo.rules import DEFAULT_RUNBOOK_BASE_URL

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["defaults"]["runbookBaseUrl"] == DEFAULT_RUNBOOK_BASE_URL


def test_default_agent_image_matches_the_operator():
    assert (
        yaml.safe_load((CHART / "values.yaml").read_text())["defaults"]["agentImage"] == DEFAULT_AGENT_IMAGE
    )


def test_resources_scheduling_and_pod_metadata(render):
    docs = render(
        "--set", "resources.limits.cpu=1",
        "--set", "resources.requests.memory=256Mi",
        "--set", "nodeSelector.pool=system",
        "--set", "tolerations[0].key=dedicated",
        "--set", "tolerations[0].operator=Exists",
        "--set", "podAnnotations.team=platform",
        "--set", "imagePullSecrets[0].name=regcred",
        "--set", "priorityClassName=system-cluster-critical",
    )  # fmt: skip
    pod = docs.one("Deployment")["spec"]["template"]
    assert docs.container()["resources"]["limits"]["cpu"] == 1
    assert docs.container()["resources"]["requests"]["memory"] == "256Mi"
    assert pod["spec"]["nodeSelector"] == {"pool": "system"}
    assert pod["spec"]["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert pod["metadata"]["annotations"]["team"] == "platform"
    assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"


def test_watch_namespaces_and_log_level(render):
    args = render(
        "--set", "operator.watchNamespaces={team-a,team-b}", "--set", "operator.logLevel=debug"
    ).container()["args"]  # fmt: skip
    assert "--all-namespaces" not in args
    assert {"--namespace=team-a", "--namespace=team-b", "--debug"} <= set(args)


# ---------------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("release", "args", "fullname"),
    [
        ("shepherd", [], "shepherd"),
        ("prod", [], "prod-shepherd"),
        ("my-shepherd-prod", [], "my-shepherd-prod"),
        ("prod", ["--set", "nameOverride=herder"], "prod-herder"),
        ("prod", ["--set", "fullnameOverride=agents-operator"], "agents-operator"),
        ("r" * 50, ["--set", "nameOverride=" + "n" * 20], ("r" * 50 + "-" + "n" * 20)[:63]),
    ],
)
def test_fullname(render, release, args, fullname):
    docs = render(*args, release=release)
    assert docs.one("Deployment")["metadata"]["name"] == fullname
    assert len(fullname) <= 63
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= 63


def test_selector_labels_are_stable(render):
    docs = render(release="prod")
    selector = docs.one("Deployment")["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "shepherd", "app.kubernetes.io/instance": "prod"}
    assert docs.one("Service")["spec"]["selector"] == selector


def test_namespace_override_and_common_labels(render):
    docs = render("--set", "namespaceOverride=ops", "--set-string", "commonLabels.cost-center=42")
    for doc in docs:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            assert doc["metadata"]["namespace"] == "ops", doc["kind"]
        assert doc["metadata"]["labels"]["cost-center"] == "42"
    assert docs.one("ClusterRoleBinding")["subjects"][0]["namespace"] == "ops"


# ---------------------------------------------------------------------------------------- RBAC


def test_cluster_role_rules_are_the_operators(render):
    docs = render()
    assert docs.one("ClusterRole")["rules"] == rbac.rules()
    binding = docs.one("ClusterRoleBinding")
    assert binding["roleRef"]["name"] == docs.one("ClusterRole")["metadata"]["name"]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "shepherd", "namespace": "shepherd-system"}
    ]


def test_rbac_and_service_account_switches(render, helm):
    docs = render(
        "--set",
        "rbac.create=false",
        "--set",
        "serviceAccount.create=false",
        "--set",
        "serviceAccount.name=sa",
    )
    assert not docs.all("ClusterRole")
    assert not docs.all("ServiceAccount")
    assert docs.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "sa"
    result = helm_template(helm, "--set", "serviceAccount.create=false")
    assert result.returncode != 0
    assert "serviceAccount.name is required" in result.stderr
    annotated = render("--set", "serviceAccount.annotations.role=arn")
    assert annotated.one("ServiceAccount")["metadata"]["annotations"] == {"role": "arn"}


# ---------------------------------------------------------------------------------------- webhook


def test_webhook_self_signed(render):
    docs = render(values=[CHART / "ci" / "webhook-selfsigned-values.yaml"])
    config = docs.one("ValidatingWebhookConfiguration", "shepherd-webhook")
    hook = config["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["clientConfig"]["service"] == {
        "name": "shepherd",
        "namespace": "shepherd-system",
        "path": "/validate-agentdeployment",
        "port": 443,
    }
    assert "caBundle" not in hook["clientConfig"]
    assert hook["rules"][0]["resources"] == ["agentdeployments"]
    assert "annotations" not in config["metadata"]
    assert not docs.all("Certificate")
    assert not docs.all("Issuer")
    ports = {p["name"]: p["targetPort"] for p in docs.one("Service")["spec"]["ports"]}
    assert ports["webhook"] == "webhook"
    env = docs.env()
    assert env["SHEPHERD_WEBHOOK_CERT_MODE"] == "selfSigned"
    assert env["SHEPHERD_WEBHOOK_SERVICE"] == "shepherd.shepherd-system.svc"
    assert env["SHEPHERD_WEBHOOK_CONFIGURATION"] == "shepherd-webhook"
    patch_rule = docs.one("ClusterRole")["rules"][-1]
    assert patch_rule["resourceNames"] == ["shepherd-webhook"]
    assert patch_rule["verbs"] == ["get", "patch"]


def test_webhook_cert_manager(render):
    docs = render(values=[CHART / "ci" / "webhook-certmanager-values.yaml"])
    config = docs.one("ValidatingWebhookConfiguration")
    assert config["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": "shepherd-system/shepherd-webhook"
    }
    certificate = docs.one("Certificate")
    assert certificate["spec"]["secretName"] == "shepherd-webhook-tls"
    assert "shepherd.shepherd-system.svc" in certificate["spec"]["dnsNames"]
    assert certificate["spec"]["issuerRef"]["name"] == docs.one("Issuer")["metadata"]["name"]
    volumes = docs.one("Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-cert", "secret": {"secretName": "shepherd-webhook-tls"}} in volumes
    assert docs.env()["SHEPHERD_WEBHOOK_CERT_MODE"] == "certManager"
    assert all("resourceNames" not in r for r in docs.one("ClusterRole")["rules"])

    external = render(
        "--set",
        "webhook.certificate.issuerRef.name=corp-ca",
        "--set",
        "webhook.certificate.issuerRef.kind=ClusterIssuer",
        values=[CHART / "ci" / "webhook-certmanager-values.yaml"],
    )
    assert not external.all("Issuer")
    assert external.one("Certificate")["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer"}


def test_webhook_off_leaves_no_trace(render):
    docs = render()
    assert "SHEPHERD_WEBHOOK_PORT" not in docs.env()
    assert [p["name"] for p in docs.one("Service")["spec"]["ports"]] == ["metrics"]


# ---------------------------------------------------------------------------------------- monitoring


def test_service_monitor(render):
    docs = render("--set", "serviceMonitor.enabled=true", "--set", "serviceMonitor.labels.release=kps")
    monitor = docs.one("ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kps"
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] == "metrics"
    assert endpoint["honorLabels"] is True
    assert {"action": "replace", "targetLabel": "job", "replacement": "shepherd-operator"} in endpoint[
        "relabelings"
    ]
    service = docs.one("Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()


def test_prometheus_rules_are_the_generated_ones(render):
    docs = render(
        "--set", "prometheusRules.operator.enabled=true", "--set", "prometheusRules.slo.enabled=true"
    )
    rules = {d["metadata"]["name"]: d for d in docs.all("PrometheusRule")}
    assert set(rules) == {"shepherd-operator", "shepherd-slo"}
    for name, source in (
        ("shepherd-operator", "shepherd-operator-rules.yaml"),
        ("shepherd-slo", "shepherd-rules.yaml"),
    ):
        generated = yaml.safe_load((REPO / "alerts" / source).read_text())["groups"]
        assert rules[name]["spec"]["groups"] == generated, name
    operator_alerts = set(_alerts(rules["shepherd-operator"]))
    assert operator_alerts == {
        "ShepherdOperatorDown",
        "ShepherdReconcileErrors",
        "ShepherdPrometheusUnreachable",
    }


def test_prometheus_rules_are_toggled_separately(render):
    docs = render("--set", "prometheusRules.operator.enabled=true")
    assert [d["metadata"]["name"] for d in docs.all("PrometheusRule")] == ["shepherd-operator"]


def test_monitoring_labels_reach_the_operator(render):
    """The operator puts them on its fleet PrometheusRules and per-AgentDeployment PodMonitors."""
    from shepherd.monitoring_labels import POD_MONITOR_LABELS_ENV, RULE_LABELS_ENV, from_environment

    env = render().env()
    assert json.loads(env[RULE_LABELS_ENV]) == {}
    assert json.loads(env[POD_MONITOR_LABELS_ENV]) == {}
    docs = render(
        "--set", "prometheusRules.operator.enabled=true",
        "--set", "prometheusRules.labels.release=kps",
        "--set", "podMonitors.labels.release=kps-pods",
        "--set", "podMonitors.labels.example\\.com/team=platform",
    )  # fmt: skip
    env = docs.env()
    assert json.loads(env[RULE_LABELS_ENV]) == {"release": "kps"}
    assert json.loads(env[POD_MONITOR_LABELS_ENV]) == {"release": "kps-pods", "example.com/team": "platform"}
    assert docs.one("PrometheusRule")["metadata"]["labels"]["release"] == "kps"  # the chart's own, as before
    labels = from_environment(env)  # what the operator reads at start-up
    assert labels.prometheus_rule == {"release": "kps"}
    assert labels.pod_monitor == {"release": "kps-pods", "example.com/team": "platform"}


def test_alert_overrides_and_runbook_base_url(render):
    docs = render(values=[CHART / "ci" / "monitoring-on-values.yaml"])
    alerts = _alerts(docs.one("PrometheusRule", "shepherd-slo"))
    assert "ShepherdLLMFallbackRateHigh" not in alerts
    assert alerts["ShepherdCircuitOpen"]["labels"]["severity"] == "info"
    assert alerts["ShepherdAllCircuitsOpen"]["labels"] == {"severity": "critical", "team": "platform"}
    for name, alert in alerts.items():
        assert alert["annotations"]["runbook_url"] == f"https://runbooks.example.com/shepherd/{name}.md"
    recordings = [r for g in docs.one("PrometheusRule", "shepherd-slo")["spec"]["groups"] for r in g["rules"]]
    assert any(r.get("record") == "shepherd:slo_burn_rate" and "labels" in r for r in recordings)


# ---------------------------------------------------------------------------------------- dashboards


def test_dashboards_as_config_maps(render):
    docs = render("--set", "dashboards.annotations.grafana_folder=Shepherd")
    maps = {d["metadata"]["name"]: d for d in docs.all("ConfigMap")}
    assert set(maps) == {"shepherd-agentdeployment", "shepherd-fleet"}
    for config_map in maps.values():
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert config_map["metadata"]["annotations"] == {"grafana_folder": "Shepherd"}
        ((file_name, content),) = config_map["data"].items()
        assert json.loads(content) == json.loads((REPO / "dashboards" / file_name).read_text())
    assert not render("--set", "dashboards.enabled=false").all("ConfigMap")
    moved = render("--set", "dashboards.namespace=grafana", "--set", "dashboards.label=dash")
    for config_map in moved.all("ConfigMap"):
        assert config_map["metadata"]["namespace"] == "grafana"
        assert config_map["metadata"]["labels"]["dash"] == "1"


# ---------------------------------------------------------------------------------------- notes


def test_notes_tell_the_next_step(helm):
    import subprocess

    result = subprocess.run(
        [str(helm), "install", "demo", str(CHART), "--dry-run=client", "--namespace", "ops"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    example = re.search(r"kubectl apply -f (examples/\S+)", notes)
    assert example, notes
    assert (REPO / example.group(1)).exists(), f"NOTES.txt points at a missing {example.group(1)}"
    assert "defaults.prometheusUrl" in notes
    assert "crd agentdeployments.shepherd.dev" in notes


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == "0.1.0"
    assert chart["appVersion"] == "0.1.0"
    assert Path(CHART / "values.schema.json").exists()


def test_leader_election_reaches_the_operator_and_its_role_holds_the_lease_rules(render):
    docs = render(
        "--set", "replicaCount=3", "--set", "leaderElection.leaseDurationSeconds=15",
        "--set", "operator.statusSettleSeconds=0",
    )  # fmt: skip
    assert docs.one("Deployment", "shepherd")["spec"]["replicas"] == 3
    env = docs.env()
    assert env["SHEPHERD_LEADER_LEASE"] == "shepherd"
    assert env["SHEPHERD_LEADER_LEASE_SECONDS"] == "15"
    assert env["SHEPHERD_LEADER_RENEW_SECONDS"] == "7"
    assert env["SHEPHERD_LEADER_RETRY_SECONDS"] == "2"
    assert env["SHEPHERD_STATUS_SETTLE_SECONDS"] == "0"
    role = docs.one("Role", "shepherd-leader-election")
    assert role["rules"] == rbac.lease_rules()
    binding = docs.one("RoleBinding", "shepherd-leader-election")
    assert binding["roleRef"]["name"] == "shepherd-leader-election"
    assert binding["subjects"][0]["name"] == "shepherd"
