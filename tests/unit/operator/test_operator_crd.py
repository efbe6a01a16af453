"""The committed CRD is fresh, structural, documented, and its defaults agree with the model's."""

from __future__ import annotations

from typing import Any

import yaml
from shepherd import api, crd


def test_committed_crd_is_fresh():
    assert crd.CRD_PATH.read_text() == crd.render_yaml(), "stale CRD: run `python -m shepherd.crd`"


def test_check_mode_detects_stale_copy(tmp_path):
    out = tmp_path / "crd.yaml"
    assert crd.main(["--output", str(out)]) == 0
    assert crd.main(["--check", "--output", str(out)]) == 0
    out.write_text(out.read_text() + "# edited\n")
    assert crd.main(["--check", "--output", str(out)]) == 1


def _walk(node: dict[str, Any], path: str):
    yield path, node
    for name, sub in (node.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if "items" in node:
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def _schema() -> dict[str, Any]:
    doc = yaml.safe_load(crd.CRD_PATH.read_text())
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_structural_and_documented():
    for path, node in _walk(_schema(), ""):
        assert not {"$ref", "$defs"} & node.keys(), path
        if path.count(".") >= 1 and path != ".metadata" and not path.endswith(("{}", "[]")):
            assert node.get("description"), f"{path} has no description"
        if node.get("x-kubernetes-int-or-string"):
            continue
        assert "type" in node, f"{path} has no type (not structural)"
        assert not {"anyOf", "oneOf"} & node.keys(), path


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Defaulting as the apiserver does it: absent properties with a default get it, recursively."""
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        for name, sub in (schema.get("properties") or {}).items():
            if name not in out and "default" in sub:
                out[name] = sub["default"]
            if name in out:
                out[name] = apply_defaults(sub, out[name])
        return out
    if isinstance(value, list) and "items" in schema:
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def test_crd_defaults_match_model_defaults():
    """The apiserver's defaults plus the operator's built-in platform defaults give the model's."""
    spec_schema = _schema()["properties"]["spec"]
    defaulted = api.PlatformDefaults().fill(apply_defaults(spec_schema, {}))
    model = api.AgentDeploymentSpec()
    assert defaulted == _without_empty_lists(model.model_dump(by_alias=True, exclude_none=True, mode="json"))


def test_platform_defaulted_fields_have_no_crd_default():
    """A default written by the apiserver would hide the platform team's (chart ``defaults.*``)."""
    properties = _schema()["properties"]["spec"]["properties"]
    for name in api.PlatformDefaults.ENV:
        assert "default" not in properties[name], name
        assert "platform default" in properties[name]["description"], name


def _without_empty_lists(value: Any) -> Any:
    """Absent and empty lists mean the same; the CRD leaves empty-list defaults implicit."""
    if isinstance(value, dict):
        return {k: _without_empty_lists(v) for k, v in value.items() if v != []}
    return value


def test_printer_columns_and_names():
    doc = yaml.safe_load(crd.CRD_PATH.read_text())
    version = doc["spec"]["versions"][0]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Ready",
        "Image",
        "Budget Left",
        "Freeze",
        "Rollout",
        "Circuits",
        "Age",
    ]
    assert version["subresources"] == {"status": {}}
    assert doc["spec"]["names"]["shortNames"] == ["agd"]


def test_cel_rules_present():
    rules = [r["rule"] for _, n in _walk(_schema(), "") for r in n.get("x-kubernetes-validations", [])]
    assert any("minReplicas <= self.maxReplicas" in r for r in rules)
    assert any("isSorted" in r for r in rules)
    assert any("has(self.managed) != has(self.external)" in r for r in rules)
