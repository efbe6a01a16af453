"""A live `agent-service` process configured by environment talks to the fake Anthropic server.

Proves the path the operator relies on: ANTHROPIC_* and LLM_*/CIRCUIT_* variables -> settings -> the resilient
client -> the real SDK over HTTP, with the outcome visible on the process's /metrics and in its JSON logs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness.processes import ManagedProcess

AGENT_SERVICE = Path(sys.executable).parent / "agent-service"
PRIMARY, FALLBACK = "claude-sonnet-live", "claude-haiku-live"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture
def service(fake: FakeAnthropic, redis_url: str, free_port: int, tmp_path: Path) -> Iterator[str]:
    env = {
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"live-{free_port}",
        "ANTHROPIC_API_KEY": "sk-ant-test-key-never-logged",
        "ANTHROPIC_BASE_URL": fake.url,
        "LLM_MODEL": PRIMARY,
        "LLM_FALLBACK_MODELS": FALLBACK,
        "LLM_MAX_RETRIES": "0",
        "CIRCUIT_FAILURE_THRESHOLD": "1",
        "CIRCUIT_RECOVERY_SECONDS": "600",
    }
    process = ManagedProcess(
        f"agent-service-{free_port}",
        [str(AGENT_SERVICE), "--host", "127.0.0.1", "--port", str(free_port)],
        tmp_path,
        env=env,
    ).start()
    url = f"http://127.0.0.1:{free_port}"
    process.wait_ready(lambda: _healthy(url), timeout=90)
    yield url
    process.stop(timeout=30)
    log = process.log_path.read_text()
    assert "sk-ant-test-key-never-logged" not in log
    assert all(json.loads(line) for line in log.splitlines() if line.strip()), "every log line is JSON"


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _samples(url: str) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_fallback_and_circuit_state_of_a_live_process(service: str, fake: FakeAnthropic) -> None:
    fake.state.reset()
    fake.state.add_faults({"kind": "status", "status": 529, "times": 100, "model": PRIMARY})
    run = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hello there"}]}}

    for _ in range(2):
        response = httpx.post(f"{service}/runs/wait", json=run, timeout=30)
        assert response.status_code == 200
        assert response.json()["messages"][-1]["content"] == "The fake model says hello."

    assert fake.state.models() == [PRIMARY, FALLBACK, FALLBACK], "the open primary circuit is skipped"
    samples = _samples(service)

    def value(name: str, **labels: str) -> float:
        return samples.get((name, frozenset(labels.items())), 0.0)

    assert value("agent_circuit_state", circuit=f"anthropic:{PRIMARY}") == 2
    assert value("agent_circuit_state", circuit=f"anthropic:{FALLBACK}") == 0
    assert value("agent_llm_requests_total", provider="anthropic", model=PRIMARY, outcome="error") == 1
    assert value("agent_llm_requests_total", provider="anthropic", model=PRIMARY, outcome="circuit_open") == 1
    assert value("agent_llm_requests_total", provider="anthropic", model=FALLBACK, outcome="success") == 2
    assert value("agent_llm_tokens_total", provider="anthropic", model=FALLBACK, kind="output") == 10
    assert value("agent_http_requests_total", route="/runs/wait", method="POST", code="200") == 2
