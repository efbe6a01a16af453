"""Checkpointer operations written once, independent of sync or async I/O.

Each operation is a generator: it yields a `Batch` of Redis commands and receives their
results, or yields a finished `CheckpointTuple` for the caller. `RedisSaver` drives the same
generator with a sync or an async client, so both APIs share one implementation.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    SerializerProtocol,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)

from agent_service.state.keys import KeyLayout, blob_field, write_field

LIST_PAGE_SIZE = 100


@dataclass
class Batch:
    """Commands sent in one round trip; `atomic` wraps them in MULTI/EXEC."""

    commands: list[tuple[Any, ...]] = field(default_factory=list)
    atomic: bool = False


Operation = Generator["Batch | CheckpointTuple", Any, Any]


def _pack(*values: Any) -> bytes:
    return ormsgpack.packb(list(values))


def _unpack(raw: bytes) -> list[Any]:
    return ormsgpack.unpackb(raw)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def next_version(current: str | int | None) -> str:
    """Versions carry a random suffix so forks of one thread never overwrite each other's blobs."""
    if current is None:
        number = 0
    elif isinstance(current, int):
        number = current
    else:
        number = int(current.split(".")[0])
    return f"{number + 1:032}.{random.random():016}"


@dataclass
class CheckpointRecord:
    checkpoint: Checkpoint
    metadata: CheckpointMetadata
    parent_id: str | None
    run_id: str | None


