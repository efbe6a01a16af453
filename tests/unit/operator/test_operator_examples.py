"""Every example parses with the model (the integration tests also dry-run them on the apiserver)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from shepherd import api

EXAMPLES = sorted((Path(__file__).parents[3] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path):
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == api.KIND]
    assert docs
    for doc in docs:
        api.AgentDeploymentSpec.model_validate(doc["spec"])
