"""What the chart ships from elsewhere is a fresh copy: the CRD, the RBAC rules, rules and boards."""

from __future__ import annotations

import importlib.util
import json

import kubernetes_validate
import yaml
from shepherd import crd, rbac

from .conftest import CHART


def _generator():
    spec = importlib.util.spec_from_file_location("chart_generate", CHART / "hack" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_crd_is_the_operators_fresh_generation():
    files = sorted(p.name for p in (CHART / "crds").iterdir())
    assert files == [crd.CRD_PATH.name]
    assert crd.CRD_PATH.parent == CHART / "crds"
    assert (CHART / "crds" / crd.CRD_PATH.name).read_text() == crd.render_yaml(), (
        "run `python -m shepherd.crd`"
    )


def test_crd_validates_against_kubernetes_1_36():
    document = yaml.safe_load((CHART / "crds" / crd.CRD_PATH.name).read_text())
    kubernetes_validate.validate(document, "1.36.0", strict=True)


def test_generated_files_are_fresh():
    stale = _generator().stale_files()
    assert not stale, f"stale: {stale}; run `python charts/shepherd/hack/generate.py`"


def test_rbac_rules_file_equals_shepherd_rbac():
    assert yaml.safe_load((CHART / "files" / "rbac-rules.yaml").read_text()) == rbac.rules()


def test_dashboards_are_valid_json():
    boards = sorted((CHART / "files" / "dashboards").glob("*.json"))
    assert [b.name for b in boards] == ["shepherd-agentdeployment.json", "shepherd-fleet.json"]
    for board in boards:
        assert json.loads(board.read_text())["uid"]
