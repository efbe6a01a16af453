"""Write the chart's generated files (DO NOT EDIT them by hand).

    .venv/bin/python charts/shepherd/hack/generate.py          # write
    .venv/bin/python charts/shepherd/hack/generate.py --check  # exit 1 when a file is stale

Helm reads files inside the chart only, so what the chart ships from elsewhere is copied here:

- ``files/rbac-rules.yaml``: the ClusterRole rules, from ``shepherd.rbac.rules()``;
- ``files/leader-election-rules.yaml``: the leader election Role's, from ``shepherd.rbac.lease_rules()``;
- ``files/rules/*.yaml``: the generated rule files of ``alerts/`` (``python -m shepherd.slo``);
- ``files/dashboards/*.json``: the generated boards of ``dashboards/`` (``python -m dashboards.build``);
- the values table of ``README.md`` (between its markers), from the ``# --`` comments of values.yaml.

The CRD in ``crds/`` is written by ``python -m shepherd.crd`` directly.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import yaml

CHART = Path(__file__).resolve().parents[1]
REPO = CHART.parents[1]
RULE_FILES = ("shepherd-operator-rules.yaml", "shepherd-rules.yaml")
RBAC_HEADER = "# DO NOT EDIT: generated from operator/shepherd/rbac.py by charts/shepherd/hack/generate.py.\n"


def rbac_rules_yaml(rules: str = "rules") -> str:
    from shepherd import rbac

    found = getattr(rbac, rules)()
    header = RBAC_HEADER.replace("rbac.py", f"rbac.py ({rules}())")
    return header + yaml.safe_dump(found, sort_keys=False, default_flow_style=None, width=110)


BEGIN, END = "<!-- values:begin (generated) -->", "<!-- values:end -->"
_TYPES = {dict: "object", list: "list", str: "string", bool: "bool", int: "int", float: "float"}
_KEY = re.compile(r"^(\s*)([A-Za-z][\w-]*):")


def values_table(text: str) -> str:
    """helm-docs style: every key documented with a ``# --`` comment, with its type and default."""
    values = yaml.safe_load(text)
    rows, comment, path = [], [], []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
        elif stripped.startswith("#") and comment:
            comment.append(stripped[1:].strip())
        elif match := _KEY.match(line):
            depth = len(match.group(1)) // 2
            path = [*path[:depth], match.group(2)]
            if comment:
                value = values
                for part in path:
                    value = value[part]
                kind = _TYPES.get(type(value), type(value).__name__)
                rows.append(f"| `{'.'.join(path)}` | {kind} | `{json.dumps(value)}` | {' '.join(comment)} |")
            comment = []
        elif not stripped.startswith("-"):
            comment = []
    return "\n".join(["| key | type | default | description |", "|---|---|---|---|", *rows])


def readme(current: str) -> str:
    head, rest = current.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    table = values_table((CHART / "values.yaml").read_text())
    return f"{head}{BEGIN}\n{table}\n{END}{tail}"


def generated_files() -> dict[Path, str]:
    """Path in the chart -> content."""
    files = {
        CHART / "files" / "rbac-rules.yaml": rbac_rules_yaml(),
        CHART / "files" / "leader-election-rules.yaml": rbac_rules_yaml("lease_rules"),
    }
    files[CHART / "README.md"] = readme((CHART / "README.md").read_text())
    for name in RULE_FILES:
        files[CHART / "files" / "rules" / name] = (REPO / "alerts" / name).read_text()
    for board in sorted((REPO / "dashboards").glob("*.json")):
        files[CHART / "files" / "dashboards" / board.name] = board.read_text()
    return files


def stale_files() -> list[Path]:
    """Generated files that differ from a fresh generation, plus leftovers nothing generates."""
    files = generated_files()
    stale = [path for path, text in files.items() if not path.exists() or path.read_text() != text]
    for folder in ("rules", "dashboards"):
        stale += [p for p in sorted((CHART / "files" / folder).glob("*")) if p not in files]
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        for path in stale:
            print(f"stale: {path.relative_to(REPO)} (run charts/shepherd/hack/generate.py)", file=sys.stderr)
        return 1 if stale else 0
    files = generated_files()
    for folder in ("rules", "dashboards"):
        for leftover in (CHART / "files" / folder).glob("*"):
            if leftover not in files:
                leftover.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
