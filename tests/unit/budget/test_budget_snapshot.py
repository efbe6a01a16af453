"""Parsing the watcher's fixed query set from Prometheus JSON answers, and the client's typed errors."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import httpx
import pytest
from shepherd.budget import prometheus, snapshot
from shepherd.budget.prometheus import PrometheusClient

FIXTURES = Path(__file__).parent / "fixtures"


def answers() -> dict[str, list[prometheus.Sample]]:
    return {
        name: prometheus.parse_vector(json.loads((FIXTURES / f"{name}.json").read_text()))
        for name in ("remaining", "burn", "circuits", "failures", "spend_today", "spend_month")
    }


def test_query_set_is_fixed_and_uses_the_shared_recording_rules():
    queries = snapshot.queries(dt.datetime(2026, 11, 23, 22, 30, 15, tzinfo=dt.UTC))
    assert len(queries) == 6
    assert queries["remaining"] == "shepherd:slo_error_budget_remaining:ratio"
    assert "shepherd:slo_burn_rate" in queries["burn"]
    assert "by (namespace, agentdeployment, circuit)" in queries["circuits"]
    assert "shepherd:slo_run_failures:ratio" in queries["failures"]
    # Spend since 00:00 UTC and since the 1st: 22h30m15s, and 22 days more.
    assert "shepherd:llm_cost_usd:step_increase[81015s]" in queries["spend_today"]
    assert f"shepherd:llm_cost_usd:step_increase[{22 * 86400 + 81015}s]" in queries["spend_month"]


def test_top_failure_reason_and_spend():
    snaps = snapshot.parse(answers())
    support = snaps[("team-a", "support")]
    assert support.failure_reasons == {"llm_unavailable": 0.0031, "tool_error": 0.0009}
    assert support.top_failure_reason == ("llm_unavailable", pytest.approx(0.775))
    assert (support.spend_today, support.spend_month) == (12.345678, 301.5)
    assert snaps[("team-b", "triage")].top_failure_reason is None  # NaN: no failure data
    assert snaps[("team-c", "chat")].spend_today == 0.5  # spend alone makes a snapshot


def test_worst_sli_counts_and_windows_are_ordered():
    snaps = snapshot.parse(answers())
    support = snaps[("team-a", "support")]
    assert support.remaining_percent == pytest.approx(18.0)  # latency is worse than availability
    assert support.consumed_percent == pytest.approx(82.0)
    assert list(support.burn_rates) == ["5m", "1h", "3d"]
    assert support.burn_rates["5m"] == pytest.approx(14.4)
    assert support.circuits == {"anthropic/claude-haiku-4-5": "closed", "anthropic/claude-sonnet-4-5": "open"}


def test_overspent_budget_and_infinite_burn_are_kept():
    triage = snapshot.parse(answers())[("team-b", "triage")]
    assert triage.remaining_percent == pytest.approx(-50.0)
    assert triage.consumed_percent == pytest.approx(150.0)
    assert math.isinf(triage.burn_rates["5s"])


def test_nan_means_no_data_and_circuit_only_resources_get_a_snapshot():
    snaps = snapshot.parse(answers())
    assert ("team-b", "idle") not in snaps  # NaN budget and NaN burn: nothing known
    chat = snaps[("team-c", "chat")]
    assert not chat.has_budget
    assert chat.circuits == {"anthropic/claude-sonnet-4-5": "half-open"}
    assert all(key[0] and key[1] for key in snaps)  # series without namespace/agentdeployment ignored


def test_parse_vector_rejects_other_result_types():
    with pytest.raises(prometheus.PrometheusBadQueryError):
        prometheus.parse_vector({"status": "success", "data": {"resultType": "matrix", "result": []}})
    with pytest.raises(prometheus.PrometheusBadQueryError):
        prometheus.parse_vector({"status": "error", "error": "boom"})


def _client(handler) -> PrometheusClient:
    return PrometheusClient("http://prom.test", transport=httpx.MockTransport(handler))


async def test_client_types_its_errors():
    ok = _client(lambda r: httpx.Response(200, json=json.loads((FIXTURES / "burn.json").read_text())))
    assert len(await ok.query("x")) == 5
    assert ok.queries == 1

    bad = _client(
        lambda r: httpx.Response(
            400, json={"status": "error", "errorType": "bad_data", "error": "parse error at char 3"}
        )
    )
    with pytest.raises(prometheus.PrometheusBadQueryError, match="parse error"):
        await bad.query("sum(")

    down = _client(lambda r: httpx.Response(503, text="Service Unavailable"))
    with pytest.raises(prometheus.PrometheusUnreachableError):
        await down.query("up")

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(prometheus.PrometheusUnreachableError, match="ConnectError"):
        await _client(refuse).query("up")

    empty = _client(
        lambda r: httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
        )
    )
    assert await empty.query("up") == []
    with pytest.raises(prometheus.PrometheusEmptyError):
        await empty.query_nonempty("up")


async def test_client_refuses_a_non_prometheus_answer():
    html = _client(lambda r: httpx.Response(200, text="<html>proxy login</html>"))
    with pytest.raises(prometheus.PrometheusUnreachableError, match="not JSON"):
        await html.query("up")


def test_watcher_runs_only_when_a_prometheus_is_configured(monkeypatch):
    from shepherd.budget.watcher import settings_from_env, watcher_enabled

    monkeypatch.delenv("SHEPHERD_BUDGET_WATCHER", raising=False)
    monkeypatch.delenv("SHEPHERD_PROMETHEUS_URL", raising=False)
    assert not watcher_enabled()  # auto, no Prometheus: no resource is marked unreachable
    monkeypatch.setenv("SHEPHERD_PROMETHEUS_URL", "http://prom:9090")
    assert watcher_enabled()
    monkeypatch.setenv("SHEPHERD_BUDGET_WATCHER", "0")
    assert not watcher_enabled()
    monkeypatch.setenv("SHEPHERD_BUDGET_WATCHER", "1")
    monkeypatch.setenv("SHEPHERD_BUDGET_INTERVAL", "1.5")
    assert watcher_enabled()
    assert settings_from_env()["interval"] == 1.5
    assert settings_from_env()["prometheus_url"] == "http://prom:9090"
