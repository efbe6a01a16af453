"""The acceptance story of error budgets and freezes, on real components end to end.

Real: the control plane (kwok), the operator process (kopf + budget watcher), agent-service processes
started by the PodBridge with the rendered env, the real ``anthropic`` SDK against the fake Anthropic
server, Redis, and a Prometheus that scrapes the agents and loads the generated fleet rules for a
1-minute SLO window. Prometheus scrapes the operator's own /metrics too: the per-resource objectives
(``shepherd_slo_*``) the rules join on come from there, as in production.

Story: healthy traffic -> faults -> the burn-rate alert fires (Prometheus alerts API) and the circuit
opens (status, Event, alert) -> the resource freezes (NonCritical) -> an image change is held
(Deployment unchanged, pending in status, Warning Event) -> a critical change passes -> an override
passes exactly one rollout -> Prometheus is killed (freeze stays, PrometheusReachable=False) and
restarted (resumes) -> faults stop -> the circuit closes, the budget recovers, after the quiet period
the freeze lifts and the held change rolls out by itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness.cluster import Cluster
from tests.harness.podbridge import BridgedPod, PodBridge
from tests.harness.processes import wait_until as harness_wait_until
from tests.harness.prometheus import PrometheusServer

from .conftest import Traffic, agent_manifest, agent_namespace, cond, operator_process

NAME = "support"
IMAGE = "registry.test/agent:{}"
QUESTION = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}}
BURN_ALERT = "ShepherdLatencyBudgetBurn"
CIRCUIT_ALERT = "ShepherdCircuitOpen"


def ask(http: httpx.Client, pod: BridgedPod) -> int:
    return http.post(f"http://127.0.0.1:{pod.port}/runs/wait", json=QUESTION).status_code


def agd(kube: Cluster, ns: str) -> dict[str, Any]:
    return kube.get("agentdeployment", NAME, ns)


def image(kube: Cluster, ns: str) -> str:
    return kube.get("deployment", NAME, ns)["spec"]["template"]["spec"]["containers"][0]["image"]


def event_reasons(kube: Cluster, ns: str) -> list[str]:
    items = kube.get("events", namespace=ns)["items"]
    return [e["reason"] for e in items if e["involvedObject"].get("name") == NAME]


def firing(prom: PrometheusServer, alert: str) -> bool:
    return any(a["labels"]["alertname"] == alert and a["state"] == "firing" for a in prom.alerts())


def test_error_budget_freeze_story(
    kube: Cluster, redis_url: str, prom: PrometheusServer, fake: FakeAnthropic, tmp_path: Path
) -> None:
    ns = agent_namespace(kube, "freeze")

    operator, operator_target = operator_process(kube, ns, prom, tmp_path)
    bridge = PodBridge(kube, ns, tmp_path / "pods", prometheus=prom, extra_targets=[operator_target])
    traffic = Traffic(bridge, ask, workers=6)

    def diagnosis() -> str:
        return (
            f"traffic codes {dict(traffic.codes)}; "
            f"budget {prom.query('shepherd:slo_error_budget_remaining:ratio')}; "
            f"burn {prom.query('shepherd:slo_burn_rate')}; "
            f"events {prom.query('shepherd:sli_events:rate4s')}; "
            f"objectives {prom.query('shepherd_slo_objective')}; "
            f"targets {[(t['labels'], t['health']) for t in prom.targets()]}; "
            f"alerts {[(a['labels']['alertname'], a['state']) for a in prom.alerts()]}; "
            f"status {agd(kube, ns).get('status')}; operator log {operator.log()[-6000:]}"
        )

    def wait_until(check, *, timeout: float, what: str, interval: float = 0.1):
        """The harness' wait_until, failing with what Prometheus, the traffic and the status show."""
        try:
            return harness_wait_until(check, timeout=timeout, what=what, interval=interval)
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{diagnosis()}") from None

    operator.start()
    try:
        kube.apply(agent_manifest(NAME, IMAGE.format(1), fake.url, redis_url), namespace=ns)
        wait_until(
            lambda: cond(agd(kube, ns), "Ready").get("status") == "True",
            timeout=120,
            what="Ready",
            interval=0.5,
        )
        bridge.wait_serving(1, timeout=90)
        bridge.start_background(0.5)
        traffic.start()

        # Healthy: the budget is read from Prometheus and nothing is frozen.
        def healthy() -> dict[str, Any] | None:
            obj = agd(kube, ns)
            budget = obj.get("status", {}).get("errorBudget") or {}
            ok = (
                (budget.get("remainingPercent") or 0) >= 50
                and cond(obj, "PrometheusReachable").get("status") == "True"
                and cond(obj, "Frozen").get("status") == "False"
            )
            return obj if ok else None

        obj = wait_until(healthy, timeout=120, what="a full error budget in status", interval=0.5)
        assert cond(obj, "Frozen")["status"] == "False"
        assert cond(obj, "ErrorBudgetHealthy")["status"] == "True"

        # Faults: every LLM call is slow -> requests miss the latency objective -> the budget burns,
        # the burn-rate alert fires, the resource freezes.
        fake.state.add_faults({"kind": "latency", "seconds": 3, "times": 1_000_000})

        wait_until(lambda: firing(prom, BURN_ALERT), timeout=90, what=f"{BURN_ALERT} firing", interval=0.5)
        obj = wait_until(
            lambda: (o := agd(kube, ns)) and cond(o, "Frozen").get("status") == "True" and o,
            timeout=60,
            what="Frozen=True",
            interval=0.5,
        )
        assert obj["status"]["freeze"]["level"] == "NonCritical"
        assert obj["status"]["errorBudget"]["consumedPercent"] >= 75
        assert "RolloutsFrozen" in event_reasons(kube, ns)

        def patch(doc: dict[str, Any]) -> int:
            kube.kubectl("patch", "agentdeployment", NAME, "-n", ns, "--type=merge", "-p", json.dumps(doc))
            return agd(kube, ns)["metadata"]["generation"]

        def pending(generation: int) -> dict[str, Any] | None:
            obj = agd(kube, ns)
            held = (obj["status"].get("pending") or {}).get("generation") == generation
            return obj if held else None

        # A change is held: the Deployment keeps the running release; status and a Warning Event say why.
        gen = patch({"spec": {"image": IMAGE.format(2)}})
        obj = wait_until(lambda: pending(gen), timeout=60, what="change held", interval=0.5)
        assert obj["status"]["pending"]["image"] == IMAGE.format(2)
        assert "NonCritical" in obj["status"]["pending"]["reason"]
        assert image(kube, ns) == IMAGE.format(1)
        assert "FrozenByErrorBudget" in event_reasons(kube, ns)

        # A critical change passes a NonCritical freeze.
        patch({"metadata": {"annotations": {"shepherd.dev/change-class": "critical"}}})
        wait_until(lambda: image(kube, ns) == IMAGE.format(2), timeout=60, what="critical change rolled out")

        # The override passes one rollout, and is recorded; the next change with it is held.
        gen = patch(
            {
                "metadata": {"annotations": {"shepherd.dev/change-class": None}},
                "spec": {"image": IMAGE.format(3)},
            }
        )
        wait_until(lambda: pending(gen), timeout=60, what="non-critical change held", interval=0.5)
        patch({"metadata": {"annotations": {"shepherd.dev/freeze-override": "hotfix INC-7"}}})
        wait_until(lambda: image(kube, ns) == IMAGE.format(3), timeout=60, what="override rolled out")
        obj = wait_until(
            lambda: (o := agd(kube, ns)) and o["status"]["freeze"].get("overridesUsed") and o,
            timeout=30,
            what="override recorded",
        )
        assert obj["status"]["freeze"]["overridesUsed"][0]["reason"] == "hotfix INC-7"
        assert "FreezeOverridden" in event_reasons(kube, ns)
        gen = patch({"spec": {"image": IMAGE.format(4)}})
        obj = wait_until(lambda: pending(gen), timeout=60, what="second override use held", interval=0.5)
        assert "was used for generation" in obj["status"]["pending"]["reason"]
        assert image(kube, ns) == IMAGE.format(3)

        # Prometheus killed during the freeze: the freeze stays, PrometheusReachable=False.
        prom.stop()
        obj = wait_until(
            lambda: (o := agd(kube, ns)) and cond(o, "PrometheusReachable").get("status") == "False" and o,
            timeout=30,
            what="PrometheusReachable=False",
            interval=0.5,
        )
        assert obj["status"]["freeze"]["level"] == "NonCritical"
        assert cond(obj, "Frozen")["status"] == "True"
        assert image(kube, ns) == IMAGE.format(3)
        prom.start()
        wait_until(
            lambda: cond(agd(kube, ns), "PrometheusReachable").get("status") == "True",
            timeout=60,
            what="PrometheusReachable=True after restart",
            interval=0.5,
        )

        # The LLM now fails outright: the circuits open -> status, Event, alert.
        fake.state.reset()
        fake.state.add_faults({"kind": "status", "status": 500, "times": 1_000_000})
        obj = wait_until(
            lambda: (o := agd(kube, ns)) and cond(o, "CircuitsClosed").get("status") == "False" and o,
            timeout=60,
            what="CircuitsClosed=False",
            interval=0.5,
        )
        assert any(c["state"] == "open" for c in obj["status"]["circuits"])
        assert "open" in obj["status"]["circuitsSummary"]
        wait_until(lambda: "CircuitOpen" in event_reasons(kube, ns), timeout=30, what="CircuitOpen Event")
        wait_until(
            lambda: firing(prom, CIRCUIT_ALERT), timeout=60, what=f"{CIRCUIT_ALERT} firing", interval=0.5
        )

        # Faults stop: the circuit closes, the budget recovers, the freeze lifts, the held change rolls out.
        fake.state.reset()
        obj = wait_until(
            lambda: (o := agd(kube, ns)) and cond(o, "CircuitsClosed").get("status") == "True" and o,
            timeout=90,
            what="circuits closed",
            interval=0.5,
        )
        # "none" when the held change rolled out meanwhile: the new Pod has not reported a circuit yet.
        assert obj["status"]["circuitsSummary"] in ("closed", "none")
        assert not [c for c in obj["status"]["circuits"] if c["state"] != "closed"]
        wait_until(lambda: image(kube, ns) == IMAGE.format(4), timeout=240, what="held change rolled out")
        # The Deployment is applied before the reconcile writes its status: wait for that write too.
        obj = wait_until(
            lambda: (o := agd(kube, ns)) and "pending" not in o["status"] and o,
            timeout=30,
            what="the pending change gone from status",
        )
        assert obj["status"]["freeze"]["level"] == "None"
        assert cond(obj, "Frozen")["status"] == "False"
        # The last change of freeze level is the lift (an ErrorBudgetRecovered step may follow it
        # while the budget keeps recovering: that entry keeps the level at None).
        changes = [h for h in obj["status"]["freeze"]["history"] if h["fromLevel"] != h["toLevel"]]
        assert changes[-1]["kind"] == "FreezeLifted"
        assert obj["status"]["freeze"]["history"][-1]["toLevel"] == "None"
        assert {"FreezeLifted", "CircuitClosed"} <= set(event_reasons(kube, ns))
    finally:
        operator.stop()
        traffic.stop()
        bridge.stop()
