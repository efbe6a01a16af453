"""Fixtures for the operator on the real local control plane: the CRD, and the operator as a process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from shepherd import crd

from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess
from tests.harness.processes import wait_until

REPO = Path(__file__).resolve().parents[3]
#: Drift is repaired within this many seconds by the periodic resync (short for drift tests).
RESYNC_SECONDS = "2"
#: The production default: tests without drift use it, so status must flow from watch events alone.
PRODUCTION_RESYNC = "300"


@pytest.fixture(scope="session")
def crd_installed(kube: Cluster) -> None:
    # (kubectl wait fails outright when it looks before the CRD has any conditions.)
    kube.apply_crds(crd.CRD_PATH)


@pytest.fixture(scope="session")
def upstream_crds(kube: Cluster) -> None:
    kube.install_upstream_crds()
    kube.ensure_persistent_volumes(40)  # managed Redis claims bind to these


@pytest.fixture
def start_operator(
    request: pytest.FixtureRequest, kube: Cluster, crd_installed: None, tmp_path: Path
) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []
    request.node._operators = started  # for the failure report below

    def start(
        namespace: str,
        kubeconfig: Path | None = None,
        metrics_port: int = 0,
        resync: str = RESYNC_SECONDS,
        env: dict[str, str] | None = None,
    ) -> OperatorProcess:
        op = OperatorProcess(
            kubeconfig or kube.kubeconfig,
            namespace,
            tmp_path / f"operator-{len(started)}.log",
            env={
                "SHEPHERD_RESYNC_SECONDS": resync,
                "SHEPHERD_METRICS_PORT": str(metrics_port),
                **(env or {}),
            },
        )
        started.append(op.start())
        return op

    yield start
    for op in started:
        op.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.failed and call.when == "call":
        for op in getattr(item, "_operators", []):
            path = op.log_path
            if path.exists():
                report.sections.append((f"{path.name} (tail)", path.read_text(errors="replace")[-8000:]))
    return report


# ------------------------------------------------------------------------------------------- helpers


def get_agd(kube: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    return kube.get("agentdeployment", name, namespace, check=False)


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == kind:
            return cond
    return None


def wait_ready(kube: Cluster, namespace: str, name: str, timeout: float = 120) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        obj = get_agd(kube, namespace, name)
        cond = condition(obj, "Ready")
        ok = (
            cond
            and cond["status"] == "True"
            and obj["status"].get("observedGeneration") == obj["metadata"]["generation"]
            # the rollout is over.
            and (condition(obj, "Progressing") or {}).get("status") == "False"
        )
        return obj if ok else None

    return wait_until(ready, timeout=timeout, what=f"AgentDeployment {namespace}/{name} Ready", interval=0.5)


def exists(kube: Cluster, kind: str, name: str, namespace: str) -> bool:
    return kube.kubectl("get", kind, name, "-n", namespace, check=False).returncode == 0
