"""Many resources at once: reconciles run concurrently and every resource becomes Ready."""

from __future__ import annotations

import json
import os
import time
from collections import Counter

from tests.harness.audit import AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import PRODUCTION_RESYNC, condition

#: SHEPHERD_TEST_AGD_COUNT=100 makes this a quick scale probe (``make bench`` is the real benchmark).
COUNT = int(os.environ.get("SHEPHERD_TEST_AGD_COUNT", "10"))


def test_many_agentdeployments_created_at_once(kube: Cluster, crd_installed, upstream_crds, start_operator):
    ns = kube.namespace("many")
    start_operator(ns, resync=PRODUCTION_RESYNC)
    items = [
        {
            "apiVersion": "shepherd.dev/v1alpha1",
            "kind": "AgentDeployment",
            "metadata": {"name": f"agent-{i:03d}"},
            "spec": {"replicas": 1, "redis": {"external": {"url": "redis://redis.data:6379/0"}}},
        }
        for i in range(COUNT)
    ]
    audit = AuditCounter(kube.audit_log) if kube.audit_log else None
    started = time.monotonic()
    kube.kubectl(
        "apply", "-n", ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    )

    def all_ready() -> bool:
        listed = json.loads(kube.kubectl("get", "agd", "-n", ns, "-o", "json").stdout)["items"]
        ready = [o for o in listed if (condition(o, "Ready") or {}).get("status") == "True"]
        return len(ready) == COUNT

    wait_until(all_ready, timeout=180 + COUNT, what=f"{COUNT} AgentDeployments Ready", interval=1)
    print(f"{COUNT} AgentDeployments Ready in {time.monotonic() - started:.1f}s")  # reported, not asserted
    if audit:
        entries = audit.entries(ns)
        kinds = Counter(
            (e["verb"], e["objectRef"].get("resource"), e["objectRef"].get("subresource"), e["userAgent"][:8])
            for e in entries
        )
        codes = Counter((e.get("responseStatus") or {}).get("code") for e in entries)
        print("operator requests per resource:", {k: round(n / COUNT, 1) for k, n in kinds.most_common()})
        print("response codes:", dict(codes))
    deployments = kube.get("deployments", namespace=ns)["items"]
    assert sorted(d["metadata"]["name"] for d in deployments) == [f"agent-{i:03d}" for i in range(COUNT)]
