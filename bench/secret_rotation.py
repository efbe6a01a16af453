"""Secret update to every Pod rolled (issue 14), against its peer: a spec change of the same fleet.

On the local control plane (kwok plays the kubelet: a Pod becomes Ready about as soon as it is
scheduled) with the real operator as a process (production resync, 300 s: only the Secret watch
can react in time), for a Secret referenced by N AgentDeployments of R replicas each:

* rotation: t0 just before ``kubectl apply`` of the Secret with a new value; t1 when every
  Deployment's Pod template has changed (the new secrets digest: the operator's reaction); t2 when every
  Deployment has rolled (observedGeneration current, updated = ready = replicas);
* peer: the same fleet's spec changed instead (one ``kubectl apply`` of every AgentDeployment with a
  new ``spec.env`` value): the same t1/t2.

Both are polled every 100 ms with one LIST of the namespace's Deployments. ``ROUNDS`` rounds each;
medians and maxima reported.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from shepherd import api, crd

from tests.harness import components
from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess
from tests.harness.processes import wait_until

SIZES = [
    tuple(int(x) for x in size.split("x"))
    for size in os.environ.get("BENCH_ROTATION_SIZES", "1x2,1x10,20x2,50x2").split(",")
]
ROUNDS = int(os.environ.get("BENCH_ROTATION_ROUNDS", "3"))
POLL = 0.1


def _secret(value: str) -> dict[str, Any]:
    meta = {"name": "shared-token"}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {"token": value}}


def _agent(name: str, replicas: int, marker: str) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "redis": {"external": {"url": "redis://redis.example.invalid:6379/0"}},
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
            "env": [
                {"name": "EXTRA_TOKEN", "secretKeyRef": {"name": "shared-token", "key": "token"}},
                {"name": "BENCH_MARKER", "value": marker},
            ],
        },
    }


def _deployments(kube: Cluster, ns: str) -> list[dict[str, Any]]:
    out = kube.kubectl("get", "deployments", "-n", ns, "-o", "json")
    return json.loads(out.stdout)["items"]


def _template(dep: dict[str, Any]) -> str:
    return json.dumps(dep["spec"]["template"], sort_keys=True)


def _rolled(dep: dict[str, Any]) -> bool:
    status = dep.get("status") or {}
    replicas = dep["spec"]["replicas"]
    return status.get("observedGeneration") == dep["metadata"]["generation"] and status.get(
        "updatedReplicas"
    ) == replicas == status.get("readyReplicas") == status.get("replicas")


def _measure(kube: Cluster, ns: str, count: int, change) -> tuple[float, float]:
    before = {d["metadata"]["name"]: _template(d) for d in _deployments(kube, ns)}
    start = time.monotonic()
    change()
    reacted = None
    while True:
        deps = _deployments(kube, ns)
        now = time.monotonic() - start
        moved = [d for d in deps if _template(d) != before[d["metadata"]["name"]]]
        if reacted is None and len(moved) == count:
            reacted = now
        if reacted is not None and all(_rolled(d) for d in deps):
            return reacted, now
        if now > 300:
            raise TimeoutError(f"{len(moved)}/{count} changed after 300 s")
        time.sleep(POLL)


def _scenario(kube: Cluster, workdir: Path, count: int, replicas: int) -> dict[str, Any]:
    ns = kube.namespace("bench-rotation")
    operator = OperatorProcess(
        kube.kubeconfig, ns, workdir / f"operator-{ns}.log", env={"SHEPHERD_RESYNC_SECONDS": "300"}
    ).start()
    try:
        names = [f"agent-{i:03d}" for i in range(count)]
        kube.apply(_secret("v0"), *(_agent(n, replicas, "m0") for n in names), namespace=ns)
        wait_until(
            lambda: len(_deployments(kube, ns)) == count and all(_rolled(d) for d in _deployments(kube, ns)),
            timeout=300,
            what="the fleet ready",
            interval=0.5,
        )
        rotation, peer = [], []
        for round_ in range(1, ROUNDS + 1):
            secret = _secret(f"v{round_}")
            rotation.append(_measure(kube, ns, count, lambda s=secret: kube.apply(s, namespace=ns)))
            agents = [_agent(n, replicas, f"m{round_}") for n in names]
            peer.append(_measure(kube, ns, count, lambda a=agents: kube.apply(*a, namespace=ns)))
        return {"count": count, "replicas": replicas, "rotation": rotation, "peer": peer}
    finally:
        operator.stop()
        kube.kubectl("delete", "namespace", ns, "--wait=false")


def run() -> str:
    workdir = Path(tempfile.mkdtemp(prefix="bench-rotation-"))
    kube = components.start_cluster(workdir / "kube")
    try:
        kube.apply_crds(crd.CRD_PATH)
        rows = [_scenario(kube, workdir, count, replicas) for count, replicas in SIZES]
    finally:
        kube.delete_namespaces()
        if kube.local:
            kube.local.stop()
    lines = [
        f"Secret update to all Pods rolled; peer: a spec change of the same fleet. {ROUNDS} rounds each, "
        "median (max), seconds. kwok Pods are Ready as soon as scheduled, so the roll time is the "
        "control plane's (operator, Deployment/ReplicaSet controllers, scheduler), not container start-up.",
        "",
        "| AgentDeployments x replicas | rotation: templates changed | rotation: all Pods rolled "
        "| spec change: templates changed | spec change: all Pods rolled |",
        "|---|---:|---:|---:|---:|",
    ]

    def cell(samples: list[tuple[float, float]], index: int) -> str:
        values = [s[index] for s in samples]
        return f"{statistics.median(values):.2f} ({max(values):.2f})"

    for r in rows:
        lines.append(
            f"| {r['count']} x {r['replicas']} | {cell(r['rotation'], 0)} | {cell(r['rotation'], 1)} "
            f"| {cell(r['peer'], 0)} | {cell(r['peer'], 1)} |"
        )
    return "\n".join(lines)
