"""Two AgentDeployments on one external Redis never see each other's data.

The real operator renders both on the real apiserver (each gets REDIS_KEY_PREFIX from its namespace
and name); each one's agent Pod runs as a live agent-service process with exactly its rendered
environment, all against the same real redis-server. The test then looks at what is in Redis."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis

from tests.harness.cluster import Cluster
from tests.harness.podbridge import PodBridge

from .conftest import wait_ready
from .redis_pods import agent

NAMES = ("alpha", "beta")


@pytest.fixture
def ns(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("shared")


def _bridge(kube: Cluster, ns: str, name: str, log_dir: Path) -> PodBridge:
    selector = f"app.kubernetes.io/component=agent,app.kubernetes.io/instance={name}"
    return PodBridge(kube, ns, log_dir, selector=selector)


def _scan(client: redis.Redis, pattern: str) -> list[str]:
    return [key.decode() for key in client.scan_iter(pattern, count=1000)]


def _chat(base: str, text: str) -> str:
    thread = httpx.post(f"{base}/threads", json={"metadata": {"owner": text}}, timeout=10).json()["thread_id"]
    run = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": text}]}}
    assert httpx.post(f"{base}/threads/{thread}/runs/wait", json=run, timeout=30).status_code == 200
    return thread


def test_two_deployments_on_one_redis_never_share_a_key(
    kube: Cluster, ns: str, start_operator, redis_url: str, tmp_path: Path
) -> None:
    start_operator(ns)
    kube.apply(*(agent(name, {"external": {"url": redis_url}}) for name in NAMES), namespace=ns)
    bridges = {name: _bridge(kube, ns, name, tmp_path / name) for name in NAMES}
    try:
        bases = {}
        for name in NAMES:
            wait_ready(kube, ns, name)
            (served,) = bridges[name].wait_serving(1)
            bases[name] = f"http://127.0.0.1:{served.port}"
        threads = {name: _chat(bases[name], f"secret of {name}") for name in NAMES}

        for name, other in (NAMES, NAMES[::-1]):
            base = bases[name]
            # The other's thread does not exist here, by id, by search or by its metadata.
            assert httpx.get(f"{base}/threads/{threads[other]}", timeout=10).status_code == 404
            found = httpx.post(f"{base}/threads/search", json={"limit": 1000}, timeout=10).json()
            assert [t["thread_id"] for t in found] == [threads[name]]
            by_owner = {"metadata": {"owner": f"secret of {other}"}}
            assert httpx.post(f"{base}/threads/search", json=by_owner, timeout=10).json() == []
            run = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "x"}]}}
            assert (
                httpx.post(f"{base}/threads/{threads[other]}/runs", json=run, timeout=10).status_code == 404
            )

        # In Redis: each deployment's keys carry its own prefix, and the other's thread appears
        # only under the other's prefix.
        prefixes = {name: f"shepherd:{ns}:{name}:" for name in NAMES}
        client = redis.Redis.from_url(redis_url)
        keys = {
            name: [k.decode() for k in client.scan_iter(f"{prefixes[name]}*", count=1000)] for name in NAMES
        }
        for name, other in (NAMES, NAMES[::-1]):
            assert any(threads[name] in key for key in keys[name]), keys[name]
            assert not any(threads[other] in key for key in keys[name])
        everything = _scan(client, f"*{ns}*")
        assert sorted(everything) == sorted(keys["alpha"] + keys["beta"])
        for name in NAMES:
            thread_keys = _scan(client, f"*{threads[name]}*")
            assert thread_keys
            assert all(key.startswith(prefixes[name]) for key in thread_keys), thread_keys
    finally:
        for bridge in bridges.values():
            bridge.stop()
