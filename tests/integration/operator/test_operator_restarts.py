"""The operator stays correct across an apiserver restart (its watches and client reconnect)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.harness.cluster import Cluster
from tests.harness.processes import wait_until

from .conftest import PRODUCTION_RESYNC, wait_ready

BASIC = Path(__file__).resolve().parents[3] / "examples" / "basic.yaml"


def test_apiserver_restart(kube: Cluster, crd_installed, upstream_crds, start_operator):
    if kube.local is None:
        pytest.skip("needs the local control plane (restarts its apiserver)")
    ns = kube.namespace("restart")
    start_operator(ns, resync=PRODUCTION_RESYNC)
    kube.kubectl("apply", "-n", ns, "-f", str(BASIC))
    wait_ready(kube, ns, "basic")

    apiserver = next(p for p in kube.local.processes if p.name == "kube-apiserver")
    apiserver.stop()
    apiserver.start()
    wait_until(kube.local.apiserver_up, timeout=90, what="kube-apiserver back up", interval=0.5)

    patch = {"spec": {"replicas": 3}}
    wait_until(
        lambda: (
            kube.kubectl(
                "patch", "agd", "basic", "-n", ns, "--type=merge", "-p", json.dumps(patch), check=False
            ).returncode
            == 0
        ),
        timeout=60,
        what="patch accepted after restart",
        interval=0.5,
    )
    obj = wait_ready(kube, ns, "basic", timeout=180)
    assert obj["status"]["ready"] == "3/3"
