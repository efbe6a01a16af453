"""A LangGraph project's `langgraph.json` (AGENT_CONFIG): its graphs, env, own HTTP app, auth handler and
store (``project_store``).

Read once at start-up, before anything of the project is imported: every problem found here is a
`ProjectError` naming the file and the key, so a Pod that cannot start says why (see
agent_service.startup). Keys LangGraph knows but that only matter when building an image
(`dependencies`, `python_version`, ...) are accepted silently; keys this runtime does not serve and
keys nobody knows are warnings naming them, never silence.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from agent_service.graphs.project_store import (
    INDEX_KEYS,
    STORE_KEYS,
    TTL_KEYS,
    ProjectStore,
    read_store,
)
from agent_service.graphs.targets import ProjectError, Target, parse_target

SERVED_KEYS = frozenset({"$schema", "graphs", "env", "http", "auth", "store"})
#: Used by `agent-service build` (or by LangGraph's own image build), nothing to do when serving.
BUILD_KEYS = frozenset(
    {
        "dependencies",
        "python_version",
        "node_version",
        "api_version",
        "base_image",
        "image_distro",
        "pip_config_file",
        "pip_installer",
        "dockerfile_lines",
        "keep_pkg_tools",
    }
)
#: LangGraph Server's other keys: recognised, not served by this runtime (a warning says so).
NOT_SERVED_KEYS = frozenset(
    {"checkpointer", "encryption", "priority", "webhooks", "ui", "ui_config", "source"}
)
KNOWN_KEYS = SERVED_KEYS | BUILD_KEYS | NOT_SERVED_KEYS

#: The keys read inside the served sections (others are warnings).
SECTION_KEYS = {
    ("http",): frozenset({"app"}),
    ("auth",): frozenset({"path"}),
    ("store",): STORE_KEYS,
    ("store", "index"): INDEX_KEYS,
    ("store", "ttl"): TTL_KEYS,
}

_GRAPH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class Project:
    config_file: Path
    graphs: dict[str, Target]  # graph id -> target, in the file's order (the first is the default)
    env: dict[str, str] = field(default_factory=dict)
    http_app: Target | None = None
    auth: Target | None = None
    store: ProjectStore = field(default_factory=ProjectStore)
    warnings: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        return self.config_file.parent


def _graphs(raw: Any, config_file: Path) -> dict[str, Target]:
    if not isinstance(raw, dict) or not raw:
        raise ProjectError(f"{config_file}: graphs: must be a non-empty object of graph id -> path")
    graphs = {}
    for graph_id, value in raw.items():
        if not _GRAPH_ID.match(graph_id):
            raise ProjectError(
                f"{config_file}: graphs.{graph_id}: a graph id is 1-63 letters, digits, '.', '_' or '-'"
            )
        path = value.get("path") if isinstance(value, dict) else value  # {"path": ..., "description": ...}
        graphs[graph_id] = parse_target(path, f"graphs.{graph_id}", config_file)
    return graphs


def _env(raw: Any, config_file: Path) -> dict[str, str]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items()}
    if not isinstance(raw, str):
        raise ProjectError(f"{config_file}: env: must be a file name or an object, got {type(raw).__name__}")
    env_file = config_file.parent / raw
    if not env_file.is_file():
        # As langgraph dev: a missing .env (it is rarely committed) is no error; a Pod gets its
        # secrets from the AgentDeployment instead.
        return {}
    return {k: v for k, v in dotenv_values(env_file).items() if v is not None}


def _section_target(raw: dict[str, Any], section: str, key: str, config_file: Path) -> Target | None:
    value = raw.get(section)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProjectError(f"{config_file}: {section}: must be an object")
    return parse_target(value[key], f"{section}.{key}", config_file) if key in value else None


def _warnings(raw: dict[str, Any], config_file: Path) -> tuple[str, ...]:
    found = []
    for key in sorted(set(raw) - KNOWN_KEYS):
        close = difflib.get_close_matches(key, sorted(KNOWN_KEYS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        found.append(f"{config_file}: unknown key {key!r} ignored{hint}")
    found += [
        f"{config_file}: key {key!r} is not served by this runtime and is ignored"
        for key in sorted(set(raw) & NOT_SERVED_KEYS)
    ]
    for path, served in SECTION_KEYS.items():
        extra = sorted(set(_section(raw, path)) - served)
        if extra:
            where = f"{config_file}: {'.'.join(path)}"
            found.append(f"{where}: keys {extra} are not served by this runtime and are ignored")
    return tuple(found)


def _section(raw: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    found: Any = raw
    for key in path:
        found = found.get(key) if isinstance(found, dict) else None
    return found if isinstance(found, dict) else {}


def read_project(config_file: Path) -> Project:
    """Parses and checks ``langgraph.json``; imports nothing (graphs load in the lifespan)."""
    config_file = config_file.resolve()
    try:
        raw = json.loads(config_file.read_text())
    except FileNotFoundError:
        raise ProjectError(f"AGENT_CONFIG: {config_file} not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProjectError(f"{config_file}: not readable JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ProjectError(f"{config_file}: must be a JSON object")
    return Project(
        config_file=config_file,
        graphs=_graphs(raw.get("graphs"), config_file),
        env=_env(raw.get("env"), config_file),
        http_app=_section_target(raw, "http", "app", config_file),
        auth=_section_target(raw, "auth", "path", config_file),
        store=read_store(raw.get("store"), config_file),
        warnings=_warnings(raw, config_file),
    )
