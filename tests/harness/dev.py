"""`make dev` / `make dev-down`: the local control plane, Redis and Prometheus left running in the
background, Shepherd installed through its Helm chart, and the examples applied.

kwok runs the chart's operator Pod without executing it, so the real `shepherd-operator` process is
started beside it with that Pod's args, env and ServiceAccount identity (the pod bridge).

    python -m tests.harness.dev up      # prints the export KUBECONFIG=... line
    python -m tests.harness.dev down
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from . import components
from .binaries import REPO
from .podbridge import PodBridge
from .processes import kill_pid, wait_until

STATE_DIR = REPO / ".dev"
STATE_FILE = STATE_DIR / "state.json"
CHART = REPO / "charts" / "shepherd"
EXAMPLES = REPO / "examples"
RELEASE, SYSTEM_NAMESPACE = "shepherd", "shepherd-system"


def install_shepherd(cluster, prometheus_url: str) -> list[int]:
    """helm install, then the operator Pod run for real; returns the operator's pid."""
    cluster.helm(
        "upgrade", "--install", RELEASE, str(CHART), "--namespace", SYSTEM_NAMESPACE, "--create-namespace",
        "--set", f"defaults.prometheusUrl={prometheus_url}", "--wait", "--timeout", "180s",
    )  # fmt: skip
    bridge = PodBridge(
        cluster, SYSTEM_NAMESPACE, STATE_DIR / "logs", container="operator",
        selector=f"app.kubernetes.io/instance={RELEASE}", entrypoint="shepherd-operator",
        as_service_account=True, detach=True,
    )  # fmt: skip
    wait_until(lambda: bridge.sync() or bridge.bridged, timeout=60, what="the operator Pod to run")
    return [pod.process.pid for pod in bridge.bridged.values()]


def up() -> None:
    if STATE_FILE.exists():
        sys.exit(f"already running (state in {STATE_FILE}); run `make dev-down` first")
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    STATE_DIR.mkdir()
    pids: list[int] = []
    try:
        cluster = components.start_cluster(STATE_DIR, detach=True)
        pids += [p.pid for p in cluster.local.processes] if cluster.local else []
        redis = components.start_redis(STATE_DIR, detach=True)
        prometheus = components.start_prometheus(STATE_DIR, detach=True)
        pids += [redis.process.pid, prometheus.process.pid]
        cluster.install_upstream_crds()
        cluster.ensure_persistent_volumes(20)
        pids += install_shepherd(cluster, prometheus.url)
        namespace = "shepherd-examples"
        cluster.kubectl("create", "namespace", namespace, check=False)
        cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES))
    except BaseException:
        for pid in reversed(pids):
            kill_pid(pid)
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        raise
    STATE_FILE.write_text(
        json.dumps(
            {
                "pids": pids,
                "kubeconfig": str(cluster.kubeconfig),
                "redis_url": redis.url,
                "prometheus_url": prometheus.url,
            },
            indent=2,
        )
    )
    print(f"Local Shepherd environment is up (logs in {STATE_DIR}/kube/logs and {STATE_DIR}/logs).")
    print("  Shepherd:   helm release 'shepherd' in shepherd-system; examples in shepherd-examples")
    print("  Try:        kubectl get agd -n shepherd-examples")
    print(f"  Redis:      {redis.url}")
    print(f"  Prometheus: {prometheus.url}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")


def down() -> None:
    if not STATE_FILE.exists():
        print("nothing running")
        return
    state = json.loads(STATE_FILE.read_text())
    for pid in reversed(state["pids"]):
        kill_pid(pid)
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    print("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down"])
    {"up": up, "down": down}[parser.parse_args().action]()


if __name__ == "__main__":
    main()
