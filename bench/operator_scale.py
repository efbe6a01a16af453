"""Operator at fleet scale (issue 4): N AgentDeployments created at once on the local control plane.

For each N: time until every resource is Ready, apiserver requests per resource on create and on a
no-op resync (an operator restart: every resource is resumed and must cause zero writes), and the
operator's peak RSS. The floor, in the same run: the same rendered children (ownerReferences
dropped, since there is no owner) created directly by one bulk client with no operator, timed until
every Deployment is ready. The operator runs as a ServiceAccount bound to its own ClusterRole
(shepherd/rbac.py), so the request counts are its alone and RBAC holds at scale.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kubernetes
from shepherd import api, crd, rbac
from shepherd.render import render_all
from shepherd.render.monitoring import placeholder_content

from bench.measure import peak_rss_mib
from tests.harness import components
from tests.harness.audit import WRITE_VERBS, AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

SIZES = tuple(int(n) for n in os.environ.get("BENCH_OPERATOR_SIZES", "10,100,500").split(","))
BULK_WORKERS = 8
OPERATOR_SA = ("shepherd-system", "shepherd-operator")


def agent(name: str) -> dict:
    """The smallest realistic resource: one replica, external Redis, no optional monitoring."""
    return {
        "apiVersion": f"{api.GROUP}/{api.VERSION}",
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {
            "graph": "agent_service.graphs.reference_agent:graph",
            "replicas": 1,
            "model": {"provider": "stub"},
            "redis": {"external": {"url": "redis://redis.example.invalid:6379/0"}},
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
        },
    }


def _bulk(function, items) -> None:
    with concurrent.futures.ThreadPoolExecutor(BULK_WORKERS) as pool:
        for future in [pool.submit(function, item) for item in items]:
            future.result()


class BulkClient:
    """One server-side apply request per object, discovery done once up front (not per thread)."""

    def __init__(self, client: kubernetes.client.ApiClient, objects: list[dict]):
        dynamic = kubernetes.dynamic.DynamicClient(client)
        kinds = {(obj["apiVersion"], obj["kind"]) for obj in objects}
        self.resources = {kind: dynamic.resources.get(api_version=kind[0], kind=kind[1]) for kind in kinds}

    def apply(self, obj: dict, namespace: str) -> None:
        resource = self.resources[(obj["apiVersion"], obj["kind"])]
        resource.server_side_apply(
            body=obj, namespace=namespace, field_manager="bench-floor", force_conflicts=True
        )


def _deployments_ready(cluster: Cluster, namespace: str, count: int) -> bool:
    items = cluster.get("deployments", namespace=namespace)["items"]
    ready = [d for d in items if d["status"].get("readyReplicas", 0) == d["spec"]["replicas"]]
    return len(ready) == count


def floor(cluster: Cluster, n: int) -> float:
    namespace = cluster.namespace("floor")
    children = []
    for index in range(n):
        body = agent(f"a{index}")
        body["metadata"].update(namespace=namespace, uid=f"00000000-0000-0000-0000-{index:012d}")
        resource = api.parse(body)
        for child in render_all(resource, placeholder_content(resource)).all:
            child["metadata"].pop("ownerReferences", None)
            children.append(child)
    client = BulkClient(cluster.api_client, children)
    start = time.monotonic()
    _bulk(lambda obj: client.apply(obj, namespace), children)
    wait_until(
        lambda: _deployments_ready(cluster, namespace, n),
        timeout=900,
        what=f"{n} floor Deployments",
        interval=0.5,
    )
    elapsed = time.monotonic() - start
    # Wait for the namespace to go, so the next size starts on an empty cluster.
    cluster.kubectl("delete", "namespace", namespace, "--timeout=600s")
    return elapsed


def _all_ready(cluster: Cluster, namespace: str, n: int) -> bool:
    items = cluster.get("agentdeployments", namespace=namespace)["items"]
    ready = 0
    for item in items:
        conditions = {c["type"]: c["status"] for c in item.get("status", {}).get("conditions", [])}
        ready += conditions.get("Ready") == "True"
    return ready == n


class Operator:
    def __init__(self, kubeconfig: Path, namespace: str, log: Path):
        self.args = [str(Path(sys.executable).parent / "shepherd-operator"), "--namespace", namespace]
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> float:
        rss = peak_rss_mib(self.process.pid)
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # reported by the caller's log; the numbers still count
            print(f"operator did not exit within 60 s of SIGTERM; killed (log: {self.log})", flush=True)
            self.process.kill()
            self.process.wait()
        return rss


def _quiet(counter: AuditCounter, seconds: float = 5.0) -> None:
    """Waits until the operator has sent nothing for `seconds`."""
    last = (-1, time.monotonic())

    def settled() -> bool:
        nonlocal last
        total = sum(counter.verbs().values())
        if total != last[0]:
            last = (total, time.monotonic())
            return False
        return time.monotonic() - last[1] >= seconds

    wait_until(settled, timeout=600, what="the operator to go quiet", interval=0.5)


def with_operator(cluster: Cluster, kubeconfig: Path, n: int, workdir: Path) -> dict:
    namespace = cluster.namespace("op")
    counter = AuditCounter(
        cluster.audit_log, username=f"system:serviceaccount:{OPERATOR_SA[0]}:{OPERATOR_SA[1]}"
    )
    operator = Operator(kubeconfig, namespace, workdir / f"operator-{n}.log")
    operator.start()
    time.sleep(2)  # let kopf start its watches before the burst (outside the timed section)
    counter.mark()
    custom = kubernetes.client.CustomObjectsApi(cluster.api_client)
    start = time.monotonic()
    _bulk(
        lambda i: custom.create_namespaced_custom_object(
            api.GROUP, api.VERSION, namespace, api.PLURAL, agent(f"a{i}")
        ),
        range(n),
    )
    wait_until(
        lambda: _all_ready(cluster, namespace, n),
        timeout=900,
        what=f"{n} AgentDeployments Ready",
        interval=0.5,
    )
    elapsed = time.monotonic() - start
    _quiet(counter)
    on_create = counter.verbs()
    rss = operator.stop()

    # A no-op resync: a restarted operator resumes every resource and must write nothing.
    counter.mark()
    operator.start()
    wait_until(lambda: counter.verbs().get("list", 0) > 0, timeout=120, what="the restarted operator to list")
    _quiet(counter)
    on_resync = counter.verbs()
    rss = max(rss, operator.stop())
    # Wait for the namespace to go, so the next size starts on an empty cluster.
    cluster.kubectl("delete", "namespace", namespace, "--timeout=600s")
    return {
        "seconds": elapsed,
        "create_requests": sum(on_create.values()) / n,
        "create_writes": sum(on_create[v] for v in WRITE_VERBS) / n,
        "resync_requests": sum(on_resync.values()) / n,
        "resync_writes": sum(on_resync[v] for v in WRITE_VERBS),
        "rss": rss,
    }


def _operator_kubeconfig(cluster: Cluster) -> Path:
    namespace, name = OPERATOR_SA
    cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("create", "serviceaccount", name, "-n", namespace)
    cluster.apply(rbac.cluster_role(), rbac.cluster_role_binding(namespace=namespace, service_account=name))
    return cluster.kubeconfig_for_serviceaccount(namespace, name)


def run() -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
        workdir = Path(tmp)
        cluster = components.start_cluster(workdir)
        try:
            cluster.kubectl("apply", "--server-side", "-f", str(crd.CRD_PATH))
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}")
            kubeconfig = _operator_kubeconfig(cluster)
            for n in SIZES:
                floor_seconds = floor(cluster, n)
                result = with_operator(cluster, kubeconfig, n, workdir)
                rows.append((n, result, floor_seconds))
                print(json.dumps({"n": n, "floor": floor_seconds, **result}), flush=True)
        finally:
            if cluster.local:
                cluster.local.stop()
    lines = [
        "| N | operator: all Ready (s) | floor: bulk client, no operator (s) | ratio "
        "| requests/resource on create (writes) | requests/resource on no-op resync | writes on no-op resync "
        "| operator peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r, floor_seconds in rows:
        lines.append(
            f"| {n} | {r['seconds']:.1f} | {floor_seconds:.1f} | {r['seconds'] / floor_seconds:.2f}x | "
            f"{r['create_requests']:.1f} ({r['create_writes']:.1f}) | {r['resync_requests']:.2f} | "
            f"{r['resync_writes']} | {r['rss']:.0f} |"
        )
    return "\n".join(lines)
