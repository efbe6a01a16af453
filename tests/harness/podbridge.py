"""kwok makes Pods Running without executing anything. The bridge closes that gap for the end-to-end
tests: for every Running agent Pod it starts the real `agent-service` process with exactly that
container's rendered command, args and environment (Secrets, ConfigMaps and field references resolved
from the cluster, by ``PodRunner``), on loopback, and registers it as a Prometheus target with the
Pod's labels.

Only network endpoints and volume paths are translated (there is no cluster DNS or Pod network here):
`--host`/`--port` become 127.0.0.1 and a free port, ``addresses`` replaces rendered ``host:port``
strings (a managed Redis' Service name in REDIS_URL), and `endpoint_overrides` replaces the values of
named variables whole (REDIS_URL, ANTHROPIC_BASE_URL, ...). Everything else is passed through
verbatim, so a setting the service does not understand makes the process fail and the test with it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .cluster import Cluster
from .podrunner import PodRunner, RunnerError, expand, with_flag
from .processes import ManagedProcess, free_port, wait_until
from .prometheus import PrometheusServer

AGENTDEPLOYMENT_LABEL = "shepherd.dev/agentdeployment"
BridgeError = RunnerError
# The unit tests' names for the two translations.
_expand = expand
_with_endpoint = with_flag


@dataclass
class BridgedPod:
    name: str
    port: int
    process: ManagedProcess
    labels: dict[str, str]


@dataclass
class PodBridge:
    cluster: Cluster
    namespace: str
    log_dir: Path
    prometheus: PrometheusServer | None = None
    container: str = "agent"
    selector: str = "app.kubernetes.io/component=agent"
    endpoint_overrides: dict[str, str] = field(default_factory=dict)
    #: Rendered ``host:port`` -> where that server really listens (``PodRunner.addresses``).
    addresses: dict[str, str] = field(default_factory=dict)
    # The image's ENTRYPOINT, used when the container sets no command.
    entrypoint: str = "agent-service"
    # Give the process the Pod's ServiceAccount identity (a KUBECONFIG with a bound token), as the
    # kubelet's projected token would: for Pods that talk to the apiserver, like the operator.
    as_service_account: bool = False
    detach: bool = False
    #: Fixed file_sd groups published with the Pods' (e.g. the operator's /metrics).
    extra_targets: list[dict] = field(default_factory=list)
    bridged: dict[str, BridgedPod] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.runner = PodRunner(
            self.cluster,
            self.namespace,
            self.log_dir,
            addresses=dict(self.addresses),
            programs={self.container: self.entrypoint},
            overrides=dict(self.endpoint_overrides),
        )

    def environment(self, pod: dict, container: dict) -> dict[str, str]:
        return self.runner.environment(pod, container)

    def command(self, pod: dict, container: dict, env: dict[str, str], port: int) -> list[str]:
        argv = self.runner.argv(pod, container, env)
        return with_flag(with_flag(argv, "--host", "127.0.0.1"), "--port", str(port))

    def _start(self, pod: dict) -> BridgedPod:
        container = next(c for c in pod["spec"]["containers"] if c["name"] == self.container)
        port = free_port()
        env = self.environment(pod, container)
        base = self.runner.base_env()
        if self.as_service_account:
            account = pod["spec"].get("serviceAccountName", "default")
            base["KUBECONFIG"] = str(self.cluster.kubeconfig_for_serviceaccount(self.namespace, account))
        name = pod["metadata"]["name"]
        process = ManagedProcess(
            f"pod-{name}",
            self.command(pod, container, env, port),
            self.log_dir,
            {**base, **env},
            inherit_env=False,
        ).start(detach=self.detach)
        return BridgedPod(name, port, process, pod["metadata"].get("labels", {}))

    def sync(self) -> None:
        pods = self.cluster.get("pods", namespace=self.namespace)["items"]
        pods = [p for p in pods if _matches(p, self.selector)]
        running = {
            p["metadata"]["name"]: p
            for p in pods
            if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        }
        with self._lock:
            for name in set(self.bridged) - set(running):
                self.bridged.pop(name).process.stop()
            for name, pod in running.items():
                if name not in self.bridged:
                    self.bridged[name] = self._start(pod)
            self._publish_targets()

    def _publish_targets(self) -> None:
        if self.prometheus is None:
            return
        self.prometheus.set_targets(
            [
                {
                    "targets": [f"127.0.0.1:{pod.port}"],
                    "labels": {
                        "namespace": self.namespace,
                        "agentdeployment": pod.labels.get(AGENTDEPLOYMENT_LABEL, ""),
                        "pod": pod.name,
                    },
                }
                for pod in self.bridged.values()
            ]
            + self.extra_targets
        )

    def wait_serving(self, count: int, timeout: float = 60) -> list[BridgedPod]:
        """Until `count` bridged Pods answer /healthz; a process that died fails with its log."""

        def serving() -> list[BridgedPod] | None:
            self.sync()
            for pod in self.bridged.values():
                if not pod.process.running():
                    raise BridgeError(f"agent-service for {pod.name} exited:\n{pod.process.tail()}")
            ready = [p for p in self.bridged.values() if _healthy(p.port)]
            return ready if len(ready) >= count else None

        return wait_until(serving, timeout=timeout, what=f"{count} bridged agent Pods to serve", interval=0.5)

    def start_background(self, interval: float = 1.0) -> None:
        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.sync()
                except Exception:  # the apiserver may be restarting; the next pass retries
                    continue

        self._thread = threading.Thread(target=loop, name="pod-bridge", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
        with self._lock:
            for pod in self.bridged.values():
                pod.process.stop()
            self.bridged.clear()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _matches(pod: dict, selector: str) -> bool:
    labels = pod["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",")))
