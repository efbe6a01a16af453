"""kwok makes Pods Running without executing anything. The bridge closes that gap for the end-to-end
tests: for every Running agent Pod it starts the real `agent-service` process with exactly that
container's rendered command, args and environment (Secrets, ConfigMaps and field references resolved
from the cluster, by ``PodRunner``), on loopback, and registers it as a Prometheus target with the
Pod's labels.

Only network endpoints and volume paths are translated (there is no cluster DNS or Pod network here):
`--host`/`--port` become 127.0.0.1 and a free port, ``addresses`` replaces rendered ``host:port``
strings (a managed Redis' Service name in REDIS_URL), and `endpoint_overrides` replaces the values of
named variables whole (REDIS_URL, ...). Everything else is passed through
verbatim, so a setting the service does not understand makes the process fail and the test with it.
`provided_env` adds variables the sandbox needs beside the container's (the operator's
SHEPHERD_METRICS_ADDRESS=127.0.0.1: only loopback here); `port_variables` (e.g.
SHEPHERD_METRICS_PORT, USAGE_LOCAL_ADDRESS) and the URLs of `url_flags` (e.g. --liveness) get a
free loopback port per Pod, so two replicas of one Pod template run side by side.

A process that exits is reported as the kubelet reports it, and started again (at most every
`restart_seconds`), as the kubelet restarts a container: the Pod's status is patched to the
container waiting in ``CrashLoopBackOff`` with ``lastState.terminated`` (exit code, reason
``Error``, and the content of its terminationMessagePath, which the process writes to a file of its
own here), ``restartCount`` counting the exits, and the Pod not Ready; a restarted one runs not
ready, and is Ready again once it answers /healthz. kwok leaves such a Pod alone: its stages
(``hack/build-binaries.sh``) only act on Pending Pods and on deletions.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .cluster import Cluster
from .podrunner import PodRunner, RunnerError, expand, with_flag
from .processes import ManagedProcess, free_port, wait_until
from .prometheus import PrometheusServer

AGENTDEPLOYMENT_LABEL = "shepherd.dev/agentdeployment"
#: The kubelet's default terminationMessagePath.
TERMINATION_LOG = "/dev/termination-log"
BridgeError = RunnerError
# The unit tests' names for the two translations.
_expand = expand
_with_endpoint = with_flag


def _moved(value: str, port: int) -> str:
    """A port, or a ``host:port``, moved to ``port`` on 127.0.0.1."""
    return f"127.0.0.1:{port}" if ":" in value else str(port)


def _with_url(args: list[str], flag: str, port: int) -> list[str]:
    """The URL of ``flag`` (``flag URL`` or ``flag=URL``) moved to 127.0.0.1:``port``, path kept."""
    for index, arg in enumerate(args):
        if arg.startswith(f"{flag}="):
            url = arg.split("=", 1)[1]
        elif arg == flag and index + 1 < len(args):
            url = args[index + 1]
        else:
            continue
        moved = urllib.parse.urlsplit(url)._replace(netloc=f"127.0.0.1:{port}")
        return with_flag(args, flag, urllib.parse.urlunsplit(moved))
    return args


@dataclass
class BridgedPod:
    name: str
    port: int
    process: ManagedProcess
    labels: dict[str, str]
    #: The free ports given to `port_variables` and `url_flags`, by variable or flag.
    ports: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    #: Where this container's process writes its termination message.
    termination: Path | None = None
    #: Exits so far (the kubelet's restartCount), and what the Pod's status says of the container:
    #: "ready" (kwok's start, or answering /healthz), "exited" or "restarted" (running, not ready).
    restarts: int = 0
    reported: str = "ready"
    #: How the last run ended (the kubelet's lastState.terminated).
    last_terminated: dict | None = None


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
    #: Variables every process gets beside the container's: endpoints the sandbox has in place of
    #: the cluster's network (the container's own value wins).
    provided_env: dict[str, str] = field(default_factory=dict)
    # The image's ENTRYPOINT, used when the container sets no command.
    entrypoint: str = "agent-service"
    # Give the process the Pod's ServiceAccount identity (a KUBECONFIG with a bound token), as the
    # kubelet's projected token would: for Pods that talk to the apiserver, like the operator.
    as_service_account: bool = False
    detach: bool = False
    #: Fixed file_sd groups published with the Pods' (e.g. the operator's /metrics).
    extra_targets: list[dict] = field(default_factory=list)
    #: Variables holding a port (or host:port), and flags holding a URL, that get a free loopback
    #: port per Pod.
    port_variables: tuple[str, ...] = ()
    url_flags: tuple[str, ...] = ()
    #: Which port Prometheus scrapes: one of `port_variables`, or the `--port` one (None).
    scrape_port: str | None = None
    #: Labels added to every published target (e.g. job).
    target_labels: dict[str, str] = field(default_factory=dict)
    restart_seconds: float = 10.0
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
        return {**self.provided_env, **self.runner.environment(pod, container)}

    def command(self, pod: dict, container: dict, env: dict[str, str], port: int) -> list[str]:
        argv = self.runner.argv(pod, container, env)
        return with_flag(with_flag(argv, "--host", "127.0.0.1"), "--port", str(port))

    def _start(self, pod: dict, previous: BridgedPod | None = None) -> BridgedPod:
        container = next(c for c in pod["spec"]["containers"] if c["name"] == self.container)
        port = free_port()
        env = self.environment(pod, container)
        # The kubelet gives each container run a fresh termination message file.
        termination = self.log_dir / f"termination-{pod['metadata']['uid']}"
        termination.unlink(missing_ok=True)
        path = container.get("terminationMessagePath", TERMINATION_LOG)
        env = {k: str(termination) if v == path else v for k, v in env.items()}
        ports = {name: free_port() for name in (*self.port_variables, *self.url_flags)}
        env.update({name: _moved(env[name], ports[name]) for name in self.port_variables if name in env})
        base = self.runner.base_env()
        if self.as_service_account:
            account = pod["spec"].get("serviceAccountName", "default")
            base["KUBECONFIG"] = str(self.cluster.kubeconfig_for_serviceaccount(self.namespace, account))
        name = pod["metadata"]["name"]
        argv = self.command(pod, container, env, port)
        for flag in self.url_flags:
            argv = _with_url(argv, flag, ports[flag])
        process = ManagedProcess(f"pod-{name}", argv, self.log_dir, {**base, **env}, inherit_env=False).start(
            detach=self.detach
        )
        labels = pod["metadata"].get("labels", {})
        started = BridgedPod(name, port, process, labels, ports, termination=termination)
        if previous is not None:  # a restart: the kubelet keeps the count and how the last run ended
            started.restarts, started.last_terminated = previous.restarts, previous.last_terminated
        return started

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
            restarted: dict[str, BridgedPod] = {}
            for name, bridged in list(self.bridged.items()):
                if bridged.process.running():
                    if bridged.reported == "restarted" and _healthy(bridged.port):
                        self._report(bridged, "ready")
                    continue
                if bridged.reported != "exited":
                    self._report_exit(bridged)
                if time.monotonic() - bridged.started >= self.restart_seconds:
                    # exited: started again below, as the kubelet would
                    restarted[name] = self.bridged.pop(name)
            for name, pod in running.items():
                if name not in self.bridged:
                    self.bridged[name] = bridged = self._start(pod, restarted.get(name))
                    if name in restarted:
                        self._report(bridged, "restarted")
            self._publish_targets()

    # -- the Pod's status, as the kubelet writes it ----------------------------------------------

    def _report(self, pod: BridgedPod, reported: str) -> None:
        """The container's status (whole, as the kubelet sends it: the list is not merged by name)
        and the Pod's readiness: "exited" waits in CrashLoopBackOff, "restarted" runs not ready,
        "ready" serves; the last run's end stays in lastState."""
        ready = reported == "ready"
        state = {"waiting": {"reason": "CrashLoopBackOff"}} if reported == "exited" else {"running": {}}
        mine = {
            "name": self.container,
            "image": "",
            "imageID": "",
            "ready": ready,
            "started": reported != "exited",
            "restartCount": pod.restarts,
            "state": state,
            "lastState": {"terminated": pod.last_terminated} if pod.last_terminated else {},
        }
        live = self.cluster.get("pod", pod.name, self.namespace, check=False)
        if live is None:
            return  # deleted meanwhile
        statuses = live["status"].get("containerStatuses") or []
        for status in statuses:
            if status["name"] == self.container:
                mine["image"], mine["imageID"] = status.get("image", ""), status.get("imageID", "")
        statuses = [mine if s["name"] == self.container else s for s in statuses] or [mine]
        flag = "True" if ready else "False"
        conditions = [
            {"type": kind, "status": flag, "lastTransitionTime": _now()}
            | ({} if ready else {"reason": "ContainersNotReady"})
            for kind in ("Ready", "ContainersReady")
        ]
        patch = {"status": {"conditions": conditions, "containerStatuses": statuses}}
        self.cluster.kubectl(
            "patch", "pod", pod.name, "-n", self.namespace, "--subresource=status",
            "--type=strategic", "-p", json.dumps(patch),
        )  # fmt: skip
        pod.reported = reported

    def _report_exit(self, pod: BridgedPod) -> None:
        code = pod.process.process.returncode
        message = pod.termination.read_text(errors="replace") if pod.termination.exists() else ""
        pod.restarts += 1
        pod.last_terminated = {
            "exitCode": code,
            "reason": "Error" if code else "Completed",
            "finishedAt": _now(),
            **({"message": message} if message else {}),
        }
        self._report(pod, "exited")

    def _publish_targets(self) -> None:
        if self.prometheus is None:
            return
        self.prometheus.set_targets(
            [
                {
                    "targets": [f"127.0.0.1:{pod.ports.get(self.scrape_port or '', pod.port)}"],
                    "labels": {
                        "namespace": self.namespace,
                        "agentdeployment": pod.labels.get(AGENTDEPLOYMENT_LABEL, ""),
                        # as the PodMonitor's relabeling keeps it (per-release SLIs)
                        "release": pod.labels.get("shepherd.dev/release", ""),
                        "pod": pod.name,
                        **self.target_labels,
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
            ready = self.serving()
            return ready if len(ready) >= count else None

        return wait_until(serving, timeout=timeout, what=f"{count} bridged agent Pods to serve", interval=0.5)

    def serving(self) -> list[BridgedPod]:
        """The bridged Pods whose process answers /healthz (a Service's ready endpoints)."""
        return [p for p in list(self.bridged.values()) if p.process.running() and _healthy(p.port)]

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


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _matches(pod: dict, selector: str) -> bool:
    labels = pod["metadata"].get("labels", {})
    return all(labels.get(k) == v for k, v in (term.split("=", 1) for term in selector.split(",")))
