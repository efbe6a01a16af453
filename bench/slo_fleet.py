"""Rules in Prometheus at fleet scale (issue 6): Shepherd's fleet-wide set (one per SLO window,
joined on the exported ``shepherd_slo_*`` objectives) next to the same SLOs written one rule set per
resource, the Sloth/Pyrra way (bench/slo_rules.py), in the same run on the same real Prometheus.

For N = 1, 100, 500 resources: synthetic agent traffic for N resources (availability counter and
latency histogram, advanced every second), the objectives of N resources, then each rule set in turn;
reported: rules loaded, and the sum over groups of Prometheus' own last evaluation time per group
(``evaluationTime`` of /api/v1/rules), median of samples taken every second over ``SAMPLE_SECONDS``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from shepherd.slo.objectives import ObjectivesCollector

from bench.slo_rules import (
    NAMESPACE,
    bench_resources,
    fleet_rule_groups,
    per_resource_rule_groups,
    resource_name,
)
from tests.harness import components
from tests.harness.processes import free_port, wait_until

SIZES = tuple(int(n) for n in os.environ.get("BENCH_SLO_SIZES", "1,100,500").split(","))
SAMPLE_SECONDS = int(os.environ.get("BENCH_SLO_SAMPLE_SECONDS", "20"))


class Traffic:
    """N resources' request series, advancing every second (1 % errors, a few slow requests)."""

    def __init__(self, n: int):
        self.registry = CollectorRegistry()
        labels = ["namespace", "agentdeployment", "route", "method"]
        self.requests = Counter("agent_http_requests", "requests", [*labels, "code"], registry=self.registry)
        self.duration = Histogram(
            "agent_http_request_duration_seconds", "latency", labels, registry=self.registry
        )
        self.n = n
        self._stop = threading.Event()

    def tick(self) -> None:
        for i in range(self.n):
            base = (NAMESPACE, resource_name(i), "/threads/{thread_id}/runs/wait", "POST")
            self.requests.labels(*base, "200").inc(99)
            self.requests.labels(*base, "500").inc(1)
            self.duration.labels(*base).observe(0.2)
            self.duration.labels(*base).observe(2.5)

    def run(self) -> None:
        while not self._stop.wait(1):
            self.tick()

    def stop(self) -> None:
        self._stop.set()


def _evaluation_time(prometheus, expected_rules: int) -> tuple[int, float]:
    def loaded() -> int | None:
        groups = prometheus.api("rules")["groups"]
        count = sum(len(g["rules"]) for g in groups)
        # Prometheus staggers each group's first evaluation within its interval: wait for the
        # frequent groups only (the 5m step group may take up to 5 minutes to run first).
        evaluated = all(g.get("lastEvaluation", "").startswith("20") for g in groups if g["interval"] <= 60)
        return count if count == expected_rules and evaluated else None

    rules = wait_until(loaded, timeout=180, what=f"{expected_rules} rules loaded and evaluated", interval=1)
    samples = []
    for _ in range(SAMPLE_SECONDS):
        groups = prometheus.api("rules")["groups"]
        samples.append(sum(g["evaluationTime"] for g in groups))
        time.sleep(1)
    return rules, statistics.median(samples)


def _measure(prometheus, workdir: Path, name: str, groups: list[dict]) -> tuple[int, float]:
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    prometheus.set_rule_files([path])
    result = _evaluation_time(prometheus, sum(len(g["rules"]) for g in groups))
    prometheus.set_rule_files([])
    return result


def run() -> str:
    rows = []
    for n in SIZES:
        with tempfile.TemporaryDirectory(prefix="bench-slo-") as tmp:
            workdir = Path(tmp)
            prometheus = components.start_prometheus(workdir)
            traffic = Traffic(n)
            traffic.registry.register(ObjectivesCollector(lambda n=n: bench_resources(n)))
            port = free_port()
            server, _ = start_http_server(port, addr="127.0.0.1", registry=traffic.registry)
            ticker = threading.Thread(target=traffic.run, daemon=True)
            ticker.start()
            try:
                prometheus.set_targets([{"targets": [f"127.0.0.1:{port}"]}])
                prometheus.wait_for_query(
                    f'count(agent_http_requests_total{{namespace="{NAMESPACE}"}}) >= {n}'
                )
                fleet = _measure(prometheus, workdir, "fleet", fleet_rule_groups())
                per_resource = _measure(prometheus, workdir, "per-resource", per_resource_rule_groups(n))
            finally:
                traffic.stop()
                server.shutdown()
                prometheus.stop()
        rows.append((n, fleet, per_resource))
        print(n, fleet, per_resource, flush=True)
    lines = [
        "| N | Shepherd fleet-wide: rules | evaluation time per cycle (ms) "
        "| per-resource (Sloth/Pyrra way): rules | evaluation time per cycle (ms) | ratio |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for n, (fleet_rules, fleet_s), (per_rules, per_s) in rows:
        lines.append(
            f"| {n} | {fleet_rules} | {fleet_s * 1000:.1f} | {per_rules} | {per_s * 1000:.1f} | "
            f"{per_s / fleet_s:.1f}x |"
        )
    return "\n".join(lines)
