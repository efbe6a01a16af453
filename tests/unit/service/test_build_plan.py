"""`agent-service build`'s plan: what a langgraph.json asks for, what gets installed, the Containerfile."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from agent_service.build import (
    PROJECT_SITE,
    USER,
    BasePython,
    BuildError,
    containerfile,
    find_builder,
    plan_build,
    split_pins,
)
from agent_service.graphs.project import ProjectError

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
BASE = BasePython(
    python="3.11", machine="x86_64", glibc="2.36", packages={"langgraph": "1.0.3", "httpx": "0.28.1"}
)


def project(tmp_path: Path, config: dict, pyproject: bool = True) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "graph.py").write_text("graph = None\n")
    if pyproject:
        (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    return tmp_path / "langgraph.json"


def test_template_with_a_lock_is_planned_from_it() -> None:
    plan = plan_build(TEMPLATES / "react-agent" / "langgraph.json", "base:1", "me/agent:1")
    assert plan.locked
    assert plan.local_dependencies == (".",)
    assert plan.requirements == ()
    assert plan.agent_config == "/opt/project/app/langgraph.json"
    assert plan.project_dir == (TEMPLATES / "react-agent").resolve()


def test_template_without_a_lock_is_resolved() -> None:
    assert not plan_build(TEMPLATES / "memory-template" / "langgraph.json", "base:1", "t").locked


def test_dependencies_are_split_into_paths_and_requirements(tmp_path: Path) -> None:
    config = project(
        tmp_path, {"graphs": {"a": "./src/graph.py:graph"}, "dependencies": [".", "httpx>=0.27"]}
    )
    plan = plan_build(config, "base:1", "t")
    assert (plan.local_dependencies, plan.requirements) == ((".",), ("httpx>=0.27",))


@pytest.mark.parametrize(
    ("dependencies", "pyproject", "problem"),
    [
        ("requests", True, "dependencies: must be a list of non-empty strings"),
        ([""], True, "dependencies: must be a list of non-empty strings"),
        (["../elsewhere"], True, "'../elsewhere' is outside the project directory"),
        (["."], False, "'.' has no pyproject.toml or setup.py"),
    ],
)
def test_bad_dependencies_name_the_key(tmp_path: Path, dependencies, pyproject: bool, problem: str) -> None:
    config = project(
        tmp_path, {"graphs": {"a": "./src/graph.py:graph"}, "dependencies": dependencies}, pyproject
    )
    with pytest.raises(ProjectError) as error:
        plan_build(config, "base:1", "t")
    assert str(config) in str(error.value)
    assert problem in str(error.value)


def test_missing_and_invalid_langgraph_json(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"langgraph.json: no such file"):
        plan_build(tmp_path / "langgraph.json", "base:1", "t")
    (tmp_path / "langgraph.json").write_text("{not json")
    with pytest.raises(ProjectError, match="not readable JSON"):
        plan_build(tmp_path / "langgraph.json", "base:1", "t")
    config = project(tmp_path, {"graphs": {"a": "./src/missing.py:graph"}})
    with pytest.raises(ProjectError, match=r"missing\.py"):
        plan_build(config, "base:1", "t")


def test_the_base_keeps_its_versions() -> None:
    install, conflicts = split_pins(
        ["langgraph==1.0.9", "HTTPX==0.28.1", "tavily-python==0.7.1 ; python_version >= '3.9'", "# note", ""],
        BASE,
    )
    assert install == ["tavily-python==0.7.1 ; python_version >= '3.9'"]
    assert conflicts == ["langgraph 1.0.9 (the base has 1.0.3)"]


def test_an_unreadable_pin_is_an_error() -> None:
    with pytest.raises(BuildError, match="'@@@'"):
        split_pins(["@@@"], BASE)


def test_containerfile_is_non_root_and_serves_the_projects_langgraph_json() -> None:
    plan = plan_build(TEMPLATES / "react-agent" / "langgraph.json", "localhost/agent-service:1", "me/agent:1")
    text = containerfile(plan)
    lines = text.splitlines()
    assert "FROM localhost/agent-service:1" in lines
    assert "ENV AGENT_CONFIG=/opt/project/app/langgraph.json" in lines
    assert [line for line in lines if line.startswith("USER")][-1] == f"USER {USER}"
    assert "--invalidation-mode unchecked-hash /opt/project" in text  # nothing to write at start-up
    assert f"echo {PROJECT_SITE} >" in text  # on sys.path after the base's packages


def test_no_builder_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, **_: None)
    with pytest.raises(BuildError, match="no image builder found: install one of buildah, podman, docker"):
        find_builder()


def test_storage_flags_go_to_buildah_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, **_: f"/usr/bin/{name}" if name == "docker" else None)
    assert find_builder(("--root", "/x")).command("build") == ["docker", "build"]
    monkeypatch.setattr(shutil, "which", lambda name, **_: f"/usr/bin/{name}")
    assert find_builder(("--root", "/x")).command("bud") == ["buildah", "--root", "/x", "bud"]
