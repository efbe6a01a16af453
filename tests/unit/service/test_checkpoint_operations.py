"""The saver's operations as data: which Redis commands they send, without a Redis."""

from __future__ import annotations

from agent_service.state.keys import KeyLayout
from agent_service.state.operations import Batch, Operations, next_version
from langgraph.checkpoint.base import ERROR
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

OPS = Operations(KeyLayout("p"), JsonPlusSerializer())


def test_put_is_one_atomic_round_trip_indexed_by_run():
    config = generate_config("thread:1", checkpoint_ns="child:1")
    checkpoint = generate_checkpoint(channel_values={"a": 1})
    operation = OPS.put(config, checkpoint, generate_metadata(run_id="run-9"), {"a": "v1"})

    batch = next(operation)

    assert isinstance(batch, Batch)
    assert batch.atomic
    assert [c[0] for c in batch.commands] == ["HSET", "ZADD", "SADD", "SADD", "HSET", "SADD"]
    assert batch.commands[-1][1] == "p:{p}:run:run-9"
    # ":" inside ids is escaped, so thread "thread:1" can never collide with another key; the
    # thread's keys share its hash tag (one Redis Cluster slot).
    assert batch.commands[0][1] == "p:{t:thread\\:1}:cp:child\\:1"


def test_special_channel_writes_replace_and_regular_writes_keep_the_first():
    config = generate_config("t", checkpoint_id="c1")
    (batch,) = list(OPS.put_writes(config, [("messages", "hi"), (ERROR, "boom")], "task-1", ""))
    assert [c[0] for c in batch.commands] == ["HSETNX", "HSET"]


def test_listing_reads_pages_not_whole_histories():
    operation = OPS.list(generate_config("t"), filter=None, before=None, limit=None)
    (first,) = next(operation).commands
    assert first[0] == "ZREVRANGEBYLEX"
    assert first[-2:] == (0, 100)


def test_versions_increase_and_never_repeat():
    versions = [next_version(None)]
    for _ in range(5):
        versions.append(next_version(versions[-1]))
    assert versions == sorted(versions)
    assert next_version(versions[0]) != next_version(versions[0])  # a fork gets its own blob key
    assert next_version(3).startswith(f"{4:032}.")


def test_keys_of_distinct_parts_never_collide():
    keys = KeyLayout("p")
    assert keys.checkpoints("a:b", "c") != keys.checkpoints("a", "b:c")
    assert keys.writes("a", "", "b") != keys.writes("a:", "", "b")
