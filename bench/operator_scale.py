"""Operator at fleet scale (issues 4 and 16): N AgentDeployments created at once on the local control
plane, whose kwok nodes hold every Pod.

For each N:

* create: time until every resource is Ready, apiserver requests (and writes, by kind) per resource
  until the operator goes quiet, and how long after its Deployment each resource showed Ready;
* the floor, in the same run: the same rendered children (ownerReferences dropped, since there is
  no owner) created directly by one bulk client with no operator, timed until every Deployment is
  ready;
* full resync: the operator is restarted and resumes every resource (each one compared with its
  live children; kopf's initial listing of resources and Deployments first). It must write nothing
  for them; its end is the moment every resource's children were listed (read from the audit log).
  While it runs, ``PROBES`` new resources are created one by one, and for each the delay between its
  Deployment becoming ready and the resource showing Ready is measured (p99: the goal is 5 s);
* the operator's peak RSS (VmHWM) over both phases.

The operator runs as a ServiceAccount bound to its own ClusterRole (shepherd/rbac.py), so the
request counts are its alone and RBAC holds at scale. Readiness times come from two watches held by
this process (Deployments and AgentDeployments), stamped when each event arrives.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import kubernetes
from shepherd import api, crd, rbac
from shepherd.render import render_all
from shepherd.render.common import OWNER_LABEL
from shepherd.render.monitoring import placeholder_content

from bench.measure import peak_rss_mib, percentile
from tests.harness import components
from tests.harness.audit import WRITE_VERBS, AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

SIZES = tuple(int(n) for n in os.environ.get("BENCH_OPERATOR_SIZES", "10,100,500,2000").split(","))
BULK_WORKERS = 8
OPERATOR_SA = ("shepherd-system", "shepherd-operator")
#: Resources created one by one while the restarted operator resumes the fleet.
PROBES = int(os.environ.get("BENCH_OPERATOR_PROBES", "20"))
PROBE_PREFIX = "probe-"


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
        timeout=1800,
        what=f"{n} floor Deployments",
        interval=1,
    )
    elapsed = time.monotonic() - start
    # Wait for the namespace to go, so the next size starts on an empty cluster.
    cluster.kubectl("delete", "namespace", namespace, "--timeout=900s")
    return elapsed


class ReadyClock:
    """When each Deployment first became ready and each AgentDeployment first showed Ready=True,
    stamped as the watch events arrive (by owner name)."""

    def __init__(self, cluster: Cluster, namespace: str):
        self.deployment_ready: dict[str, float] = {}
        self.resource_ready: dict[str, float] = {}
        self._stop = threading.Event()
        apps = kubernetes.client.AppsV1Api(cluster.api_client)
        custom = kubernetes.client.CustomObjectsApi(cluster.api_client)
        self._threads = [
            threading.Thread(
                target=self._watch,
                args=(
                    apps.list_namespaced_deployment,
                    (namespace,),
                    _deployment_ready,
                    self.deployment_ready,
                ),
                daemon=True,
            ),
            threading.Thread(
                target=self._watch,
                args=(
                    custom.list_namespaced_custom_object,
                    (api.GROUP, api.VERSION, namespace, api.PLURAL),
                    _resource_ready,
                    self.resource_ready,
                ),
                daemon=True,
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _watch(self, func, args, ready, into: dict[str, float]) -> None:
        version = ""
        while not self._stop.is_set():
            watch = kubernetes.watch.Watch()
            try:
                for event in watch.stream(
                    func, *args, resource_version=version, timeout_seconds=60, deserialize=False
                ):
                    obj = event["object"]
                    version = obj["metadata"].get("resourceVersion", version)
                    name = _owner(obj)
                    if name not in into and event["type"] != "DELETED" and ready(obj):
                        into[name] = time.monotonic()
                    if self._stop.is_set():
                        break
            except kubernetes.client.ApiException:
                version = ""  # 410 Gone: start again from a fresh list
            finally:
                watch.stop()

    def lags(self, names: list[str]) -> list[float]:
        """Seconds from each Deployment ready to its resource Ready (both seen)."""
        return [
            self.resource_ready[n] - self.deployment_ready[n]
            for n in names
            if n in self.resource_ready and n in self.deployment_ready
        ]

    def stop(self) -> None:
        self._stop.set()


def _owner(obj: dict) -> str:
    return (obj["metadata"].get("labels") or {}).get(OWNER_LABEL) or obj["metadata"]["name"]


def _deployment_ready(obj: dict) -> bool:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    return status.get("readyReplicas", 0) == spec.get("replicas", 1) and status.get(
        "observedGeneration", 0
    ) >= obj["metadata"].get("generation", 0)


def _resource_ready(obj: dict) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


class Operator:
    def __init__(self, kubeconfig: Path, namespace: str, log: Path):
        self.args = [str(Path(sys.executable).parent / "shepherd-operator"), "--namespace", namespace]
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "SHEPHERD_METRICS_PORT": "0",
        }
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

    wait_until(settled, timeout=900, what="the operator to go quiet", interval=1)


def _listed_owners(counter: AuditCounter) -> set[str]:
    """Owners whose Deployments the operator listed (one LIST may name many: ``in (a,b,...)``)."""
    owners: set[str] = set()
    for entry in counter.entries():
        ref = entry.get("objectRef") or {}
        if entry["verb"] != "list" or ref.get("resource") != "deployments":
            continue
        for selector in parse_qs(urlparse(entry["requestURI"]).query).get("labelSelector", []):
            for term in selector.split(f"{OWNER_LABEL}")[1:]:
                term = term.strip()
                if term.startswith("="):
                    owners.add(term[1:].split(",")[0])
                elif term.startswith("in"):
                    owners.update(term[term.index("(") + 1 : term.index(")")].split(","))
    return owners


def _writes_by_kind(counter: AuditCounter) -> Counter[str]:
    """The operator's writes: child applies, status writes, Events, anything else (e.g. metadata)."""
    kinds: Counter[str] = Counter()
    for entry in counter.entries():
        if entry["verb"] not in WRITE_VERBS:
            continue
        ref = entry.get("objectRef") or {}
        if ref.get("resource") == "events":
            kinds["events"] += 1
        elif ref.get("resource") == api.PLURAL:
            kinds["status" if ref.get("subresource") == "status" else "agentdeployment"] += 1
        else:
            kinds["children"] += 1
    return kinds


