"""Live agent-service processes (the console script) on the fake Anthropic server and a real Redis:
how runs are counted (outcome and reason, whatever their HTTP status), GET /usage with and without
auth, and an enforced spend budget refusing new runs with 429."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness.processes import free_port
from tests.integration.service.conftest import ServiceProcess
from tests.integration.service.test_mcp_http import session_call

SECRET = "usage-tests-signing-secret-of-32-bytes!"
MODEL = "claude-sonnet-4-6"
QUESTION = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}}
TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    server = FakeAnthropic().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def clean_fake(fake: FakeAnthropic) -> None:
    fake.state.reset()


@pytest.fixture
def service(
    fake: FakeAnthropic, redis_url: str, start_service: Callable[..., ServiceProcess]
) -> Callable[..., str]:
    """``service(**env)`` starts agent-service on the fake server and returns its URL."""

    def start(**env: str) -> str:
        return start_service(
            redis_url,
            ANTHROPIC_API_KEY="sk-ant-test",
            ANTHROPIC_BASE_URL=fake.url,
            LLM_MODEL=MODEL,
            LLM_FALLBACK_MODELS="",
            LLM_MAX_RETRIES="0",
            **env,
        ).url

    return start


def runs(url: str) -> dict[tuple[str, str], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (s.labels["outcome"], s.labels["reason"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "agent_runs_total"
    }


def token(tenant: str, *roles: str) -> dict[str, str]:
    claims = {
        "sub": f"user-of-{tenant}",
        "tenant": tenant,
        "roles": list(roles),
        "exp": int(time.time()) + 600,
    }
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def stream(http: httpx.Client, url: str, **body: object) -> list[str]:
    with http.stream("POST", f"{url}/runs/stream", json={**QUESTION, **body}) as response:
        assert response.status_code == 200
        return [line.removeprefix("event: ") for line in response.iter_lines() if line.startswith("event: ")]


def test_runs_count_by_outcome_and_reason_whatever_their_http_status(
    service: Callable[..., str], fake: FakeAnthropic
) -> None:
    url = service()
    with httpx.Client(timeout=30) as http:
        assert http.post(f"{url}/runs/wait", json=QUESTION).status_code == 200
        # A total outage: every call overloaded. The wait still answers 200, the stream is a 200
        # with an error event inside: both are failed runs.
        fake.state.add_faults({"kind": "status", "status": 529, "times": 1_000})
        failed = http.post(f"{url}/runs/wait", json=QUESTION)
        assert failed.status_code == 200
        assert failed.json()["__error__"]["error"] == "AllModelsFailedError"
        assert "error" in stream(http, url, stream_mode=["values"])
        fake.state.reset()

        # A human-in-the-loop pause: the model asks for a tool, the run stops before it.
        fake.state.add_replies({"tool_use": {"name": "calculator", "input": {"expression": "6 * 7"}}})
        thread = http.post(f"{url}/threads", json={}).json()["thread_id"]
        paused = http.post(
            f"{url}/threads/{thread}/runs/wait", json={**QUESTION, "interrupt_before": ["tools"]}
        )
        assert paused.status_code == 200
        assert http.get(f"{url}/threads/{thread}").json()["status"] == "interrupted"

        # Cancelled by its caller: no SLI event.
        fake.state.add_faults({"kind": "latency", "seconds": 5})
        thread = http.post(f"{url}/threads", json={}).json()["thread_id"]
        run = http.post(f"{url}/threads/{thread}/runs", json=QUESTION).json()["run_id"]
        time.sleep(0.5)
        assert http.post(f"{url}/threads/{thread}/runs/{run}/cancel?wait=true").status_code == 204

    counted = runs(url)
    assert counted[("success", "")] == 1
    assert counted[("error", "llm_unavailable")] == 2
    assert counted[("interrupted", "")] == 1
    assert counted[("cancelled", "")] == 1


def test_usage_needs_the_admin_role_and_reports_each_tenant(service: Callable[..., str]) -> None:
    url = service(AUTH_JWT_SECRET=SECRET)
    with httpx.Client(timeout=30) as http:
        for tenant, count in (("acme", 2), ("globex", 1)):
            for _ in range(count):
                assert http.post(f"{url}/runs/wait", json=QUESTION, headers=token(tenant)).status_code == 200
        admin = token("platform", "admin")
        usage = http.get(f"{url}/usage", headers=admin)
        assert usage.status_code == 200, usage.text
        days = {row["tenant"]: row for row in usage.json()["days"]}
        assert set(days) == {"acme", "globex"}
        acme = days["acme"]
        assert (acme["date"], acme["runs"]) == (TODAY.isoformat(), 2)
        assert acme["tokens"]["input"] > 0
        assert acme["tokens"]["output"] > 0
        assert acme["costUsd"] > 0
        assert set(acme["models"]) == {MODEL}
        assert usage.json()["total"]["runs"] == 3

        one = http.get(f"{url}/usage", params={"tenant": "globex", "model": "other-model"}, headers=admin)
        assert [(d["tenant"], d["runs"], d["costUsd"]) for d in one.json()["days"]] == [("globex", 1, 0.0)]

        # Not an admin: refused, even for its own tenant; no token at all: 401.
        assert http.get(f"{url}/usage", headers=token("acme")).status_code == 403
        assert http.get(f"{url}/usage", params={"tenant": "acme"}, headers=token("acme")).status_code == 403
        assert http.get(f"{url}/usage").status_code == 401
        # Bad date ranges: 422 naming the parameter.
        backwards = {"from": TODAY.isoformat(), "to": (TODAY - timedelta(days=1)).isoformat()}
        refused = http.get(f"{url}/usage", params=backwards, headers=admin)
        assert refused.status_code == 422
        assert "'from'" in refused.json()["detail"]
        malformed = http.get(f"{url}/usage", params={"from": "yesterday"}, headers=admin)
        assert malformed.status_code == 422
        assert malformed.json()["detail"][0]["loc"] == ["query", "from"]
        too_long = {"from": "2020-01-01", "to": TODAY.isoformat()}
        assert http.get(f"{url}/usage", params=too_long, headers=admin).status_code == 422


def test_without_auth_usage_is_served_on_the_loopback_listener_only(service: Callable[..., str]) -> None:
    local = free_port()
    url = service(USAGE_LOCAL_ADDRESS=f"127.0.0.1:{local}")
    with httpx.Client(timeout=30) as http:
        assert http.post(f"{url}/runs/wait", json=QUESTION).status_code == 200
        assert http.get(f"{url}/usage").status_code == 404, "not on the API port"
        usage = http.get(f"http://127.0.0.1:{local}/usage", params={"tenant": "default"})
    assert usage.status_code == 200
    assert [(d["tenant"], d["runs"]) for d in usage.json()["days"]] == [("default", 1)]


def test_an_enforced_budget_refuses_new_runs_with_429_once_spent(service: Callable[..., str]) -> None:
    url = service(SPEND_BUDGET_USD_PER_DAY="0.0001", SPEND_BUDGET_ENFORCE="true")
    with httpx.Client(timeout=30) as http:
        assert http.post(f"{url}/runs/wait", json=QUESTION).status_code == 200  # spends more than 0.0001
        refused = http.post(f"{url}/runs/wait", json=QUESTION)
        assert refused.status_code == 429
        assert "deployment_day_usd" in refused.json()["detail"]
        assert 0 < int(refused.headers["Retry-After"]) <= 86400
        thread = http.post(f"{url}/threads", json={}).json()["thread_id"]
        assert http.get(f"{url}/threads/{thread}").status_code == 200, "only new runs are refused"
    assert sum(runs(url).values()) == 1, "a refused run never started"


async def test_an_mcp_tool_call_is_admitted_and_counted_like_a_run(service: Callable[..., str]) -> None:
    local = free_port()
    budget = {"SPEND_BUDGET_USD_PER_DAY": "0.0001", "SPEND_BUDGET_ENFORCE": "true"}
    url = service(**budget, USAGE_LOCAL_ADDRESS=f"127.0.0.1:{local}")

    async def two_calls(session):
        return [await session.call_tool("agent", QUESTION["input"]) for _ in range(2)]

    first, second = await session_call(url, {}, two_calls)
    assert not first.is_error  # it spends more than the budget's 0.0001 USD
    assert second.is_error
    assert "refused: deployment_day_usd budget exhausted" in second.content[0].text
    async with httpx.AsyncClient(timeout=10) as http:
        usage = (await http.get(f"http://127.0.0.1:{local}/usage", params={"tenant": "default"})).json()
    assert [(d["tenant"], d["runs"]) for d in usage["days"]] == [("default", 1)]
    assert sum(runs(url).values()) == 1, "the refused call never started a run"


def test_an_a2a_message_is_admitted_and_counted_like_a_run(service: Callable[..., str]) -> None:
    url = service(SPEND_BUDGET_USD_PER_DAY="0.0001", SPEND_BUDGET_ENFORCE="true")

    def send(text: str) -> dict:
        message = {"messageId": text, "role": "user", "parts": [{"kind": "text", "text": text}]}
        call = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": message}}
        return httpx.post(f"{url}/a2a/agent", json=call, timeout=60).json()

    assert send("what is 6 * 7?")["result"]["status"]["state"] == "completed"  # spends past 0.0001 USD
    refused = send("and 7 * 8?")["error"]
    assert (refused["code"], "deployment_day_usd" in refused["message"]) == (-32000, True)
    assert sum(runs(url).values()) == 1, "the refused message never started a run"
