"""`make dev` / `make dev-down`: the whole product, live, on this machine.

`up` starts the local control plane, Redis and Prometheus in the background, installs Shepherd with
its Helm chart (two operator replicas, one leading), applies `examples/`, and starts the *bridge*,
a supervised background process that stays after `up` returns:

* kwok runs Pods without executing them, so for every Running operator Pod and every Running agent
  Pod of the examples the bridge runs the real `shepherd-operator` / `agent-service` with that
  container's args and env (`tests/harness/podbridge.py`), and restarts one that exits;
* Prometheus scrapes those processes (agents under their Pod's labels, operators as
  `job="shepherd-operator"`) and has the fleet rules loaded for every SLO window in use (generated
  for its 1 s scrape interval, as the e2e tests do; a cluster's Prometheus Operator would load the
  operator's `shepherd-slo-<window>` PrometheusRules instead);
* each example AgentDeployment gets a stable URL on 127.0.0.1 that forwards to its serving Pods,
  as a Service would (`tests/harness/services.py`): the LangGraph API, for langgraph-sdk and curl;
* there is no internet here, so Claude is the in-repo fake Anthropic server (`tests/fakes/`, also
  started by `up`): the examples on Claude are applied with `spec.model.baseUrl` pointing at it, and
  the `anthropic` Secret holds a dummy key; `POST <fake>/_control/faults` makes it fail, as
  `make demo` does.

`up` waits until every example that runs serves a run through its URL, then prints the URLs.
`down` stops the bridge (and its processes), then everything else. The state lives in `.dev/`
(`SHEPHERD_DEV_DIR` elsewhere).

    python -m tests.harness.dev up      # prints the URLs and the export KUBECONFIG=... line
    python -m tests.harness.dev down
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from shepherd.render.common import OWNER_LABEL
from shepherd.slo.rules import RuleConfig, rule_groups

from . import components
from .binaries import REPO, toolset
from .cluster import Cluster
from .podbridge import PodBridge
from .processes import ManagedProcess, free_port, kill_pid, wait_until
from .prometheus import PrometheusServer
from .services import ServiceProxies

STATE_DIR = Path(os.environ.get("SHEPHERD_DEV_DIR") or REPO / ".dev")
STATE_FILE = STATE_DIR / "state.json"
#: What the bridge serves: {AgentDeployment name: {"url": ..., "pods": serving Pods}}.
AGENTS_FILE = STATE_DIR / "agents.json"
CHART = REPO / "charts" / "shepherd"
EXAMPLES = REPO / "examples"
RELEASE, SYSTEM_NAMESPACE, EXAMPLES_NAMESPACE = "shepherd", "shepherd-system", "shepherd-examples"
#: The platform default window (chart `defaults.slo`): resources without `spec.slo` use it.
DEFAULT_WINDOW = "30d"
#: Rules for this Prometheus' scrape and evaluation interval (SHEPHERD's defaults assume 15 s).
RULES = RuleConfig(scrape_interval=timedelta(seconds=1), evaluation_interval=timedelta(seconds=1))
OPERATOR_RULES = REPO / "alerts" / "shepherd-operator-rules.yaml"
#: Ready=False reasons of an example on its way up (any other one is why it does not run).
STARTING = ("NoPodReady", "PodsNotReady", "DeploymentMissing")

log = logging.getLogger("dev-bridge")


# ------------------------------------------------------------------------------------------ up


def install_shepherd(cluster: Cluster, prometheus_url: str) -> None:
    cluster.helm(
        "upgrade", "--install", RELEASE, str(CHART), "--namespace", SYSTEM_NAMESPACE, "--create-namespace",
        "--set", f"defaults.prometheusUrl={prometheus_url}",
        # Budgets, circuits and freezes on `kubectl get agd` within seconds of the metrics.
        "--set", "operator.budgetIntervalSeconds=5",
        "--wait", "--timeout", "180s",
    )  # fmt: skip


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), {})


def _smoke_runs(url: str, graph_id: str, runs: int = 3) -> bool:
    """Real runs through the URL (a thread, then runs to completion), a scrape interval apart, so
    Prometheus sees the counters move (a series' first sample is not an increase)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        thread = http.post("/threads", json={}).raise_for_status().json()["thread_id"]
        for _ in range(runs):
            run = http.post(
                f"/threads/{thread}/runs/wait",
                json={
                    "assistant_id": graph_id,
                    "input": {"messages": [{"role": "user", "content": "hello"}]},
                },
            )
            if run.status_code != 200:
                return False
            time.sleep(1.5)
        outcomes = [r["status"] for r in http.get(f"/threads/{thread}/runs").raise_for_status().json()]
    if outcomes != ["success"] * runs:  # served, but wrong: no use waiting (see the Pod's log)
        raise RuntimeError(f"runs through {url} ended {outcomes}, not success")
    return True


def wait_agents(cluster: Cluster, timeout: float = 300) -> dict[str, str]:
    """Every example either serves a run through its URL or reports why it does not run."""
    report: dict[str, str] = {}

    def settled() -> bool:
        served = json.loads(AGENTS_FILE.read_text()) if AGENTS_FILE.exists() else {}
        for agd in cluster.get("agentdeployments", namespace=EXAMPLES_NAMESPACE)["items"]:
            name, ready = agd["metadata"]["name"], _condition(agd, "Ready")
            if name in report:
                continue
            if ready.get("status") == "False" and ready.get("reason") not in STARTING:
                report[name] = f"not running: Ready=False {ready.get('reason')}: {ready.get('message')}"
                continue
            agent = served.get(name)
            graph = agd["spec"].get("graphId") or "agent"
            with contextlib.suppress(httpx.HTTPError):
                if agent and agent["pods"] and _smoke_runs(agent["url"], graph):
                    report[name] = agent["url"]
        return len(report) == len(cluster.get("agentdeployments", namespace=EXAMPLES_NAMESPACE)["items"])

    wait_until(settled, timeout=timeout, what="the examples to serve through their URLs", interval=1)
    return report


def examples(claude_url: str) -> str:
    """`examples/` as applied here: Claude's models reach the fake server (`spec.model.baseUrl`,
    inherited by the fallbacks on the same provider), since api.anthropic.com is out of reach."""
    documents = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            model = (doc or {}).get("spec", {}).get("model") or {}
            if model.get("provider") == "anthropic" and "baseUrl" not in model:
                model["baseUrl"] = claude_url
            documents.append(doc)
    return yaml.safe_dump_all([d for d in documents if d], sort_keys=False)


def _start_fake_anthropic() -> ManagedProcess:
    port = free_port()
    fake = ManagedProcess(
        "fake-anthropic",
        [sys.executable, "-m", "tests.fakes.anthropic_server", "--port", str(port)],
        STATE_DIR / "logs",
        cwd=REPO,
    )
    fake.url = f"http://127.0.0.1:{port}"
    fake.start(detach=True).wait_ready(
        lambda: httpx.get(f"{fake.url}/_control/requests", timeout=1).is_success
    )
    return fake


def up() -> None:
    if STATE_FILE.exists():
        sys.exit(f"already running (state in {STATE_FILE}); run `make dev-down` first")
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    STATE_DIR.mkdir(parents=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped, `up` stops what it started
    pids: list[int] = []
    try:
        (STATE_DIR / "logs").mkdir()
        cluster = components.start_cluster(STATE_DIR, detach=True)
        pids += [p.pid for p in cluster.local.processes] if cluster.local else []
        redis = components.start_redis(STATE_DIR, detach=True)
        prometheus = components.start_prometheus(STATE_DIR, detach=True)
        pids += [redis.process.pid, prometheus.process.pid]
        fake = _start_fake_anthropic()
        pids.append(fake.pid)
        cluster.install_upstream_crds()
        cluster.ensure_persistent_volumes(20)
        install_shepherd(cluster, prometheus.url)
        cluster.kubectl("create", "namespace", EXAMPLES_NAMESPACE, check=False)
        cluster.kubectl(
            "create", "secret", "generic", "anthropic", "-n", EXAMPLES_NAMESPACE,
            "--from-literal=api-key=sk-ant-dev-fake",
        )  # fmt: skip
        cluster.kubectl("apply", "-n", EXAMPLES_NAMESPACE, "-f", "-", input=examples(fake.url))
        state = {
            "pids": pids,
            "kubeconfig": str(cluster.kubeconfig),
            "redis_url": redis.url,
            "prometheus_url": prometheus.url,
            "anthropic_url": fake.url,
        }
        STATE_FILE.write_text(json.dumps(state, indent=2))
        bridge = ManagedProcess(
            "dev-bridge",
            [sys.executable, "-m", "tests.harness.dev", "bridge"],
            STATE_DIR / "logs",
            {"SHEPHERD_DEV_DIR": str(STATE_DIR)},
            cwd=REPO,
        )
        bridge.start(detach=True)
        state["pids"].append(bridge.pid)  # stopped first by `down` (its processes with it)
        STATE_FILE.write_text(json.dumps(state, indent=2))
        agents = wait_agents(cluster)
    except BaseException:
        _stop(pids)
        STATE_FILE.unlink(missing_ok=True)  # the logs stay, to say why; the next `up` clears them
        print(f"make dev failed; logs in {STATE_DIR}/logs and {STATE_DIR}/kube/logs", file=sys.stderr)
        raise
    print(f"Local Shepherd environment is up (logs in {STATE_DIR}/kube/logs and {STATE_DIR}/logs).")
    print(f"  Shepherd:   helm release '{RELEASE}' in {SYSTEM_NAMESPACE} (two operators, one leading)")
    print(f"  Agents:     LangGraph API in {EXAMPLES_NAMESPACE} (langgraph-sdk: get_client(url=URL)):")
    for name, where in sorted(agents.items()):
        print(f"    {name:<14} {where}")
    print(f"  Prometheus: {prometheus.url}")
    print(f"  Redis:      {redis.url}")
    print(f"  Claude:     {fake.url} (the fake Anthropic server)")
    print(f"  Try:        kubectl get agd -n {EXAMPLES_NAMESPACE}")
    print(f"export KUBECONFIG={cluster.kubeconfig}")


# -------------------------------------------------------------------------------------- bridge


class TargetFile:
    """One file_sd list for Prometheus, written from the parts each PodBridge publishes."""

    def __init__(self, prometheus: PrometheusServer) -> None:
        self.prometheus, self._parts, self._lock = prometheus, {}, threading.Lock()

    def part(self, name: str) -> _Part:
        return _Part(self, name)

    def publish(self, name: str, groups: list[dict]) -> None:
        with self._lock:
            self._parts[name] = groups
            self.prometheus.set_targets([g for part in self._parts.values() for g in part])


class _Part:
    def __init__(self, file: TargetFile, name: str) -> None:
        self.file, self.name = file, name

    def set_targets(self, groups: list[dict]) -> None:
        self.file.publish(self.name, groups)


class FleetRules:
    """The fleet rules for every SLO window the operator exports objectives for, kept loaded."""

    def __init__(self, prometheus: PrometheusServer) -> None:
        self.prometheus, self.windows = prometheus, set[str]()
        self.path = prometheus.workdir / "shepherd-rules.yaml"

    def sync(self) -> None:
        found = self.prometheus.query("count by (slo_window) (shepherd_slo_objective)")
        windows = {DEFAULT_WINDOW} | {s["metric"]["slo_window"] for s in found}
        if windows == self.windows:
            return
        self.path.write_text(yaml.safe_dump({"groups": rule_groups(sorted(windows), RULES)}, sort_keys=False))
        self.prometheus.set_rule_files([self.path, OPERATOR_RULES])
        self.windows = windows
        log.info("fleet rules loaded for SLO windows %s", sorted(windows))


def bridge() -> None:
    """The supervised background process of `make dev` (see the module docstring)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    state = json.loads(STATE_FILE.read_text())
    tools = toolset()
    cluster = Cluster(tools, Path(state["kubeconfig"]), STATE_DIR)
    prometheus = PrometheusServer.attach(tools.prometheus, STATE_DIR / "prometheus", state["prometheus_url"])
    targets = TargetFile(prometheus)
    operators = PodBridge(
        cluster, SYSTEM_NAMESPACE, STATE_DIR / "logs" / "operators", prometheus=targets.part("operators"),
        container="operator", selector=f"app.kubernetes.io/instance={RELEASE}",
        entrypoint="shepherd-operator", as_service_account=True,
        port_variables=("SHEPHERD_METRICS_PORT",), url_flags=("--liveness",),
        provided_env={"SHEPHERD_METRICS_ADDRESS": "127.0.0.1"},
        scrape_port="SHEPHERD_METRICS_PORT", target_labels={"job": "shepherd-operator"},
    )  # fmt: skip
    agents = PodBridge(
        cluster, EXAMPLES_NAMESPACE, STATE_DIR / "logs" / "agents", prometheus=targets.part("agents"),
        endpoint_overrides={"REDIS_URL": state["redis_url"]}, port_variables=("USAGE_LOCAL_ADDRESS",),
    )  # fmt: skip
    rules, proxies = FleetRules(prometheus), ServiceProxies()
    urls: dict[str, str] = {}
    #: AgentDeployment -> ports of its Pods answering /healthz, refreshed every pass.
    serving: dict[str, list[int]] = {}
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.is_set():
            for part in (operators.sync, agents.sync, rules.sync):
                try:
                    part()
                except Exception:  # the apiserver or Prometheus busy: the next pass retries
                    log.exception("bridge pass")
            for name in {pod.labels.get(OWNER_LABEL) for pod in agents.bridged.values()} - {None}:
                if name not in urls:
                    port = free_port()
                    proxies.ensure(name, port, lambda n=name: serving.get(n, []))
                    urls[name] = f"http://127.0.0.1:{port}"
            ready = agents.serving()
            for name in urls:  # each entry replaced whole: the proxies' thread reads them meanwhile
                serving[name] = [pod.port for pod in ready if pod.labels.get(OWNER_LABEL) == name]
            served = {name: {"url": url, "pods": len(serving[name])} for name, url in urls.items()}
            tmp = AGENTS_FILE.with_suffix(".tmp")
            tmp.write_text(json.dumps(served, indent=2))
            tmp.replace(AGENTS_FILE)
            stop.wait(1)
    finally:
        proxies.stop()
        agents.stop()
        operators.stop()


# ---------------------------------------------------------------------------------------- down


def _stop(pids: list[int]) -> None:
    """Stops ``pids`` in reverse order; each one's process group goes with it (the bridge's
    processes are in the bridge's group, should it have died without stopping them)."""
    for pid in reversed(pids):
        kill_pid(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


def down() -> None:
    if not STATE_FILE.exists():
        print("nothing running")
        return
    _stop(json.loads(STATE_FILE.read_text())["pids"])
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    print("stopped")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["up", "down", "bridge"])
    {"up": up, "down": down, "bridge": bridge}[parser.parse_args().action]()


if __name__ == "__main__":
    main()
