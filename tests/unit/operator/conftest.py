"""Fixtures for the operator's unit tests: resources to render and golden-file comparison.

pytest tests/unit/operator --update-golden    # rewrite golden files from the renderers
SHEPHERD_UPDATE_GOLDEN=1 pytest tests         # same, when this conftest is not loaded at start-up
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from shepherd import api

GOLDEN_DIR = Path(__file__).parent / "golden"
CASES_DIR = Path(__file__).parent / "cases"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", default=False, help="rewrite golden YAML files")


def make_resource(spec: dict[str, Any], name: str = "demo", namespace: str = "team-a") -> api.AgentDeployment:
    return api.parse(
        {
            "apiVersion": api.API_VERSION,
            "kind": api.KIND,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": "00000000-0000-4000-8000-000000000001",
                "generation": 3,
            },
            "spec": spec,
        }
    )


def load_case(name: str) -> dict[str, Any]:
    return yaml.safe_load((CASES_DIR / f"{name}.yaml").read_text())


class _NoAliasDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


class Golden:
    def __init__(self, update: bool) -> None:
        self.update = update

    def check(self, name: str, docs: list[dict[str, Any]]) -> None:
        path = GOLDEN_DIR / f"{name}.yaml"
        text = "# Golden file: regenerate with `pytest tests/unit/operator --update-golden`.\n" + (
            yaml.dump_all(docs, Dumper=_NoAliasDumper, sort_keys=True, width=110) if docs else "--- []\n"
        )
        if self.update or not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            if not self.update:
                pytest.fail(f"{path} did not exist; written. Re-run.")
            return
        assert path.read_text() == text, f"{path} differs from the renderer; run with --update-golden"


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Golden:
    try:
        update = bool(request.config.getoption("--update-golden"))
    except ValueError:
        update = False
    return Golden(update or os.environ.get("SHEPHERD_UPDATE_GOLDEN") == "1")
