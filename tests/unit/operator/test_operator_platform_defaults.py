"""Platform defaults: read from SHEPHERD_DEFAULT_*, applied to omitted fields only, bad values named."""

from __future__ import annotations

import json

import pytest
from shepherd import api, metrics

SLO_7D = {"window": "7d", "availability": {"target": 99.9}}


def test_unset_or_empty_variables_give_the_built_in_defaults():
    for environ in ({}, dict.fromkeys(api.PlatformDefaults.ENV.values(), " ")):
        assert api.PlatformDefaults.from_environment(environ) == api.PlatformDefaults()


def test_only_omitted_fields_are_filled_and_each_is_taken_whole():
    defaults = api.PlatformDefaults.from_environment(
        {"SHEPHERD_DEFAULT_AGENT_IMAGE": "r/agent:7", "SHEPHERD_DEFAULT_SLO": json.dumps(SLO_7D)}
    )
    plain = api.parse({"metadata": {"name": "a"}, "spec": {}}, defaults).spec
    assert plain.image == "r/agent:7"
    assert plain.slo.window == "7d"
    assert plain.slo.availability.target == 99.9
    assert plain.error_budget_policy == api.ErrorBudgetPolicy()

    own = api.parse(
        {"metadata": {"name": "b"}, "spec": {"image": "mine:1", "slo": {"window": "1d"}}}, defaults
    )
    assert own.spec.image == "mine:1"
    assert own.spec.slo.window == "1d"
    assert own.spec.slo.availability.target == 99.5  # the model's, not the platform's: no field merge


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SHEPHERD_DEFAULT_SLO": "{window: 7d}"}, "SHEPHERD_DEFAULT_SLO is not valid JSON"),
        ({"SHEPHERD_DEFAULT_SLO": '{"window": "1y"}'}, "SHEPHERD_DEFAULT_SLO: window: String should match"),
        ({"SHEPHERD_DEFAULT_SLO": "[]"}, "SHEPHERD_DEFAULT_SLO: value: Input should be a valid dictionary"),
        (
            {
                "SHEPHERD_DEFAULT_ERROR_BUDGET_POLICY": json.dumps(
                    {"steps": [{"consumedPercent": 0, "action": "x"}]}
                )
            },
            "SHEPHERD_DEFAULT_ERROR_BUDGET_POLICY: steps.0.consumedPercent: Input should be greater than 0",
        ),
        (
            {"SHEPHERD_DEFAULT_AGENT_IMAGE": "x" * 600},
            "SHEPHERD_DEFAULT_AGENT_IMAGE: value: String should have",
        ),
    ],
)
def test_a_bad_variable_is_named(environ, message):
    with pytest.raises(ValueError, match="SHEPHERD_DEFAULT") as info:
        api.PlatformDefaults.from_environment(environ)
    assert message in str(info.value)


def test_the_objectives_cache_holds_the_effective_spec_and_forgets_counters(monkeypatch):
    monkeypatch.setenv("SHEPHERD_DEFAULT_SLO", json.dumps(SLO_7D))
    api.platform_defaults.cache_clear()
    try:
        cache = metrics.ResourceCache()
        cache.put({"metadata": {"name": "a", "namespace": "n", "uid": "u1"}, "spec": {}})
        assert cache.values()[0]["spec"]["slo"] == SLO_7D
    finally:
        api.platform_defaults.cache_clear()

    metrics.RECONCILE_TOTAL.labels("n", "a").inc()
    metrics.RECONCILE_ERRORS.labels("n", "a")
    cache.drop("u1")
    cache.drop("u1")  # twice: nothing left to forget, no error
    for counter in (metrics.RECONCILE_TOTAL, metrics.RECONCILE_ERRORS):
        samples = [s for family in counter.collect() for s in family.samples]
        assert not [s for s in samples if s.labels.get("agentdeployment") == "a"], samples
