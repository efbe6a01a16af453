"""The platform team's defaults (chart ``defaults.*`` -> ``SHEPHERD_DEFAULT_*``) reach resources that
omit the field, and only those; a bad value stops the operator at start with the variable's name."""

from __future__ import annotations

import json
import subprocess

import httpx

from tests.harness.cluster import Cluster
from tests.harness.operator import OPERATOR_BIN
from tests.harness.processes import wait_until

from .conftest import PRODUCTION_RESYNC, wait_ready

PLATFORM_IMAGE = "registry.test/platform/agent:7"
PLATFORM_ENV = {
    "SHEPHERD_DEFAULT_AGENT_IMAGE": PLATFORM_IMAGE,
    "SHEPHERD_DEFAULT_SLO": json.dumps({"window": "7d", "availability": {"target": 99.9}}),
    "SHEPHERD_DEFAULT_ERROR_BUDGET_POLICY": json.dumps(
        {"steps": [{"consumedPercent": 90, "action": "FreezeAll"}]}
    ),
}


def agent(name: str, **spec: object) -> dict:
    return {
        "apiVersion": "shepherd.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "redis": {"external": {"url": "redis://127.0.0.1:6390/0"}}, **spec},
    }


def image(kube: Cluster, namespace: str, name: str) -> str:
    return kube.get("deployment", name, namespace)["spec"]["template"]["spec"]["containers"][0]["image"]


def test_omitted_fields_take_the_platform_defaults(kube: Cluster, crd_installed, start_operator, free_port):
    ns = kube.namespace("platform-defaults")
    start_operator(ns, metrics_port=free_port, resync=PRODUCTION_RESYNC, env=PLATFORM_ENV)
    kube.apply(agent("plain"), namespace=ns)
    kube.apply(agent("own", image="registry.test/team/agent:1", slo={"window": "30d"}), namespace=ns)
    wait_ready(kube, ns, "plain")
    wait_ready(kube, ns, "own")

    # The apiserver no longer writes the built-in defaults over the platform's.
    stored = kube.get("agentdeployment", "plain", ns)["spec"]
    assert not {"image", "slo", "errorBudgetPolicy"} & stored.keys(), stored
    assert image(kube, ns, "plain") == PLATFORM_IMAGE
    assert image(kube, ns, "own") == "registry.test/team/agent:1"

    def series(metric: str) -> dict[str, list[str]]:
        text = httpx.get(f"http://127.0.0.1:{free_port}/metrics", timeout=5).text
        lines = [line for line in text.splitlines() if line.startswith(f"{metric}{{")]
        return {
            name: [line for line in lines if f'agentdeployment="{name}"' in line] for name in ("plain", "own")
        }

    seen = wait_until(
        lambda: all((s := series("shepherd_slo_objective")).values()) and s,
        timeout=30,
        what="both objectives",
    )
    assert seen["plain"] == [
        line for line in seen["plain"] if 'slo_window="7d"' in line and line.endswith(" 0.999")
    ]
    # A resource's own SLO is taken whole: its window, and the built-in availability target.
    assert seen["own"] == [
        line for line in seen["own"] if 'slo_window="30d"' in line and line.endswith(" 0.995")
    ]
    # The policy was omitted by both: the platform's single step.
    steps = series("shepherd_slo_policy_step_percent")
    for name in ("plain", "own"):
        assert [line.rsplit(" ", 1)[1] for line in steps[name]] == ["90.0"], steps
        assert 'action="FreezeAll"' in steps[name][0]


def test_a_bad_platform_default_stops_the_start_naming_the_variable(kube: Cluster):
    env = {"KUBECONFIG": str(kube.kubeconfig), "SHEPHERD_DEFAULT_SLO": '{"window": "1y"}', "PATH": "/usr/bin"}
    done = subprocess.run([str(OPERATOR_BIN)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "SHEPHERD_DEFAULT_SLO: window:" in done.stderr, done.stderr
