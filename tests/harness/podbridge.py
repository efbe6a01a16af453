"""kwok makes Pods Running without executing anything. The bridge closes that gap for the end-to-end
tests: for every Running agent Pod it starts the real `agent-service` process with exactly that
container's rendered command, args and environment (Secrets, ConfigMaps and field references resolved
from the cluster), on loopback, and registers it as a Prometheus target with the Pod's labels.

Only network endpoints are translated (there is no cluster DNS or Pod network here): `--host`/`--port`
become 127.0.0.1 and a free port, and `endpoint_overrides` replaces the values of named variables
(REDIS_URL, ANTHROPIC_BASE_URL, ...). Everything else is passed through verbatim, so a setting the
service does not understand makes the process fail and the test with it.
"""

from __future__ import annotations

import base64
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .cluster import Cluster
from .processes import ManagedProcess, free_port, wait_until
from .prometheus import PrometheusServer

AGENTDEPLOYMENT_LABEL = "shepherd.dev/agentdeployment"
_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


class BridgeError(RuntimeError):
    pass


def _expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in env values, command and args."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def _with_endpoint(args: list[str], flag: str, value: str) -> list[str]:
    out: list[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == flag and index + 1 < len(args):
            out += [flag, value]
            skip = True
        elif arg.startswith(f"{flag}="):
            out.append(f"{flag}={value}")
        else:
            out.append(arg)
    return out


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

    # -- resolution of the container as the kubelet would ---------------------------------------

    def _data(self, kind: str, name: str) -> dict[str, str] | None:
        found = self.cluster.get(kind, name, self.namespace, check=False)
        if found is None:
            return None
        data = found.get("data") or {}
        if kind == "secret":
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return dict(data)

    def _value_from(self, source: dict, pod: dict) -> str | None:
        for kind, key in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
            if key in source:
                ref = source[key]
                data = self._data(kind, ref["name"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        return None
                    raise BridgeError(
                        f"{kind} {ref['name']} key {ref['key']} missing (the kubelet would not start it)"
                    )
                return data[ref["key"]]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            fields = {
                "metadata.name": pod["metadata"]["name"],
                "metadata.namespace": self.namespace,
                "status.podIP": "127.0.0.1",
                "spec.nodeName": pod["spec"].get("nodeName", ""),
            }
            if path not in fields:
                raise BridgeError(f"fieldRef {path} is not supported by the bridge")
            return fields[path]
        raise BridgeError(f"unsupported valueFrom {sorted(source)}")

    def environment(self, pod: dict, container: dict) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            kind, ref = (
                ("configmap", source["configMapRef"])
                if "configMapRef" in source
                else ("secret", source["secretRef"])
            )
            data = self._data(kind, ref["name"])
            if data is None and not ref.get("optional"):
                raise BridgeError(f"{kind} {ref['name']} referenced by envFrom is missing")
            env.update({f"{prefix}{k}": v for k, v in (data or {}).items()})
        for variable in container.get("env", []):
            if "valueFrom" in variable:
                value = self._value_from(variable["valueFrom"], pod)
                if value is not None:
                    env[variable["name"]] = value
            else:
                env[variable["name"]] = _expand(variable.get("value", ""), env)
        env.update({k: v for k, v in self.endpoint_overrides.items() if k in env})
        return env

    def command(self, container: dict, env: dict[str, str], port: int) -> list[str]:
        command = [_expand(part, env) for part in container.get("command", [self.entrypoint])]
        args = [_expand(part, env) for part in container.get("args", [])]
        executable = shutil.which(command[0], path=str(Path(sys.executable).parent)) or shutil.which(
            command[0]
        )
        if executable is None:
            raise BridgeError(f"{command[0]} is not installed here")
        argv = [executable, *command[1:], *args]
        return _with_endpoint(_with_endpoint(argv, "--host", "127.0.0.1"), "--port", str(port))

    # -- lifecycle ------------------------------------------------------------------------------

    def _start(self, pod: dict) -> BridgedPod:
        container = next(c for c in pod["spec"]["containers"] if c["name"] == self.container)
        port = free_port()
        env = self.environment(pod, container)
        base = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(self.log_dir)}
        if self.as_service_account:
            account = pod["spec"].get("serviceAccountName", "default")
            base["KUBECONFIG"] = str(self.cluster.kubeconfig_for_serviceaccount(self.namespace, account))
        name = pod["metadata"]["name"]
        process = ManagedProcess(
            f"pod-{name}",
            self.command(container, env, port),
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
