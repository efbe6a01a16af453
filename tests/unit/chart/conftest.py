"""Chart unit tests: `helm template` with --set / ci values files, then assertions on parsed YAML.

(helm-unittest's it/set/assert style, in pytest: the plugin is installed from GitHub, which CI
cannot reach.)
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "shepherd"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))


class Rendered(list):
    """The documents of one `helm template`, with lookups by kind and name."""

    def kinds(self) -> list[str]:
        return [d["kind"] for d in self]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}: {self.kinds()}"
        return found[0]

    def container(self) -> dict[str, Any]:
        return self.one("Deployment")["spec"]["template"]["spec"]["containers"][0]

    def env(self) -> dict[str, str]:
        return {e["name"]: e.get("value") for e in self.container()["env"]}


def helm_template(helm: Path, *args: str, release: str = "shepherd", namespace: str = "shepherd-system"):
    return subprocess.run(
        [str(helm), "template", release, str(CHART), "--namespace", namespace, *args],
        capture_output=True,
        text=True,
    )


@pytest.fixture(scope="session")
def helm(tools) -> Path:
    return tools.helm


@pytest.fixture
def render(helm) -> Callable[..., Rendered]:
    """render("--set", "a=b", values=[path], release="x") -> Rendered; fails on a helm error."""

    def _render(*args: str, values: list[Path] = (), release: str = "shepherd") -> Rendered:
        files = [f"--values={v}" for v in values]
        result = helm_template(helm, *files, *args, release=release)
        assert result.returncode == 0, result.stderr
        return Rendered(d for d in yaml.safe_load_all(result.stdout) if d)

    return _render
