"""helm lint --strict, the values schema, and every ci/*-values.yaml rendering objects the Kubernetes
1.36 OpenAPI schemas (and the upstream Prometheus Operator CRD schemas) accept."""

from __future__ import annotations

import functools
import subprocess
import tarfile

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .conftest import CHART, CI_VALUES, helm_template

K8S_VERSION = "1.36.0"
CRD_FILES = {
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.yaml",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.yaml",
}
#: Not installed anywhere in the test suite; their shape is checked in test_chart_switches.
UNVALIDATED_GROUPS = ("cert-manager.io/",)


@functools.cache
def _crd_schema(crd_dir, kind: str) -> dict:
    doc = yaml.safe_load((crd_dir / CRD_FILES[kind]).read_text())
    version = next(v for v in doc["spec"]["versions"] if v["name"] == "v1")
    return version["schema"]["openAPIV3Schema"]


def _unknown_fields(schema: dict, value, path: str = "") -> list[str]:
    """Fields the apiserver would prune silently (structural schemas are open to unknown keys)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        out = [f"{path}.{k}" for k in value if k not in schema["properties"]]
        for key, sub in value.items():
            if key in schema["properties"]:
                out += _unknown_fields(schema["properties"][key], sub, f"{path}.{key}")
        return out
    if isinstance(value, list) and "items" in schema:
        return [
            e for i, item in enumerate(value) for e in _unknown_fields(schema["items"], item, f"{path}[{i}]")
        ]
    return []


def test_lint_strict(helm):
    result = subprocess.run([str(helm), "lint", "--strict", str(CHART)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict_with_ci_values(helm, values):
    result = subprocess.run(
        [str(helm), "lint", "--strict", str(CHART), f"--values={values}"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.name)
def test_ci_values_render_valid_objects(render, tools, values):
    documents = render(values=[values])
    assert "Deployment" in documents.kinds()
    for doc in documents:
        if doc["kind"] in CRD_FILES:
            if not (tools.crd_dir / CRD_FILES[doc["kind"]]).exists():
                pytest.skip("upstream CRDs not built (make tools)")
            validator = jsonschema.Draft7Validator(_crd_schema(tools.crd_dir, doc["kind"]))
            errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]
            errors += _unknown_fields(validator.schema, doc)
            assert not errors, f"{doc['kind']} {doc['metadata']['name']}: {errors}"
        elif doc["apiVersion"].startswith(UNVALIDATED_GROUPS):
            continue
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize(
    "args",
    [
        ["--set", "unknownKey=1"],
        ["--set", "image.unknown=1"],
        ["--set", "image.pullPolicy=Sometimes"],
        ["--set", "webhook.certificate.mode=vault"],
        ["--set", "webhook.failurePolicy=Maybe"],
        ["--set", "defaults.errorBudgetPolicy.steps[0].action=Panic"],
        ["--set", "defaults.slo.window=thirty days"],
        ["--set", "prometheusRules.severityOverrides.ShepherdCircuitOpen=page"],
        ["--set", "operator.logLevel=trace"],
        ["--set", "defaults.prometheusUrl=prometheus:9090"],
        ["--set", "fullnameOverride=" + "f" * 64],
    ],
    ids=lambda a: a[-1][:40],
)
def test_schema_rejects(helm, args):
    result = helm_template(helm, *args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr or "at '/" in result.stderr


def test_values_yaml_has_the_schema_line_and_comments():
    text = (CHART / "values.yaml").read_text()
    assert text.startswith("# yaml-language-server: $schema=values.schema.json")
    lines = text.splitlines()
    for index, line in enumerate(lines):
        # every top-level key is preceded by a comment (or is a documented block's header)
        if line and not line.startswith(("#", " ", "-")) and index:
            assert lines[index - 1].startswith("#") or lines[index - 1] == "", line


def test_package_ships_generated_files_but_not_the_generator(helm, tmp_path):
    subprocess.run([str(helm), "package", str(CHART), "-d", str(tmp_path)], check=True, capture_output=True)
    (archive,) = tmp_path.glob("shepherd-*.tgz")
    with tarfile.open(archive) as packaged:
        names = set(packaged.getnames())
    assert "shepherd/crds/agentdeployments.shepherd.dev.yaml" in names
    assert "shepherd/files/rbac-rules.yaml" in names
    assert not [n for n in names if n.startswith("shepherd/hack/")]
