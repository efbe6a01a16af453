"""langgraph.json's `store` (index and ttl) as LangGraph Server reads it, under the settings that the Pod
sets explicitly; a bad `embed` or `dims` is a start-up error naming the key and the file."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest
from agent_service.graphs.loader import GraphLoadError
from agent_service.graphs.project import Project, ProjectError, read_project
from agent_service.settings import Settings
from agent_service.state.vectors import OpenAIEmbeddings
from agent_service.store_setup import OPENAI_BASE_URL, openai_endpoint, store_index, with_project_ttl
from langgraph.store.base import ensure_embeddings

EMBEDDERS = textwrap.dedent(
    """
    from langchain_core.embeddings import FakeEmbeddings

    model = FakeEmbeddings(size=4)

    def embed(texts):
        return [[1.0, 0.0, 0.0, float(len(t))] for t in texts]

    async def aembed(texts):
        return [[0.0, 1.0, 0.0, float(len(t))] for t in texts]

    not_an_embedder = 42
    """
)


def _project(tmp_path: Path, store: object, env: dict[str, str] | None = None) -> Project:
    (tmp_path / "graph.py").write_text("graph = None\n")
    (tmp_path / "src").mkdir(exist_ok=True)
    (tmp_path / "src" / "embedders.py").write_text(EMBEDDERS)
    config = {"graphs": {"agent": "./graph.py:graph"}, "store": store, "env": env or {}}
    (tmp_path / "langgraph.json").write_text(json.dumps(config))
    return read_project(tmp_path / "langgraph.json")


def test_the_documented_openai_index_and_ttl(tmp_path: Path) -> None:
    store = {
        "index": {"embed": "openai:text-embedding-3-small", "dims": 1536, "fields": ["$"]},
        "ttl": {"refresh_on_read": False, "default_ttl": 10080, "sweep_interval_minutes": 120},
    }
    project = _project(tmp_path, store)
    assert project.warnings == ()
    index = project.store.index
    assert index is not None
    assert (index.model, index.dims, index.fields) == ("text-embedding-3-small", 1536, ("$",))
    settings = with_project_ttl(Settings(), project)
    assert settings.store_ttl_refresh_on_read is False
    assert settings.store_default_ttl_minutes == 10080
    assert settings.store_sweep_interval_seconds == 7200


def test_fields_default_to_the_whole_value_and_unknown_sub_keys_are_warnings(tmp_path: Path) -> None:
    store = {"index": {"embed": "openai:m", "dims": 8, "distance_type": "cosine"}, "ttl": {}, "extra": 1}
    project = _project(tmp_path, store)
    assert project.store.index is not None
    assert project.store.index.fields == ("$",)
    assert [w.split(": ", 1)[1] for w in project.warnings] == [
        "store: keys ['extra'] are not served by this runtime and are ignored",
        "store.index: keys ['distance_type'] are not served by this runtime and are ignored",
    ]


BAD_STORES = [
    ({"index": {"embed": "cohere:embed-v3", "dims": 8}}, r"embed: 'cohere:embed-v3' is not a provider"),
    ({"index": {"embed": "openai:", "dims": 8}}, r"store\.index\.embed: 'openai:' is not a provider"),
    ({"index": {"dims": 8}}, r"store\.index\.embed: required"),
    ({"index": {"embed": "./src/gone.py:embed", "dims": 8}}, r"index\.embed: file './src/gone.py' not found"),
    ({"index": {"embed": "openai:m"}}, r"store\.index\.dims: required"),
    ({"index": {"embed": "openai:m", "dims": "8"}}, r"store\.index\.dims: must be an integer"),
    ({"index": {"embed": "openai:m", "dims": 8, "fields": "text"}}, r"index\.fields: must be a non-empty"),
    ({"index": "openai:m"}, r"store\.index: must be an object"),
    ({"ttl": {"default_ttl": -1}}, r"store\.ttl\.default_ttl: must be a positive number"),
    ({"ttl": {"refresh_on_read": "yes"}}, r"store\.ttl\.refresh_on_read: must be true or false"),
    ([], r"store: must be an object"),
]


@pytest.mark.parametrize(("store", "complaint"), BAD_STORES)
def test_bad_store_names_the_key_and_the_file(tmp_path: Path, store: object, complaint: str) -> None:
    with pytest.raises(ProjectError, match=complaint) as raised:
        _project(tmp_path, store)
    assert str(tmp_path / "langgraph.json") in str(raised.value)


def test_the_pods_explicit_ttl_settings_win_over_the_file(tmp_path: Path) -> None:
    project = _project(
        tmp_path, {"ttl": {"refresh_on_read": False, "default_ttl": 5, "sweep_interval_minutes": 1}}
    )
    pod = Settings(store_ttl_refresh_on_read=True, store_sweep_interval_seconds=30)
    merged = with_project_ttl(pod, project)
    assert (merged.store_ttl_refresh_on_read, merged.store_default_ttl_minutes) == (True, 5)
    assert merged.store_sweep_interval_seconds == 30
    untouched = Settings()
    assert with_project_ttl(untouched, _project(tmp_path, {})) is untouched


@pytest.mark.parametrize(
    ("attribute", "vector"),
    [("embed", [1.0, 0.0, 0.0, 2.0]), ("aembed", [0.0, 1.0, 0.0, 2.0]), ("model", None)],
)
def test_embed_from_the_teams_file_an_embeddings_or_a_sync_or_async_function(
    tmp_path: Path, attribute: str, vector: list[float] | None
) -> None:
    project = _project(tmp_path, {"index": {"embed": f"./src/embedders.py:{attribute}", "dims": 4}})
    index = store_index(Settings(), project)
    assert index is not None
    assert index["dims"] == 4
    assert index["fields"] == ["$"]
    embeddings = ensure_embeddings(index["embed"])  # as RedisStore wraps it
    found = asyncio.run(embeddings.aembed_query("hi"))
    assert len(found) == 4
    assert vector is None or found == vector


def test_an_embed_attribute_that_is_missing_or_not_an_embedder_names_the_key_and_the_file(
    tmp_path: Path,
) -> None:
    for attribute, complaint in [
        ("nothere", "the module has no 'nothere'"),
        ("not_an_embedder", "is a int, not a"),
    ]:
        project = _project(tmp_path, {"index": {"embed": f"./src/embedders.py:{attribute}", "dims": 4}})
        with pytest.raises(GraphLoadError, match=complaint) as raised:
            store_index(Settings(), project)
        assert f"{tmp_path / 'langgraph.json'}: store.index.embed" in str(raised.value)


def test_openai_embeddings_go_to_the_pods_endpoint_else_the_projects_else_openai(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):  # the Pod's environment: Settings() reads it
        monkeypatch.delenv(name, raising=False)
    index = {"index": {"embed": "openai:text-embedding-3-small", "dims": 1536}}
    bare = _project(tmp_path, index)
    assert openai_endpoint(Settings(), bare) == (OPENAI_BASE_URL, None)
    team = _project(tmp_path, index, {"OPENAI_BASE_URL": "http://team/v1", "OPENAI_API_KEY": "sk-team"})
    assert openai_endpoint(Settings(), team) == ("http://team/v1", "sk-team")
    pod = Settings(openai_base_url="http://pod/v1", openai_api_key="sk-pod")
    assert openai_endpoint(pod, team) == ("http://pod/v1", "sk-pod")
    built = store_index(Settings(), team)
    assert built is not None
    assert isinstance(built["embed"], OpenAIEmbeddings)
    assert built["embed"].model == "text-embedding-3-small"


def test_an_index_in_the_settings_replaces_the_files_as_a_whole(tmp_path: Path) -> None:
    project = _project(tmp_path, {"index": {"embed": "./src/embedders.py:embed", "dims": 4, "fields": ["a"]}})
    settings = Settings(store_index_url="http://embedder/v1", store_index_dims=64, store_index_model="m")
    index = store_index(settings, project)
    assert index is not None
    assert (index["dims"], index["fields"]) == (64, ["$"])
    assert isinstance(index["embed"], OpenAIEmbeddings)
    assert index["embed"].model == "m"
    assert store_index(Settings(), None) is None
