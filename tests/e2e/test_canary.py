"""Budget-aware canary releases, end to end on real components.

Real: the control plane (kwok), the operator process (reconcile + budget watcher), agent-service
processes for every Running Pod (stable and canary) through the PodBridge with the rendered env,
the real ``anthropic`` SDK against the fake Anthropic server, Redis, and a Prometheus that scrapes
the agents under their Pods' ``release`` label (as the PodMonitor does) and loads the generated
fleet rules (the per-release SLIs over a 10 s canary window) and the operator's alerts.

Story: three Pods of release 1 serve traffic -> a release whose model name the provider refuses
runs as a canary on one Pod, fails its runs, and is aborted by its analysis at its first step
(canary at zero, the stable release on all three Pods, a Warning Event, ShepherdCanaryAborted) ->
a healthy release promotes through both steps and becomes the stable release on every Pod.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from shepherd.slo.rules import operator_rule_groups, rule_groups

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import components
from tests.harness.cluster import Cluster
from tests.harness.podbridge import BridgedPod, PodBridge
from tests.harness.processes import wait_until as harness_wait_until
from tests.harness.prometheus import PrometheusServer

from .conftest import QUESTION, STORY_RULES, Traffic, agent_manifest, agent_namespace, operator_process

NAME = "canary"
REFUSED_MODEL = "claude-no-such-model"
#: The story's rules with the per-release counts over 10 s (the analysis sees a step in seconds).
CANARY_RULES = dataclasses.replace(STORY_RULES, canary_window=timedelta(seconds=10))


@pytest.fixture
def prom(tmp_path: Path):
    server = components.start_prometheus(tmp_path)
    rules = tmp_path / "rules.yaml"
    groups = rule_groups(["1m"], CANARY_RULES) + operator_rule_groups(CANARY_RULES)
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    server.set_rule_files([rules])
    yield server
    server.stop()


@pytest.fixture
def fake():
    server = FakeAnthropic().start()
    yield server
    server.stop()


def ask(http: httpx.Client, pod: BridgedPod) -> int:
    return http.post(f"http://127.0.0.1:{pod.port}/runs/wait", json=QUESTION).status_code


def manifest(fake_url: str, redis_url: str) -> dict[str, Any]:
    doc = agent_manifest(NAME, "registry.test/agent:1", fake_url, redis_url)
    doc["spec"]["replicas"] = 3
    doc["spec"]["rollout"] = {
        "strategy": "canary",
        # 25 % of 3 Pods is one Pod; 60 % is two. The first pause leaves the analysis its time.
        "steps": [{"weight": 25, "pause": "20s"}, {"weight": 60, "pause": "5s"}],
        "analysis": {"minEvents": 5, "factor": 2, "burnThreshold": 14.4},
    }
    return doc


def total(prom: PrometheusServer, promql: str) -> float:
    return sum(float(s["value"][1]) for s in prom.query(promql))


def test_a_broken_canary_is_aborted_by_its_budget_and_a_healthy_one_promotes(
    kube: Cluster, redis_url: str, prom: PrometheusServer, fake: FakeAnthropic, tmp_path: Path
) -> None:
    ns = agent_namespace(kube, "canary")
    operator, operator_target = operator_process(kube, ns, prom, tmp_path)
    bridge = PodBridge(kube, ns, tmp_path / "pods", prometheus=prom, extra_targets=[operator_target])
    traffic = Traffic(bridge, ask, workers=4)
    fake.state.add_faults({"kind": "status", "status": 404, "times": 1_000_000, "model": REFUSED_MODEL})

    def agd() -> dict[str, Any]:
        return kube.get("agentdeployment", NAME, ns)

    def rollout() -> dict[str, Any]:
        return agd().get("status", {}).get("rollout") or {}

    def wait_until(check, *, timeout: float, what: str, interval: float = 0.2):
        try:
            return harness_wait_until(check, timeout=timeout, what=what, interval=interval)
        except TimeoutError as error:
            diagnosis = (
                f"rollout {rollout()}; analysis {agd().get('status', {}).get('canaryAnalysis')}; "
                f"release counts {prom.query('shepherd:release_sli_events:increase')} "
                f"{prom.query('shepherd:release_sli_errors:increase')}; "
                f"targets {[(t['labels'], t['health']) for t in prom.targets()]}; "
                f"operator log {operator.log()[-6000:]}"
            )
            raise AssertionError(f"{error}\n{diagnosis}") from None

    def patch(spec: dict[str, Any]) -> None:
        kube.kubectl(
            "patch", "agentdeployment", NAME, "-n", ns, "--type=merge", "-p", json.dumps({"spec": spec})
        )

    def stable_ready() -> int:
        return kube.get("deployment", NAME, ns).get("status", {}).get("readyReplicas", 0)

    operator.start()
    try:
        kube.apply(manifest(fake.url, redis_url), namespace=ns)
        wait_until(lambda: rollout().get("phase") == "Stable", timeout=120, what="release 1 stable")
        bridge.wait_serving(3, timeout=120)
        bridge.start_background(0.5)
        traffic.start()
        traffic_started = time.monotonic()
        wait_until(
            lambda: total(prom, 'agent_runs_total{release="1", outcome="success"}') > 10,
            timeout=120,
            what="release 1 serving runs, scraped with its release label",
        )

        # A broken release: its model name is refused, so every run on the canary fails.
        first_bad: list[float] = []
        watching = threading.Event()

        def watch_first_bad_run() -> None:
            while not watching.wait(0.05):
                if any(r.get("model") == REFUSED_MODEL for r in list(fake.state.requests)):
                    first_bad.append(time.monotonic())
                    return

        watcher = threading.Thread(target=watch_first_bad_run, daemon=True)
        watcher.start()
        stable_success_before = total(prom, 'agent_runs_total{release="1", outcome="success"}')
        min_stable_ready: list[int] = []
        model = manifest(fake.url, redis_url)["spec"]["model"]
        patch({"model": {**model, "name": REFUSED_MODEL}})
        broken = agd()["metadata"]["generation"]

        def aborted() -> dict[str, Any] | None:
            min_stable_ready.append(stable_ready())
            state = rollout()
            return state if state.get("phase") == "Aborted" else None

        state = wait_until(aborted, timeout=180, what="the broken canary aborted")
        aborted_at = time.monotonic()
        watching.set()
        assert state["release"] == broken
        assert state["step"] == 0  # at its first step
        verdict = agd()["status"]["canaryAnalysis"]
        assert verdict["release"] == broken
        assert verdict["sli"] == "availability"
        wait_until(
            lambda: kube.get("deployment", f"{NAME}-canary", ns)["spec"]["replicas"] == 0,
            timeout=30,
            what="the canary at zero",
        )
        # The stable release kept serving: all its Pods ready throughout, and its runs succeeded.
        assert min(min_stable_ready) >= 2, min_stable_ready  # 3 - the canary's one Pod
        assert kube.get("deployment", NAME, ns)["spec"]["replicas"] == 3
        model_env = kube.get("configmap", f"{NAME}-config", ns)["data"]
        assert REFUSED_MODEL not in json.dumps(model_env)
        wait_until(lambda: stable_ready() == 3, timeout=60, what="3 stable Pods")
        assert total(prom, 'agent_runs_total{release="1", outcome="success"}') > stable_success_before
        pending = agd()["status"]["pending"]
        assert pending["generation"] == broken
        reasons = [e["reason"] for e in kube.get("events", namespace=ns)["items"] if e["type"] == "Warning"]
        assert "CanaryAborted" in reasons
        wait_until(
            lambda: any(
                a["labels"]["alertname"] == "ShepherdCanaryAborted" and a["state"] == "firing"
                for a in prom.alerts()
            ),
            timeout=60,
            what="ShepherdCanaryAborted firing",
        )
        # The canary's series went with its Pod: counted over the story (the counters only grow).
        span = f"{int(time.monotonic() - traffic_started) + 30}s"
        canary_bad = total(
            prom, f'max_over_time(agent_runs_total{{release="{broken}", outcome=~"error|timeout"}}[{span}])'
        )
        canary_runs = total(prom, f'max_over_time(agent_runs_total{{release="{broken}"}}[{span}])')
        all_runs = total(prom, f"max_over_time(agent_runs_total[{span}])")
        first_bad_to_abort = aborted_at - first_bad[0] if first_bad else float("nan")
        # The share of a 30-day, 99 % budget at this traffic (runs per second over the story).
        rate = all_runs / (time.monotonic() - traffic_started)
        share = canary_bad / (rate * 30 * 86400 * 0.01)
        print(
            f"\nCANARY-ABORT first bad run to abort {first_bad_to_abort:.1f} s; canary runs "
            f"{canary_runs:.0f} ({canary_bad:.0f} bad) of {all_runs:.0f} runs in all "
            f"({canary_runs / all_runs:.1%}); {rate:.1f} runs/s; a 30-day 99 % budget at that rate "
            f"spent {share:.4%}; budget consumed (1m window) "
            f"{agd()['status'].get('errorBudget', {}).get('consumedPercent')}"
        )
        assert canary_bad > 0

        # A healthy release: promoted through both steps to every Pod.
        patch({"model": {**model, "name": "claude-haiku-4-5"}})
        healthy = agd()["metadata"]["generation"]
        seen: set[tuple[str, int | None]] = set()

        def promoted() -> bool:
            state = rollout()
            seen.add((state.get("phase", ""), state.get("step")))
            return state.get("phase") == "Stable" and state.get("release") == healthy

        wait_until(promoted, timeout=180, what="the healthy canary promoted")
        assert ("Progressing", 0) in seen
        assert ("Progressing", 1) in seen
        wait_until(
            lambda: (
                kube.kubectl("get", "deployment", f"{NAME}-canary", "-n", ns, check=False).returncode != 0
            ),
            timeout=60,
            what="the canary Deployment gone",
        )

        def all_on_healthy() -> bool:
            bridge.sync()
            labels = [p.labels.get("shepherd.dev/release") for p in bridge.bridged.values()]
            return labels == [str(healthy)] * 3

        wait_until(all_on_healthy, timeout=120, what="every Pod on the healthy release")
    finally:
        traffic.stop()
        operator.stop()
        bridge.stop()
