"""AGENT_GRAPH=module:attr resolves compiled graphs, builders and factories, or says why not."""

from __future__ import annotations

import sys
import types

import pytest
from agent_service.graphs.loader import GraphLoadError, load_graph
from agent_service.settings import Settings
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph


def _builder() -> StateGraph:
    builder = StateGraph(MessagesState)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    return builder


@pytest.fixture
def graphs_module(monkeypatch):
    module = types.ModuleType("fake_graphs")
    module.builder = _builder()
    module.compiled = _builder().compile()
    module.factory = lambda: _builder()
    module.factory_with_settings = lambda settings: _builder().compile(
        name=f"made-for-{settings.agent_graph_id}"
    )
    module.not_a_graph = 42
    monkeypatch.setitem(sys.modules, "fake_graphs", module)
    return module


@pytest.mark.parametrize("attr", ["builder", "compiled", "factory", "factory_with_settings"])
def test_every_supported_shape_loads_with_our_checkpointer(graphs_module, attr):
    saver = InMemorySaver()
    graph = load_graph(Settings(agent_graph=f"fake_graphs:{attr}", agent_graph_id="research"), saver)
    assert graph.checkpointer is saver
    assert graph.name == "research"
    assert "noop" in graph.nodes


def test_a_shared_compiled_graph_is_not_modified(graphs_module):
    load_graph(Settings(agent_graph="fake_graphs:compiled"), InMemorySaver())
    assert graphs_module.compiled.checkpointer is None


@pytest.mark.parametrize(
    ("entrypoint", "complaint"),
    [
        ("no_such_module_xyz:graph", "cannot import 'no_such_module_xyz'"),
        ("fake_graphs:missing", "has no 'missing'"),
        ("fake_graphs:not_a_graph", "is a int"),
    ],
)
def test_bad_entrypoints_say_what_is_wrong(graphs_module, entrypoint, complaint):
    with pytest.raises(GraphLoadError, match=complaint):
        load_graph(Settings(agent_graph=entrypoint), InMemorySaver())
