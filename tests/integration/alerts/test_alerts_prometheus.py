"""The generated fleet-wide rules in a real Prometheus: objectives served by ObjectivesCollector,
a fake agent's counters, a 10m SLO scraped and evaluated every second.

promtool covers each alert's logic; this proves the same file loads and evaluates without rule
errors in the real server, that the operator's exposition joins, and that a burn fires and clears.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server
from shepherd.slo.__main__ import main as generate
from shepherd.slo.objectives import ObjectivesCollector

from tests.harness.processes import free_port, wait_until

RESOURCE = {
    "metadata": {"namespace": "it-slo", "name": "fake"},
    "spec": {
        "slo": {"window": "10m", "availability": {"target": 99.9}},
        "model": {"provider": "stub", "name": "stub"},
    },
}


class FakeAgent:
    """10 runs per second, each answered 200; `failing` makes 1 in 10 of them end in an error."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "agent_http_requests", "requests", ["route", "method", "code"], registry=self.registry
        )
        self.runs = Counter("agent_runs", "runs", ["outcome", "reason"], registry=self.registry)
        self.failing = True
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            failed = self.failing and int(time.time() * 10) % 10 == 0
            self.runs.labels(*(("error", "llm_unavailable") if failed else ("success", ""))).inc()
            self.requests.labels("/runs/wait", "POST", "200").inc()

    def start(self) -> FakeAgent:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def servers(prometheus, tmp_path: Path) -> Iterator[FakeAgent]:
    agent = FakeAgent().start()
    agent_port, operator_port = free_port(), free_port()
    agent_server, _ = start_http_server(agent_port, addr="127.0.0.1", registry=agent.registry)
    operator_registry = CollectorRegistry()
    operator_registry.register(ObjectivesCollector(lambda: [RESOURCE]))
    operator_server, _ = start_http_server(operator_port, addr="127.0.0.1", registry=operator_registry)
    args = ["--slo-window", "10m", "--scrape-interval", "1s", "--evaluation-interval", "1s"]
    assert generate([*args, "--out-dir", str(tmp_path)]) == 0
    prometheus.set_targets(
        [
            {
                "targets": [f"127.0.0.1:{agent_port}"],
                "labels": {"namespace": "it-slo", "agentdeployment": "fake"},
            },
            # The operator's series carry their own namespace/agentdeployment; this target adds none.
            {"targets": [f"127.0.0.1:{operator_port}"], "labels": {"job_role": "operator"}},
        ]
    )
    prometheus.set_rule_files([tmp_path / "shepherd-rules.yaml"])
    yield agent
    prometheus.set_rule_files([])
    prometheus.set_targets([])
    agent.stop()
    agent_server.shutdown()
    operator_server.shutdown()


def _firing(prometheus) -> set[tuple[str, str]]:
    return {
        (a["labels"]["alertname"], a["labels"].get("long", ""))
        for a in prometheus.alerts()
        if a["state"] == "firing" and a["labels"].get("agentdeployment") == "fake"
    }


def test_burn_fires_budget_drops_and_clears_in_a_real_prometheus(prometheus, servers: FakeAgent) -> None:
    # 10 % errors against a 0.1 % budget: the 14.4x page (4s/4s windows at 10m) fires within seconds.
    wait_until(
        lambda: ("ShepherdAvailabilityBudgetBurn", "4s") in _firing(prometheus),
        timeout=60,
        what="the page-level burn alert to fire",
    )
    remaining = prometheus.wait_for_query(
        'shepherd:slo_error_budget_remaining:ratio{namespace="it-slo", agentdeployment="fake"} < 0'
    )
    assert remaining[0]["metric"]["slo_window"] == "10m"
    burn = prometheus.query('shepherd:slo_burn_rate{agentdeployment="fake", window="1m"}')
    assert 50 < float(burn[0]["value"][1]) < 200  # ~100x

    # Every rule evaluates cleanly (no many-to-many joins, no type errors) in the real server. Groups
    # with a fixed long interval (5m spend steps) may not have had their first evaluation yet: they
    # must not have failed one (promtool tests evaluate them).
    groups = prometheus.api("rules")["groups"]
    unhealthy = [
        (group["name"], rule["name"], rule.get("lastError"))
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok" and not (rule["health"] == "unknown" and group["interval"] >= 60)
    ]
    assert unhealthy == []
    assert sum(rule["health"] == "ok" for group in groups for rule in group["rules"]) > 50

    # Errors stop: the short windows clear within seconds and every burn alert resolves.
    servers.failing = False
    wait_until(
        lambda: not {a for a in _firing(prometheus) if a[0] == "ShepherdAvailabilityBudgetBurn"},
        timeout=60,
        what="the burn alerts to resolve",
    )
