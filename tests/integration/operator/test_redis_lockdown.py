"""The managed Redis is locked down: on the real apiserver with the real operator, its Pod's rendered
containers run here for real (redis-server, the rendered probe, Debian's redis_exporter, the agent).

What is executed: redis-server with the rendered arguments and environment (ACL users, generated
passwords by $(VAR) expansion, protected mode, maxmemory; with TLS on, the Secret's certificate);
the rendered exec probe; the exporter with its rendered environment; the agent Pod's agent-service.
What is not: the network plugin. The NetworkPolicy is checked by evaluating the rendered object
(which Pods its rules admit, on which port); the clients here all connect over loopback, so the
refusals below come from Redis' ACL (which protected mode backs up for non-loopback clients), not
from a packet filter.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.harness.cluster import Cluster
from tests.harness.pki import CertificateAuthority

from .conftest import wait_ready
from .redis_pods import ManagedRedis, agent, auth, redis_selector, running_pod

NAME = "locked"


@pytest.fixture
def ns(kube: Cluster, crd_installed: None, upstream_crds: None) -> str:
    return kube.namespace("redis")


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def admits(policy: dict[str, Any], labels: dict[str, str], namespace: str, port: str) -> bool:
    """Whether the NetworkPolicy lets a Pod (labels, namespace) reach ``port`` of the Pods it selects."""
    own = policy["metadata"]["namespace"]
    for rule in policy["spec"].get("ingress", []):
        if port not in {p["port"] for p in rule.get("ports", [])}:
            continue
        for peer in rule.get("from", []):
            if "namespaceSelector" in peer:
                selected = _matches(peer["namespaceSelector"], {"kubernetes.io/metadata.name": namespace})
                if selected and _matches(peer.get("podSelector", {}), labels):
                    return True
            elif namespace == own and _matches(peer["podSelector"], labels):
                return True
    return False


def test_managed_redis_refuses_strangers_and_serves_its_agent(
    kube: Cluster, ns: str, start_operator, tmp_path: Path
) -> None:
    operator = start_operator(ns)
    kube.apply(agent(NAME, {"managed": {"resources": {"limits": {"memory": "64Mi"}}}}), namespace=ns)
    wait_ready(kube, ns, NAME)
    passwords = auth(kube, ns, NAME)
    secret = kube.get("secret", f"{NAME}-redis-auth", ns)
    assert sorted(passwords) == ["agent", "backup", "exporter"]
    assert len(set(passwords.values())) == 3
    assert all(len(p) == 64 for p in passwords.values())
    assert secret["metadata"]["ownerReferences"][0]["kind"] == "AgentDeployment"

    pod = running_pod(kube, ns, redis_selector(NAME))
    managed = ManagedRedis(kube, ns, NAME, tmp_path / "redis")
    try:
        managed.start(pod)
        # Unauthenticated, wrong password, the disabled default user: refused by the real Redis.
        with pytest.raises(redis.AuthenticationError):
            managed.client().get("anything")
        with pytest.raises(redis.AuthenticationError):
            managed.client("agent", "not-the-password").ping()
        with pytest.raises(redis.AuthenticationError):
            managed.client("default", "").ping()
        # Each user can do what it is for, and nothing more.
        as_agent = managed.client("agent", passwords["agent"])
        assert as_agent.set("k", "v")
        assert as_agent.get("k") == b"v"
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_agent.config_get("dir")  # no CONFIG SET dir + SAVE to write files, no ACL reading
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_agent.flushall()
        as_exporter = managed.client("exporter", passwords["exporter"])
        assert as_exporter.info("memory")["maxmemory"] == 48 * 1024 * 1024  # 75 % of the 64Mi limit
        assert as_exporter.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        with pytest.raises(redis.exceptions.NoPermissionError):
            as_exporter.get("k")
        assert as_exporter.config_get("protected-mode") == {"protected-mode": "yes"}

        # The exporter, with its rendered environment, scrapes through its read-only user.
        managed.start_exporter(pod)
        text = _wait_scrape(managed)
        assert re.search(r"^redis_up 1$", text, re.MULTILINE), text[:2000]
        assert re.search(r"^redis_memory_max_bytes 5.0331648e\+07$", text, re.MULTILINE)

        # The agent Pod's real agent-service works through its ACL user.
        bridge = managed.bridge(tmp_path / "agent")
        try:
            (served,) = bridge.wait_serving(1)
            base = f"http://127.0.0.1:{served.port}"
            thread = httpx.post(f"{base}/threads", json={}, timeout=10).json()["thread_id"]
            run = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
            answer = httpx.post(f"{base}/threads/{thread}/runs/wait", json=run, timeout=30)
            assert answer.status_code == 200, answer.text
            assert any(thread in key.decode() for key in as_agent.scan_iter(count=1000))
        finally:
            bridge.stop()
    finally:
        managed.stop()

    # The passwords are in the Secret only: not in the resource, its Events or the operator's log.
    seen = kube.kubectl("get", "agentdeployment", NAME, "-n", ns, "-o", "yaml").stdout
    seen += kube.kubectl("get", "events", "-n", ns, "-o", "yaml").stdout
    seen += kube.kubectl("get", "statefulset,deployment,configmap", "-n", ns, "-o", "yaml").stdout
    seen += operator.log_path.read_text()
    assert not [user for user, password in passwords.items() if password in seen]


def test_the_redis_network_policy_admits_only_this_deployments_agents(
    kube: Cluster, ns: str, start_operator
) -> None:
    start_operator(ns)
    spec = {"networkPolicy": {"monitoringNamespaces": ["monitoring"]}}
    kube.apply(agent(NAME, {"managed": {}}, **spec), agent("other", {"managed": {}}), namespace=ns)
    wait_ready(kube, ns, NAME)
    policy = kube.get("networkpolicy", f"{NAME}-redis", ns)
    assert policy["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "redis"
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    own_agent = running_pod(kube, ns, f"app.kubernetes.io/component=agent,app.kubernetes.io/instance={NAME}")
    other_agent = running_pod(kube, ns, "app.kubernetes.io/component=agent,app.kubernetes.io/instance=other")
    assert admits(policy, own_agent["metadata"]["labels"], ns, "redis")
    assert not admits(policy, other_agent["metadata"]["labels"], ns, "redis"), "another deployment's agent"
    assert not admits(policy, {}, ns, "redis"), "a Pod without the agent's labels"
    assert not admits(policy, own_agent["metadata"]["labels"], "elsewhere", "redis"), "same labels elsewhere"
    assert admits(policy, {"app": "prometheus"}, "monitoring", "metrics"), "the exporter port from monitoring"
    assert not admits(policy, {"app": "prometheus"}, "monitoring", "redis"), "but not Redis itself"


def _wait_scrape(managed: ManagedRedis) -> str:
    from tests.harness.processes import wait_until

    def scraped() -> str | None:
        try:
            text = managed.scrape()
        except httpx.HTTPError:
            return None
        return text if "redis_up" in text else None

    return wait_until(scraped, timeout=30, what="redis_exporter to serve /metrics", interval=0.3)


def test_tls_from_a_cert_manager_style_secret(kube: Cluster, ns: str, start_operator, tmp_path: Path) -> None:
    """TLS only: plaintext is refused, the probe, the exporter and the agent (verifying the server
    with ca.crt) all speak TLS. The certificate also names 127.0.0.1: here the agent reaches the
    Service's address translated to loopback."""
    ca = CertificateAuthority(tmp_path)
    server = ca.issue(
        "redis", common_name=f"tls-redis.{ns}.svc", server_names=(f"tls-redis.{ns}.svc", "127.0.0.1")
    )
    files = {"tls.crt": server.cert, "tls.key": server.key, "ca.crt": ca.cert_path}
    kube.kubectl(
        "create",
        "secret",
        "generic",
        "redis-tls",
        "-n",
        ns,
        *(f"--from-file={k}={v}" for k, v in files.items()),
    )
    start_operator(ns)
    kube.apply(agent("tls", {"managed": {"tls": {"secretName": "redis-tls"}}}), namespace=ns)
    wait_ready(kube, ns, "tls")
    pod = running_pod(kube, ns, redis_selector("tls"))
    managed = ManagedRedis(kube, ns, "tls", tmp_path / "redis")
    try:
        managed.start(pod)  # waits for the rendered probe: redis-cli --tls --cacert ...
        with pytest.raises(redis.ConnectionError):
            managed.client("agent", auth(kube, ns, "tls")["agent"]).ping()  # plaintext
        managed.start_exporter(pod)
        assert re.search(r"^redis_up 1$", _wait_scrape(managed), re.MULTILINE)
        bridge = managed.bridge(tmp_path / "agent")
        try:
            (served,) = bridge.wait_serving(1)
            base = f"http://127.0.0.1:{served.port}"
            thread = httpx.post(f"{base}/threads", json={}, timeout=10)
            assert thread.status_code == 200, served.process.tail(40)
        finally:
            bridge.stop()
    finally:
        managed.stop()
