"""An LLM outage freezes rollouts: the story issue 13 asks for, on real components end to end.

Real: the control plane (kwok), the operator process (kopf + budget watcher), agent-service processes
started by the PodBridge with the rendered env, the real ``anthropic`` SDK against the fake Anthropic
server, Redis, and a Prometheus that scrapes the agents and the operator and evaluates the generated
rules for a 1-minute SLO window.

Story: healthy traffic (runs waited on and streamed; spend shows in status) -> the fake provider
answers 529 to every call: every run fails, yet every HTTP answer is a 200 -> the circuit opens
(status, CIRCUITS column), ShepherdAllCircuitsOpen fires, the availability budget burns (its burn
alert and ErrorBudgetHealthy name the top failure reason, llm_unavailable) and the freeze engages
at its step -> an image change is held -> the outage ends: the budget recovers past the quiet
period, the freeze lifts and the held change rolls out by itself. The time from the outage's
start to Frozen=True is printed (bench/outage_freeze.py measures it over several rounds).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness.cluster import Cluster
from tests.harness.podbridge import PodBridge
from tests.harness.processes import wait_until as harness_wait_until
from tests.harness.prometheus import PrometheusServer

from .conftest import (
    OUTAGE,
    Traffic,
    agent_manifest,
    agent_namespace,
    ask_wait_or_stream,
    cond,
    operator_process,
)

NAME = "helpline"
IMAGE = "registry.test/helpline:{}"


def manifest(fake_url: str, redis_url: str) -> dict[str, Any]:
    body = agent_manifest(NAME, IMAGE.format(1), fake_url, redis_url)
    body["spec"]["costBudget"] = {"usdPerDay": 20, "usdPerMonth": 200}
    return body


def firing(prom: PrometheusServer, alert: str) -> list[dict[str, Any]]:
    return [a for a in prom.alerts() if a["labels"]["alertname"] == alert and a["state"] == "firing"]


def value(prom: PrometheusServer, promql: str) -> float:
    return sum(float(s["value"][1]) for s in prom.query(promql))


def test_an_llm_outage_freezes_rollouts_and_the_recovery_lifts_the_freeze(
    kube: Cluster, redis_url: str, prom: PrometheusServer, fake: FakeAnthropic, tmp_path: Path
) -> None:
    ns = agent_namespace(kube, "outage")
    operator, operator_target = operator_process(kube, ns, prom, tmp_path)
    bridge = PodBridge(kube, ns, tmp_path / "pods", prometheus=prom, extra_targets=[operator_target])
    traffic = Traffic(bridge, ask_wait_or_stream, workers=6)
    scope = f'namespace="{ns}", agentdeployment="{NAME}"'

    def agd() -> dict[str, Any]:
        return kube.get("agentdeployment", NAME, ns)

    def image() -> str:
        return kube.get("deployment", NAME, ns)["spec"]["template"]["spec"]["containers"][0]["image"]

    def events() -> list[str]:
        return [e["reason"] for e in kube.get("events", namespace=ns)["items"]]

    def wait_until(check, *, timeout: float, what: str, interval: float = 0.2):
        try:
            return harness_wait_until(check, timeout=timeout, what=what, interval=interval)
        except TimeoutError as error:
            raise AssertionError(
                f"{error}\ntraffic {dict(traffic.codes)}; status {agd().get('status')}; "
                f"alerts {[(a['labels']['alertname'], a['state']) for a in prom.alerts()]}; "
                f"runs {prom.query(f'agent_runs_total{{{scope}}}')}; operator log {operator.log()[-4000:]}"
            ) from None

    operator.start()
    try:
        kube.apply(manifest(fake.url, redis_url), namespace=ns)
        bridge.wait_serving(1, timeout=120)
        bridge.start_background(0.5)
        traffic.start()

        # Healthy: a full budget, nothing frozen, and what the runs cost in status.
        def healthy() -> dict[str, Any] | None:
            obj = agd()
            status = obj.get("status", {})
            ok = (
                (status.get("errorBudget", {}).get("remainingPercent") or 0) >= 50
                and cond(obj, "Frozen").get("status") == "False"
                and (status.get("spend", {}).get("todayUsd") or 0) > 0
            )
            return obj if ok else None

        obj = wait_until(healthy, timeout=150, what="a full budget and spend in status", interval=0.5)
        assert cond(obj, "ErrorBudgetHealthy")["status"] == "True"
        assert obj["status"]["spend"]["todayPercent"] >= 0
        assert obj["status"]["spend"]["monthUsd"] >= obj["status"]["spend"]["todayUsd"]

        # The provider's total outage.
        before = dict(traffic.codes)
        outage_started = time.monotonic()
        fake.state.add_faults(OUTAGE)

        obj = wait_until(
            lambda: (o := agd()) and cond(o, "Frozen").get("status") == "True" and o,
            timeout=120,
            what="Frozen=True",
            interval=0.1,
        )
        outage_to_frozen = time.monotonic() - outage_started
        print(f"\noutage to Frozen=True: {outage_to_frozen:.1f} s")
        assert obj["status"]["freeze"]["level"] == "NonCritical"
        assert "top failure reason: llm_unavailable" in cond(obj, "ErrorBudgetHealthy")["message"]
        assert "RolloutsFrozen" in events()

        # Circuits open: status, the CIRCUITS column, the alert.
        wait_until(
            lambda: "open" in (agd()["status"].get("circuitsSummary") or "").replace("half-open", ""),
            timeout=60,
            what="an open circuit in status",
        )
        assert cond(agd(), "CircuitsClosed")["status"] == "False"
        wait_until(
            lambda: "open" in kube.kubectl("get", "agentdeployment", NAME, "-n", ns).stdout.split("\n")[1],
            timeout=60,
            what="the CIRCUITS column",
        )
        wait_until(
            lambda: firing(prom, "ShepherdAllCircuitsOpen"), timeout=60, what="ShepherdAllCircuitsOpen"
        )
        burn = wait_until(
            lambda: firing(prom, "ShepherdAvailabilityBudgetBurn"), timeout=60, what="availability burn alert"
        )
        assert any("Top failure reason" in a["annotations"]["description"] for a in burn)
        assert any("llm_unavailable" in a["annotations"]["description"] for a in burn)

        # Every run failed, yet no HTTP answer was a 5xx: the runs are what the SLI counted.
        assert value(prom, f'agent_runs_total{{{scope}, outcome="error", reason="llm_unavailable"}}') > 0
        assert value(prom, f'agent_http_requests_total{{{scope}, code=~"5.."}}') == 0
        during = {code: n - before.get(code, 0) for code, n in traffic.codes.items()}
        assert set(during) == {200}, during

        # A change is held: the running release stays; status and an Event say why.
        kube.kubectl(
            "patch", "agentdeployment", NAME, "-n", ns, "--type=merge", "-p",
            json.dumps({"spec": {"image": IMAGE.format(2)}}),
        )  # fmt: skip
        obj = wait_until(
            lambda: (o := agd()) and (o["status"].get("pending") or {}).get("image") == IMAGE.format(2) and o,
            timeout=60,
            what="the image change held",
        )
        assert "NonCritical" in obj["status"]["pending"]["reason"]
        assert image() == IMAGE.format(1)
        assert "FrozenByErrorBudget" in events()

        # The outage ends: the budget recovers past the quiet period, the freeze lifts and the held
        # change rolls out by itself.
        fake.state.reset()
        wait_until(
            lambda: image() == IMAGE.format(2), timeout=300, what="the held change rolled out", interval=0.5
        )
        obj = wait_until(
            lambda: (o := agd()) and "pending" not in o["status"] and o, timeout=60, what="no pending change"
        )
        assert obj["status"]["freeze"]["level"] == "None"
        assert cond(obj, "Frozen")["status"] == "False"
        assert "FreezeLifted" in events()
    finally:
        operator.stop()
        traffic.stop()
        bridge.stop()
