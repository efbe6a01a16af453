"""Operator failover (issue 16): two operators with ``--leader-elect`` and the chart's Lease timings.

For each fleet size N, ``ROUNDS`` times: the leader is killed (SIGKILL, as when its node dies), and at
that moment one resource's spec changes (replicas 1 -> 2, then back). Measured from the kill:

* the Lease taken by the other operator (``holderIdentity`` polled every 0.1 s);
* the change rolled out: the resource's Deployment carries the new replica count and the resource
  reports that generation Ready (polled every 0.1 s).

The killed operator is then started again and becomes the standby (once it reads the Lease: a
Python start takes seconds, and a kill before it would measure that). One more round stops the leader
with SIGTERM instead (a rollout of the operator): it releases the Lease. Durations: the chart's
defaults (lease 10 s, renew deadline 7 s, retry 2 s). Each process runs as its own ServiceAccount.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from shepherd import crd

from bench.operator_scale import _bulk, agent
from tests.harness import components
from tests.harness.audit import AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess, operator_account
from tests.harness.processes import wait_until

SIZES = tuple(int(n) for n in os.environ.get("BENCH_FAILOVER_SIZES", "10,500").split(","))
ROUNDS = int(os.environ.get("BENCH_FAILOVER_ROUNDS", "3"))
POLL = 0.1
LEASE = "shepherd-operator"


class Pair:
    def __init__(self, cluster: Cluster, system: str, watched: str, workdir: Path):
        self.cluster, self.system = cluster, system
        role = f"shepherd-failover-{uuid.uuid4().hex[:6]}"
        self.processes = {
            name: OperatorProcess(
                operator_account(cluster, system, name, role),
                watched,
                workdir / f"{watched}-{name}.log",
                env={"SHEPHERD_NAMESPACE": system, "SHEPHERD_POD_NAME": name, "SHEPHERD_METRICS_PORT": "0"},
                args=["--leader-elect"],
            )
            for name in ("op-a", "op-b")
        }

    def start(self, name: str) -> None:
        """Starts ``name`` and returns once it reads the Lease (a candidate: imports take seconds)."""
        reads = AuditCounter(self.cluster.audit_log, username=f"system:serviceaccount:{self.system}:{name}")
        self.processes[name].start()
        wait_until(
            lambda: any(e["objectRef"].get("resource") == "leases" for e in reads.entries()),
            timeout=300,
            what=f"{name} to read the Lease",
            interval=0.5,
        )

    def holder(self) -> str | None:
        lease = self.cluster.get("lease", LEASE, self.system, check=False) or {}
        return (lease.get("spec") or {}).get("holderIdentity")

    def other(self, name: str) -> str:
        return next(n for n in self.processes if n != name)


def _rolled_out(cluster: Cluster, namespace: str, name: str, replicas: int) -> bool:
    deployment = cluster.get("deployment", name, namespace)
    obj = cluster.get("agentdeployment", name, namespace)
    status = obj.get("status") or {}
    ready = {c["type"]: c["status"] for c in status.get("conditions") or []}.get("Ready")
    return (
        deployment["spec"]["replicas"] == replicas
        and status.get("observedGeneration") == obj["metadata"]["generation"]
        and ready == "True"
    )


def _round(pair: Pair, namespace: str, replicas: int, *, graceful: bool) -> tuple[float, float]:
    leader = pair.holder()
    standby = pair.other(leader)
    start = time.monotonic()
    if graceful:
        pair.processes[leader].stop()
    else:
        pair.processes[leader].kill()
    patch = json.dumps({"spec": {"replicas": replicas}})
    pair.cluster.kubectl("patch", "agd", "a0", "-n", namespace, "--type=merge", "-p", patch)
    wait_until(lambda: pair.holder() == standby, timeout=120, what=f"{standby} to lead", interval=POLL)
    taken = time.monotonic() - start
    wait_until(
        lambda: _rolled_out(pair.cluster, namespace, "a0", replicas),
        timeout=300,
        what="the change made at the failover",
        interval=POLL,
    )
    rolled = time.monotonic() - start
    pair.start(leader)  # back, as the standby
    return taken, rolled


def measure(cluster: Cluster, n: int, workdir: Path) -> dict:
    system, watched = cluster.namespace("failover-sys"), cluster.namespace("failover")
    pair = Pair(cluster, system, watched, workdir)
    pair.start("op-a")
    wait_until(lambda: pair.holder() == "op-a", timeout=120, what="op-a to lead", interval=0.5)
    pair.start("op-b")
    custom = [agent(f"a{i}") for i in range(n)]
    _bulk(lambda body: cluster.apply(body, namespace=watched), custom)
    wait_until(
        lambda: all(
            any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (o.get("status") or {}).get("conditions", [])
            )
            for o in cluster.get("agentdeployments", namespace=watched)["items"]
        ),
        timeout=1800,
        what=f"{n} resources Ready",
        interval=1,
    )
    kills = [_round(pair, watched, 2 if i % 2 == 0 else 1, graceful=False) for i in range(ROUNDS)]
    graceful = _round(pair, watched, 2 if ROUNDS % 2 == 0 else 1, graceful=True)
    for process in pair.processes.values():
        process.stop()
    cluster.kubectl("delete", "namespace", watched, "--timeout=900s")
    return {"n": n, "kills": kills, "graceful": graceful}


def run() -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        workdir = Path(tmp)
        cluster = components.start_cluster(workdir)
        try:
            cluster.kubectl("apply", "--server-side", "-f", str(crd.CRD_PATH))
            cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd.CRD_NAME}")
            for n in SIZES:
                result = measure(cluster, n, workdir)
                rows.append(result)
                print(json.dumps(result), flush=True)
        finally:
            if cluster.local:
                cluster.local.stop()
    lines = [
        "| AgentDeployments | leader stopped by | rounds | Lease taken after (s): median / max "
        "| change made at the failover rolled out after (s): median / max |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in rows:
        for how, samples in (("SIGKILL", row["kills"]), ("SIGTERM (released)", [row["graceful"]])):
            taken, rolled = [s[0] for s in samples], [s[1] for s in samples]
            lines.append(
                f"| {row['n']} | {how} | {len(samples)} | "
                f"{statistics.median(taken):.1f} / {max(taken):.1f} | "
                f"{statistics.median(rolled):.1f} / {max(rolled):.1f} |"
            )
    return "\n".join(lines)
