"""The AgentDeployment CRD, generated from the pydantic models in ``shepherd.api``.

    python -m shepherd.crd            # writes charts/shepherd/crds/agentdeployments.shepherd.dev.yaml
    python -m shepherd.crd --check    # exits 1 when the committed copy is stale

Pydantic emits JSON Schema 2020-12 with ``$ref``s and ``anyOf [X, null]`` for optional fields;
Kubernetes wants a *structural* OpenAPI v3.0 schema. ``to_structural`` inlines the references,
drops the null branches (an unset optional field is simply absent), turns numeric
``exclusiveMinimum`` into the v3.0 boolean form and maps ``extra="allow"`` models to
``x-kubernetes-preserve-unknown-fields``. Defaults made by ``default_factory`` are written out so
a stored resource shows the same defaults the operator assumes. They are written in full (not
``{}``): the apiserver checks CEL rules against a default as written, before nested defaulting.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, NoDefault

from shepherd import api
from shepherd.render.limits import name_limit

CRD_NAME = f"{api.PLURAL}.{api.GROUP}"
REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = REPO_ROOT / "charts" / "shepherd" / "crds" / f"{CRD_NAME}.yaml"
HEADER = "# DO NOT EDIT: generated from operator/shepherd/api.py by `python -m shepherd.crd`.\n"

_DROP = {"title", "$defs"}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Inline ``$ref`` and single-element ``allOf``; sibling keys (description, default) win."""
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = _resolve(target, defs)
        merged.update(node)
        return merged
    if "allOf" in node and len(node["allOf"]) == 1:
        inner = _resolve(node.pop("allOf")[0], defs)
        inner.update(node)
        return inner
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        if len(branches) == 1 and len(branches) < len(node["anyOf"]):
            node.pop("anyOf")
            inner = _resolve(branches[0], defs)
            inner.update(node)
            if inner.get("default", "unset") is None:
                inner.pop("default")
            return inner
    return node


def to_structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Convert one pydantic JSON-schema node (recursively) into a structural OpenAPI v3.0 node."""
    node = _resolve(node, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "properties":
            props = {}
            for name, sub in value.items():
                props[name] = to_structural(sub, defs)
            out["properties"] = props
        elif key == "items":
            out["items"] = to_structural(value, defs)
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is False:
                continue  # closed objects: the apiserver prunes unknown fields anyway
            else:
                out["additionalProperties"] = to_structural(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "anyOf" and node.get("x-kubernetes-int-or-string"):
            out[key] = value
        elif key == "enum" and node.get("type") == "string":
            out[key] = [str(v) for v in value]
        else:
            out[key] = copy.deepcopy(value)
    return out


class _WithFactoryDefaults(GenerateJsonSchema):
    """Emit ``default_factory`` values; empty lists and maps stay implicit (absent means empty)."""

    def get_default_value(self, schema: Any) -> Any:
        factory = schema.get("default_factory")
        if factory is None:
            return super().get_default_value(schema)
        value = factory()
        if isinstance(value, BaseModel):
            return _dump(value)
        if isinstance(value, list) and value and isinstance(value[0], BaseModel):
            return [_dump(v) for v in value]
        if value in ([], {}):
            return NoDefault
        return value


def _dump(model: BaseModel) -> Any:
    """The full default object: CEL rules see defaults unexpanded when the CRD is created."""
    return _drop_empty_lists(model.model_dump(by_alias=True, exclude_none=True, mode="json"))


def _drop_empty_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_empty_lists(v) for k, v in value.items() if v != []}
    return value


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation", schema_generator=_WithFactoryDefaults)
    return to_structural(raw, raw.get("$defs", {}))


def openapi_schema() -> dict[str, Any]:
    """The openAPIV3Schema of the served version."""
    spec = _schema_of(api.AgentDeploymentSpec)
    status = _schema_of(api.AgentDeploymentStatus)
    limit, why = name_limit()
    return {
        "type": "object",
        "description": api.AgentDeployment.__doc__,
        "required": ["spec"],
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {limit}",
                "message": f"metadata.name may have at most {limit} characters ({why})",
            }
        ],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion of this object (shepherd.dev/v1alpha1).",
            },
            "kind": {"type": "string", "description": "Kind of this object (AgentDeployment)."},
            "metadata": {"type": "object"},  # the apiserver forbids anything else here
            "spec": spec,
            "status": status,
        },
    }


PRINTER_COLUMNS = [
    {"name": "Ready", "type": "string", "jsonPath": ".status.ready", "description": "Ready/desired Pods."},
    {"name": "Image", "type": "string", "jsonPath": ".status.image", "description": "Released agent image."},
    {
        "name": "Budget Left",
        "type": "number",
        "jsonPath": ".status.errorBudget.remainingPercent",
        "description": "Error budget remaining in the SLO window, percent.",
    },
    {
        "name": "Freeze",
        "type": "string",
        "jsonPath": ".status.freeze.level",
        "description": "Rollout freeze level.",
    },
    {
        "name": "Circuits",
        "type": "string",
        "jsonPath": ".status.circuitsSummary",
        "description": "Model and tool circuit states.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition document."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {"app.kubernetes.io/name": "shepherd", "app.kubernetes.io/part-of": "shepherd"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": list(api.SHORT_NAMES),
                "categories": ["shepherd"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_yaml() -> str:
    return HEADER + yaml.dump(crd(), Dumper=_NoAliasDumper, sort_keys=False, width=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shepherd.crd", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed copy is stale")
    parser.add_argument("--output", type=Path, default=CRD_PATH, help=f"default: {CRD_PATH}")
    args = parser.parse_args(argv)
    text = render_yaml()
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is stale: run `python -m shepherd.crd`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
