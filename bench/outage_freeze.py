"""Time from an LLM outage's start to Frozen=True, on the whole real chain (issue 13).

The chain of the e2e outage story (tests/e2e/test_outage.py): the local control plane, the operator
process (budget watcher every ``SHEPHERD_BUDGET_INTERVAL`` = 1 s), one AgentDeployment whose Pod runs
the real agent-service through the PodBridge, 6 clients waiting on and streaming runs, the fake
Anthropic server, Redis, and a Prometheus scraping every second and evaluating the generated rules
for the story's 1m SLO window (tests/e2e/conftest.py ``STORY_RULES``).

Each round: a healthy budget and no freeze; t0 = the fake provider starts answering 529 to every
call; t1 = the first poll (every 100 ms) of the apiserver that shows ``Frozen=True``; also the first
moments Prometheus reports ``ShepherdAllCircuitsOpen`` and ``ShepherdAvailabilityBudgetBurn``
firing. Then the outage ends and the round waits for the freeze to lift. Goal: within two watcher
intervals plus the page alert's short window (4 s at a 1m SLO window).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from shepherd.slo.objectives import canonical_window
from shepherd.slo.windows import parse_duration, scale_windows

from tests.e2e.conftest import (
    OUTAGE,
    STORY_RULES,
    Traffic,
    agent_manifest,
    agent_namespace,
    ask_wait_or_stream,
    cond,
    operator_process,
    start_story_prometheus,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import components
from tests.harness.podbridge import PodBridge
from tests.harness.processes import wait_until

ROUNDS = int(os.environ.get("BENCH_OUTAGE_ROUNDS", "3"))
NAME = "outage-bench"
WATCHER_INTERVAL = 1.0  # what tests/e2e/conftest.py operator_process sets
POLL = 0.1


def goal_seconds() -> float:
    window = parse_duration(canonical_window(agent_manifest(NAME, "", "", "")["spec"]["slo"]["window"]))
    page = scale_windows(window, scrape_interval=STORY_RULES.scrape_interval).burn[0]
    return 2 * WATCHER_INTERVAL + page.short.total_seconds()


def run() -> str:
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-outage-") as tmp:
        workdir = Path(tmp)
        kube = components.start_cluster(workdir)
        redis = components.start_redis(workdir)
        prom = start_story_prometheus(workdir)
        fake = FakeAnthropic().start()
        ns = agent_namespace(kube, "outage-bench")
        operator, operator_target = operator_process(kube, ns, prom, workdir)
        bridge = PodBridge(kube, ns, workdir / "pods", prometheus=prom, extra_targets=[operator_target])
        traffic = Traffic(bridge, ask_wait_or_stream, workers=6)
        operator.start()
        try:
            kube.apply(agent_manifest(NAME, "registry.test/bench:1", fake.url, redis.url), namespace=ns)
            bridge.wait_serving(1, timeout=180)
            bridge.start_background(0.5)
            traffic.start()
            for number in range(1, ROUNDS + 1):
                rows.append((number, *_round(kube, ns, prom, fake)))
                print(rows[-1], flush=True)
        finally:
            operator.stop()
            traffic.stop()
            bridge.stop()
            fake.stop()
            prom.stop()
            redis.stop()
            if kube.local:
                kube.local.stop()
    goal = goal_seconds()
    lines = [
        "| round | outage to ShepherdAllCircuitsOpen firing (s) | outage to availability burn alert "
        "firing (s) | outage to Frozen=True (s) | goal (s) | within goal |",
        "|---:|---:|---:|---:|---:|:---:|",
    ]
    for number, circuits, burn, frozen in rows:
        within = "yes" if frozen <= goal else "no"
        lines.append(f"| {number} | {circuits:.1f} | {burn:.1f} | {frozen:.1f} | {goal:g} | {within} |")
    frozen = [row[3] for row in rows]
    lines.append(f"| median | | | {statistics.median(frozen):.1f} | {goal:g} | |")
    return "\n".join(lines)


def _round(kube, ns: str, prom, fake: FakeAnthropic) -> tuple[float, float, float]:
    def status() -> dict:
        return kube.get("agentdeployment", NAME, ns)

    def healthy() -> bool:
        obj = status()
        budget = obj.get("status", {}).get("errorBudget", {}).get("remainingPercent") or 0
        return budget >= 50 and cond(obj, "Frozen").get("status") == "False"

    wait_until(healthy, timeout=600, what="a healthy budget and no freeze", interval=0.5)
    started = time.monotonic()
    fake.state.add_faults(OUTAGE)
    seen: dict[str, float] = {}
    while "frozen" not in seen or len(seen) < 3:
        now = time.monotonic() - started
        if "frozen" not in seen and cond(status(), "Frozen").get("status") == "True":
            seen["frozen"] = now
        firing = {a["labels"]["alertname"] for a in prom.alerts() if a["state"] == "firing"}
        for key, alert in (
            ("circuits", "ShepherdAllCircuitsOpen"),
            ("burn", "ShepherdAvailabilityBudgetBurn"),
        ):
            if key not in seen and alert in firing:
                seen[key] = now
        if now > 300:
            raise TimeoutError(f"after 300 s of outage only {seen}")
        time.sleep(POLL)
    fake.state.reset()
    return seen["circuits"], seen["burn"], seen["frozen"]
