"""The real operator, run as the chart deploys it: the chart's ServiceAccount (so its ClusterRole),
the container's args and env, and its health probe; an example AgentDeployment becomes Ready and
runs the platform's default agent image set in the chart values.

kwok does not run containers, so the process runs here with exactly the rendered arguments and
environment, but for two deviations: it watches only the test's namespace instead of
`--all-namespaces`, so it leaves other tests' resources alone, and its health and metrics ports are
free loopback ports.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx

from tests.harness.podbridge import PodBridge
from tests.harness.processes import ManagedProcess, free_port, wait_until

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "shepherd"
OPERATOR_BIN = Path(sys.executable).parent / "shepherd-operator"
PLATFORM_IMAGE = "registry.test/platform/agent:3"


def _args(container: dict, watch: str, health_port: int) -> list[str]:
    out = []
    for arg in container["args"]:
        if arg == "--all-namespaces":
            arg = f"--namespace={watch}"
        elif arg.startswith("--liveness="):
            path = arg.rsplit("/", 1)[-1]
            arg = f"--liveness=http://127.0.0.1:{health_port}/{path}"
        out.append(arg)
    return out


def _ready(kube, namespace: str, name: str) -> bool:
    obj = kube.get("agentdeployment", name, namespace=namespace)
    conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
    ready = conditions.get("Ready", {})
    return (
        ready.get("status") == "True"
        and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
    )


def test_example_becomes_ready_under_the_charts_service_account(kube, tmp_path):
    kube.install_upstream_crds()
    namespace = kube.namespace("chart-op")
    apps = kube.namespace("chart-op-apps")
    release = "shepherd-op"
    kube.helm(
        "install", release, str(CHART), "--namespace", namespace, "--wait", "--timeout", "180s",
        "--set", f"defaults.agentImage={PLATFORM_IMAGE}",
    )  # fmt: skip
    try:
        pod = kube.get("deployment", release, namespace=namespace)["spec"]["template"]["spec"]
        container = pod["containers"][0]
        running = next(
            p
            for p in kube.get("pods", namespace=namespace)["items"]
            if p["metadata"]["labels"].get("app.kubernetes.io/instance") == release
        )
        service_account = pod["serviceAccountName"]
        user = f"system:serviceaccount:{namespace}:{service_account}"
        wait_until(
            lambda: kube.kubectl(
                "auth", "can-i", "patch", "agentdeployments.shepherd.dev/status", "-n", apps, f"--as={user}",
                check=False,
            ).returncode == 0,
            timeout=30,
            what="the chart's ClusterRoleBinding in effect",
            interval=0.5,
        )  # fmt: skip
        health_port = free_port()
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "KUBECONFIG": str(kube.kubeconfig_for_serviceaccount(namespace, service_account)),
            # The env as the kubelet would resolve it for the chart's (kwok-run) Pod.
            **PodBridge(kube, namespace, tmp_path / "bridge").environment(running, container),
            "SHEPHERD_METRICS_PORT": str(free_port()),
            "SHEPHERD_METRICS_ADDRESS": "127.0.0.1",
        }
        operator = ManagedProcess(
            "shepherd-operator",
            [str(OPERATOR_BIN), *_args(container, apps, health_port)],
            tmp_path,
            env,
            inherit_env=False,
            cwd=REPO,
        ).start()
        try:
            path = container["livenessProbe"]["httpGet"]["path"]
            operator.wait_ready(
                lambda: httpx.get(f"http://127.0.0.1:{health_port}{path}", timeout=2).status_code == 200,
                timeout=60,
            )
            kube.apply(
                {
                    "apiVersion": "shepherd.dev/v1alpha1",
                    "kind": "AgentDeployment",
                    "metadata": {"name": "example"},
                    "spec": {"replicas": 1, "redis": {"external": {"url": "redis://redis.example:6379/0"}}},
                },
                namespace=apps,
            )
            try:
                wait_until(
                    lambda: _ready(kube, apps, "example"), timeout=120, what="example Ready", interval=0.5
                )
            except TimeoutError as error:
                raise AssertionError(f"{error}\n--- operator log ---\n{operator.tail(60)}") from None
            agent = kube.get("deployment", "example", namespace=apps)["spec"]["template"]["spec"]
            assert agent["containers"][0]["image"] == PLATFORM_IMAGE  # spec.image omitted: the chart's
            forbidden = [line for line in operator.tail(10_000).splitlines() if " is forbidden: " in line]
            assert forbidden == [], "\n".join(forbidden)
        finally:
            # Deleted while the operator runs, so its finalizer is removed and the namespace can go.
            kube.kubectl("delete", "agentdeployment", "example", "-n", apps, "--timeout=60s", check=False)
            operator.stop()
    finally:
        kube.helm("uninstall", release, "--namespace", namespace, "--wait", "--timeout", "120s")
