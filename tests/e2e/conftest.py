"""What the end-to-end stories share: a Prometheus of their own loaded with the generated rules for a
1-minute SLO window, the fake Anthropic server, the operator as a process scraped by that Prometheus,
and background traffic against every bridged agent Pod."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from shepherd import api, crd
from shepherd.slo.rules import RuleConfig, operator_rule_groups, rule_groups

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import components
from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess
from tests.harness.podbridge import BridgedPod, PodBridge
from tests.harness.processes import free_port
from tests.harness.prometheus import PrometheusServer


def agent_namespace(kube: Cluster, prefix: str) -> str:
    """The CRD installed, a fresh namespace, and the Anthropic key's Secret in it."""
    kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd.CRD_PATH))
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd.CRD_NAME}")
    ns = kube.namespace(prefix)
    kube.kubectl("create", "secret", "generic", "anthropic", "-n", ns, "--from-literal=api-key=sk-test")
    return ns


def cond(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """The status condition ``kind`` of a resource, or {}."""
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def agent_manifest(name: str, image: str, fake_url: str, redis_url: str) -> dict[str, Any]:
    """One replica on Claude (the fake server), a 1m SLO window and a policy that freezes fast.

    Runs are the SLI events: a slow LLM burns the latency budget (runs over 2.5 s), an LLM outage
    the availability budget (failed runs, although each still answers 200).
    """
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {
            "image": image,
            "replicas": 1,
            "model": {
                "provider": "anthropic",
                "name": "claude-sonnet-4-5",
                "apiKeySecretRef": {"name": "anthropic", "key": "api-key"},
                "baseUrl": fake_url,
                "maxRetries": 0,
                "timeoutSeconds": 5,
            },
            "circuitBreaker": {"failureThreshold": 3, "recoveryTimeoutSeconds": 2, "halfOpenMaxCalls": 1},
            "redis": {"external": {"url": redis_url}},
            "slo": {
                "window": "1m",
                # The low-traffic guard scaled to the stories' traffic (a few requests per second over
                # burn windows of 4-6 s, the 1m window's scaled 1h..3d); 20 would keep alerts silent.
                "minEvents": 4,
                "availability": {"target": 99},
                "latency": {"target": 90, "thresholdSeconds": 2.5},
            },
            "errorBudgetPolicy": {
                "steps": [
                    {"consumedPercent": 50, "action": "Notify"},
                    {"consumedPercent": 75, "action": "FreezeNonCritical"},
                ],
                "recovery": {"quietPeriod": "5s"},
            },
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
        },
    }


#: The stories' rules: the 1m SLO window scraped and evaluated every second, circuit alerts after
#: 3 s, spend summed in 5 s steps (status.spend).
STORY_RULES = RuleConfig(
    scrape_interval=timedelta(seconds=1),
    evaluation_interval=timedelta(seconds=1),
    circuit_open_for=timedelta(seconds=3),
    all_circuits_open_for=timedelta(seconds=3),
    spend_step=timedelta(seconds=5),
)


#: The stories' rules with the per-release counts over 10 s (a canary's analysis sees a step in seconds).
CANARY_RULES = dataclasses.replace(STORY_RULES, canary_window=timedelta(seconds=10))


def start_story_prometheus(
    workdir: Path, config: RuleConfig = STORY_RULES, *, operator_alerts: bool = False
) -> PrometheusServer:
    """A Prometheus with the generated rules for a 1m SLO window (``config``), and the operator's
    own alerts (ShepherdCanaryAborted, ...) when ``operator_alerts``."""
    server = components.start_prometheus(workdir)
    rules = workdir / "shepherd-rules.yaml"
    groups = rule_groups(["1m"], config) + (operator_rule_groups(config) if operator_alerts else [])
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    server.set_rule_files([rules])
    return server


