"""What the end-to-end stories share: a Prometheus of their own loaded with the generated rules for a
1-minute SLO window, the fake Anthropic server, the operator as a process scraped by that Prometheus,
and background traffic against every bridged agent Pod."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from shepherd.slo.rules import RuleConfig, rule_groups

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import components
from tests.harness.cluster import Cluster
from tests.harness.podbridge import BridgedPod, PodBridge
from tests.harness.processes import ManagedProcess, free_port
from tests.harness.prometheus import PrometheusServer

OPERATOR_BIN = Path(sys.executable).parent / "shepherd-operator"


@pytest.fixture
def prom(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus of this test alone (it may be killed) with the generated rules for a 1m window."""
    server = components.start_prometheus(tmp_path)
    config = RuleConfig(
        scrape_interval=timedelta(seconds=1),
        evaluation_interval=timedelta(seconds=1),
        circuit_open_for=timedelta(seconds=3),
    )
    rules = tmp_path / "shepherd-rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": rule_groups(["1m"], config)}, sort_keys=False))
    server.set_rule_files([rules])
    yield server
    server.stop()


@pytest.fixture
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


def operator_process(
    kube: Cluster, namespace: str, prom: PrometheusServer, workdir: Path
) -> tuple[ManagedProcess, dict]:
    """The operator watching ``namespace``, reading budgets from ``prom`` every second, with its
    /metrics on a free loopback port; and the file_sd group that scrapes it."""
    port = free_port()
    metrics = ["--metrics-port", str(port), "--metrics-address", "127.0.0.1"]
    operator = ManagedProcess(
        "operator",
        [str(OPERATOR_BIN), "--namespace", namespace, "--verbose", *metrics],
        workdir,
        {
            "KUBECONFIG": str(kube.kubeconfig),
            "SHEPHERD_PROMETHEUS_URL": prom.url,
            "SHEPHERD_BUDGET_INTERVAL": "1",
            "SHEPHERD_RESYNC_SECONDS": "5",
        },
    )
    operator.env.pop("KUBERNETES_SERVICE_HOST", None)
    return operator, {"targets": [f"127.0.0.1:{port}"], "labels": {"job": "shepherd-operator"}}


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