class Operations:
    def __init__(self, keys: KeyLayout, serde: SerializerProtocol):
        self.keys = keys
        self.serde = serde

    # -- encoding -------------------------------------------------------------------------

    def _load_record(self, raw: bytes) -> CheckpointRecord:
        cp_type, cp_bytes, md_type, md_bytes, parent_id, run_id = _unpack(raw)
        return CheckpointRecord(
            checkpoint=self.serde.loads_typed((cp_type, cp_bytes)),
            metadata=self.serde.loads_typed((md_type, md_bytes)),
            parent_id=parent_id,
            run_id=run_id,
        )

    @staticmethod
    def _run_member(thread_id: str, ns: str, checkpoint_id: str) -> bytes:
        return _pack(thread_id, ns, checkpoint_id)

    def _config(self, thread_id: str, ns: str, checkpoint_id: str) -> RunnableConfig:
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}

    def _build_tuple(
        self,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        record: CheckpointRecord,
        blob_values: Sequence[bytes | None],
        writes: dict[bytes, bytes],
    ) -> CheckpointTuple:
        channel_values: dict[str, Any] = {}
        for channel, raw in zip(record.checkpoint["channel_versions"], blob_values, strict=True):
            if raw is None:
                continue
            value_type, value_bytes = _unpack(raw)
            if value_type != "empty":
                channel_values[channel] = self.serde.loads_typed((value_type, value_bytes))
        unpacked = [_unpack(raw) for raw in writes.values()]
        unpacked.sort(key=lambda w: writes_sort_key(w[4], w[0], w[5]))
        pending = [
            (task_id, channel, self.serde.loads_typed((t, b))) for task_id, channel, t, b, _, _ in unpacked
        ]
        return CheckpointTuple(
            config=self._config(thread_id, ns, checkpoint_id),
            checkpoint={**record.checkpoint, "channel_values": channel_values},
            metadata=record.metadata,
            parent_config=self._config(thread_id, ns, record.parent_id) if record.parent_id else None,
            pending_writes=pending,
        )

    def _load_tuples(
        self, thread_id: str, ns: str, found: list[tuple[str, CheckpointRecord]]
    ) -> Generator[Batch, Any, list[CheckpointTuple]]:
        """Fetches blobs and pending writes of several checkpoints in one round trip."""
        if not found:
            return []
        commands: list[tuple[Any, ...]] = []
        for checkpoint_id, record in found:
            versions = record.checkpoint["channel_versions"]
            fields = [blob_field(ch, v) for ch, v in versions.items()]
            # Nothing to fetch: a keyed no-op keeps two replies per checkpoint (and routes on a Cluster).
            blobs = self.keys.blobs(thread_id, ns)
            commands.append(("HMGET", blobs, *fields) if fields else ("HLEN", blobs))
            commands.append(("HGETALL", self.keys.writes(thread_id, ns, checkpoint_id)))
        results = yield Batch(commands)
        tuples = []
        for i, (checkpoint_id, record) in enumerate(found):
            blob_values = results[2 * i] if record.checkpoint["channel_versions"] else []
            tuples.append(
                self._build_tuple(thread_id, ns, checkpoint_id, record, blob_values, results[2 * i + 1])
            )
        return tuples

    # -- operations -----------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Operation:
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        ns = configurable.get("checkpoint_ns", "")
        stored = checkpoint.copy()
        values: dict[str, Any] = stored.pop("channel_values")  # type: ignore[misc]
        full_metadata = get_checkpoint_metadata(config, metadata)
        run_id = full_metadata.get("run_id")
        record = _pack(
            *self.serde.dumps_typed(stored),
            *self.serde.dumps_typed(full_metadata),
            configurable.get("checkpoint_id"),
            str(run_id) if run_id else None,
        )
        commands: list[tuple[Any, ...]] = [
            ("HSET", self.keys.checkpoints(thread_id, ns), checkpoint["id"], record),
            ("ZADD", self.keys.order(thread_id, ns), 0, checkpoint["id"]),
            ("SADD", self.keys.namespaces(thread_id), ns),
            ("SADD", self.keys.threads, thread_id),
        ]
        blob_args: list[Any] = []
        for channel, version in new_versions.items():
            typed = self.serde.dumps_typed(values[channel]) if channel in values else ("empty", b"")
            blob_args += [blob_field(channel, version), _pack(*typed)]
        if blob_args:
            commands.append(("HSET", self.keys.blobs(thread_id, ns), *blob_args))
        if run_id:
            commands.append(
                ("SADD", self.keys.run(str(run_id)), self._run_member(thread_id, ns, checkpoint["id"]))
            )
        yield Batch(commands, atomic=True)
        return self._config(thread_id, ns, checkpoint["id"])

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str
    ) -> Operation:
        configurable = config["configurable"]
        key = self.keys.writes(
            configurable["thread_id"], configurable.get("checkpoint_ns", ""), configurable["checkpoint_id"]
        )
        commands: list[tuple[Any, ...]] = []
        for idx, (channel, value) in enumerate(writes):
            write_idx = WRITES_IDX_MAP.get(channel, idx)
            packed = _pack(task_id, channel, *self.serde.dumps_typed(value), task_path, write_idx)
            # Regular writes are first-wins (a retried task must not change history);
            # special channels (errors, interrupts) are replaced by the latest.
            verb = "HSETNX" if write_idx >= 0 else "HSET"
            commands.append((verb, key, write_field(task_id, write_idx), packed))
        if commands:
            yield Batch(commands, atomic=True)

    def get_tuple(self, config: RunnableConfig) -> Operation:
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        ns = configurable.get("checkpoint_ns", "")
        checkpoint_id = get_checkpoint_id(config)
        if not checkpoint_id:
            (latest,) = yield Batch(
                [("ZREVRANGEBYLEX", self.keys.order(thread_id, ns), "+", "-", "LIMIT", 0, 1)]
            )
            if not latest:
                return None
            checkpoint_id = _text(latest[0])
        (raw,) = yield Batch([("HGET", self.keys.checkpoints(thread_id, ns), checkpoint_id)])
        if raw is None:
            return None
        (found,) = yield from self._load_tuples(thread_id, ns, [(checkpoint_id, self._load_record(raw))])
        return found

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Operation:
        configurable = config["configurable"] if config else {}
        if "thread_id" in configurable:
            thread_ids = [configurable["thread_id"]]
        else:
            (members,) = yield Batch([("SMEMBERS", self.keys.threads)])
            thread_ids = sorted(_text(m) for m in members)
        remaining = limit if limit is not None else float("inf")
        before_id = get_checkpoint_id(before) if before else None
        only_id = configurable.get("checkpoint_id")
        for thread_id in thread_ids:
            if configurable.get("checkpoint_ns") is not None:
                namespaces = [configurable["checkpoint_ns"]]
            else:
                (members,) = yield Batch([("SMEMBERS", self.keys.namespaces(thread_id))])
                namespaces = sorted(_text(m) for m in members)
            for ns in namespaces:
                if remaining <= 0:
                    return
                found = yield from self._list_namespace(thread_id, ns, filter, before_id, only_id, remaining)
                for item in found:
                    remaining -= 1
                    yield item

    def _list_namespace(
        self,
        thread_id: str,
        ns: str,
        metadata_filter: dict[str, Any] | None,
        before_id: str | None,
        only_id: str | None,
        limit: float,
    ) -> Generator[Batch, Any, list[CheckpointTuple]]:
        """Newest first, one page of ids at a time, so a long history is never read whole."""
        upper = f"({before_id}" if before_id else "+"
        matches: list[CheckpointTuple] = []
        while len(matches) < limit:
            if only_id:
                ids = [only_id] if not before_id or only_id < before_id else []
            else:
                (raw_ids,) = yield Batch(
                    [
                        (
                            "ZREVRANGEBYLEX",
                            self.keys.order(thread_id, ns),
                            upper,
                            "-",
                            "LIMIT",
                            0,
                            LIST_PAGE_SIZE,
                        )
                    ]
                )
                ids = [_text(i) for i in raw_ids]
            if not ids:
                break
            (raws,) = yield Batch([("HMGET", self.keys.checkpoints(thread_id, ns), *ids)])
            found = []
            for checkpoint_id, raw in zip(ids, raws, strict=True):
                if raw is None:
                    continue
                record = self._load_record(raw)
                if metadata_filter and any(record.metadata.get(k) != v for k, v in metadata_filter.items()):
                    continue
                found.append((checkpoint_id, record))
            found = found[: int(min(limit - len(matches), len(found)))]
            matches += yield from self._load_tuples(thread_id, ns, found)
            if only_id or len(ids) < LIST_PAGE_SIZE:
                break
            upper = f"({ids[-1]}"
        return matches

    def _thread_layout(self, thread_id: str) -> Generator[Batch, Any, dict[str, list[str]]]:
        """Namespace -> checkpoint ids (oldest first) of one thread."""
        (members,) = yield Batch([("SMEMBERS", self.keys.namespaces(thread_id))])
        namespaces = sorted(_text(m) for m in members)
        if not namespaces:
            return {}
        results = yield Batch([("ZRANGE", self.keys.order(thread_id, ns), 0, -1) for ns in namespaces])
        return {ns: [_text(i) for i in ids] for ns, ids in zip(namespaces, results, strict=True)}

    def _run_ids(self, thread_id: str, ns: str, ids: Iterable[str]) -> Generator[Batch, Any, dict[str, str]]:
        """Checkpoint id -> run id, for keeping the run index in step."""
        ids = list(ids)
        if not ids:
            return {}
        (raws,) = yield Batch([("HMGET", self.keys.checkpoints(thread_id, ns), *ids)])
        run_ids = {}
        for checkpoint_id, raw in zip(ids, raws, strict=True):
            if raw is not None and (run_id := _unpack(raw)[5]):
                run_ids[checkpoint_id] = run_id
        return run_ids

    def _forget_checkpoints(
        self, thread_id: str, ns: str, run_ids: dict[str, str], ids: Iterable[str]
    ) -> list[tuple[Any, ...]]:
        commands: list[tuple[Any, ...]] = []
        for checkpoint_id in ids:
            commands += [
                ("HDEL", self.keys.checkpoints(thread_id, ns), checkpoint_id),
                ("ZREM", self.keys.order(thread_id, ns), checkpoint_id),
                ("DEL", self.keys.writes(thread_id, ns, checkpoint_id)),
            ]
            if run_id := run_ids.get(checkpoint_id):
                commands.append(
                    ("SREM", self.keys.run(run_id), self._run_member(thread_id, ns, checkpoint_id))
                )
        return commands

    def delete_thread(self, thread_id: str) -> Operation:
        layout = yield from self._thread_layout(thread_id)
        commands: list[tuple[Any, ...]] = []
        for ns, ids in layout.items():
            run_ids = yield from self._run_ids(thread_id, ns, ids)
            commands += self._forget_checkpoints(thread_id, ns, run_ids, ids)
            commands += [
                ("DEL", self.keys.checkpoints(thread_id, ns)),
                ("DEL", self.keys.order(thread_id, ns)),
                ("DEL", self.keys.blobs(thread_id, ns)),
            ]
        commands += [("DEL", self.keys.namespaces(thread_id)), ("SREM", self.keys.threads, thread_id)]
        yield Batch(commands, atomic=True)

    def delete_for_runs(self, run_ids: Sequence[str]) -> Operation:
        if not run_ids:
            return
        results = yield Batch([("SMEMBERS", self.keys.run(r)) for r in run_ids])
        commands: list[tuple[Any, ...]] = []
        for members in results:
            for member in members:
                thread_id, ns, checkpoint_id = _unpack(member)
                commands += self._forget_checkpoints(thread_id, ns, {}, [checkpoint_id])
        commands += [("DEL", self.keys.run(r)) for r in run_ids]
        yield Batch(commands, atomic=True)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> Operation:
        """Read and rewrite rather than COPY (the two threads' keys may sit on different Cluster
        shards) or DUMP/RESTORE (a managed Redis forbids its agent user @dangerous commands)."""
        layout = yield from self._thread_layout(source_thread_id)
        if not layout:
            return
        hashes: list[tuple[str, str]] = []
        orders: list[tuple[str, str]] = []
        for ns, ids in layout.items():
            orders.append((self.keys.order(source_thread_id, ns), self.keys.order(target_thread_id, ns)))
            for key in (self.keys.checkpoints, self.keys.blobs):
                hashes.append((key(source_thread_id, ns), key(target_thread_id, ns)))
            hashes += [
                (self.keys.writes(source_thread_id, ns, i), self.keys.writes(target_thread_id, ns, i))
                for i in ids
            ]
        read = yield Batch(
            [("HGETALL", source) for source, _ in hashes]
            + [("ZRANGE", source, 0, -1) for source, _ in orders]
        )
        commands: list[tuple[Any, ...]] = []
        for (_, target), fields in zip(hashes, read[: len(hashes)], strict=True):
            if fields:
                commands.append(("HSET", target, *(item for pair in fields.items() for item in pair)))
        for (_, target), members in zip(orders, read[len(hashes) :], strict=True):
            if members:
                commands.append(("ZADD", target, *(item for member in members for item in (0, member))))
        for ns, ids in layout.items():
            run_ids = yield from self._run_ids(source_thread_id, ns, ids)
            for checkpoint_id, run_id in run_ids.items():
                member = self._run_member(target_thread_id, ns, checkpoint_id)
                commands.append(("SADD", self.keys.run(run_id), member))
        commands += [
            ("SADD", self.keys.namespaces(target_thread_id), *layout),
            ("SADD", self.keys.threads, target_thread_id),
        ]
        yield Batch(commands, atomic=True)

    def prune(self, thread_ids: Sequence[str], strategy: str) -> Operation:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                yield from self.delete_thread(thread_id)
            else:
                yield from self._keep_latest(thread_id)

    def _keep_latest(self, thread_id: str) -> Operation:
        layout = yield from self._thread_layout(thread_id)
        commands: list[tuple[Any, ...]] = []
        for ns, ids in layout.items():
            if not ids:
                continue
            *old, latest = ids
            run_ids = yield from self._run_ids(thread_id, ns, old)
            commands += self._forget_checkpoints(thread_id, ns, run_ids, old)
            # Blobs only the pruned checkpoints referenced are garbage now.
            raw_latest, blob_fields = yield Batch(
                [
                    ("HGET", self.keys.checkpoints(thread_id, ns), latest),
                    ("HKEYS", self.keys.blobs(thread_id, ns)),
                ]
            )
            versions = self._load_record(raw_latest).checkpoint["channel_versions"]
            kept = {blob_field(ch, v) for ch, v in versions.items()}
            unused = [f for f in (_text(b) for b in blob_fields) if f not in kept]
            if unused:
                commands.append(("HDEL", self.keys.blobs(thread_id, ns), *unused))
        if commands:
            yield Batch(commands, atomic=True)
