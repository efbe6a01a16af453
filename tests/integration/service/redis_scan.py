"""What a test (with an unrestricted client of its own) finds in Redis about some ids, by SCAN:
keys whose name holds one of them, and control keys (indexes, hashes, lists) holding one."""

from __future__ import annotations

from collections.abc import Iterable

import redis


def mentions(client: redis.Redis, prefix: str, ids: Iterable[str]) -> dict[str, str]:
    """Key -> the id it names or holds, for every key under ``prefix`` (and its checkpoints')."""
    wanted = [i.encode() for i in ids]
    found: dict[str, str] = {}
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        hit = next((i for i in wanted if i in key), None)
        if hit is None:
            hit = next((i for i in wanted if any(i in item for item in _items(client, key))), None)
        if hit is not None:
            found[key.decode()] = hit.decode()
    return found


def _items(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = client.type(key)
    if kind == b"zset":
        return client.zrange(key, 0, -1)
    if kind == b"set":
        return list(client.smembers(key))
    if kind == b"hash":
        return [part for pair in client.hgetall(key).items() for part in pair]
    if kind == b"list":
        return client.lrange(key, 0, -1)
    if kind == b"string":
        return [client.get(key) or b""]
    return []
