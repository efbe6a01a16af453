"""Backup and restore of the managed Redis, told as it happens: write, back up, lose the volume,
restore, everything back; and the data volume outliving the AgentDeployment.

The real operator renders everything on the real apiserver; the StatefulSet and Job controllers
make the Pods and the volume claims; kwok marks the Pods Running. What is executed for real, here,
exactly as rendered (``PodRunner``): redis-server and its probe, the agent Pod's agent-service, the
backup Job Pod's script (redis-cli --rdb against the running Redis), the restore init container's
script. What is simulated: a volume is a local directory keyed by its claim's uid (a new claim is a
new, empty directory), the CronJob's schedule is not waited for (a Job is made from it, as
``kubectl create job --from=cronjob/...`` does), and the network is loopback.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import httpx
import pytest

from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import exists, wait_ready
from .redis_pods import ManagedRedis, agent, pods, redis_selector, running_pod

NAME = "keep"
BACKUP = {"schedule": "0 3 * * *", "retention": 2, "restoreFrom": "latest"}


@pytest.fixture
def ns(kube: Cluster, crd_installed: None, upstream_crds: None) -> str:
    return kube.namespace("backup")


def _conversations(base: str, count: int, offset: int = 0) -> dict[str, list[str]]:
    """``count`` threads, each with a run; thread id -> the contents of its messages."""
    out = {}
    for index in range(offset, offset + count):
        thread = httpx.post(f"{base}/threads", json={}, timeout=10).json()["thread_id"]
        run = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": f"note {index}"}]}}
        assert httpx.post(f"{base}/threads/{thread}/runs/wait", json=run, timeout=30).status_code == 200
        out[thread] = _messages(base, thread)
    return out


def _messages(base: str, thread: str) -> list[str]:
    state = httpx.get(f"{base}/threads/{thread}/state", timeout=10)
    assert state.status_code == 200, state.text
    return [m["content"] for m in state.json()["values"]["messages"]]


def _back_up(kube: Cluster, ns: str, managed: ManagedRedis, job: str) -> str:
    """A Job from the CronJob, its Pod's container run for real; returns the script's output."""
    kube.kubectl("create", "job", job, f"--from=cronjob/{NAME}-backup", "-n", ns)
    pod = wait_until(
        lambda: next(iter(pods(kube, ns, f"job-name={job}")), None), timeout=60, what=f"{job}'s pod"
    )
    done = managed.runner.run(pod, "backup")
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_write_back_up_lose_the_volume_restore_and_everything_is_back(
    kube: Cluster, ns: str, start_operator, tmp_path: Path
) -> None:
    start_operator(ns)
    kube.apply(agent(NAME, {"managed": {"backup": BACKUP}}), namespace=ns)
    wait_ready(kube, ns, NAME)
    pod = running_pod(kube, ns, redis_selector(NAME))
    managed = ManagedRedis(kube, ns, NAME, tmp_path / "volumes")
    # A new deployment has no snapshot yet: the restore step lets Redis start empty.
    first = managed.runner.run(pod, "restore")
    assert first.returncode == 0, first.stderr
    assert "no snapshot" in first.stdout
    managed.start(pod)
    bridge = managed.bridge(tmp_path / "agent")
    (served,) = bridge.wait_serving(1)
    base = f"http://127.0.0.1:{served.port}"
    written = _conversations(base, 3)

    outputs = [_back_up(kube, ns, managed, "manual-1")]
    written |= _conversations(base, 1, offset=3)  # after the first snapshot: only in the later ones
    for job in ("manual-2", "manual-3"):
        time.sleep(1.1)  # snapshots are named by the second
        outputs.append(_back_up(kube, ns, managed, job))
    backups = managed.runner.claim_dir(f"{NAME}-redis-backup")
    kept = sorted(p.name for p in backups.glob("dump-*.rdb"))
    assert len(kept) == 2, (kept, outputs)  # retention: 2
    assert all(name in " ".join(outputs[1:]) for name in kept)

    # The data volume is lost: Redis and the agent stop, the claim and its contents go.
    bridge.stop()
    managed.stop()
    shutil.rmtree(managed.runner.claim_dir(f"data-{NAME}-redis-0"))
    old_claim = kube.get("pvc", f"data-{NAME}-redis-0", ns)["metadata"]["uid"]
    kube.kubectl("delete", "pvc", f"data-{NAME}-redis-0", "-n", ns, "--wait=false")
    kube.kubectl("delete", "pod", pod["metadata"]["name"], "-n", ns)
    # The StatefulSet makes a new Pod with a new, empty claim; its init container restores.
    new_pod = running_pod(kube, ns, redis_selector(NAME), not_uid=pod["metadata"]["uid"])
    assert kube.get("pvc", f"data-{NAME}-redis-0", ns)["metadata"]["uid"] != old_claim
    restored = ManagedRedis(kube, ns, NAME, tmp_path / "volumes")
    done = restored.runner.run(new_pod, "restore")
    assert done.returncode == 0, done.stderr
    assert f"filled from {backups}/{kept[-1]}" in done.stdout
    try:
        restored.start(new_pod)
        bridge = restored.bridge(tmp_path / "agent-after")
        (served,) = bridge.wait_serving(1)
        base = f"http://127.0.0.1:{served.port}"
        assert {thread: _messages(base, thread) for thread in written} == written
        # Restarting over data never restores again (the snapshot is older than the data).
        again = restored.runner.run(new_pod, "restore")
        assert again.returncode == 0
        assert "holds data, nothing restored" in again.stdout
    finally:
        bridge.stop()
        restored.stop()

    # Deleting the AgentDeployment keeps both volumes (deleteDataWithResource is false).
    kube.kubectl("delete", "agentdeployment", NAME, "-n", ns)
    wait_until(
        lambda: not exists(kube, "statefulset", f"{NAME}-redis", ns), timeout=60, what="StatefulSet gone"
    )
    time.sleep(2)  # give the garbage collector the time it would need to (wrongly) delete them
    assert exists(kube, "pvc", f"data-{NAME}-redis-0", ns)
    assert exists(kube, "pvc", f"{NAME}-redis-backup", ns)


def test_delete_data_with_resource_removes_both_volumes(kube: Cluster, ns: str, start_operator) -> None:
    start_operator(ns)
    kube.apply(agent("gone", {"managed": {"backup": {}, "deleteDataWithResource": True}}), namespace=ns)
    wait_ready(kube, ns, "gone")
    wait_until(lambda: exists(kube, "pvc", "data-gone-redis-0", ns), timeout=60, what="the data claim")
    assert exists(kube, "pvc", "gone-redis-backup", ns)
    kube.kubectl("delete", "agentdeployment", "gone", "-n", ns)
    for claim in ("data-gone-redis-0", "gone-redis-backup"):
        wait_until(lambda c=claim: not exists(kube, "pvc", c, ns), timeout=90, what=f"{claim} deleted")
