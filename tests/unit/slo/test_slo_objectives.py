"""shepherd_slo_* objective series: what the operator serves for the fleet-wide rules to join."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from shepherd.api import AgentDeploymentSpec
from shepherd.slo import objectives
from shepherd.slo.objectives import (
    HTTP_LATENCY_BUCKETS,
    TTFT_BUCKETS,
    ObjectivesCollector,
    Sample,
    canonical_window,
    fleet_objectives,
    fleet_slo_windows,
    le_spellings,
    resource_objectives,
    threshold_bucket,
)


def _resource(name: str = "agent", namespace: str = "shop", **spec: object) -> dict:
    """A resource as the operator holds it: the spec validated and dumped in wire form."""
    wire = AgentDeploymentSpec.model_validate({"image": "example.com/agent:1", **spec})
    return {"metadata": {"name": name, "namespace": namespace}, "spec": wire.model_dump(by_alias=True)}


def test_threshold_on_a_bucket_boundary_is_used_as_is() -> None:
    assert threshold_bucket(2.5, HTTP_LATENCY_BUCKETS) == (2.5, None)
    assert threshold_bucket(0.1 + 0.2 - 0.05, HTTP_LATENCY_BUCKETS) == (0.25, None)  # float noise


def test_threshold_between_buckets_uses_the_next_bucket_up_and_says_so() -> None:
    bucket, note = threshold_bucket(0.3, HTTP_LATENCY_BUCKETS)
    assert bucket == 0.5
    assert note == (
        "threshold 0.3s is not a bucket boundary of agent_http_request_duration_seconds; "
        "measuring with the next bucket up, 0.5s"
    )


def test_threshold_above_the_largest_bucket_uses_the_largest_not_inf() -> None:
    bucket, note = threshold_bucket(45, TTFT_BUCKETS, metric="agent_ttft_seconds")
    assert bucket == 30
    assert note is not None
    assert "above the largest bucket of agent_ttft_seconds" in note
    assert "stricter" in note


def test_buckets_match_the_service_histograms() -> None:
    """The operator's copy of the service's buckets is generated from them and still current."""
    from agent_service.observability import metrics
    from shepherd.slo import buckets

    assert buckets.main(["--check"]) == 0, "stale: run `python -m shepherd.slo.buckets`"
    assert metrics.HTTP_DURATION._upper_bounds[:-1] == [float(b) for b in HTTP_LATENCY_BUCKETS]
    assert metrics.TTFT._upper_bounds[:-1] == [float(b) for b in TTFT_BUCKETS]
    assert metrics.RUN_DURATION._upper_bounds[:-1] == [float(b) for b in objectives.RUN_DURATION_BUCKETS]


@pytest.mark.parametrize(
    ("bound", "spellings"), [(1.0, ("1.0", "1")), (0.25, ("0.25",)), (30, ("30.0", "30"))]
)
def test_le_spellings_cover_python_and_go_clients(bound: float, spellings: tuple[str, ...]) -> None:
    assert le_spellings(bound) == spellings


def test_the_exported_le_matches_what_prometheus_client_writes() -> None:
    registry = CollectorRegistry()
    Histogram("h_seconds", "h", buckets=HTTP_LATENCY_BUCKETS, registry=registry).observe(0.7)
    exposition = generate_latest(registry).decode()
    for bound in HTTP_LATENCY_BUCKETS:
        assert any(f'h_seconds_bucket{{le="{le}"}}' in exposition for le in le_spellings(bound)), bound


def test_canonical_window() -> None:
    assert canonical_window("1w") == "7d"
    assert canonical_window("60m") == "1h"
    assert canonical_window("30d") == "30d"


def test_full_resource_golden() -> None:
    resource = _resource(
        model={
            "provider": "anthropic",
            "name": "claude-sonnet-4-5",
            "apiKeySecretRef": {"name": "anthropic", "key": "api-key"},
            "fallbacks": [{"name": "claude-haiku-4-5"}, {"name": "claude-sonnet-4-5"}],
        },
        slo={
            "window": "1w",
            "availability": {"target": 99.9},
            "latency": {"target": 99, "thresholdSeconds": 0.5},
            "ttft": {"target": 95, "thresholdSeconds": 0.1},
        },
    )
    samples, notes = resource_objectives(resource)
    scope = {"namespace": "shop", "agentdeployment": "agent"}
    sonnet = {"provider": "anthropic", "model": "claude-sonnet-4-5"}
    haiku = {"provider": "anthropic", "model": "claude-haiku-4-5"}
    assert samples == [
        Sample("shepherd_slo_objective", {**scope, "sli": "availability", "slo_window": "7d"}, 0.999),
        Sample("shepherd_slo_objective", {**scope, "sli": "latency", "slo_window": "7d"}, 0.99),
        Sample("shepherd_slo_latency_threshold_bucket", {**scope, "sli": "latency", "le": "0.5"}, 0.5),
        Sample("shepherd_slo_objective", {**scope, "sli": "ttft", "slo_window": "7d"}, 0.95),
        Sample("shepherd_slo_latency_threshold_bucket", {**scope, "sli": "ttft", "le": "0.1"}, 0.1),
        Sample("shepherd_slo_min_events", scope, 20.0),
        Sample("shepherd_slo_window_seconds", scope, 604800.0),
        # sonnet twice (primary and a fallback) is one circuit
        Sample("shepherd_slo_circuits_expected", scope, 2.0),
        Sample("shepherd_slo_model_info", {**scope, **sonnet, "role": "primary"}, 1),
        Sample("shepherd_slo_model_info", {**scope, **haiku, "role": "fallback"}, 1),
        Sample("shepherd_slo_policy_step_percent", {**scope, "step": "0", "action": "Notify"}, 50.0),
        Sample("shepherd_slo_policy_step_percent", {**scope, "step": "1", "action": "FreezeNonCritical"}, 75),
        Sample("shepherd_slo_policy_step_percent", {**scope, "step": "2", "action": "FreezeAll"}, 100.0),
    ]  # fmt: skip
    assert notes == []


def test_a_stored_threshold_the_crd_now_refuses_is_still_measured_and_noted() -> None:
    """A resource stored before thresholds had to be buckets keeps its objectives, with a note."""
    resource = _resource()
    resource["spec"]["slo"]["latency"] = {"target": 99, "thresholdSeconds": 0.3}
    samples, notes = resource_objectives(resource)
    assert any(s.name == "shepherd_slo_latency_threshold_bucket" and s.value == 0.5 for s in samples)
    assert notes == [
        "slo.latency: threshold 0.3s is not a bucket boundary of agent_run_duration_seconds; "
        "measuring with the next bucket up, 0.5s"
    ]


def test_cost_budget_is_exported_per_period_that_is_set() -> None:
    def budgets(**cost_budget: object) -> list[Sample]:
        samples, _ = resource_objectives(_resource(costBudget=cost_budget))
        return [s for s in samples if s.name == "shepherd_slo_cost_budget_usd"]

    scope = {"namespace": "shop", "agentdeployment": "agent"}
    assert budgets(usdPerDay=50, usdPerMonth=1000) == [
        Sample("shepherd_slo_cost_budget_usd", {**scope, "period": "day"}, 50.0),
        Sample("shepherd_slo_cost_budget_usd", {**scope, "period": "month"}, 1000.0),
    ]
    assert budgets(usdPerMonth=10) == [
        Sample("shepherd_slo_cost_budget_usd", {**scope, "period": "month"}, 10.0)
    ]
    assert budgets() == []


def test_defaults_from_the_api_model_and_the_offline_stub() -> None:
    samples, notes = resource_objectives(_resource())
    names = [s.name for s in samples]
    # Default SLO: availability only, 30d; the stub model has no circuit breaker.
    assert [s.labels for s in samples if s.name == "shepherd_slo_objective"] == [
        {"namespace": "shop", "agentdeployment": "agent", "sli": "availability", "slo_window": "30d"}
    ]
    assert "shepherd_slo_latency_threshold_bucket" not in names
    assert "shepherd_slo_circuits_expected" not in names
    assert "shepherd_slo_min_events" in names  # every objective comes with its guard
    assert notes == []


def test_ratio_targets_are_accepted_and_bad_targets_rejected() -> None:
    raw = {"metadata": {"name": "a", "namespace": "n"}, "spec": {"slo": {"availability": {"target": 0.995}}}}
    samples, _ = resource_objectives(raw)
    assert samples[0].value == 0.995
    raw["spec"]["slo"]["availability"]["target"] = 100
    with pytest.raises(ValueError, match="between 0 and 100 percent"):
        resource_objectives(raw)


def test_an_invalid_resource_is_skipped_with_a_note_not_failing_the_fleet() -> None:
    good = _resource("good")
    bad = {"metadata": {"name": "bad", "namespace": "shop"}, "spec": {"slo": {"latency": {"target": 99}}}}
    result = fleet_objectives([bad, good])
    assert {s.labels["agentdeployment"] for s in result.samples} == {"good"}
    assert list(result.notes) == [("shop", "bad")]
    assert result.notes[("shop", "bad")][0].startswith("SLO objectives not exported:")


def test_collector_serves_the_fleet_at_scrape_time() -> None:
    fleet: list[dict] = []
    registry = CollectorRegistry()
    registry.register(ObjectivesCollector(lambda: fleet))
    empty = generate_latest(registry).decode()
    assert "# TYPE shepherd_slo_objective gauge" in empty
    assert "shepherd_slo_objective{" not in empty

    slo = {"availability": {"target": 99.5}, "latency": {"target": 99, "thresholdSeconds": 1}}
    fleet.append(_resource("a", slo=slo))
    fleet.append(_resource("b", namespace="other"))
    text = generate_latest(registry).decode()
    served = {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    a, b = (
        (("agentdeployment", "a"), ("namespace", "shop")),
        (("agentdeployment", "b"), ("namespace", "other")),
    )
    window = (("sli", "availability"), ("slo_window", "30d"))
    assert ("shepherd_slo_objective", (*a, *window), 0.995) in served
    assert ("shepherd_slo_objective", (*b, *window), 0.995) in served
    for le in ("1.0", "1"):
        labels = (a[0], ("le", le), a[1], ("sli", "latency"))
        assert ("shepherd_slo_latency_threshold_bucket", labels, 1.0) in served
    assert text.count("shepherd_slo_min_events{") == 2


def test_every_exported_name_is_declared() -> None:
    samples, _ = resource_objectives(_resource(slo={"ttft": {"target": 90, "thresholdSeconds": 1}}))
    assert {s.name for s in samples} <= set(objectives._METRICS)


def test_typed_models_are_accepted_like_dicts() -> None:
    from shepherd.api import parse

    body = {"metadata": {"name": "agent", "namespace": "shop"}, "spec": {"image": "example.com/agent:1"}}
    assert resource_objectives(parse(body)) == resource_objectives(_resource())


def test_fleet_slo_windows_are_distinct_and_canonical() -> None:
    fleet = [
        _resource("a", slo={"window": "1w"}),
        _resource("b", slo={"window": "7d"}),
        _resource("c"),
        {"metadata": {"name": "d", "namespace": "x"}, "spec": {"slo": {"window": "nonsense"}}},
    ]
    assert fleet_slo_windows(fleet) == ["30d", "7d"]
