"""The pydantic model: defaults, and rejection of invalid specs with field-named messages."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError
from shepherd import api

from .conftest import CASES_DIR

INVALID = yaml.safe_load((CASES_DIR / "invalid.yaml").read_text())


def _message(err: ValidationError) -> str:
    """Error text with field locations in camelCase, as a user reads them."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c["name"])
def test_invalid_specs_rejected_with_field_name(case):
    metadata = {"name": case.get("metadataName", case["name"]), "namespace": "default"}
    with pytest.raises(ValidationError) as info:
        api.AgentDeployment.model_validate({"metadata": metadata, "spec": case["spec"]})
    assert case["expect"] in _message(info.value)


def test_at_least_eight_distinct_invalid_cases():
    assert len({c["name"] for c in INVALID}) >= 8


def test_defaults():
    spec = api.AgentDeploymentSpec()
    assert spec.image == api.DEFAULT_AGENT_IMAGE
    assert spec.redis.managed is not None
    assert spec.redis.external is None
    assert spec.autoscaling is None
    assert [s.action for s in spec.error_budget_policy.steps] == ["Notify", "FreezeNonCritical", "FreezeAll"]
    assert spec.slo.window == "30d"


def test_camel_case_round_trip():
    spec = api.AgentDeploymentSpec.model_validate({"autoscaling": {"minReplicas": 1, "maxReplicas": 3}})
    dumped = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert dumped["autoscaling"]["minReplicas"] == 1
    assert "min_replicas" not in str(dumped)


@pytest.mark.parametrize("window", ["10m", "30d", "1w", "90d"])
def test_short_and_long_windows(window):
    assert api.Slo(window=window).window == window


def test_window_bounds():
    with pytest.raises(ValidationError, match="window"):
        api.Slo(window="30s")
    with pytest.raises(ValidationError, match="window"):
        api.Slo(window="91d")


@pytest.mark.parametrize(
    ("graph", "problem"),
    [
        ("agent_service.graphs.reference_agent:graph", False),
        ("pkg.class:graph", True),
        ("pkg.mod:import", True),
    ],
)
def test_graph_problem(graph, problem):
    assert (api.graph_problem(graph) is not None) is problem
