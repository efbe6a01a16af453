"""Two real operator processes with --leader-elect on the local control plane: one works, the other
waits; killed, the leader is replaced, and the audit log shows that no request was sent twice.

Each process runs as its own ServiceAccount (both bound to the operator's ClusterRole and the
leader election's Role), so the apiserver's audit log tells their requests apart.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter

import httpx
import pytest

from tests.harness.audit import AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess, operator_account
from tests.harness.processes import free_port, wait_until

from .conftest import PRODUCTION_RESYNC, condition, get_agd, wait_ready

#: Short durations, for a quick test (`python -m bench operator_failover` measures the chart's).
LEASE = {
    "SHEPHERD_LEADER_LEASE_SECONDS": "4",
    "SHEPHERD_LEADER_RENEW_SECONDS": "3",
    "SHEPHERD_LEADER_RETRY_SECONDS": "1",
}


def agent(name: str, **spec) -> dict:
    return {
        "apiVersion": "shepherd.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "redis": {"external": {"url": "redis://redis.example:6379/0"}},
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
            **spec,
        },
    }


@pytest.fixture
def pair(kube: Cluster, crd_installed, tmp_path):
    """Two candidates for one Lease in their own namespace, each under its own ServiceAccount."""
    if kube.audit_log is None:
        pytest.skip("needs the local control plane's audit log")
    system, watched = kube.namespace("ha-sys"), kube.namespace("ha")
    role = f"shepherd-ha-{uuid.uuid4().hex[:6]}"
    processes: dict[str, OperatorProcess] = {}

    def start(name: str) -> OperatorProcess:
        if name not in processes:
            kubeconfig = operator_account(kube, system, name, role)
        else:
            kubeconfig = processes[name].kubeconfig
        health = free_port()
        op = OperatorProcess(
            kubeconfig,
            watched,
            tmp_path / f"{name}.log",
            env={
                "SHEPHERD_NAMESPACE": system,
                "SHEPHERD_POD_NAME": name,
                "SHEPHERD_RESYNC_SECONDS": PRODUCTION_RESYNC,
                "SHEPHERD_METRICS_PORT": "0",
                **LEASE,
            },
            args=["--leader-elect", f"--liveness=http://127.0.0.1:{health}/healthz"],
        ).start()
        op.health = f"http://127.0.0.1:{health}"
        processes[name] = op
        wait_until(lambda: _get(op.health + "/healthz") == 200, timeout=60, what=f"{name} to answer /healthz")
        return op

    start.system, start.watched = system, watched
    yield start
    for op in processes.values():
        op.stop()


def _get(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.HTTPError:
        return None


def _holder(kube: Cluster, namespace: str) -> str | None:
    lease = kube.get("lease", "shepherd-operator", namespace, check=False) or {}
    return (lease.get("spec") or {}).get("holderIdentity")


def _event_uids(kube: Cluster, namespace: str, reason: str) -> set[str] | None:
    """The uids of every Event in ``namespace`` once one has ``reason``."""
    events = kube.get("events", namespace=namespace)["items"]
    if any(e["reason"] == reason for e in events):
        return {e["metadata"]["uid"] for e in events}
    return None


def _user(system: str, name: str) -> str:
    return f"system:serviceaccount:{system}:{name}"


def test_the_standby_takes_over_a_killed_leader_without_repeating_its_work(kube: Cluster, pair):
    system, ns = pair.system, pair.watched
    a = pair("op-a")
    wait_until(lambda: _holder(kube, system) == "op-a", timeout=60, what="op-a to lead")
    b = pair("op-b")
    standby = AuditCounter(kube.audit_log, username=_user(system, "op-b"))
    assert _get(a.health + "/readyz") == 200
    assert _get(b.health + "/readyz") == 503

    kube.apply(agent("one"), agent("two"), namespace=ns)
    # A Secret that is missing: a Warning Event, posted by the leader once.
    missing = agent(
        "keyless", model={"provider": "anthropic", "apiKeySecretRef": {"name": "none", "key": "k"}}
    )
    kube.apply(missing, namespace=ns)
    for name in ("one", "two"):
        wait_ready(kube, ns, name)
    wait_until(
        lambda: (condition(get_agd(kube, ns, "keyless"), "Ready") or {}).get("reason") == "SecretMissing",
        timeout=60,
        what="keyless Ready=False SecretMissing",
    )
    before = wait_until(lambda: _event_uids(kube, ns, "SecretMissing"), timeout=30, what="the Warning Event")
    # The standby only ever read the Lease (its next try may still be due: wait for one).
    wait_until(standby.entries, timeout=60, what="the standby to try the Lease")
    assert {(e["verb"], e["objectRef"]["resource"]) for e in standby.entries()} == {("get", "leases")}

    # Kill the leader, then change the spec of one resource and create another one at once.
    after = {name: AuditCounter(kube.audit_log, username=_user(system, name)) for name in ("op-a", "op-b")}
    a.kill()
    killed = dt.datetime.now(dt.UTC)
    patch = json.dumps({"spec": {"replicas": 2}})
    kube.kubectl("patch", "agd", "two", "-n", ns, "--type=merge", "-p", patch)
    kube.apply(agent("late"), namespace=ns)
    wait_until(lambda: _holder(kube, system) == "op-b", timeout=60, what="op-b to take the Lease")
    assert _get(b.health + "/readyz") == 200
    wait_ready(kube, ns, "late")
    assert wait_ready(kube, ns, "two")["status"]["ready"] == "2/2"

    received = [dt.datetime.fromisoformat(e["requestReceivedTimestamp"]) for e in after["op-a"].entries()]
    assert [t for t in received if t > killed] == []  # (its watches end after it: they were open before)
    writes = [w for w in after["op-b"].writes() if not w.startswith("update leases/")]
    untouched = [w for w in writes if w.split("/")[1] in ("one", "keyless", "one-config")]
    assert untouched == [], untouched  # the resume compared them and found them right
    repeated = {w: n for w, n in Counter(writes).items() if n > 1 and "/status" not in w}
    assert repeated == {}, repeated  # every child written once (a status may be written as Pods start)
    assert "patch deployments/two" in writes
    assert "patch deployments/late" in writes
    # Events: each transition posted once, by one operator.
    events = [
        e
        for e in kube.get("events", namespace=ns)["items"]
        if e["source"].get("component") == "shepherd-operator"
    ]
    posted = Counter((e["involvedObject"]["name"], e["reason"]) for e in events)
    assert posted[("keyless", "SecretMissing")] == 1
    assert [key for key, n in posted.items() if n > 1] == []
    assert all(e["count"] == 1 for e in events)
    since_kill = {e["involvedObject"]["name"] for e in events if e["metadata"]["uid"] not in before}
    assert since_kill <= {"late", "two"}  # nothing re-announced about the resources already handled


def test_a_leader_that_shuts_down_lets_the_next_one_start_at_once(kube: Cluster, pair):
    system, ns = pair.system, pair.watched
    a = pair("op-a")
    wait_until(lambda: _holder(kube, system) == "op-a", timeout=60, what="op-a to lead")
    b = pair("op-b")
    kube.apply(agent("one"), namespace=ns)
    wait_ready(kube, ns, "one")
    a.stop()  # SIGTERM: kopf stops, then the Lease is released
    assert a.proc.returncode == 0
    lease = kube.get("lease", "shepherd-operator", system)
    assert lease["spec"].get("holderIdentity") in (None, "op-b")  # released (or already taken)
    wait_until(lambda: _holder(kube, system) == "op-b", timeout=10, what="op-b to take the released Lease")
    leader = AuditCounter(kube.audit_log, username=_user(system, "op-b"))
    kube.kubectl("patch", "agd", "one", "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"replicas": 2}}))
    assert wait_ready(kube, ns, "one")["status"]["ready"] == "2/2"
    assert "patch deployments/one" in leader.writes()
    b.stop()
    assert b.proc.returncode == 0
    assert kube.get("lease", "shepherd-operator", system)["spec"].get("holderIdentity") is None
