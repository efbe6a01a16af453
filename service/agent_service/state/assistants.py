"""Assistants: the default assistant of each served graph, and the ones teams create, in Redis.

A default assistant exists for every graph the service serves, as LangGraph Server creates from
langgraph.json. Its id derives from its graph id (uuid5 in LangGraph Server's namespace), so clients
that stored an assistant id keep working when they move to this runtime. It is defined by the
deployment, shared by every tenant, and read-only: it cannot be changed or deleted.

Created assistants belong to the tenant that created them (another tenant's answers "not found",
exactly like one that does not exist). Control keys (the deployment's hash tag):

    assistant:<id>            string  JSON: the assistant as it is now (its current version)
    assistant-versions:<id>   hash    version -> JSON of that version (graph, config, context, metadata...)
    assistants:tenant:<t>     zset    assistant id by creation time (ms): a tenant's assistants

A change (PATCH) writes a new version and makes it current; ``set_latest`` makes an older one
current again. Both are compare-and-set scripts, so two concurrent changes never lose one.
A run may name an assistant by its id or, for the defaults, by its graph id.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any, Literal

import orjson

from agent_service.observability.context import DEFAULT_TENANT
from agent_service.serialization import dumps, now_iso
from agent_service.state import atomic
from agent_service.state.connection import AsyncClient
from agent_service.state.keys import ServiceKeys
from agent_service.state.threads import mget

ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
_CREATED_AT = now_iso()
#: What a version records (the current record has these plus ids, timestamps and its version).
VERSIONED_FIELDS = ("graph_id", "config", "context", "metadata", "name", "description")
SortBy = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]

# KEYS: record, versions. ARGV: the record as read, the new record, version number (or ""), its JSON.
# Writes only if the record is still what was read.
_SWAP = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], ARGV[3], ARGV[4]) end
return 1
"""

