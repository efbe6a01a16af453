"""`make dev` / `make dev-down`: the local control plane, Redis, Prometheus and the operator, left
running in the background, with Shepherd's CRD and examples applied.

    python -m tests.harness.dev up      # prints the export KUBECONFIG=... line
    python -m tests.harness.dev down
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from . import components
from .binaries import REPO
from .processes import ManagedProcess, kill_pid

STATE_DIR = REPO / ".dev"
STATE_FILE = STATE_DIR / "state.json"
CRD_DIR = REPO / "charts" / "shepherd" / "crds"
EXAMPLES = REPO / "examples"


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
        if CRD_DIR.is_dir() and any(CRD_DIR.glob("*.yaml")):
            cluster.kubectl("apply", "--server-side", "-f", str(CRD_DIR))
        operator = shutil.which("shepherd-operator", path=str(Path(sys.executable).parent))
        if operator:
            process = ManagedProcess(
                "shepherd-operator",
                [operator],
                STATE_DIR / "logs",
                env={"KUBECONFIG": str(cluster.kubeconfig)},
            )
            (STATE_DIR / "logs").mkdir(exist_ok=True)
            pids.append(process.start(detach=True).pid)
        if EXAMPLES.is_dir() and any(EXAMPLES.glob("*.yaml")):
            namespace = "shepherd-examples"
            cluster.kubectl("create", "namespace", namespace, check=False)
            cluster.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES), check=False)
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
