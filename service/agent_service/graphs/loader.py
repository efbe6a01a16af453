"""Resolve `AGENT_GRAPH=module:attr` into a compiled graph that checkpoints to our saver."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import StateGraph
from langgraph.pregel import Pregel

from agent_service.settings import Settings


class GraphLoadError(RuntimeError):
    """AGENT_GRAPH names nothing usable; the message says what was found instead."""


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


def load_graph(settings: Settings, checkpointer: BaseCheckpointSaver) -> Pregel:
    """Accepts a compiled graph, a StateGraph, or a factory taking nothing or the settings."""
    target = _resolve(settings.agent_graph)
    if callable(target) and not isinstance(target, Pregel | StateGraph):
        target = target(settings) if inspect.signature(target).parameters else target()
    if isinstance(target, StateGraph):
        return target.compile(checkpointer=checkpointer, name=settings.agent_graph_id)
    if isinstance(target, Pregel):
        # The same compiled graph may be shared; give this app its own copy with our saver,
        # named by its graph id like a StateGraph compiled here.
        return target.copy(update={"checkpointer": checkpointer, "name": settings.agent_graph_id})
    raise GraphLoadError(
        f"AGENT_GRAPH={settings.agent_graph!r} is a {type(target).__name__}, "
        "not a compiled graph, a StateGraph or a factory returning one"
    )


def load_graphs(settings: Settings, checkpointer: BaseCheckpointSaver) -> dict[str, Pregel]:
    """Graph id -> compiled graph, every graph this service serves (the default first)."""
    return {settings.agent_graph_id: load_graph(settings, checkpointer)}
