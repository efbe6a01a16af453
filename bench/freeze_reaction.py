"""Freeze reaction time and Prometheus queries per evaluation of the budget watcher (issue 6).

For N = 1, 100, 500 AgentDeployments on the local control plane and a real Prometheus, with the
operator's budget watcher running in this process (interval ``BENCH_BUDGET_INTERVAL``, default 2 s):

* queries per evaluation (goal: constant in N) and the duration of one no-op evaluation pass;
* freeze reaction: the budget of one resource is pushed past a freezing step; t0 is the first
  moment Prometheus answers the crossed value (``shepherd:slo_error_budget_remaining:ratio``
  polled every 50 ms), t1 the first moment the apiserver shows ``Frozen=True`` on the resource
  (polled every 50 ms). Goal: t1 - t0 <= one watcher interval + 1 s. Repeated ``ROUNDS`` times (the
  freeze is lifted in between by restoring the budget; quiet period 1 s).

The budget series are synthetic (a prometheus_client target recorded under the ``shepherd:`` names by
a one-group rule file), so the measurement is the watcher's, not the SLO rules' evaluation delay.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from prometheus_client import CollectorRegistry, Gauge, start_http_server
from shepherd import api, crd
from shepherd.budget.prometheus import PrometheusClient
from shepherd.budget.watcher import BudgetWatcher
from shepherd.kube import KubeClient

from tests.harness import components
from tests.harness.processes import free_port

SIZES = tuple(int(n) for n in os.environ.get("BENCH_FREEZE_SIZES", "1,100,500").split(","))
INTERVAL = float(os.environ.get("BENCH_BUDGET_INTERVAL", "2"))
ROUNDS = int(os.environ.get("BENCH_FREEZE_ROUNDS", "3"))
POLL = 0.05
RULES = {
    "groups": [
        {
            "name": "bench-budget",
            "interval": "1s",
            "rules": [
                {
                    "record": "shepherd:slo_error_budget_remaining:ratio",
                    "expr": "max without (instance, job) (bench_budget_remaining)",
                },
                {"record": "shepherd:slo_burn_rate", "expr": "max without (instance, job) (bench_burn_rate)"},
            ],
        }
    ]
}


def agent(name: str) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "redis": {"external": {"url": "redis://redis.example.invalid:6379/0"}},
            "monitoring": {"podMonitor": False, "prometheusRule": False, "dashboard": False},
            "errorBudgetPolicy": {
                "steps": [{"consumedPercent": 75, "action": "FreezeNonCritical"}],
                "recovery": {"quietPeriod": "1s"},
            },
        },
    }


class Series:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ["namespace", "agentdeployment", "sli"]
        self.remaining = Gauge("bench_budget_remaining", "", labels, registry=self.registry)
        self.burn = Gauge("bench_burn_rate", "", [*labels, "window"], registry=self.registry)
        self.port = free_port()
        self.server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)

    def set(self, ns: str, name: str, remaining: float, burn: float) -> None:
        self.remaining.labels(ns, name, "availability").set(remaining)
        self.burn.labels(ns, name, "availability", "5m").set(burn)


async def _until(check, what: str, within: float = 120) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(POLL)
    raise TimeoutError(f"{what} not reached within {within}s")


def _frozen(body: dict[str, Any] | None) -> bool:
    conds = ((body or {}).get("status") or {}).get("conditions") or []
    return any(c["type"] == "Frozen" and c["status"] == "True" for c in conds)


async def _measure(kube, prom, series: Series, client: KubeClient, n: int) -> dict[str, Any]:
    ns = kube.namespace(f"bench-freeze-{n}")
    names = [f"a{i}" for i in range(n)]
    for start in range(0, n, 100):
        kube.apply(*[agent(x) for x in names[start : start + 100]], namespace=ns)
    for name in names:
        series.set(ns, name, 0.95, 0.1)
    watcher = BudgetWatcher(client, prometheus_url=prom.url, interval=INTERVAL, namespaces=[ns], refresh=3600)

    async def all_read() -> bool:
        result = await watcher.evaluate()
        return (
            result.resources == n
            and all(r.snapshots for r in result.readings.values())
            and (len(next(iter(result.readings.values())).snapshots) >= n)
        )

    await _until(all_read, f"{n} budgets in Prometheus")
    started = time.monotonic()
    noop = await watcher.evaluate()
    noop_seconds = time.monotonic() - started
    queries = noop.queries

    watcher.start()
    reactions = []
    target = names[0]
    probe = PrometheusClient(prom.url)
    selector = f'namespace="{ns}", agentdeployment="{target}"'
    crossing = f"shepherd:slo_error_budget_remaining:ratio{{{selector}}} < 0.25"
    try:
        for _ in range(ROUNDS):
            series.set(ns, target, 0.05, 20.0)

            async def crossed() -> bool:
                return bool(await probe.query(crossing))

            await _until(crossed, "crossing visible in Prometheus")
            t0 = time.monotonic()

            async def frozen() -> bool:
                got = await client.get(api.API_VERSION, api.PLURAL, ns, target)
                return _frozen(got.body)

            await _until(frozen, "Frozen=True")
            reactions.append(time.monotonic() - t0)
            series.set(ns, target, 0.99, 0.0)

            async def lifted() -> bool:
                got = await client.get(api.API_VERSION, api.PLURAL, ns, target)
                return not _frozen(got.body)

            await _until(lifted, "freeze lifted")
    finally:
        await watcher.stop()
        await probe.close()
    return {
        "n": n,
        "queries": queries,
        "noop_seconds": noop_seconds,
        "noop_writes": noop.writes,
        "median": statistics.median(reactions),
        "max": max(reactions),
    }


async def _run_all(kube, prom, series: Series) -> list[dict[str, Any]]:
    cfg = k8s_client.Configuration()
    k8s_config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    client = KubeClient(cfg)
    try:
        return [await _measure(kube, prom, series, client, n) for n in SIZES]
    finally:
        await client.close()


def run() -> str:
    workdir = Path(tempfile.mkdtemp(prefix="bench-freeze-"))
    kube = components.start_cluster(workdir / "kube")
    prom = components.start_prometheus(workdir)
    series = Series()
    try:
        kube.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd.CRD_PATH))
        kube.kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd.CRD_NAME}")
        rules = workdir / "bench-rules.yaml"
        rules.write_text(yaml.safe_dump(RULES, sort_keys=False))
        prom.set_rule_files([rules])
        prom.set_targets([{"targets": [f"127.0.0.1:{series.port}"], "labels": {}}])
        rows = asyncio.run(_run_all(kube, prom, series))
    finally:
        series.server.shutdown()
        prom.stop()
        kube.delete_namespaces()
        if kube.local:
            kube.local.stop()
    goal = INTERVAL + 1
    lines = [
        f"Budget watcher interval {INTERVAL:g} s; reaction goal <= {goal:g} s (interval + 1 s); "
        f"{ROUNDS} rounds per size.",
        "",
        "| AgentDeployments | Prometheus queries / evaluation | no-op evaluation (s) | no-op status writes "
        "| freeze reaction median (s) | freeze reaction max (s) | within goal |",
        "|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['n']} | {r['queries']} | {r['noop_seconds']:.2f} | {r['noop_writes']} | {r['median']:.2f} "
            f"| {r['max']:.2f} | {'yes' if r['max'] <= goal else 'no'} |"
        )
    return "\n".join(lines)
