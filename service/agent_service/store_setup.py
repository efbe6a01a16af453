"""The store's semantic index and TTLs: the settings (spec.store on an AgentDeployment), else the
project's ``langgraph.json`` ``store`` (``graphs.project_store``).

Settings set explicitly win: an index in the settings (STORE_INDEX_URL) replaces the file's
``store.index`` as a whole (its embedder, dims and fields go together), and each STORE_* TTL setting
the Pod sets replaces its ``store.ttl`` counterpart.
"""

from __future__ import annotations

from typing import Any

from langchain_core.embeddings import Embeddings

from agent_service.graphs.loader import GraphLoadError, import_target
from agent_service.graphs.project import Project
from agent_service.graphs.project_store import ProjectIndex
from agent_service.settings import Settings
from agent_service.state.store import StoreIndex
from agent_service.state.vectors import OpenAIEmbeddings

OPENAI_BASE_URL = "https://api.openai.com/v1"


def with_project_ttl(settings: Settings, project: Project | None) -> Settings:
    """The settings with the file's ``store.ttl`` where the Pod does not set its own."""
    if project is None:
        return settings
    ttl = project.store.ttl
    sweep = ttl.sweep_interval_minutes
    from_file = {
        "store_ttl_refresh_on_read": ttl.refresh_on_read,
        "store_default_ttl_minutes": ttl.default_ttl,
        "store_sweep_interval_seconds": sweep * 60 if sweep is not None else None,
    }
    update = {
        name: value
        for name, value in from_file.items()
        if value is not None and name not in settings.model_fields_set
    }
    return settings.model_copy(update=update) if update else settings


def store_index(settings: Settings, project: Project | None = None) -> StoreIndex | None:
    """Semantic search of the store, or None: STORE_INDEX_* if set, else langgraph.json's store.index.

    Imports the project's embeddings: call it with the project's env applied."""
    if settings.store_index_url is not None and settings.store_index_dims is not None:
        key = settings.store_index_api_key
        embeddings = OpenAIEmbeddings(
            base_url=settings.store_index_url,
            model=settings.store_index_model,
            api_key=key.get_secret_value() if key else None,
        )
        return {"dims": settings.store_index_dims, "embed": embeddings, "fields": settings.store_index_fields}
    if project is None or project.store.index is None:
        return None
    index = project.store.index
    return {"dims": index.dims, "embed": _embed(index, settings, project), "fields": list(index.fields)}


def _embed(index: ProjectIndex, settings: Settings, project: Project) -> Any:
    if index.model is not None:
        base_url, api_key = openai_endpoint(settings, project)
        return OpenAIEmbeddings(base_url=base_url, model=index.model, api_key=api_key)
    assert index.target is not None
    where = f"{project.config_file}: store.index.embed"
    found = import_target(index.target, where, project.root)
    # As LangGraph Server: a LangChain Embeddings, or a function of a list of texts (sync or async).
    if not isinstance(found, Embeddings) and not callable(found):
        raise GraphLoadError(
            f"{where}: {index.embed!r} is a {type(found).__name__}, not a LangChain Embeddings "
            "or an embedding function"
        )
    return found


def openai_endpoint(settings: Settings, project: Project) -> tuple[str, str | None]:
    """Base URL and key of ``openai:<model>``: the Pod's OPENAI_*, else the project's env, else OpenAI."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return (
        settings.openai_base_url or project.env.get("OPENAI_BASE_URL") or OPENAI_BASE_URL,
        key or project.env.get("OPENAI_API_KEY"),
    )
