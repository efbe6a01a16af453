"""Start and stop the whole set of real components (used by the pytest fixtures and `make dev`)."""

from __future__ import annotations

import os
from pathlib import Path

from .binaries import toolset
from .cluster import Cluster
from .controlplane import LocalControlPlane
from .prometheus import PrometheusServer
from .redis import RedisServer

EXISTING_CLUSTER_ENV = "SHEPHERD_KUBECONFIG"


def start_cluster(workdir: Path, *, detach: bool = False) -> Cluster:
    tools = toolset()
    existing = os.environ.get(EXISTING_CLUSTER_ENV)
    if existing:
        return Cluster(tools, Path(existing), workdir)
    local = LocalControlPlane(tools, workdir / "kube", detach=detach)
    try:
        local.start()
    except BaseException:
        local.stop()
        raise
    return Cluster(tools, local.kubeconfig, workdir, local)


def start_redis(workdir: Path, *, detach: bool = False) -> RedisServer:
    return RedisServer(toolset().redis_server, workdir, detach=detach).start()


def start_prometheus(workdir: Path, *, detach: bool = False) -> PrometheusServer:
    directory = workdir / "prometheus"
    directory.mkdir(parents=True, exist_ok=True)
    return PrometheusServer(toolset().prometheus, directory, detach=detach).start()
