"""Run the managed Redis Pod (and its exporter, restore and backup containers) for real, exactly as
the operator rendered them, on the local control plane: kwok makes the Pods Running without
executing anything; ``PodRunner`` executes their containers here (see tests/harness/podrunner.py
for the only translations: loopback addresses, volume paths, Debian's redis_exporter binary)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis

from tests.harness.cluster import Cluster
from tests.harness.podbridge import PodBridge
from tests.harness.podrunner import PodRunner, with_flag
from tests.harness.processes import ManagedProcess, free_port, wait_until

REDIS_PORT = 6379
EXPORTER = "prometheus-redis-exporter"  # Debian's build of redis_exporter (the image's /redis_exporter)


def pods(kube: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    out = kube.kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json")
    return json.loads(out.stdout)["items"]


def running_pod(kube: Cluster, ns: str, selector: str, *, not_uid: str | None = None) -> dict[str, Any]:
    """The Running Pod of ``selector`` (a new one, when ``not_uid`` names the one before)."""

    def found() -> dict[str, Any] | None:
        for pod in pods(kube, ns, selector):
            fresh = pod["metadata"]["uid"] != not_uid and not pod["metadata"].get("deletionTimestamp")
            if fresh and pod["status"].get("phase") == "Running":
                return pod
        return None

    return wait_until(found, timeout=90, what=f"a Running pod {selector} in {ns}", interval=0.5)


def redis_selector(name: str) -> str:
    return f"app.kubernetes.io/component=redis,app.kubernetes.io/instance={name}"


def auth(kube: Cluster, ns: str, name: str) -> dict[str, str]:
    """The generated passwords (the test reads them as a client would, from the Secret)."""
    import base64

    secret = kube.get("secret", f"{name}-redis-auth", ns)
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


@dataclass
class ManagedRedis:
    """One AgentDeployment's Redis Pod, run here: redis-server, its exporter, its probe."""

    kube: Cluster
    ns: str
    name: str
    workdir: Path
    port: int = field(default_factory=free_port)
    exporter_port: int = field(default_factory=free_port)
    processes: list[ManagedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        service = f"{self.name}-redis.{self.ns}.svc:{REDIS_PORT}"
        self.runner = PodRunner(
            self.kube,
            self.ns,
            self.workdir,
            addresses={
                service: f"127.0.0.1:{self.port}",
                f"127.0.0.1:{REDIS_PORT}": f"127.0.0.1:{self.port}",
            },
            programs={"redis-exporter": EXPORTER},
            # The backup Job names the Service by host and port apart.
            overrides={"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port)},
        )

    def listen(self, argv: list[str]) -> list[str]:
        flag = "--tls-port" if "--tls-port" in argv else "--port"
        return with_flag(with_flag(argv, flag, str(self.port)), "--bind", "127.0.0.1", append=True)

    def probe_port(self, argv: list[str]) -> list[str]:
        return with_flag(argv, "-p", str(self.port))

    def start(self, pod: dict[str, Any]) -> ManagedProcess:
        server = self.runner.start(pod, "redis", listen=self.listen)
        self.processes.append(server)

        def answers() -> bool:
            if not server.running():
                raise AssertionError(f"redis-server exited:\n{server.tail()}")
            return self.runner.probe(pod, "redis", listen=self.probe_port).returncode == 0

        wait_until(answers, timeout=30, what="the rendered readiness probe to pass", interval=0.2)
        return server

    def start_exporter(self, pod: dict[str, Any]) -> ManagedProcess:
        address = f"127.0.0.1:{self.exporter_port}"
        exporter = self.runner.start(
            pod,
            "redis-exporter",
            listen=lambda argv: with_flag(argv, "--web.listen-address", address, append=True),
        )
        self.processes.append(exporter)
        return exporter

    def scrape(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.exporter_port}/metrics", timeout=5).text

    def client(self, user: str | None = None, password: str | None = None) -> redis.Redis:
        return redis.Redis(port=self.port, username=user, password=password, socket_timeout=5)

    def bridge(self, log_dir: Path) -> PodBridge:
        """The agent Pods, run against this Redis (their REDIS_URL names its Service)."""
        return PodBridge(
            self.kube,
            self.ns,
            log_dir,
            selector=f"app.kubernetes.io/component=agent,app.kubernetes.io/instance={self.name}",
            addresses={f"{self.name}-redis.{self.ns}.svc:{REDIS_PORT}": f"127.0.0.1:{self.port}"},
        )

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
        self.processes.clear()


def agent(name: str, redis_spec: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "shepherd.dev/v1alpha1",
        "kind": "AgentDeployment",
        "metadata": {"name": name},
        "spec": {
            "image": "example.com/agent:1",
            "replicas": 1,
            "redis": redis_spec,
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
            **spec,
        },
    }
