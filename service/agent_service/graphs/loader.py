"""Resolve `AGENT_GRAPH=module:attr`, or the graphs of a langgraph.json (AGENT_CONFIG), into compiled
graphs that checkpoint to our saver."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from agent_service.graphs.project import Project, Target
from agent_service.settings import Settings


class GraphLoadError(RuntimeError):
    """AGENT_GRAPH (or a langgraph.json key) names nothing usable; the message says what was found."""


def _resolve(entrypoint: str) -> Any:
    module_name, _, attr = entrypoint.partition(":")
    if not module_name or not attr:
        raise GraphLoadError(f"AGENT_GRAPH must be 'module:attr', got {entrypoint!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise GraphLoadError(f"AGENT_GRAPH={entrypoint!r}: cannot import {module_name!r}: {error}") from error
    try:
        return getattr(module, attr)
    except AttributeError:
        raise GraphLoadError(f"AGENT_GRAPH={entrypoint!r}: module {module_name!r} has no {attr!r}") from None


def _module_name(file: Path, root: Path) -> str:
    """A stable module name for a project file, as LangGraph Server derives one from the path."""
    relative = file.relative_to(root) if file.is_relative_to(root) else Path(file.name)
    return "__".join(relative.with_suffix("").parts).replace(" ", "_").replace("-", "_")


def import_target(target: Target, where: str, root: Path) -> Any:
    """The object a langgraph.json target names; ``where`` ("<file>: <key>") leads every error."""
    try:
        if target.module is not None:
            module = importlib.import_module(target.module)
        else:
            assert target.file is not None
            name = _module_name(target.file, root)
            spec = importlib.util.spec_from_file_location(name, target.file)
            if spec is None or spec.loader is None:
                raise ImportError(f"{target.file} is not a Python file")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    except Exception as error:  # the project's code, whatever it raises while importing
        raise GraphLoadError(
            f"{where}: cannot import {target.spec!r}: {type(error).__name__}: {error}"
        ) from error
    try:
        return getattr(module, target.attr)
    except AttributeError:
        raise GraphLoadError(f"{where}: {target.spec!r}: the module has no {target.attr!r}") from None


def _compiled(
    target: Any, graph_id: str, settings: Settings, checkpointer: BaseCheckpointSaver, where: str
) -> Pregel:
    if callable(target) and not isinstance(target, Pregel | StateGraph):
        target = target(settings) if inspect.signature(target).parameters else target()
    if isinstance(target, StateGraph):
        return target.compile(checkpointer=checkpointer, name=graph_id)
    if isinstance(target, Pregel):
        # The same compiled graph may be shared; give this app its own copy with our saver,
        # named by its graph id like a StateGraph compiled here.
        return target.copy(update={"checkpointer": checkpointer, "name": graph_id})
    raise GraphLoadError(
        f"{where} is a {type(target).__name__}, not a compiled graph, a StateGraph or a factory returning one"
    )


def load_graph(settings: Settings, checkpointer: BaseCheckpointSaver) -> Pregel:
    """Accepts a compiled graph, a StateGraph, or a factory taking nothing or the settings."""
    where = f"AGENT_GRAPH={settings.agent_graph!r}"
    return _compiled(_resolve(settings.agent_graph), settings.agent_graph_id, settings, checkpointer, where)


def load_graphs(
    settings: Settings, checkpointer: BaseCheckpointSaver, project: Project | None = None
) -> dict[str, Pregel]:
    """Graph id -> compiled graph, every graph this service serves (the default first): the
    project's graphs, unless AGENT_GRAPH is set too (it overrides them, as spec.graph does)."""
    if project is None or "agent_graph" in settings.model_fields_set:
        return {settings.agent_graph_id: load_graph(settings, checkpointer)}
    graphs = {}
    for graph_id, target in project.graphs.items():
        where = f"{project.config_file}: graphs.{graph_id}"
        loaded = import_target(target, where, project.root)
        graphs[graph_id] = _compiled(loaded, graph_id, settings, checkpointer, where)
    return graphs
