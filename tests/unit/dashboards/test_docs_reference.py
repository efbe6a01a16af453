"""docs/agentdeployment-reference.md is a fresh rendering of the CRD schema; docs/freeze.md names
the annotations and policy actions the API really has."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from shepherd import api

DOCS = Path(__file__).resolve().parents[3] / "docs"


def _reference():
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reference_is_fresh():
    assert _reference().main(["--check"]) == 0, "stale: run `python docs/reference.py`"


def test_reference_documents_every_spec_field():
    text = (DOCS / "agentdeployment-reference.md").read_text()
    for field in api.AgentDeploymentSpec.model_fields.values():
        assert f"| `{field.alias}`" in text, field.alias


def test_freeze_page_uses_the_real_names():
    text = (DOCS / "freeze.md").read_text()
    for action in api.PolicyAction:
        assert action.value in text
    for annotation in (
        "shepherd.dev/change-class",
        "shepherd.dev/freeze-override",
        "shepherd.dev/postmortem",
    ):
        assert annotation in text
    assert "quietPeriod" in text
    assert "requirePostmortem" in text
