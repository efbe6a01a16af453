"""Every panel of the Grafana boards shows data during an incident, in the e2e Prometheus.

An SRE opens the fleet board and the agent's board while the agent has a bad day. Real components as
in the freeze story (control plane, operator process scraped for its own /metrics, agent-service via
the PodBridge, the ``anthropic`` SDK against the fake server, Redis, Prometheus with the generated rules
for a 1m window). The scenario exercises everything a panel needs: JWT users streaming and waiting on
runs, a user over the per-user rate limit, a request over the token budget, the primary model failing
(its circuit opens, the fallback model answers), the fallback failing for a while too (runs fail:
failures by reason), spend against a cost budget, then a slow LLM that burns the latency budget
until the operator freezes rollouts. Then each query of ``dashboards.queries()`` runs as Grafana runs it (a
range query over the scenario, the board's variables set to this AgentDeployment) and must return at
least one finite value.
"""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt

import dashboards
from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness.cluster import Cluster
from tests.harness.podbridge import BridgedPod, PodBridge
from tests.harness.prometheus import PrometheusServer

from .conftest import Traffic, agent_manifest, agent_namespace, cond, operator_process

NAME = "helpdesk"
PRIMARY, FALLBACK = "claude-sonnet-4-5", "claude-haiku-4-5"
SECRET = "boards-e2e-signing-secret-of-32-bytes-or-more"
PER_USER_PER_MINUTE = 10
MAX_TOKENS_PER_REQUEST = 4000


def manifest(fake_url: str, redis_url: str) -> dict[str, Any]:
    """The stories' agent, plus what the boards show: a fallback model, JWT users with a per-user
    rate limit, a per-request token budget and a time-to-first-token objective."""
    body = agent_manifest(NAME, "registry.test/helpdesk:1", fake_url, redis_url)
    spec = body["spec"]
    spec["model"] |= {"name": PRIMARY, "fallbacks": [{"name": FALLBACK}]}
    spec["circuitBreaker"]["recoveryTimeoutSeconds"] = 30  # stays open for the rest of the story
    spec["auth"] = {"secretRef": {"name": "jwt", "key": "secret"}}
    spec["rateLimits"] = {"perUserPerMinute": PER_USER_PER_MINUTE}
    spec["tokenBudget"] = {"maxTokensPerRequest": MAX_TOKENS_PER_REQUEST}
    spec["slo"]["ttft"] = {"target": 90, "thresholdSeconds": 2}
    spec["costBudget"] = {"usdPerDay": 5, "usdPerMonth": 100}
    return body


def token(user: str) -> dict[str, str]:
    claims = {"sub": user, "tenant": "acme", "exp": int(time.time()) + 3600}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def question(text: str) -> dict[str, Any]:
    return {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": text}]}}


def ask(http: httpx.Client, pod: BridgedPod) -> int:
    """One run of a new user: every other one streamed token by token (time to first token)."""
    url, headers = f"http://127.0.0.1:{pod.port}", token(f"user-{uuid.uuid4().hex[:8]}")
    if uuid.uuid4().int % 2:
        return http.post(f"{url}/runs/wait", json=question("what is 6 * 7?"), headers=headers).status_code
    body = {**question("say hello"), "stream_mode": ["messages"]}
    with http.stream("POST", f"{url}/runs/stream", json=body, headers=headers) as response:
        for _ in response.iter_bytes():
            pass
        return response.status_code


def has_finite_value(series: list[dict]) -> bool:
    return any(not math.isnan(float(v)) for s in series for _, v in s.get("values", []))


def test_every_panel_shows_data_during_an_incident(
    kube: Cluster, redis_url: str, prom: PrometheusServer, fake: FakeAnthropic, tmp_path: Path
) -> None:
    ns = agent_namespace(kube, "boards")
    kube.kubectl("create", "secret", "generic", "jwt", "-n", ns, f"--from-literal=secret={SECRET}")

    operator, operator_target = operator_process(kube, ns, prom, tmp_path)
    bridge = PodBridge(kube, ns, tmp_path / "pods", prometheus=prom, extra_targets=[operator_target])
    traffic = Traffic(bridge, ask, workers=4)
    started = time.time()
    operator.start()
    try:
        kube.apply(manifest(fake.url, redis_url), namespace=ns)
        pod = bridge.wait_serving(1, timeout=120)[0]
        bridge.start_background(0.5)
        traffic.start()

        url = f"http://127.0.0.1:{pod.port}"
        with httpx.Client(timeout=30) as http:
            # One user over the per-user limit: the extra requests are refused with 429.
            greedy = token("greedy")
            codes = [
                http.post(f"{url}/runs/wait", json=question("hi"), headers=greedy).status_code
                for _ in range(PER_USER_PER_MINUTE + 3)
            ]
            assert codes.count(429) >= 3, codes
            # A request larger than the per-request token budget never reaches the model.
            huge = question("word " * (MAX_TOKENS_PER_REQUEST * 2))
            http.post(f"{url}/runs/wait", json=huge, headers=token("verbose-user"))

        # The primary model fails: its circuit opens, the fallback answers.
        fake.state.add_faults({"kind": "status", "status": 500, "times": 1_000_000, "model": PRIMARY})
        prom.wait_for_query(f'max(agent_circuit_state{{agentdeployment="{NAME}"}}) == 2', timeout=60)
        prom.wait_for_query(f'shepherd:agent_llm_fallback:ratio_rate10m{{agentdeployment="{NAME}"}} > 0')

        # The fallback fails twice too (below its circuit's threshold): two runs end in an error.
        fake.state.add_faults({"kind": "status", "status": 529, "times": 2, "model": FALLBACK})
        prom.wait_for_query(
            f'sum(agent_runs_total{{agentdeployment="{NAME}", outcome="error"}}) > 0', timeout=60
        )

        # The LLM turns slow: the latency budget burns until the operator freezes rollouts.
        fake.state.add_faults({"kind": "latency", "seconds": 3, "times": 1_000_000})
        prom.wait_for_query(
            f'shepherd_agentdeployment_freeze_level{{agentdeployment="{NAME}"}} > 0', timeout=120
        )
        assert cond(kube.get("agd", NAME, ns), "Frozen").get("status") == "True"
        # A few more scrapes and rule evaluations after the freeze, so every rate has two samples.
        time.sleep(3)
        end = time.time()

        variables = {"namespace": ns, "agentdeployment": NAME}
        empty = [
            f"{q.board} / {q.panel} {q.ref_id}: {q.expr}"
            for q in dashboards.queries(variables)
            if not has_finite_value(prom.query_range(q.expr, started, end))
        ]
        assert not empty, "panels without data:\n" + "\n".join(empty)
        assert len(dashboards.queries(variables)) >= 40  # both boards' queries were run
    finally:
        operator.stop()
        traffic.stop()
        bridge.stop()
