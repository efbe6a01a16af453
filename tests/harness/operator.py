"""The Shepherd operator as a real process (the `shepherd-operator` console script)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from shepherd import rbac

from .binaries import REPO
from .processes import wait_until

OPERATOR_BIN = Path(sys.executable).parent / "shepherd-operator"


class OperatorProcess:
    """`shepherd-operator` watching one namespace, logging to a file."""

    def __init__(
        self,
        kubeconfig: Path,
        namespace: str,
        log_path: Path,
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ):
        self.kubeconfig, self.namespace, self.log_path = kubeconfig, namespace, log_path
        self.extra_env = env or {}
        self.extra_args = args or []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "SHEPHERD_METRICS_ADDRESS": "127.0.0.1",  # tests serve on loopback only
            **self.extra_env,
        }
        env.pop("KUBERNETES_SERVICE_HOST", None)  # never pick up an in-cluster config by accident
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(OPERATOR_BIN), "--namespace", self.namespace, "--verbose", *self.extra_args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        """SIGKILL: no cleanup, as when a node dies mid-reconcile."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def operator_account(cluster, namespace: str, name: str, role: str) -> Path:
    """A ServiceAccount ``namespace/name`` bound to the operator's ClusterRole ``role`` (created if
    absent) and to the leader election's Role in ``namespace``; returns its kubeconfig. Each account
    is one identity in the audit log, so two operator processes' requests can be told apart."""
    cluster.kubectl("create", "serviceaccount", name, "-n", namespace)
    lease_role = f"{name}-leader-election"
    cluster.apply(
        rbac.cluster_role(role),
        rbac.cluster_role_binding(namespace, name, name=f"{role}-{name}", role=role),
        rbac.lease_role(namespace, name=lease_role),
        rbac.lease_role_binding(namespace, name, name=lease_role),
    )
    user = f"system:serviceaccount:{namespace}:{name}"

    def bound() -> bool:  # the authorizer's cache takes a moment to see new bindings
        checks = [("update", "leases.coordination.k8s.io"), ("patch", "agentdeployments.shepherd.dev/status")]
        can = [
            cluster.kubectl("auth", "can-i", v, w, "-n", namespace, f"--as={user}", check=False)
            for v, w in checks
        ]
        return all(result.returncode == 0 for result in can)

    wait_until(bound, timeout=30, what=f"RBAC of {user} in effect", interval=0.5)
    return cluster.kubeconfig_for_serviceaccount(namespace, name)
