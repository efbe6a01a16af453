"""Canary releases (issue 15): time from a canary's first bad run to its abort, and the operator's
writes per canary step, on the whole real chain of the e2e canary story (tests/e2e/test_canary.py).

Real: the local control plane (kwok), the operator process (budget watcher every
``SHEPHERD_BUDGET_INTERVAL`` = 1 s), one AgentDeployment on 3 Pods whose agent-service processes run
through the PodBridge, 4 clients waiting on runs on every Pod in turn, the fake Anthropic server,
Redis, and a Prometheus scraping every second and evaluating the generated fleet rules (1m SLO
window, per-release counts over a 10 s canary window, tests/e2e/conftest.py ``CANARY_RULES``).
The rollout is ``canary_manifest``'s: steps 25 % (1 Pod of 3) for 20 s and 60 % (2 Pods) for 5 s,
analysis ``minEvents 5, factor 2, burnThreshold 14.4``.

Each round starts from a stable release, a healthy budget and no freeze:

* abort: ``model.name`` becomes one the fake provider refuses (404), so every run of the canary
  fails. t0 = the fake server first sees that name (polled every 50 ms); t1 = the first poll
  (every 100 ms, Python client) of the apiserver showing ``status.rollout.phase: Aborted``. The
  canary's runs and bad runs are read from Prometheus (``agent_runs_total{release}``).
* promotion: a healthy model name; the canary promotes through both steps and the stable
  Deployment takes the release.

Writes are the operator's requests in the apiserver's audit log (``tests/harness/audit.py``), each
put, by its timestamp, in the phase whose ``status.rollout`` it leads to (the phases observed by the
same 100 ms poll). The budget watcher also patches the status whenever its figures change (every
second or so under traffic, whatever the rollout does): its patches are counted apart, from the
operator's ``shepherd_budget_status_writes_total``, and left out of the phases' writes.
"""

from __future__ import annotations

import datetime
import os
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from kubernetes import client as k8s_client
from prometheus_client.parser import text_string_to_metric_families
from shepherd import api

