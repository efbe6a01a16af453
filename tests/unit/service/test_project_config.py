"""langgraph.json (AGENT_CONFIG): what is served, and bad input named by key and file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from agent_service.graphs.loader import GraphLoadError, load_graphs
from agent_service.graphs.project import ProjectError, read_project
from agent_service.settings import Settings
from langgraph.checkpoint.memory import InMemorySaver

GRAPH = textwrap.dedent(
    """
    from langgraph.graph import START, MessagesState, StateGraph

    builder = StateGraph(MessagesState)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    graph = builder.compile(name="upstream name")
    """
)


def _project(tmp_path: Path, config: dict, files: dict[str, str] | None = None) -> Path:
    for name, text in {"src/agent/graph.py": GRAPH, **(files or {})}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    config_file = tmp_path / "langgraph.json"
    config_file.write_text(json.dumps(config))
    return config_file


def test_graphs_by_file_in_order_with_our_saver_and_their_ids(tmp_path: Path) -> None:
    config = {
        "graphs": {"first": "./src/agent/graph.py:graph", "second": {"path": "./src/agent/graph.py:graph"}}
    }
    project = read_project(_project(tmp_path, config))
    saver = InMemorySaver()
    graphs = load_graphs(Settings(), saver, project)
    assert list(graphs) == ["first", "second"]
    assert all(g.checkpointer is saver for g in graphs.values())
    assert graphs["second"].name == "second"


def test_agent_graph_overrides_the_project_graphs(tmp_path: Path) -> None:
    project = read_project(_project(tmp_path, {"graphs": {"first": "./src/agent/graph.py:graph"}}))
    settings = Settings(agent_graph="agent_service.graphs.reference_agent:build_graph")
    assert list(load_graphs(settings, InMemorySaver(), project)) == ["agent"]


def test_env_from_a_file_or_a_map_and_a_missing_env_file_is_no_error(tmp_path: Path) -> None:
    config_file = _project(tmp_path, {"graphs": {"a": "./src/agent/graph.py:graph"}, "env": ".env"})
    assert read_project(config_file).env == {}
    (tmp_path / ".env").write_text("TEAM_SETTING=from-file\n# a comment\nQUOTED='x y'\n")
    assert read_project(config_file).env == {"TEAM_SETTING": "from-file", "QUOTED": "x y"}
    config_file.write_text(json.dumps({"graphs": {"a": "./src/agent/graph.py:graph"}, "env": {"N": 1}}))
    assert read_project(config_file).env == {"N": "1"}


def test_unknown_and_unserved_keys_are_warnings_naming_them_and_the_file(tmp_path: Path) -> None:
    config = {
        "graphs": {"a": "./src/agent/graph.py:graph"},
        "grpahs": {},
        "checkpointer": {"ttl": {}},
        "dependencies": ["."],  # build time: no warning
        "http": {"app": "./src/agent/graph.py:graph", "cors": {}},
    }
    config_file = _project(tmp_path, config)
    warnings = read_project(config_file).warnings
    assert len(warnings) == 3
    assert all(str(config_file) in w for w in warnings)
    assert "unknown key 'grpahs' ignored (did you mean 'graphs'?)" in warnings[0]
    assert "'checkpointer' is not served" in warnings[1]
    assert "http: keys ['cors']" in warnings[2]


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        (
            {"graphs": {"agent": "./src/agent/missing.py:graph"}},
            r"graphs\.agent: file './src/agent/missing.py' not found",
        ),
        (
            {"graphs": {"agent": "./src/agent/graph.py"}},
            r"graphs\.agent: must be 'path/to/file.py:attribute'",
        ),
        ({"graphs": {}}, r"graphs: must be a non-empty object"),
        ({"graphs": {"bad id!": "./src/agent/graph.py:graph"}}, r"graphs\.bad id!: a graph id"),
        (
            {"graphs": {"a": "./src/agent/graph.py:graph"}, "http": {"app": "./src/agent/nothere.py:app"}},
            r"http\.app: file './src/agent/nothere.py' not found",
        ),
        (
            {"graphs": {"a": "./src/agent/graph.py:graph"}, "auth": {"path": "no-colon"}},
            r"auth\.path: must be",
        ),
        ({"graphs": {"a": "./src/agent/graph.py:graph"}, "env": 3}, r"env: must be a file name or an object"),
    ],
)
def test_bad_input_names_the_file_and_the_key(tmp_path: Path, config: dict, complaint: str) -> None:
    config_file = _project(tmp_path, config)
    with pytest.raises(ProjectError, match=complaint) as raised:
        read_project(config_file)
    assert str(config_file) in str(raised.value)


def test_a_config_file_that_is_missing_or_not_json(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"AGENT_CONFIG: .*nothere.json not found"):
        read_project(tmp_path / "nothere.json")
    (tmp_path / "langgraph.json").write_text("{graphs:")
    with pytest.raises(ProjectError, match="not readable JSON"):
        read_project(tmp_path / "langgraph.json")


@pytest.mark.parametrize(
    ("source", "complaint"),
    [
        (
            "import not_installed_anywhere\n",
            r"graphs\.agent: cannot import .*ModuleNotFoundError.*not_installed_anywhere",
        ),
        (
            "raise RuntimeError('boom at import')\n",
            r"graphs\.agent: cannot import .*RuntimeError: boom at import",
        ),
        ("other = 1\n", r"graphs\.agent: './src/agent/broken.py:graph': the module has no 'graph'"),
        ("graph = 42\n", r"graphs\.agent is a int, not a compiled graph"),
    ],
)
def test_a_graph_that_does_not_import_names_the_key_and_the_file(
    tmp_path: Path, source: str, complaint: str
) -> None:
    config_file = _project(
        tmp_path, {"graphs": {"agent": "./src/agent/broken.py:graph"}}, {"src/agent/broken.py": source}
    )
    with pytest.raises(GraphLoadError, match=complaint) as raised:
        load_graphs(Settings(), InMemorySaver(), read_project(config_file))
    assert str(config_file) in str(raised.value)
