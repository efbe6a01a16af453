"""Semantic search without Redis modules: vectors live in Redis, each replica searches a mirror of them.

The vectors of an item are fields of its hash (``e:<path>``: unit-length float32), so they are written,
expire and are deleted with the item. Every change is also appended to the tenant's vectors log (a
capped stream). A replica keeps, per tenant it serves, a numpy matrix of every vector (``VectorMirror``)
and brings it up to date before each search by reading the log after its cursor: one round trip when
nothing changed. A cold replica, or one whose cursor the log has trimmed past, reloads the tenant's
vectors in pages. A search is then one matrix-vector product over the tenant's vectors (cosine
similarity, max-pooled over an item's paths), ranked, and only the best items are read from Redis.

Embeddings come from an OpenAI-compatible endpoint (``OpenAIEmbeddings``), or any LangChain
``Embeddings`` given to ``RedisStore``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import openai
from langchain_core.embeddings import Embeddings

from agent_service.state.store_ops import (
    VECTOR_FIELD,
    Batch,
    Operation,
    StoreOperations,
    in_prefix,
    split_member,
)

# KEYS: vectors log. ARGV: cursor ("" for none), count. Returns {max deleted id, last id, entries}.
LOG_STATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'0-0', '0-0', {}} end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local deleted, last = '0-0', '0-0'
for i = 1, #info, 2 do
  if info[i] == 'max-deleted-entry-id' then deleted = info[i + 1] end
  if info[i] == 'last-generated-id' then last = info[i + 1] end
end
local entries = {}
if ARGV[1] ~= '' then entries = redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2]) end
return {deleted, last, entries}
"""
LOG_PAGE = 1000
RELOAD_PAGE = 500


class OpenAIEmbeddings(Embeddings):
    """Embeddings from an OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, Ollama, TEI...)."""

    def __init__(self, *, base_url: str, model: str, api_key: str | None, timeout: float = 30.0) -> None:
        options: dict[str, Any] = {"base_url": base_url, "api_key": api_key or "unused", "timeout": timeout}
        self._client = openai.OpenAI(**options)
        self._async = openai.AsyncOpenAI(**options)
        self.model = model

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        response = self._client.embeddings.create(model=self.model, input=texts)
        return [d.embedding for d in sorted(response.data, key=lambda d: d.index)]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        response = await self._async.embeddings.create(model=self.model, input=texts)
        return [d.embedding for d in sorted(response.data, key=lambda d: d.index)]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]


def _stream_id(raw: bytes | str) -> tuple[int, int]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class VectorMirror:
    """One tenant's vectors in this process: rows of a matrix, each owned by a member."""

    def __init__(self, dims: int) -> None:
        self.dims = dims
        self.cursor: str | None = None  # the last log entry applied; None: never loaded
        self._lock = threading.Lock()
        self._rows = np.zeros((64, dims), dtype="<f4")
        self._used = 0
        self._owner: list[str | None] = []
        self._by_member: dict[str, list[int]] = {}
        self._version: dict[str, tuple[int, int]] = {}  # member -> log id its vectors were read at

    @property
    def members(self) -> frozenset[str]:
        return frozenset(self._by_member)

    def replace(self, member: str, vectors: Sequence[bytes], as_of: tuple[int, int]) -> None:
        """The member's vectors as read at log position ``as_of`` (older reads never win)."""
        with self._lock:
            if self._version.get(member, (-1, -1)) > as_of:
                return
            self._version[member] = as_of
            for row in self._by_member.pop(member, []):
                self._owner[row] = None
            rows = []
            for raw in vectors:
                if self._used == len(self._rows):
                    self._compact_or_grow()
                self._rows[self._used] = np.frombuffer(raw, dtype="<f4")
                self._owner.append(member)
                rows.append(self._used)
                self._used += 1
            if rows:
                self._by_member[member] = rows

    def _compact_or_grow(self) -> None:
        alive = [i for i, owner in enumerate(self._owner) if owner is not None]
        if len(alive) < self._used // 2:
            self._rows[: len(alive)] = self._rows[alive]
            self._owner = [self._owner[i] for i in alive]
            self._by_member = {}
            for row, owner in enumerate(self._owner):
                self._by_member.setdefault(owner, []).append(row)  # type: ignore[arg-type]
            self._used = len(alive)
        else:
            grown = np.zeros((len(self._rows) * 2, self.dims), dtype="<f4")
            grown[: self._used] = self._rows[: self._used]
            self._rows = grown

    def rank(self, query: Sequence[float], prefix: Sequence[str]) -> Iterator[tuple[str, float]]:
        """Members under ``prefix`` by descending similarity to ``query`` (each once, at its best)."""
        vector = np.asarray(query, dtype="<f4")
        norm = float(np.linalg.norm(vector))
        with self._lock:
            scores = self._rows[: self._used] @ (vector / norm if norm else vector)
            owners = list(self._owner)
        seen: set[str] = set()
        for row in np.argsort(-scores, kind="stable"):
            owner = owners[row]
            if owner is None or owner in seen or not in_prefix(split_member(owner)[0], prefix):
                continue
            seen.add(owner)
            yield owner, float(scores[row])


def sync_mirror(ops: StoreOperations, mirror: VectorMirror) -> Operation:
    """Brings ``mirror`` up to date with the tenant's vectors in Redis."""
    log = ops.keys.vectors_log
    while True:
        (state,) = yield Batch([("EVAL", LOG_STATE, 1, log, mirror.cursor or "", LOG_PAGE)])
        deleted, last, entries = _stream_id(state[0]), _text(state[1]), state[2]
        if mirror.cursor is None or deleted > _stream_id(mirror.cursor):
            yield from _reload(ops, mirror, last)
            return
        if not entries:
            return
        members = list(dict.fromkeys(_text(fields[1]) for _, fields in entries))
        as_of = _stream_id(entries[-1][0])
        yield from _read_vectors(ops, mirror, members, as_of)
        mirror.cursor = _text(entries[-1][0])
        if len(entries) < LOG_PAGE:
            return


def _reload(ops: StoreOperations, mirror: VectorMirror, last: str) -> Operation:
    start = b"-"
    while True:
        (page,) = yield Batch([("ZRANGEBYLEX", ops.keys.index, start, b"+", "LIMIT", 0, RELOAD_PAGE)])
        yield from _read_vectors(ops, mirror, [_text(m) for m in page], _stream_id(last))
        if len(page) < RELOAD_PAGE:
            break
        start = b"(" + (page[-1] if isinstance(page[-1], bytes) else page[-1].encode())
    mirror.cursor = last


def _read_vectors(
    ops: StoreOperations, mirror: VectorMirror, members: list[str], as_of: tuple[int, int]
) -> Operation:
    if not members:
        return
    replies = yield Batch([("HGETALL", ops.keys.item(m)) for m in members])
    prefix = VECTOR_FIELD.encode()
    for member, fields in zip(members, replies, strict=True):
        vectors = [value for name, value in (fields or {}).items() if _raw(name).startswith(prefix)]
        mirror.replace(member, vectors, as_of)


def _raw(name: bytes | str) -> bytes:
    return name if isinstance(name, bytes) else name.encode()
