"""The CRD on the real apiserver: invalid manifests are rejected with field-named messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.harness.cluster import Cluster

REPO = Path(__file__).resolve().parents[3]
INVALID = yaml.safe_load((REPO / "tests/unit/operator/cases/invalid.yaml").read_text())
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))


def manifest(name: str, spec: dict) -> str:
    return json.dumps(
        {
            "apiVersion": "shepherd.dev/v1alpha1",
            "kind": "AgentDeployment",
            "metadata": {"name": name},
            "spec": spec,
        }
    )


@pytest.fixture(scope="module")
def namespace(kube: Cluster, crd_installed: None) -> str:
    return kube.namespace("crd")


def test_at_least_eight_distinct_mistakes():
    assert len({c["name"] for c in INVALID}) >= 8


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c["name"])
def test_invalid_manifest_rejected_naming_the_field(kube: Cluster, namespace: str, case: dict):
    result = kube.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-f",
        "-",
        input=manifest(case.get("metadataName", case["name"]), case["spec"]),
        check=False,
    )
    assert result.returncode != 0, f"{case['name']} was accepted"
    field = "metadata.name" if "metadataName" in case else "spec."
    assert field in result.stderr, result.stderr
    assert case["expect"] in result.stderr, result.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_accepted(kube: Cluster, namespace: str, path: Path):
    kube.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(path))


def test_defaults_applied_by_apiserver(kube: Cluster, namespace: str):
    out = kube.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-o", "json", "-f", "-",
        input=manifest("defaults", {"slo": {"availability": {"target": 99}}}),
    )  # fmt: skip
    spec = json.loads(out.stdout)["spec"]
    assert spec["redis"]["managed"]["storage"] == "1Gi"
    assert spec["slo"]["window"] == "30d"  # nested defaults inside a field the resource set
    # The platform-defaulted fields stay absent: the operator fills them (chart defaults.*).
    assert not {"image", "errorBudgetPolicy"} & spec.keys()