# KEYS: record, versions, the tenant's index. ARGV: record JSON, version 1 JSON, now ms, id.
# Nothing is written when the id is taken (by any tenant): a MULTI would still index it for this one.
_CREATE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
redis.call('HSET', KEYS[2], 1, ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
return 1
"""


class AssistantNotFoundError(LookupError):
    pass


class AssistantExistsError(LookupError):
    pass


class AssistantReadOnlyError(ValueError):
    """The default assistant of a graph belongs to the deployment: it cannot be changed or deleted."""


class VersionNotFoundError(LookupError):
    pass


def default_assistant(graph_id: str) -> dict[str, Any]:
    return {
        "assistant_id": str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id)),
        "graph_id": graph_id,
        "config": {},
        "context": {},
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
        "metadata": {"created_by": "system"},
        "version": 1,
        "name": graph_id,
        "description": None,
    }


def public(assistant: dict[str, Any]) -> dict[str, Any]:
    """The assistant as the API shows it (without its tenant and bookkeeping)."""
    return {k: v for k, v in assistant.items() if k not in ("tenant", "max_version")}


def contains(superset: Any, subset: Any) -> bool:
    """JSON containment, like Postgres' ``@>``, which LangGraph Server's metadata filters use."""
    if isinstance(subset, dict):
        return isinstance(superset, dict) and all(
            k in superset and contains(superset[k], v) for k, v in subset.items()
        )
    if isinstance(subset, list):
        return isinstance(superset, list) and all(any(contains(s, v) for s in superset) for v in subset)
    return superset == subset


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Assistants:
    """The assistants of this deployment: the graphs' defaults, then the tenants' own in Redis."""

    def __init__(self, graph_ids: Iterable[str], client: AsyncClient, keys: ServiceKeys) -> None:
        self._defaults = {a["assistant_id"]: a for a in map(default_assistant, graph_ids)}
        self.graph_ids = frozenset(a["graph_id"] for a in self._defaults.values())
        self.client = client
        self.keys = keys
        self._swap = client.register_script(_SWAP)
        self._create = client.register_script(_CREATE)

    def _record_key(self, assistant_id: str) -> str:
        return self.keys.control("assistant", assistant_id)

    def _versions_key(self, assistant_id: str) -> str:
        return self.keys.control("assistant-versions", assistant_id)

    def _tenant_key(self, tenant: str) -> str:
        return self.keys.control("assistants", "tenant", tenant)

    def defaults(self) -> list[dict[str, Any]]:
        return list(self._defaults.values())

    def is_default(self, assistant_id: str) -> bool:
        return assistant_id in self._defaults

    # -- reading ------------------------------------------------------------------------------

    async def resolve(self, assistant_id: str, tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
        """By id (or a default's graph id), as ``tenant`` sees it; AssistantNotFoundError otherwise."""
        for assistant in self._defaults.values():
            if assistant_id in (assistant["assistant_id"], assistant["graph_id"]):
                return assistant
        raw = await self.client.get(self._record_key(assistant_id))
        if raw is not None:
            assistant = orjson.loads(raw)
            if assistant["tenant"] == tenant:
                return assistant
        raise AssistantNotFoundError(f"assistant {assistant_id!r} not found")

    async def own(self, tenant: str) -> list[dict[str, Any]]:
        ids = [i.decode() for i in await self.client.zrange(self._tenant_key(tenant), 0, -1)]
        raws = await mget(self.client, [self._record_key(i) for i in ids])
        found = (orjson.loads(raw) for raw in raws if raw is not None)
        return [a for a in found if a["tenant"] == tenant]

    async def search(
        self,
        tenant: str,
        *,
        graph_id: str | None = None,
        name: str | None = None,
        metadata: dict[str, Any] | None = None,
        sort_by: SortBy = "created_at",
        sort_order: Literal["asc", "desc"] = "desc",
    ) -> list[dict[str, Any]]:
        """Every assistant ``tenant`` sees that matches all the filters, sorted."""
        found = [
            a
            for a in [*self._defaults.values(), *await self.own(tenant)]
            if (graph_id is None or a["graph_id"] == graph_id)
            and (not name or name.lower() in (a["name"] or "").lower())
            and (not metadata or contains(a["metadata"], metadata))
        ]

        def order(assistant: dict[str, Any]) -> Any:
            value = assistant.get(sort_by) or ""
            return value.lower() if sort_by in ("name", "graph_id") else value

        found.sort(key=order, reverse=sort_order == "desc")
        return found

    async def versions(
        self, assistant_id: str, tenant: str, *, metadata: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """Versions of the assistant, newest first."""
        assistant = await self.resolve(assistant_id, tenant)
        if self.is_default(assistant["assistant_id"]):
            fields = ("assistant_id", "version", "created_at", *VERSIONED_FIELDS)
            versions = [{k: assistant[k] for k in fields}]
        else:
            raws = (await self.client.hgetall(self._versions_key(assistant["assistant_id"]))).values()
            versions = [orjson.loads(raw) for raw in raws]
        versions = [v for v in versions if not metadata or contains(v["metadata"], metadata)]
        return sorted(versions, key=lambda v: v["version"], reverse=True)

    # -- writing ------------------------------------------------------------------------------

    def check_graph(self, graph_id: str) -> None:
        if graph_id not in self.graph_ids:
            served = ", ".join(sorted(self.graph_ids))
            raise AssistantNotFoundError(f"graph {graph_id!r} is not served here (graphs: {served})")

    async def create(
        self,
        tenant: str,
        *,
        graph_id: str,
        assistant_id: str | None = None,
        config: dict[str, Any],
        context: dict[str, Any],
        metadata: dict[str, Any],
        name: str | None = None,
        description: str | None = None,
        if_exists: Literal["raise", "do_nothing"] = "raise",
    ) -> dict[str, Any]:
        self.check_graph(graph_id)
        assistant_id = assistant_id or str(uuid.uuid4())
        if self.is_default(assistant_id):
            if if_exists == "do_nothing":
                return self._defaults[assistant_id]
            raise AssistantExistsError(f"assistant {assistant_id} already exists")
        now = now_iso()
        version = {
            "assistant_id": assistant_id,
            "version": 1,
            "created_at": now,
            "graph_id": graph_id,
            "config": config,
            "context": context,
            "metadata": metadata,
            "name": name or "Untitled",
            "description": description,
        }
        assistant = {**version, "updated_at": now, "tenant": tenant, "max_version": 1}
        keys = [self._record_key(assistant_id), self._versions_key(assistant_id), self._tenant_key(tenant)]
        written = await self._create(
            keys=keys, args=[dumps(assistant), dumps(version), _now_ms(), assistant_id]
        )
        if not written:
            existing = await self.client.get(self._record_key(assistant_id))
            if existing is not None and if_exists == "do_nothing":
                found = orjson.loads(existing)
                if found["tenant"] == tenant:
                    return found
            raise AssistantExistsError(f"assistant {assistant_id} already exists")
        return assistant

    async def _owned(self, assistant_id: str, tenant: str) -> tuple[bytes, dict[str, Any]]:
        """(raw, record) of one of ``tenant``'s own assistants; the defaults are read-only."""
        if self.is_default(assistant_id) or assistant_id in self.graph_ids:
            raise AssistantReadOnlyError(
                f"assistant {assistant_id} is the default assistant of its graph, defined by the "
                "deployment; create an assistant of that graph to change its configuration"
            )
        raw = await self.client.get(self._record_key(assistant_id))
        current = orjson.loads(raw) if raw is not None else None
        if current is None or current["tenant"] != tenant:
            raise AssistantNotFoundError(f"assistant {assistant_id!r} not found")
        return raw, current

    async def _modify(self, assistant_id: str, tenant: str, change: Any) -> dict[str, Any]:
        """Compare-and-set loop: ``await change(current)`` returns (new record, new version or None)."""
        while True:
            raw, current = await self._owned(assistant_id, tenant)
            updated, version = await change(current)
            args = [raw, dumps(updated), "", ""]
            if version is not None:
                args[2:] = [version["version"], dumps(version)]
            keys = [self._record_key(assistant_id), self._versions_key(assistant_id)]
            if await self._swap(keys=keys, args=args):
                return updated

    async def update(self, assistant_id: str, tenant: str, **changes: Any) -> dict[str, Any]:
        """A new version from the current one with ``changes`` (None: unchanged; metadata merges)."""
        if changes.get("graph_id") is not None:
            self.check_graph(changes["graph_id"])

        async def change(current: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
            number, now = current["max_version"] + 1, now_iso()
            version = {
                "assistant_id": assistant_id,
                "version": number,
                "created_at": now,
                **{f: current[f] for f in VERSIONED_FIELDS},
                **{f: v for f, v in changes.items() if v is not None and f != "metadata"},
                "metadata": {**current["metadata"], **(changes.get("metadata") or {})},
            }
            updated = {**current, **version, "created_at": current["created_at"], "updated_at": now}
            return {**updated, "max_version": number}, version

        return await self._modify(assistant_id, tenant, change)

    async def set_latest(self, assistant_id: str, tenant: str, version: int) -> dict[str, Any]:
        async def change(current: dict[str, Any]) -> tuple[dict[str, Any], None]:
            raw = await self.client.hget(self._versions_key(assistant_id), version)
            if raw is None:
                raise VersionNotFoundError(f"version {version} of assistant {assistant_id} does not exist")
            chosen = orjson.loads(raw)
            fields = {f: chosen[f] for f in VERSIONED_FIELDS}
            return {**current, **fields, "version": version, "updated_at": now_iso()}, None

        return await self._modify(assistant_id, tenant, change)

    async def delete(self, assistant_id: str, tenant: str) -> None:
        await self._owned(assistant_id, tenant)
        await atomic.execute(
            self.client,
            [
                ("DEL", self._record_key(assistant_id), self._versions_key(assistant_id)),
                ("ZREM", self._tenant_key(tenant), assistant_id),
            ],
        )
