"""The Shepherd operator as a real process (the `shepherd-operator` console script)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from .binaries import REPO

OPERATOR_BIN = Path(sys.executable).parent / "shepherd-operator"


class OperatorProcess:
    """`shepherd-operator` watching one namespace, logging to a file."""

    def __init__(self, kubeconfig: Path, namespace: str, log_path: Path, env: dict[str, str] | None = None):
        self.kubeconfig, self.namespace, self.log_path = kubeconfig, namespace, log_path
        self.extra_env = env or {}
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
                [str(OPERATOR_BIN), "--namespace", self.namespace, "--verbose"],
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
