"""The operator's /metrics: reconcile counters and the shepherd_slo_* objectives of its resources."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import PRODUCTION_RESYNC, wait_ready

BASIC = Path(__file__).resolve().parents[3] / "examples" / "basic.yaml"


def test_metrics_endpoint(kube: Cluster, crd_installed, upstream_crds, start_operator, free_port):
    ns = kube.namespace("metrics")
    start_operator(ns, metrics_port=free_port, resync=PRODUCTION_RESYNC)
    kube.kubectl("apply", "-n", ns, "-f", str(BASIC))
    wait_ready(kube, ns, "basic")

    def scrape() -> str:
        return httpx.get(f"http://127.0.0.1:{free_port}/metrics", timeout=5).text

    labels = f'agentdeployment="basic",namespace="{ns}"'
    text = wait_until(
        lambda: (t := scrape()) and f"shepherd_reconcile_total{{{labels}}}" in t and t,
        timeout=30,
        what="reconcile counter on /metrics",
        interval=0.5,
    )
    assert "shepherd_slo_objective{" in text
    objective = [
        line for line in text.splitlines() if line.startswith("shepherd_slo_objective{") and ns in line
    ]
    assert any('sli="availability"' in line and line.endswith(" 0.995") for line in objective), objective
