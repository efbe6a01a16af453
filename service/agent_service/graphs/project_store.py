"""`langgraph.json`'s ``store``, read as LangGraph Server reads it: ``index`` and ``ttl``.

    "store": {
        "index": {"embed": "openai:text-embedding-3-small", "dims": 1536, "fields": ["$"]},
        "ttl": {"refresh_on_read": true, "default_ttl": 10080, "sweep_interval_minutes": 60}
    }

``embed`` is told apart as LangGraph does: a value containing ``.py:`` is the team's own LangChain
``Embeddings`` or embedding function (sync or async) in a file; anything else is
``<provider>:<model>``, and the provider served here is ``openai`` (any OpenAI-compatible endpoint).
``dims`` is required, ``fields`` defaults to ``["$"]`` (the whole value). TTLs are minutes.
Nothing is imported here (``agent_service.store_setup`` does that, after the project's env is set).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_service.graphs.targets import ProjectError, Target, parse_target

#: The sub-keys read; any other is a warning (project._warnings).
STORE_KEYS = frozenset({"index", "ttl"})
INDEX_KEYS = frozenset({"embed", "dims", "fields"})
TTL_KEYS = frozenset({"refresh_on_read", "default_ttl", "sweep_interval_minutes"})
EMBED_PROVIDERS = ("openai",)
MAX_DIMS = 16_384  # as STORE_INDEX_DIMS


@dataclass(frozen=True)
class ProjectIndex:
    """``store.index``: exactly one of ``model`` (from ``openai:<model>``) and ``target``."""

    embed: str  # as written
    dims: int
    fields: tuple[str, ...] = ("$",)
    model: str | None = None
    target: Target | None = None


@dataclass(frozen=True)
class ProjectTTL:
    """``store.ttl``; None: the file does not say."""

    refresh_on_read: bool | None = None
    default_ttl: float | None = None  # minutes
    sweep_interval_minutes: float | None = None


@dataclass(frozen=True)
class ProjectStore:
    index: ProjectIndex | None = None
    ttl: ProjectTTL = field(default_factory=ProjectTTL)


def _object(raw: Any, key: str, config_file: Path) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProjectError(f"{config_file}: {key}: must be an object, got {type(raw).__name__}")
    return raw


def _embed(value: Any, config_file: Path) -> tuple[str | None, Target | None]:
    key = "store.index.embed"
    if not isinstance(value, str) or not value:
        raise ProjectError(
            f"{config_file}: {key}: required: 'openai:<model>' or './path/to/file.py:name', got {value!r}"
        )
    if ".py:" in value:
        return None, parse_target(value, key, config_file)
    provider, _, model = value.partition(":")
    if provider not in EMBED_PROVIDERS or not model:
        raise ProjectError(
            f"{config_file}: {key}: {value!r} is not a provider served here: use 'openai:<model>' "
            "(any OpenAI-compatible endpoint, OPENAI_BASE_URL) or './path/to/file.py:name' "
            "(your own Embeddings or embedding function)"
        )
    return model, None


def _dims(value: Any, config_file: Path) -> int:
    if value is None:
        raise ProjectError(
            f"{config_file}: store.index.dims: required: the dimensions of the embed model's vectors "
            "(1536 for openai:text-embedding-3-small)"
        )
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DIMS:
        raise ProjectError(f"{config_file}: store.index.dims: must be an integer from 1 to {MAX_DIMS}")
    return value


def _fields(value: Any, config_file: Path) -> tuple[str, ...]:
    if value is None:
        return ("$",)
    if not isinstance(value, list) or not value or not all(isinstance(f, str) and f for f in value):
        raise ProjectError(
            f"{config_file}: store.index.fields: must be a non-empty list of JSON paths, got {value!r}"
        )
    return tuple(value)


def _index(raw: Any, config_file: Path) -> ProjectIndex | None:
    if raw is None:
        return None
    index = _object(raw, "store.index", config_file)
    model, target = _embed(index.get("embed"), config_file)
    dims, fields = _dims(index.get("dims"), config_file), _fields(index.get("fields"), config_file)
    return ProjectIndex(index["embed"], dims, fields, model=model, target=target)


def _minutes(ttl: dict[str, Any], key: str, config_file: Path) -> float | None:
    value = ttl.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ProjectError(f"{config_file}: store.ttl.{key}: must be a positive number of minutes")
    return float(value)


def _ttl(raw: Any, config_file: Path) -> ProjectTTL:
    ttl = _object(raw, "store.ttl", config_file)
    refresh = ttl.get("refresh_on_read")
    if refresh is not None and not isinstance(refresh, bool):
        raise ProjectError(f"{config_file}: store.ttl.refresh_on_read: must be true or false")
    return ProjectTTL(
        refresh_on_read=refresh,
        default_ttl=_minutes(ttl, "default_ttl", config_file),
        sweep_interval_minutes=_minutes(ttl, "sweep_interval_minutes", config_file),
    )


def read_store(raw: Any, config_file: Path) -> ProjectStore:
    store = _object(raw, "store", config_file)
    return ProjectStore(
        index=_index(store.get("index"), config_file), ttl=_ttl(store.get("ttl"), config_file)
    )