@pytest.fixture
def prom(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus of this test alone (it may be killed) with the generated rules for a 1m window."""
    server = start_story_prometheus(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


def operator_process(
    kube: Cluster, namespace: str, prom: PrometheusServer, workdir: Path
) -> tuple[OperatorProcess, dict]:
    """The operator watching ``namespace``, reading budgets from ``prom`` every second, with its
    /metrics on a free loopback port; and the file_sd group that scrapes it."""
    port = free_port()
    operator = OperatorProcess(
        kube.kubeconfig,
        namespace,
        workdir / "operator.log",
        env={
            "SHEPHERD_METRICS_PORT": str(port),
            "SHEPHERD_PROMETHEUS_URL": prom.url,
            "SHEPHERD_BUDGET_INTERVAL": "1",
            "SHEPHERD_RESYNC_SECONDS": "5",
        },
    )
    return operator, {"targets": [f"127.0.0.1:{port}"], "labels": {"job": "shepherd-operator"}}


#: A model name the fake provider is told to refuse (404): every run of a release asking for it fails.
REFUSED_MODEL = "claude-no-such-model"


def canary_manifest(name: str, fake_url: str, redis_url: str) -> dict[str, Any]:
    """``agent_manifest`` on 3 Pods with a two-step canary whose analysis judges a step in seconds."""
    doc = agent_manifest(name, "registry.test/agent:1", fake_url, redis_url)
    doc["spec"]["replicas"] = 3
    doc["spec"]["rollout"] = {
        "strategy": "canary",
        # 25 % of 3 Pods is one Pod; 60 % is two. The first pause leaves the analysis its time.
        "steps": [{"weight": 25, "pause": "20s"}, {"weight": 60, "pause": "5s"}],
        "analysis": {"minEvents": 5, "factor": 2, "burnThreshold": 14.4},
    }
    return doc


class FirstCall:
    """Watches the fake provider's record of requests in the background for the first call asking
    for ``model`` after ``start()`` (earlier ones are not counted): ``at`` is that moment
    (time.monotonic), None until then."""

    def __init__(self, fake: FakeAnthropic, model: str, poll: float = 0.05) -> None:
        self.fake, self.model, self.poll = fake, model, poll
        self.at: float | None = None
        self._seen = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"first-call-{model}", daemon=True)

    def start(self) -> FirstCall:
        self._seen = len(self.fake.state.requests)
        self._thread.start()
        return self

    def _watch(self) -> None:
        seen = self._seen
        while not self._stop.wait(self.poll):
            requests = list(self.fake.state.requests)
            if any(r.get("model") == self.model for r in requests[seen:]):
                self.at = time.monotonic()
                return
            seen = len(requests)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


QUESTION = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}}
#: The provider's total outage: every call answered 529 (overloaded).
OUTAGE = {"kind": "status", "status": 529, "times": 1_000_000}


def ask_wait(http: httpx.Client, pod: BridgedPod) -> int:
    """One run, waited on: the status code of its HTTP answer."""
    return http.post(f"http://127.0.0.1:{pod.port}/runs/wait", json=QUESTION).status_code


def ask_wait_or_stream(http: httpx.Client, pod: BridgedPod) -> int:
    """One run, waited on or streamed (half each): the status code of its HTTP answer."""
    url = f"http://127.0.0.1:{pod.port}"
    if uuid.uuid4().int % 2:
        return http.post(f"{url}/runs/wait", json=QUESTION).status_code
    with http.stream("POST", f"{url}/runs/stream", json={**QUESTION, "stream_mode": ["values"]}) as response:
        for _ in response.iter_bytes():
            pass
        return response.status_code


class Traffic:
    """Background workers calling ``send(http, pod)`` on every bridged Pod in turn, counting the
    status codes it returns (``None``: not counted)."""

    def __init__(
        self, bridge: PodBridge, send: Callable[[httpx.Client, BridgedPod], int | None], workers: int = 4
    ) -> None:
        self.bridge, self.send = bridge, send
        self.codes: Counter[int] = Counter()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"traffic-{i}", daemon=True) for i in range(workers)
        ]

    def start(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def _loop(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.wait(0.05):
                for pod in list(self.bridge.bridged.values()):
                    try:
                        code = self.send(http, pod)
                    except httpx.HTTPError:
                        continue  # a Pod being replaced by a rollout
                    if code is not None:
                        self.codes[code] += 1

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=15)