from tests.e2e.conftest import (
    CANARY_RULES,
    REFUSED_MODEL,
    FirstCall,
    Traffic,
    agent_namespace,
    ask_wait,
    canary_manifest,
    cond,
    operator_process,
    start_story_prometheus,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import components
from tests.harness.audit import WRITE_VERBS, AuditCounter
from tests.harness.cluster import Cluster
from tests.harness.podbridge import PodBridge
from tests.harness.processes import wait_until

ROUNDS = int(os.environ.get("BENCH_CANARY_ROUNDS", "3"))
NAME = "canary-bench"
CANARY = f"{NAME}-canary"
POLL = 0.1
#: Healthy model names, one per round in turn: each differs from the stable release's.
HEALTHY_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5")
PROMOTION_PHASES = ("canary start (step 1)", "step 2", "promotion", "Pods replaced")
ABORT_PHASES = ("canary start (step 1)", "abort")


@dataclass(frozen=True)
class Mark:
    """A phase's end: when the poll saw it (time.time(), as the audit log's timestamps; and
    time.monotonic()) and the budget watcher's status patches by then."""

    at: float
    monotonic: float
    watcher_writes: float


@dataclass
class Chain:
    kube: Cluster
    ns: str
    prom: Any
    fake: FakeAnthropic
    metrics_url: str
    audit: AuditCounter
    custom: k8s_client.CustomObjectsApi
    apps: k8s_client.AppsV1Api

    def agd(self) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(api.GROUP, api.VERSION, self.ns, api.PLURAL, NAME)

    def patch(self, doc: dict[str, Any]) -> int:
        """Merge-patch the resource; its generation afterwards."""
        got = self.custom.patch_namespaced_custom_object(
            api.GROUP, api.VERSION, self.ns, api.PLURAL, NAME, doc
        )
        return got["metadata"]["generation"]

    def canary_gone(self) -> bool:
        return not self.apps.list_namespaced_deployment(
            self.ns, field_selector=f"metadata.name={CANARY}"
        ).items

    def watcher_writes(self) -> float:
        text = httpx.get(self.metrics_url, timeout=5).text
        return next(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "shepherd_budget_status_writes_total"
        )

    def mark(self) -> Mark:
        return Mark(time.time(), time.monotonic(), self.watcher_writes())

    def follow(self, phases: list[Callable[[dict[str, Any]], bool]]) -> list[Mark]:
        """Polls the resource every POLL seconds; the mark of each phase's predicate, in order."""
        marks: list[Mark] = []
        deadline = time.monotonic() + 600
        while len(marks) < len(phases):
            if time.monotonic() > deadline:
                raise TimeoutError(f"after 600 s only {len(marks)} of {len(phases)} phases: {self.agd()}")
            if phases[len(marks)](self.agd()):
                marks.append(self.mark())
                continue
            time.sleep(POLL)
        return marks

    def total(self, promql: str) -> float:
        return sum(float(s["value"][1]) for s in self.prom.query(promql))


def rollout(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status", {}).get("rollout") or {}


def at(phase: str, release: int, step: int | None = None) -> Callable[[dict[str, Any]], bool]:
    def check(obj: dict[str, Any]) -> bool:
        state = rollout(obj)
        return (state.get("phase"), state.get("release")) == (phase, release) and (
            step is None or state.get("step") == step
        )

    return check


def _stamp(entry: dict[str, Any]) -> float:
    return datetime.datetime.fromisoformat(entry["stageTimestamp"].replace("Z", "+00:00")).timestamp()


def _kind(entry: dict[str, Any]) -> str:
    ref = entry.get("objectRef") or {}
    if ref.get("resource") == "events":
        return "events"
    if ref.get("resource") == api.PLURAL:
        return "status" if ref.get("subresource") == "status" else "resource"
    return "children"


def writes_by_phase(audit: AuditCounter, start: Mark, marks: list[Mark]) -> list[Counter[str]]:
    """The operator's writes in each phase (start, mark 1], (mark 1, mark 2], ... by kind, with the
    budget watcher's status patches of that phase taken out of ``status`` into ``watcher``."""
    phases: list[Counter[str]] = [Counter() for _ in marks]
    for entry in audit.entries():
        if entry["verb"] not in WRITE_VERBS:
            continue
        stamp = _stamp(entry)
        if stamp <= start.at:
            continue
        index = next((i for i, mark in enumerate(marks) if stamp <= mark.at), None)
        if index is not None:
            phases[index][_kind(entry)] += 1
    before = start
    for counts, mark in zip(phases, marks, strict=True):
        watcher = round(mark.watcher_writes - before.watcher_writes)
        counts["watcher"] = watcher
        counts["status"] = max(0, counts["status"] - watcher)
        before = mark
    return phases


def ours(counts: Counter[str]) -> int:
    """Writes of the reconcile (children, Events, status, the resource), the watcher's left out."""
    return sum(n for kind, n in counts.items() if kind != "watcher")


def describe(counts: Counter[str]) -> str:
    parts = ", ".join(
        f"{kind} {counts[kind]}" for kind in ("children", "events", "status", "resource") if counts[kind]
    )
    return f"{ours(counts)} ({parts})" if parts else "0"


def run() -> str:
    aborts, promotions = [], []
    with tempfile.TemporaryDirectory(prefix="bench-canary-") as tmp:
        workdir = Path(tmp)
        kube = components.start_cluster(workdir)
        redis = components.start_redis(workdir)
        prom = start_story_prometheus(workdir, CANARY_RULES, operator_alerts=True)
        fake = FakeAnthropic().start()
        fake.state.add_faults({"kind": "status", "status": 404, "times": 1_000_000, "model": REFUSED_MODEL})
        ns = agent_namespace(kube, "canary-bench")
        operator, operator_target = operator_process(kube, ns, prom, workdir)
        bridge = PodBridge(kube, ns, workdir / "pods", prometheus=prom, extra_targets=[operator_target])
        traffic = Traffic(bridge, ask_wait, workers=4)
        chain = Chain(
            kube,
            ns,
            prom,
            fake,
            f"http://{operator_target['targets'][0]}/metrics",
            AuditCounter(kube.audit_log),
            k8s_client.CustomObjectsApi(kube.api_client),
            k8s_client.AppsV1Api(kube.api_client),
        )
        operator.start()
        try:
            doc = canary_manifest(NAME, fake.url, redis.url)
            kube.apply(doc, namespace=ns)
            bridge.wait_serving(3, timeout=180)
            bridge.start_background(0.5)
            traffic.start()
            model = doc["spec"]["model"]
            for number in range(1, ROUNDS + 1):
                _settle(chain)
                aborts.append(_abort(chain, model))
                print("abort", number, aborts[-1], flush=True)
                _settle(chain)
                healthy = {**model, "name": HEALTHY_MODELS[(number - 1) % len(HEALTHY_MODELS)]}
                promotions.append(_promotion(chain, healthy))
                print("promotion", number, [describe(c) for c in promotions[-1]], flush=True)
        finally:
            operator.stop()
            traffic.stop()
            bridge.stop()
            fake.stop()
            prom.stop()
            redis.stop()
            if kube.local:
                kube.local.stop()
    return _tables(aborts, promotions)


def _settle(chain: Chain) -> None:
    """No canary under way (the last one promoted or aborted), a healthy budget and no freeze (a
    broken canary's bad runs count against the budget: they may freeze the resource for a while)."""

    def settled() -> bool:
        obj = chain.agd()
        budget = (obj.get("status", {}).get("errorBudget") or {}).get("remainingPercent") or 0
        idle = rollout(obj).get("phase") in ("Stable", "Aborted")
        return idle and budget >= 50 and cond(obj, "Frozen").get("status") == "False"

    wait_until(settled, timeout=600, what="no canary under way, a healthy budget, no freeze", interval=0.5)


def _abort(chain: Chain, model: dict[str, Any]) -> dict[str, Any]:
    stable = rollout(chain.agd())["release"]
    first_bad = FirstCall(chain.fake, REFUSED_MODEL).start()
    start = chain.mark()
    broken = chain.patch({"spec": {"model": {**model, "name": REFUSED_MODEL}}})
    try:
        marks = chain.follow([at("Progressing", broken, 0), at("Aborted", broken)])
    finally:
        first_bad.stop()
    state = rollout(chain.agd())
    span = f"{int(time.time() - start.at) + 5}s"
    canary_runs = chain.total(f'max_over_time(agent_runs_total{{release="{broken}"}}[{span}])')
    canary_bad = chain.total(
        f'max_over_time(agent_runs_total{{release="{broken}", outcome=~"error|timeout"}}[{span}])'
    )
    stable_runs = chain.total(f'increase(agent_runs_total{{release="{stable}"}}[{span}])')
    return {
        "first_bad_to_abort": marks[-1].monotonic - first_bad.at if first_bad.at else float("nan"),
        "step": state.get("step"),
        "canary_runs": canary_runs,
        "canary_bad": canary_bad,
        "share": canary_runs / (canary_runs + stable_runs) if canary_runs + stable_runs else float("nan"),
        "writes": writes_by_phase(chain.audit, start, marks),
    }


def _promotion(chain: Chain, model: dict[str, Any]) -> list[Counter[str]]:
    start = chain.mark()
    healthy = chain.patch({"spec": {"model": model}})

    def replaced(obj: dict[str, Any]) -> bool:
        status = obj.get("status", {})
        done = status.get("readyReplicas") == 3 and "pending" not in status and at("Stable", healthy)(obj)
        return done and chain.canary_gone()

    marks = chain.follow(
        [at("Progressing", healthy, 0), at("Progressing", healthy, 1), at("Stable", healthy), replaced]
    )
    return writes_by_phase(chain.audit, start, marks)


def _tables(aborts: list[dict[str, Any]], promotions: list[list[Counter[str]]]) -> str:
    lines = [
        "A broken canary (every run fails), aborted by its analysis:",
        "",
        "| round | first bad run to abort (s) | step at abort | canary runs (bad) | share of runs meanwhile "
        "| writes to the canary's start | writes to the abort | budget watcher's status patches |",
        "|---:|---:|---:|---:|---:|---|---|---:|",
    ]
    for number, row in enumerate(aborts, 1):
        start, abort = row["writes"]
        lines.append(
            f"| {number} | {row['first_bad_to_abort']:.1f} | {row['step'] + 1} | {row['canary_runs']:.0f} "
            f"({row['canary_bad']:.0f}) | {row['share']:.1%} | {describe(start)} | {describe(abort)} "
            f"| {start['watcher'] + abort['watcher']} |"
        )
    seconds = [row["first_bad_to_abort"] for row in aborts]
    lines.append(f"| median | {statistics.median(seconds):.1f} | | | | | | |")
    lines += [
        "",
        "A healthy canary promoted through both steps (the reconcile's writes per phase):",
        "",
        "| round | " + " | ".join(PROMOTION_PHASES) + " | whole canary | budget watcher's status patches |",
        "|---:|" + "---|" * len(PROMOTION_PHASES) + "---:|---:|",
    ]
    for number, phases in enumerate(promotions, 1):
        whole = sum((Counter(p) for p in phases), Counter())
        cells = " | ".join(describe(p) for p in phases)
        lines.append(f"| {number} | {cells} | {ours(whole)} | {whole['watcher']} |")
    return "\n".join(lines)
