"""A team's project that cannot start says why on the AgentDeployment, as `kubectl get agd` shows it.

The real operator renders an AgentDeployment whose ``spec.config`` is a langgraph.json naming a
graph file that does not exist; the pod bridge runs the real agent-service with that Pod's rendered
environment. The process exits with code 2, having written its message to the terminationMessagePath;
the bridge reports the exit in the Pod's status as the kubelet would (CrashLoopBackOff, lastState,
restartCount); the operator reads the Deployment's Pods and sets Ready=False, reason
AgentStartFailed, with that message, and posts one Warning Event however often it reconciles.
Pointing ``spec.config`` at a sound langgraph.json brings it Ready.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.cluster import Cluster
from tests.harness.podbridge import PodBridge
from tests.harness.processes import wait_until

from .conftest import condition, get_agd, wait_ready
from .redis_pods import agent, pods

NAME = "team-agent"
SELECTOR = f"app.kubernetes.io/component=agent,app.kubernetes.io/instance={NAME}"
GRAPH = textwrap.dedent(
    """
    from langgraph.graph import START, MessagesState, StateGraph

    builder = StateGraph(MessagesState)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    graph = builder.compile()
    """
)


@pytest.fixture
def ns(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("startfail")


@pytest.fixture
def image_dir() -> Iterator[Path]:
    """Where the "image's" files are: not under /tmp, which is the agent container's emptyDir (the
    pod bridge translates /tmp paths to that volume's directory, as the container would see it)."""
    root = Path(tempfile.mkdtemp(prefix="shepherd-project-", dir="/var/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _project(root: Path) -> tuple[Path, Path]:
    """(a langgraph.json whose graph file is missing, a sound one) of one project."""
    (root / "src").mkdir(parents=True)
    (root / "src" / "graph.py").write_text(GRAPH)
    broken, sound = root / "langgraph.json", root / "langgraph-fixed.json"
    broken.write_text(json.dumps({"graphs": {"agent": "./src/missing.py:graph"}}))
    sound.write_text(json.dumps({"graphs": {"agent": "./src/graph.py:graph"}}))
    return broken, sound


def _warnings(kube: Cluster, ns: str, reason: str) -> list[dict[str, Any]]:
    got = kube.kubectl(
        "get", "events", "-n", ns, "-o", "json",
        f"--field-selector=involvedObject.name={NAME},reason={reason},type=Warning",
    )  # fmt: skip
    return json.loads(got.stdout)["items"]


def _agent_status(kube: Cluster, ns: str) -> dict[str, Any] | None:
    for pod in pods(kube, ns, SELECTOR):
        for status in pod["status"].get("containerStatuses") or []:
            if status["name"] == "agent" and not pod["metadata"].get("deletionTimestamp"):
                return status
    return None


def test_a_project_that_cannot_start_makes_the_resource_not_ready_naming_key_and_file(
    kube: Cluster, ns: str, start_operator, redis_url: str, tmp_path: Path, image_dir: Path
) -> None:
    broken, sound = _project(image_dir / "app")
    start_operator(ns)
    kube.apply(agent(NAME, {"external": {"url": redis_url}}, config=str(broken)), namespace=ns)
    # A short restart back-off: the test sees several crashes (and resyncs) in a few seconds.
    bridge = PodBridge(kube, ns, tmp_path / "pods", selector=SELECTOR, restart_seconds=1.0)
    bridge.start_background(interval=0.5)
    try:
        expected = f"{broken}: graphs.agent: file './src/missing.py' not found"

        def failed() -> dict[str, Any] | None:
            ready = condition(get_agd(kube, ns, NAME), "Ready") or {}
            return ready if ready.get("reason") == "AgentStartFailed" else None

        ready = wait_until(failed, timeout=120, what="Ready=False AgentStartFailed", interval=0.5)
        assert ready["status"] == "False"
        assert expected in ready["message"], ready["message"]

        # The Pod says it as a kubelet would, and kwok leaves it so while the container crash-loops.
        def crashed_again() -> dict[str, Any] | None:
            status = _agent_status(kube, ns)
            return status if status and status.get("restartCount", 0) >= 2 else None

        status = wait_until(crashed_again, timeout=120, what="the agent container to crash twice")
        assert status["ready"] is False
        terminated = status["lastState"]["terminated"]
        assert (terminated["exitCode"], terminated["reason"]) == (2, "Error")
        assert expected in terminated["message"]
        # Many reconciles later (resync every 2 s, a Deployment event per crash): one Warning.
        ready_now = condition(get_agd(kube, ns, NAME), "Ready")
        assert (ready_now["reason"], ready_now["lastTransitionTime"]) == (
            "AgentStartFailed",
            ready["lastTransitionTime"],
        )
        (event,) = _warnings(kube, ns, "AgentStartFailed")
        assert expected in event["message"]

        # Fixed: the new Pod serves, the resource is Ready again.
        kube.kubectl(
            "patch", "agd", NAME, "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"config": str(sound)}})
        )
        obj = wait_ready(kube, ns, NAME)
        assert condition(obj, "Ready")["reason"] == "AllPodsReady"
        wait_until(bridge.serving, timeout=120, what="the fixed agent to answer /healthz", interval=0.5)
        assert len(_warnings(kube, ns, "AgentStartFailed")) == 1
    finally:
        bridge.stop()