def _create(custom: kubernetes.client.CustomObjectsApi, namespace: str, name: str) -> None:
    custom.create_namespaced_custom_object(api.GROUP, api.VERSION, namespace, api.PLURAL, agent(name))


def _all_ready(clock: ReadyClock, names: list[str]) -> bool:
    return all(n in clock.resource_ready for n in names)


def with_operator(cluster: Cluster, kubeconfig: Path, n: int, workdir: Path) -> dict:
    namespace = cluster.namespace("op")
    counter = AuditCounter(
        cluster.audit_log, username=f"system:serviceaccount:{OPERATOR_SA[0]}:{OPERATOR_SA[1]}"
    )
    clock = ReadyClock(cluster, namespace)
    operator = Operator(kubeconfig, namespace, workdir / f"operator-{n}.log")
    operator.start()
    wait_until(lambda: counter.verbs().get("watch", 0) >= 2, timeout=120, what="the operator to watch")
    counter.mark()
    custom = kubernetes.client.CustomObjectsApi(cluster.api_client)
    names = [f"a{i}" for i in range(n)]
    start = time.monotonic()
    _bulk(lambda name: _create(custom, namespace, name), names)
    wait_until(
        lambda: _all_ready(clock, names), timeout=1800, what=f"{n} AgentDeployments Ready", interval=0.5
    )
    elapsed = time.monotonic() - start
    create_lags = clock.lags(names)
    _quiet(counter)
    on_create = counter.verbs()
    writes = _writes_by_kind(counter)
    rss = operator.stop()

    # A full resync: the restarted operator resumes (compares) every resource and must write nothing
    # for them, while new resources created meanwhile become Ready as fast as their Deployments.
    counter.mark()
    resync_start = time.monotonic()
    operator.start()
    wait_until(lambda: counter.verbs().get("list", 0) > 0, timeout=120, what="the restarted operator to list")
    probes = [f"{PROBE_PREFIX}{i}" for i in range(PROBES)]
    for name in probes:
        _create(custom, namespace, name)
        time.sleep(0.5)
    wait_until(
        lambda: set(names) <= _listed_owners(counter),
        timeout=1800,
        what=f"the restarted operator to compare all {n} resources",
        interval=1,
    )
    resync_seconds = time.monotonic() - resync_start
    wait_until(lambda: _all_ready(clock, probes), timeout=600, what="the probes Ready", interval=0.5)
    _quiet(counter)
    fleet_writes = [w for w in counter.writes() if not w.split("/", 1)[1].startswith(PROBE_PREFIX)]
    on_resync = counter.verbs()
    probe_lags = clock.lags(probes)
    rss = max(rss, operator.stop())
    clock.stop()
    # Wait for the namespace to go, so the next size starts on an empty cluster.
    cluster.kubectl("delete", "namespace", namespace, "--timeout=900s")
    return {
        "seconds": elapsed,
        "create_requests": sum(on_create.values()) / n,
        "create_writes": sum(on_create[v] for v in WRITE_VERBS) / n,
        "create_writes_by_kind": {k: v / n for k, v in sorted(writes.items())},
        "create_lag_p50": percentile(create_lags, 50),
        "create_lag_p99": percentile(create_lags, 99),
        "resync_seconds": resync_seconds,
        "resync_requests": sum(on_resync.values()) / n,
        "resync_writes": len(fleet_writes),
        "resync_writes_sample": fleet_writes[:10],
        "probe_lag_p50": percentile(probe_lags, 50),
        "probe_lag_p99": percentile(probe_lags, 99),
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
        "| requests/resource on create (writes) | Ready after its Deployment p50 / p99 (s) "
        "| full resync (s) | requests/resource on resync | writes on resync "
        "| new resource Ready after its Deployment during resync p50 / p99 (s) | operator peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, r, floor_seconds in rows:
        lines.append(
            f"| {n} | {r['seconds']:.1f} | {floor_seconds:.1f} | {r['seconds'] / floor_seconds:.2f}x | "
            f"{r['create_requests']:.1f} ({r['create_writes']:.2f}) | "
            f"{r['create_lag_p50']:.2f} / {r['create_lag_p99']:.2f} | {r['resync_seconds']:.1f} | "
            f"{r['resync_requests']:.2f} | {r['resync_writes']} | "
            f"{r['probe_lag_p50']:.2f} / {r['probe_lag_p99']:.2f} | {r['rss']:.0f} |"
        )
    return "\n".join(lines)
