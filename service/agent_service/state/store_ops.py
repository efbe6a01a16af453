"""The store's operations, written once for sync and async I/O (like ``agent_service.state.operations``).

Each operation is a generator: it yields a ``Batch`` of Redis commands (or ``Embed``: texts to turn
into vectors) and receives the results. ``RedisStore`` drives it with a sync or an async client.
Every key an operation touches belongs to one tenant (``StoreKeys``), so each batch is one slot.
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import orjson
from langgraph.store.base import (
    GetOp,
    Item,
    ListNamespacesOp,
    MatchCondition,
    PutOp,
    SearchItem,
    SearchOp,
    get_text_at_path,
    tokenize_path,
)

from agent_service.serialization import dumps, now_iso
from agent_service.state.keys import StoreKeys

#: Members read per round trip while a search scans a namespace prefix.
SCAN_PAGE = 200
VECTOR_FIELD = "e:"
VECTORS_LOG_MAX = 10_000

# KEYS: item, index, ns, ns-count, expiry, vectors-log. ARGV: member, namespace, value, now, ttl ms
# (or ""), expiry ms, log vectors (0/1), then path/vector pairs. A member already in the index is not
# counted again, even when its item has just expired and the sweeper has not removed it yet.
PUT = """
local item = KEYS[1]
local old = redis.call('HKEYS', item)
for _, field in ipairs(old) do
  if string.sub(field, 1, 2) == 'e:' then redis.call('HDEL', item, field) end
end
redis.call('HSET', item, 'v', ARGV[3], 'u', ARGV[4])
redis.call('HSETNX', item, 'c', ARGV[4])
for i = 8, #ARGV, 2 do redis.call('HSET', item, 'e:' .. ARGV[i], ARGV[i + 1]) end
if ARGV[5] ~= '' then
  redis.call('HSET', item, 't', ARGV[5])
  redis.call('PEXPIRE', item, ARGV[5])
  redis.call('ZADD', KEYS[5], ARGV[6], ARGV[1])
else
  redis.call('HDEL', item, 't')
  redis.call('PERSIST', item)
  redis.call('ZREM', KEYS[5], ARGV[1])
end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) == false then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
  if redis.call('HINCRBY', KEYS[4], ARGV[2], 1) == 1 then redis.call('ZADD', KEYS[3], 0, ARGV[2]) end
end
if ARGV[7] == '1' then redis.call('XADD', KEYS[6], 'MAXLEN', '~', {max_log}, '*', 'm', ARGV[1]) end
return 1
""".replace("{max_log}", str(VECTORS_LOG_MAX))

# KEYS: index, ns, ns-count, expiry, vectors-log, then the items. ARGV: now ms, only expired (0/1),
# log vectors (0/1), then the members. Removes each item (with "only expired": only if it has expired).
REMOVE = """
local removed = 0
for i = 4, #ARGV do
  local member, item = ARGV[i], KEYS[i + 2]
  local due = tonumber(redis.call('ZSCORE', KEYS[4], member) or '-1')
  if ARGV[2] == '0' or (redis.call('EXISTS', item) == 0 and due >= 0 and due <= tonumber(ARGV[1])) then
    redis.call('DEL', item)
    redis.call('ZREM', KEYS[4], member)
    if redis.call('ZREM', KEYS[1], member) == 1 then
      removed = removed + 1
      local ns = string.match(member, '^([^%z]*)')
      if redis.call('HINCRBY', KEYS[3], ns, -1) <= 0 then
        redis.call('HDEL', KEYS[3], ns)
        redis.call('ZREM', KEYS[2], ns)
      end
      if ARGV[3] == '1' then redis.call('XADD', KEYS[5], 'MAXLEN', '~', {max_log}, '*', 'm', member) end
    end
  end
end
return removed
""".replace("{max_log}", str(VECTORS_LOG_MAX))

# KEYS: expiry, then the items. ARGV: now ms, refresh (0/1), then the members. Per item: {v, c, u, t}
# or false; with refresh, an item with a TTL gets its full TTL again.
READ = """
local out = {}
for i = 3, #ARGV do
  local item = KEYS[i - 1]
  local fields = redis.call('HMGET', item, 'v', 'c', 'u', 't')
  if fields[1] == false then
    table.insert(out, false)
  else
    if ARGV[2] == '1' and fields[4] then
      redis.call('PEXPIRE', item, fields[4])
      redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(fields[4]), ARGV[i])
    end
    table.insert(out, fields)
  end
