"""The store (long-term memory) over HTTP, as LangGraph Server serves it: items and namespaces.

Every call sees only the caller's tenant's store (``RedisStore.for_tenant``), the same store the
tenant's graphs get at run time. A namespace is a list of labels; a label is non-empty and holds no
period (the SDK joins labels with ".") and no control character, and the first may not be
"langgraph" (LangGraph reserves it). A value is a JSON object of at most ``STORE_MAX_VALUE_BYTES``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, Field

from agent_service.api.deps import RuntimeDep, current_tenant, field_error
from agent_service.api.schemas import Json, _Body
from agent_service.serialization import dumps
from agent_service.state.store import RedisStore

router = APIRouter(prefix="/store", tags=["store"])

MAX_LABELS = 32
MAX_LABEL_CHARS = 256
MAX_KEY_CHARS = 1024


def check_label(label: str) -> str:
    if not label:
        raise ValueError("namespace labels may not be empty")
    if "." in label:
        raise ValueError(f"namespace label {label!r} may not contain a period")
    if any(ord(c) < 32 or ord(c) == 127 for c in label):
        raise ValueError(f"namespace label {label!r} may not contain control characters")
    return label


def _root(namespace: list[str]) -> list[str]:
    if namespace and namespace[0] == "langgraph":
        raise ValueError('the first namespace label may not be "langgraph" (reserved by LangGraph)')
    return namespace


def _key(key: str) -> str:
    if "\0" in key:
        raise ValueError("a key may not contain NUL")
    return key


Label = Annotated[str, Field(max_length=MAX_LABEL_CHARS), AfterValidator(check_label)]
Namespace = Annotated[list[Label], Field(max_length=MAX_LABELS), AfterValidator(_root)]
ItemNamespace = Annotated[Namespace, Field(min_length=1)]
Key = Annotated[str, Field(min_length=1, max_length=MAX_KEY_CHARS), AfterValidator(_key)]


class StorePut(_Body):
    namespace: ItemNamespace
    key: Key
    value: Json
    index: Annotated[list[str], Field(max_length=64)] | bool | None = None
    ttl: Annotated[float, Field(gt=0, le=10**9)] | None = Field(default=None, description="Minutes.")


class StoreDelete(_Body):
    namespace: ItemNamespace
    key: Key


class StoreSearch(_Body):
    namespace_prefix: Namespace = Field(default_factory=list)
    filter: Json | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    query: str | None = Field(default=None, max_length=8192)
    refresh_ttl: bool | None = None


class StoreNamespaces(_Body):
    prefix: Namespace | None = None
    suffix: Namespace | None = None
    max_depth: int | None = Field(default=None, ge=1, le=MAX_LABELS)
    limit: int = Field(default=100, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=1_000_000)


def _tenant_store(runtime: RuntimeDep) -> RedisStore:
    return runtime.store.for_tenant(current_tenant())


def _query_namespace(dotted: str) -> tuple[str, ...]:
    """GET names the namespace as its labels joined by "." (the SDK's encoding)."""
    try:
        labels = [check_label(label) for label in dotted.split(".")]
        return tuple(_root(labels))
    except ValueError as error:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("query", "namespace"), "msg": str(error), "input": dotted}]
        ) from None


@router.put("/items", status_code=204)
async def put_item(body: StorePut, runtime: RuntimeDep, request: Request) -> Response:
    limit = request.app.state.settings.store_max_value_bytes
    if (size := len(dumps(body.value))) > limit:
        raise field_error(
            "value", f"the value is {size} bytes of JSON; at most {limit} (STORE_MAX_VALUE_BYTES)"
        )
    ttl: dict[str, Any] = {} if body.ttl is None else {"ttl": body.ttl}  # unset: the default TTL
    await _tenant_store(runtime).aput(tuple(body.namespace), body.key, body.value, index=body.index, **ttl)
    return Response(status_code=204)


@router.get("/items")
async def get_item(
    runtime: RuntimeDep,
    namespace: Annotated[str, Query(max_length=MAX_LABELS * (MAX_LABEL_CHARS + 1))],
    key: Annotated[str, Query(min_length=1, max_length=MAX_KEY_CHARS)],
    refresh_ttl: bool | None = None,
) -> dict[str, Any] | None:
    """The item, or null when there is none (as LangGraph Server answers)."""
    item = await _tenant_store(runtime).aget(_query_namespace(namespace), key, refresh_ttl=refresh_ttl)
    return None if item is None else item.dict()


@router.delete("/items", status_code=204)
async def delete_item(body: StoreDelete, runtime: RuntimeDep) -> Response:
    await _tenant_store(runtime).adelete(tuple(body.namespace), body.key)
    return Response(status_code=204)


@router.post("/items/search")
async def search_items(body: StoreSearch, runtime: RuntimeDep) -> dict[str, list[dict[str, Any]]]:
    try:
        items = await _tenant_store(runtime).asearch(
            tuple(body.namespace_prefix),
            query=body.query,
            filter=body.filter,
            limit=body.limit,
            offset=body.offset,
            refresh_ttl=body.refresh_ttl,
        )
    except ValueError as error:  # an unknown filter operator
        raise field_error("filter", str(error)) from None
    return {"items": [item.dict() for item in items]}


@router.post("/namespaces")
async def list_namespaces(body: StoreNamespaces, runtime: RuntimeDep) -> dict[str, list[list[str]]]:
    namespaces = await _tenant_store(runtime).alist_namespaces(
        prefix=tuple(body.prefix) if body.prefix else None,
        suffix=tuple(body.suffix) if body.suffix else None,
        max_depth=body.max_depth,
        limit=body.limit,
        offset=body.offset,
    )
    return {"namespaces": [list(n) for n in namespaces]}
