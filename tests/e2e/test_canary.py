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

Story with the freeze: a slow provider burns the latency budget until the resource freezes
(``FreezeNonCritical``, as in test_freeze.py) -> a new release waits (``Held``: no canary, the stable
release on every Pod, the change pending) -> made critical, it starts as a canary beside the stable
release -> a newer, non-critical release is held again (the critical canary goes) -> the provider
recovers, the freeze lifts, and the held canary starts by itself -> the operator, killed and
started again mid-canary, continues at the same step -> the resource deleted mid-canary leaves
nothing behind.
"""

from __future__ import annotations

import datetime
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from shepherd.budget.policy import parse_time

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness.cluster import Cluster
from tests.harness.operator import OperatorProcess
from tests.harness.podbridge import PodBridge
from tests.harness.processes import wait_until as harness_wait_until
from tests.harness.prometheus import PrometheusServer

from .conftest import (
    CANARY_RULES,
    REFUSED_MODEL,
    FirstCall,
    Traffic,
    agent_manifest,
    agent_namespace,
    ask_wait,
    canary_manifest,
    cond,
    operator_process,
    start_story_prometheus,
)

NAME = "canary"
CANARY = f"{NAME}-canary"
IMAGE = "registry.test/agent:{}"


@pytest.fixture
def prom(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = start_story_prometheus(tmp_path, CANARY_RULES, operator_alerts=True)
    yield server
    server.stop()


def total(prom: PrometheusServer, promql: str) -> float:
    return sum(float(s["value"][1]) for s in prom.query(promql))


class Story:
    """The resource of a story: its status, patches, and waits that fail with what the rollout, the
    analysis, Prometheus and the operator show."""

    def __init__(self, kube: Cluster, ns: str, prom: PrometheusServer, operator: OperatorProcess) -> None:
        self.kube, self.ns, self.prom, self.operator = kube, ns, prom, operator

    def agd(self) -> dict[str, Any]:
        return self.kube.get("agentdeployment", NAME, self.ns)

    def rollout(self) -> dict[str, Any]:
        return self.agd().get("status", {}).get("rollout") or {}

    def patch(self, doc: dict[str, Any]) -> int:
        """Merge-patch the resource; its generation afterwards."""
        self.kube.kubectl(
            "patch", "agentdeployment", NAME, "-n", self.ns, "--type=merge", "-p", json.dumps(doc)
        )
        return self.agd()["metadata"]["generation"]

    def deployment(self, name: str) -> dict[str, Any] | None:
        return self.kube.get("deployment", name, self.ns, check=False)

    def wait_until(self, check, *, timeout: float, what: str, interval: float = 0.2):
        try:
            return harness_wait_until(check, timeout=timeout, what=what, interval=interval)
        except TimeoutError as error:
            status = self.agd().get("status", {})
            diagnosis = (
                f"rollout {status.get('rollout')}; analysis {status.get('canaryAnalysis')}; "
                f"freeze {status.get('freeze')}; budget {status.get('errorBudget')}; "
                f"release counts {self.prom.query('shepherd:release_sli_events:increase')} "
                f"{self.prom.query('shepherd:release_sli_errors:increase')}; "
                f"targets {[(t['labels'], t['health']) for t in self.prom.targets()]}; "
                f"operator log {self.operator.log()[-6000:]}"
            )
            raise AssertionError(f"{error}\n{diagnosis}") from None


def image(deployment: dict[str, Any] | None) -> str | None:
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"] if deployment else None


def test_a_broken_canary_is_aborted_by_its_budget_and_a_healthy_one_promotes(
    kube: Cluster, redis_url: str, prom: PrometheusServer, fake: FakeAnthropic, tmp_path: Path
) -> None:
    ns = agent_namespace(kube, "canary")
    operator, operator_target = operator_process(kube, ns, prom, tmp_path)
    bridge = PodBridge(kube, ns, tmp_path / "pods", prometheus=prom, extra_targets=[operator_target])
    traffic = Traffic(bridge, ask_wait, workers=4)
    fake.state.add_faults({"kind": "status", "status": 404, "times": 1_000_000, "model": REFUSED_MODEL})

    story = Story(kube, ns, prom, operator)
    agd, rollout, wait_until = story.agd, story.rollout, story.wait_until

    def stable_ready() -> int:
        return kube.get("deployment", NAME, ns).get("status", {}).get("readyReplicas", 0)

    operator.start()
    try:
        kube.apply(canary_manifest(NAME, fake.url, redis_url), namespace=ns)
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
        first_bad = FirstCall(fake, REFUSED_MODEL).start()
        stable_success_before = total(prom, 'agent_runs_total{release="1", outcome="success"}')
        min_stable_ready: list[int] = []
        model = canary_manifest(NAME, fake.url, redis_url)["spec"]["model"]
        broken = story.patch({"spec": {"model": {**model, "name": REFUSED_MODEL}}})

        def aborted() -> dict[str, Any] | None:
            min_stable_ready.append(stable_ready())
            state = rollout()
            return state if state.get("phase") == "Aborted" else None

        state = wait_until(aborted, timeout=180, what="the broken canary aborted")
        aborted_at = time.monotonic()
        first_bad.stop()
        assert state["release"] == broken
        assert state["step"] == 0  # at its first step
        verdict = agd()["status"]["canaryAnalysis"]
        assert verdict["release"] == broken
        assert verdict["sli"] == "availability"
        wait_until(
            lambda: kube.get("deployment", CANARY, ns)["spec"]["replicas"] == 0,
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
        first_bad_to_abort = aborted_at - first_bad.at if first_bad.at else float("nan")
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
        healthy = story.patch({"spec": {"model": {**model, "name": "claude-haiku-4-5"}}})
        seen: set[tuple[str, int | None]] = set()

        def promoted() -> bool:
            state = rollout()
            seen.add((state.get("phase", ""), state.get("step")))
            return state.get("phase") == "Stable" and state.get("release") == healthy

        wait_until(promoted, timeout=180, what="the healthy canary promoted")
        assert ("Progressing", 0) in seen
        assert ("Progressing", 1) in seen
        wait_until(
            lambda: story.deployment(CANARY) is None,
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


def test_a_canary_waits_for_a_freeze_unless_critical_survives_a_restart_and_deletes_clean(
    kube: Cluster, redis_url: str, prom: PrometheusServer, fake: FakeAnthropic, tmp_path: Path
) -> None:
    ns = agent_namespace(kube, "canary-freeze")
    operator, operator_target = operator_process(kube, ns, prom, tmp_path)
    bridge = PodBridge(kube, ns, tmp_path / "pods", prometheus=prom, extra_targets=[operator_target])
    traffic = Traffic(bridge, ask_wait, workers=4)
    story = Story(kube, ns, prom, operator)
    wait_until = story.wait_until
    doc = agent_manifest(NAME, IMAGE.format(1), fake.url, redis_url)
    doc["spec"]["replicas"] = 2
    doc["spec"]["rollout"] = {
        "strategy": "canary",
        "steps": [{"weight": 50, "pause": "1h"}],  # one Pod of two, for the whole story
        # The critical canary meets the same slow provider as the stable release: all its runs miss
        # the latency objective (burn rate 10 at 90 %), which is the provider's fault, not the release's.
        "analysis": {"minEvents": 5, "burnThreshold": 50},
    }

    def phase(release: int, wanted: str) -> dict[str, Any] | None:
        state = story.rollout()
        return state if (state.get("phase"), state.get("release")) == (wanted, release) else None

    def freeze_level() -> str | None:
        return (story.agd().get("status", {}).get("freeze") or {}).get("level")

    def releases_serving() -> dict[str, int]:
        bridge.sync()
        counts: dict[str, int] = {}
        for pod in bridge.serving():
            release = pod.labels.get("shepherd.dev/release", "")
            counts[release] = counts.get(release, 0) + 1
        return counts

    operator.start()
    try:
        kube.apply(doc, namespace=ns)
        wait_until(lambda: phase(1, "Stable"), timeout=120, what="release 1 stable")
        bridge.wait_serving(2, timeout=120)
        bridge.start_background(0.5)
        traffic.start()
        wait_until(
            lambda: (
                (story.agd().get("status", {}).get("errorBudget") or {}).get("remainingPercent", 0) >= 50
                and freeze_level() == "None"
            ),
            timeout=120,
            what="a full error budget, no freeze",
            interval=0.5,
        )

        # The freeze, as in test_freeze.py: every LLM call slow -> the latency budget burns.
        fake.state.add_faults({"kind": "latency", "seconds": 3, "times": 1_000_000})
        wait_until(
            lambda: freeze_level() == "NonCritical", timeout=120, what="FreezeNonCritical", interval=0.5
        )

        # A non-critical release waits: no canary, release 1 on both Pods, the change pending.
        second = story.patch({"spec": {"image": IMAGE.format(2)}})
        state = wait_until(lambda: phase(second, "Held"), timeout=60, what="the canary held")
        assert "NonCritical" in state["reason"], state
        assert state["weight"] == 0
        assert story.agd()["status"]["pending"]["generation"] == second
        assert story.deployment(CANARY) is None
        stable = story.deployment(NAME)
        assert (image(stable), stable["spec"]["replicas"]) == (IMAGE.format(1), 2)
        assert cond(story.agd(), "Frozen")["status"] == "True"

        # Made critical, it passes FreezeNonCritical as a canary: one Pod of it beside the stable one.
        story.patch({"metadata": {"annotations": {"shepherd.dev/change-class": "critical"}}})
        state = wait_until(lambda: phase(second, "Progressing"), timeout=60, what="the critical canary")
        assert (state["step"], state["weight"], state["stableRelease"]) == (0, 50, 1)
        assert image(story.deployment(CANARY)) == IMAGE.format(2)
        assert image(story.deployment(NAME)) == IMAGE.format(1)
        wait_until(
            lambda: releases_serving() == {"1": 1, str(second): 1},
            timeout=120,
            what="a Pod of each release serving",
            interval=0.5,
        )

        # A newer, non-critical release while still frozen: held, and the critical canary goes.
        third = story.patch(
            {
                "metadata": {"annotations": {"shepherd.dev/change-class": None}},
                "spec": {"image": IMAGE.format(3)},
            }
        )
        state = wait_until(lambda: phase(third, "Held"), timeout=60, what="the newer canary held")
        assert "NonCritical" in state["reason"], state
        wait_until(lambda: story.deployment(CANARY) is None, timeout=60, what="the critical canary gone")
        stable = story.deployment(NAME)
        assert (image(stable), stable["spec"]["replicas"]) == (IMAGE.format(1), 2)
        assert freeze_level() == "NonCritical"

        # The provider recovers: the budget with it, the freeze lifts after its quiet period, and the
        # held release starts as a canary by itself (the stable release still on the other Pod).
        fake.state.reset()
        state = wait_until(lambda: phase(third, "Progressing"), timeout=300, what="the canary after the lift")
        assert freeze_level() == "None"
        assert (state["step"], state["weight"]) == (0, 50)
        assert image(story.deployment(CANARY)) == IMAGE.format(3)
        assert image(story.deployment(NAME)) == IMAGE.format(1)
        wait_until(
            lambda: releases_serving() == {"1": 1, str(third): 1},
            timeout=120,
            what="a Pod of release 1 and one of the new release serving",
            interval=0.5,
        )

        # The operator killed mid-canary and started again: the same step of the same release, from
        # the same moment, once its budget watcher has evaluated (and its reconcile resumed) again.
        state = story.rollout()
        operator.kill()
        killed = datetime.datetime.now(datetime.UTC)
        operator.start()

        def evaluated_since_restart() -> bool:
            stamp = parse_time((story.agd().get("status", {}).get("errorBudget") or {}).get("evaluatedAt"))
            return stamp is not None and stamp > killed

        wait_until(
            evaluated_since_restart, timeout=120, what="the restarted operator's evaluation", interval=0.5
        )
        assert story.rollout() == state
        assert releases_serving() == {"1": 1, str(third): 1}

        # Deleted mid-canary: both Deployments, their Pods, ConfigMaps and every other child go.
        kube.kubectl("delete", "agentdeployment", NAME, "-n", ns, "--wait=true", "--timeout=120s")

        def leftovers() -> str:
            return kube.kubectl(
                "get", "deployment,replicaset,pod,configmap,service,pdb,serviceaccount", "-n", ns,
                "-l", "app.kubernetes.io/managed-by=shepherd", "-o", "name",
            ).stdout.strip()  # fmt: skip

        wait_until(lambda: leftovers() == "", timeout=120, what="nothing left", interval=0.5)
        wait_until(lambda: releases_serving() == {}, timeout=60, what="no agent process left", interval=0.5)
    finally:
        traffic.stop()
        operator.stop()
        bridge.stop()