end
return out
"""


@dataclass
class Batch:
    commands: list[tuple[Any, ...]]


@dataclass
class Embed:
    texts: list[str]
    query: bool = False


Operation = Generator["Batch | Embed", Any, Any]


def namespace_text(namespace: Sequence[str]) -> str:
    return ".".join(namespace)


def member(namespace: Sequence[str], key: str) -> str:
    return f"{namespace_text(namespace)}\0{key}"


def split_member(raw: bytes | str) -> tuple[tuple[str, ...], str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    namespace, _, key = text.partition("\0")
    return tuple(namespace.split(".")) if namespace else (), key


def in_prefix(namespace: tuple[str, ...], prefix: Sequence[str]) -> bool:
    return namespace[: len(prefix)] == tuple(prefix)


def lex_ranges(prefix: Sequence[str], *, members: bool) -> list[tuple[bytes, bytes]]:
    """ZRANGEBYLEX bounds, in order, of everything under ``prefix``: the namespace itself (its
    members "<ns>\\0<key>", or the namespace's own entry), then its sub-namespaces "<ns>.<...>"."""
    if not prefix:
        return [(b"-", b"+")]
    text = namespace_text(prefix).encode()
    exact = (b"[" + text + b"\0", b"[" + text + b"\0\xff") if members else (b"[" + text, b"[" + text)
    return [exact, (b"[" + text + b".", b"[" + text + b".\xff")]


def matches(value: Any, condition: Any) -> bool:
    """A search filter: equality, nested objects, or operators ($eq $ne $gt $gte $lt $lte)."""
    if isinstance(condition, dict):
        if any(k.startswith("$") for k in condition):
            return all(_compare(value, op, operand) for op, operand in condition.items())
        return isinstance(value, dict) and all(matches(value.get(k), v) for k, v in condition.items())
    return value == condition


def _compare(value: Any, op: str, operand: Any) -> bool:
    if op == "$eq":
        return value == operand
    if op == "$ne":
        return value != operand
    try:
        if op == "$gt":
            return value > operand
        if op == "$gte":
            return value >= operand
        if op == "$lt":
            return value < operand
        if op == "$lte":
            return value <= operand
    except TypeError:  # a string against a number, or a missing field: no match
        return False
    raise ValueError(f"unsupported filter operator {op!r} (use $eq, $ne, $gt, $gte, $lt or $lte)")


def passes(value: dict[str, Any], filter: dict[str, Any] | None) -> bool:
    return not filter or all(matches(value.get(k), v) for k, v in filter.items())


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _item(namespace: tuple[str, ...], key: str, fields: list[Any], score: float | None = None) -> SearchItem:
    return SearchItem(
        namespace=namespace,
        key=key,
        value=orjson.loads(fields[0]),
        created_at=datetime.fromisoformat(_text(fields[1])),
        updated_at=datetime.fromisoformat(_text(fields[2])),
        score=score,
    )


def plain(item: SearchItem) -> Item:
    return Item(
        value=item.value,
        key=item.key,
        namespace=item.namespace,
        created_at=item.created_at,
        updated_at=item.updated_at,
    )


@dataclass(frozen=True)
class IndexSettings:
    dims: int
    fields: tuple[str, ...] = ("$",)


class StoreOperations:
    def __init__(self, keys: StoreKeys, index: IndexSettings | None) -> None:
        self.keys = keys
        self.index = index

    def _read(self, members: list[str], now_ms: int, refresh: bool) -> tuple[Any, ...]:
        items = [self.keys.item(m) for m in members]
        return ("EVAL", READ, 1 + len(items), self.keys.expiry, *items, now_ms, int(refresh), *members)

    def _remove(self, members: list[str], now_ms: int, *, only_expired: bool) -> tuple[Any, ...]:
        k = self.keys
        items = [k.item(m) for m in members]
        own = (k.index, k.namespaces, k.namespace_counts, k.expiry, k.vectors_log)
        flags = (now_ms, int(only_expired), int(self.index is not None))
        return ("EVAL", REMOVE, len(own) + len(items), *own, *items, *flags, *members)

    # -- get ----------------------------------------------------------------------------------

    def get(self, ops: list[GetOp], now_ms: int, refresh_default: bool) -> Operation:
        """Items of the gets, in order (None when missing)."""
        members = [member(op.namespace, op.key) for op in ops]
        refresh = [refresh_default if op.refresh_ttl is None else op.refresh_ttl for op in ops]
        groups = {flag: [i for i, r in enumerate(refresh) if r == flag] for flag in (True, False)}
        groups = {flag: ids for flag, ids in groups.items() if ids}
        replies = yield Batch([self._read([members[i] for i in ids], now_ms, f) for f, ids in groups.items()])
        found: list[Item | None] = [None] * len(ops)
        for ids, reply in zip(groups.values(), replies, strict=True):
            for i, fields in zip(ids, reply, strict=True):
                if fields:
                    found[i] = plain(_item(ops[i].namespace, ops[i].key, fields))
        return found

    # -- put / delete -------------------------------------------------------------------------

    def put(self, ops: list[PutOp], now_ms: int, default_ttl: float | None) -> Operation:
        k = self.keys
        deletes = [member(op.namespace, op.key) for op in ops if op.value is None]
        writes = [op for op in ops if op.value is not None]
        vectors = yield from self._vectors(writes)
        commands = []
        now = now_iso()
        for op, paths in zip(writes, vectors, strict=True):
            ttl = default_ttl if op.ttl is None or not isinstance(op.ttl, int | float) else op.ttl
            ttl_ms = int(ttl * 60_000) if ttl else None
            pairs = [part for path, vector in paths for part in (path, vector)]
            commands.append(
                (
                    "EVAL",
                    PUT,
                    6,
                    k.item(member(op.namespace, op.key)),
                    k.index,
                    k.namespaces,
                    k.namespace_counts,
                    k.expiry,
                    k.vectors_log,
                    member(op.namespace, op.key),
                    namespace_text(op.namespace),
                    dumps(op.value),
                    now,
                    ttl_ms or "",
                    now_ms + (ttl_ms or 0),
                    int(self.index is not None),
                    *pairs,
                )
            )
        if deletes:
            commands.append(self._remove(deletes, now_ms, only_expired=False))
        if commands:
            yield Batch(commands)

    def _vectors(self, writes: list[PutOp]) -> Generator[Embed, Any, list[list[tuple[str, bytes]]]]:
        """Per write, its (path, float32 vector) pairs: the texts at its index paths, embedded."""
        texts: list[str] = []
        owners: list[tuple[int, str]] = []
        if self.index is not None:
            for position, op in enumerate(writes):
                if op.index is False:
                    continue
                paths = self.index.fields if op.index is None else tuple(op.index)
                for path in paths:
                    found = get_text_at_path(op.value, path if path == "$" else tokenize_path(path))
                    for i, text in enumerate(found):
                        owners.append((position, path if len(found) == 1 else f"{path}.{i}"))
                        texts.append(text)
        result: list[list[tuple[str, bytes]]] = [[] for _ in writes]
        if texts:
            embedded = yield Embed(texts)
            for (position, path), vector in zip(owners, embedded, strict=True):
                result[position].append((path, self.pack(vector)))
        return result

    def pack(self, vector: Sequence[float]) -> bytes:
        assert self.index is not None
        if len(vector) != self.index.dims:
            raise ValueError(
                f"the embeddings endpoint returned {len(vector)} dimensions; "
                f"STORE_INDEX_DIMS is {self.index.dims}"
            )
        array = np.asarray(vector, dtype="<f4")
        norm = float(np.linalg.norm(array))
        return (array / norm if norm else array).tobytes()  # unit length: cosine is a dot product

    # -- search -------------------------------------------------------------------------------

    def scan(self, op: SearchOp, now_ms: int, skip: frozenset[str] = frozenset()) -> Operation:
        """The items under the prefix that pass the filter, in key order, from ``op.offset``, at most
        ``op.limit`` (``skip``: members already found otherwise)."""
        ranges = lex_ranges(op.namespace_prefix, members=True)
        if not op.filter and not skip:
            page = yield from self._page(ranges, op.offset, op.limit)
            fields = (yield Batch([self._read(page, now_ms, False)]))[0] if page else []
            if all(fields):  # else an expired item still sits in the index: count them one by one
                return [_item(*split_member(m), f) for m, f in zip(page, fields, strict=True)]
        found: list[SearchItem] = []
        to_skip = op.offset
        for low, high in ranges:
            start = low
            while len(found) < op.limit:
                (page,) = yield Batch([("ZRANGEBYLEX", self.keys.index, start, high, "LIMIT", 0, SCAN_PAGE)])
                members = [m for m in map(_text, page) if m not in skip]
                fields = (yield Batch([self._read(members, now_ms, False)]))[0] if members else []
                for m, f in zip(members, fields, strict=True):
                    if not f:
                        continue
                    item = _item(*split_member(m), f)
                    if not passes(item.value, op.filter):
                        continue
                    if to_skip:
                        to_skip -= 1
                    elif len(found) < op.limit:
                        found.append(item)
                if len(page) < SCAN_PAGE:
                    break
                start = b"(" + (page[-1] if isinstance(page[-1], bytes) else page[-1].encode())
        return found

    def _page(self, ranges: list[tuple[bytes, bytes]], offset: int, limit: int) -> Operation:
        """Members ``offset`` to ``offset + limit`` across the consecutive ``ranges`` of the index."""
        page: list[str] = []
        for low, high in ranges:
            if len(page) >= limit:
                break
            found, count = yield Batch(
                [
                    ("ZRANGEBYLEX", self.keys.index, low, high, "LIMIT", offset, limit - len(page)),
                    ("ZLEXCOUNT", self.keys.index, low, high),
                ]
            )
            page += map(_text, found)
            offset = max(0, offset - count)
        return page

    def hydrate(self, ranked: Iterable[tuple[str, float]], op: SearchOp, now_ms: int) -> Operation:
        """Items of ranked (member, score) candidates that still exist and pass the filter."""
        found: list[SearchItem] = []
        to_skip = op.offset
        pending = list(ranked)
        while pending and len(found) < op.limit:
            chunk, pending = pending[:SCAN_PAGE], pending[SCAN_PAGE:]
            (fields,) = yield Batch([self._read([m for m, _ in chunk], now_ms, False)])
            for (m, score), f in zip(chunk, fields, strict=True):
                if not f:
                    continue
                item = _item(*split_member(m), f, score=score)
                if not passes(item.value, op.filter):
                    continue
                if to_skip:
                    to_skip -= 1
                elif len(found) < op.limit:
                    found.append(item)
        return found

    def refresh(self, items: list[SearchItem], now_ms: int) -> Operation:
        if items:
            yield Batch([self._read([member(i.namespace, i.key) for i in items], now_ms, True)])

    # -- namespaces ---------------------------------------------------------------------------

    def list_namespaces(self, op: ListNamespacesOp) -> Operation:
        conditions = op.match_conditions or ()
        prefixes = [c.path for c in conditions if c.match_type == "prefix"]
        fixed = tuple(_until_wildcard(prefixes[0])) if prefixes else ()
        replies = yield Batch(
            [
                ("ZRANGEBYLEX", self.keys.namespaces, low, high)
                for low, high in lex_ranges(fixed, members=False)
            ]
        )
        namespaces = [tuple(_text(n).split(".")) for reply in replies for n in reply]
        namespaces = [n for n in namespaces if all(_matches_condition(c, n) for c in conditions)]
        if op.max_depth is not None:
            namespaces = sorted({n[: op.max_depth] for n in namespaces})
        else:
            namespaces.sort()
        return namespaces[op.offset : op.offset + op.limit]

    # -- expiry -------------------------------------------------------------------------------

    def sweep(self, now_ms: int, limit: int) -> Operation:
        """Removes expired items from the indexes (Redis has already dropped the items themselves)."""
        (due,) = yield Batch([("ZRANGEBYSCORE", self.keys.expiry, "-inf", now_ms, "LIMIT", 0, limit)])
        if not due:
            return 0
        (removed,) = yield Batch([self._remove([_text(m) for m in due], now_ms, only_expired=True)])
        return removed


def _until_wildcard(path: Sequence[str]) -> Iterable[str]:
    for label in path:
        if label == "*":
            return
        yield label


def _matches_condition(condition: MatchCondition, namespace: tuple[str, ...]) -> bool:
    path = tuple(condition.path)
    if len(namespace) < len(path):
        return False
    part = (
        namespace[: len(path)]
        if condition.match_type == "prefix"
        else namespace[len(namespace) - len(path) :]
    )
    return all(p in ("*", n) for p, n in zip(path, part, strict=True))
