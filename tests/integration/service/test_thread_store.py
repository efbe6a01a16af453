"""Thread records in Redis: search uses indexes, so it reads only what it returns."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from agent_service.state import connection
from agent_service.state.threads import ThreadNotFoundError, ThreadStore


@pytest.fixture
async def store(redis_url):
    client = connection.async_client(redis_url)
    yield ThreadStore(client, f"threads-{uuid.uuid4().hex[:8]}")
    await client.aclose()


def _record_reads(store: ThreadStore) -> list[int]:
    """Counts how many thread records each search reads from Redis."""
    reads: list[int] = []
    fetch = store._fetch

    async def counting_fetch(thread_ids):
        reads.append(len(thread_ids))
        return await fetch(thread_ids)

    store._fetch = counting_fetch
    return reads


@pytest.mark.timeout(300)
async def test_search_reads_only_one_page_with_10000_threads_stored(store):
    for i in range(10_000):
        await store.create(None, {"tenant": f"tenant-{i % 100}", "kind": "chat"})
    newest = await store.create("newest", {"tenant": "tenant-7", "kind": "chat"})
    reads = _record_reads(store)

    page = await store.search(metadata={"tenant": "tenant-7", "kind": "chat"}, limit=10)
    latest = await store.search(limit=5)

    assert len(page) == 10
    assert {t["metadata"]["tenant"] for t in page} == {"tenant-7"}
    assert page[0]["thread_id"] == newest["thread_id"]
    assert latest[0]["thread_id"] == "newest"
    assert reads == [10, 5]


async def test_indexes_follow_status_and_metadata_changes(store):
    thread = await store.create(None, {"team": "a"})
    thread_id = thread["thread_id"]
    await store.update(thread_id, status="busy")
    await store.merge_metadata(thread_id, {"team": "b"})

    assert [t["thread_id"] for t in await store.search(status="busy")] == [thread_id]
    assert await store.search(status="idle") == []
    assert await store.search(metadata={"team": "a"}) == []
    assert [t["thread_id"] for t in await store.search(metadata={"team": "b"})] == [thread_id]

    await store.delete(thread_id)
    assert await store.search(metadata={"team": "b"}) == []
    assert await store.count() == 0


async def test_search_filters_that_no_index_answers(store):
    first = await store.create(None, {"labels": {"env": "prod"}})
    await store.create(None, {"labels": {"env": "dev"}})
    await store.update(first["thread_id"], values={"topic": "redis"})

    by_nested = await store.search(metadata={"labels": {"env": "prod"}})
    by_values = await store.search(values={"topic": "redis"})
    by_ids = await store.search(ids=[first["thread_id"]], sort_by="thread_id")

    assert [t["thread_id"] for t in by_nested] == [first["thread_id"]]
    assert [t["thread_id"] for t in by_values] == [first["thread_id"]]
    assert [t["thread_id"] for t in by_ids] == [first["thread_id"]]


async def test_concurrent_changes_to_one_thread_are_all_kept(store):
    thread_id = (await store.create(None, {}))["thread_id"]

    await asyncio.gather(*(store.merge_metadata(thread_id, {f"key-{i}": i}) for i in range(20)))
    await store.update(thread_id, status="busy")

    thread = await store.get(thread_id)
    assert thread["metadata"] == {f"key-{i}": i for i in range(20)}
    assert thread["status"] == "busy"


async def test_a_zero_limit_or_empty_id_list_matches_nothing(store):
    await store.create(None, {})
    assert await store.search(limit=0) == []
    assert await store.search(ids=[], limit=0) == []


async def test_two_replicas_changing_one_thread_lose_nothing(redis_url):
    """Each store guesses the record it last saw; the other replica's writes make that guess stale,
    and the compare-and-set retries with the record as it is instead of overwriting it."""
    prefix = f"threads-{uuid.uuid4().hex[:8]}"
    clients = [connection.async_client(redis_url) for _ in range(2)]
    first, second = (ThreadStore(client, prefix) for client in clients)
    try:
        thread_id = (await first.create(None, {}))["thread_id"]
        await second.get(thread_id)
        for i in range(10):
            await (first if i % 2 else second).merge_metadata(thread_id, {f"key-{i}": i})
        await second.update(thread_id, status="busy")

        thread = await first.get(thread_id)
        assert thread["metadata"] == {f"key-{i}": i for i in range(10)}
        assert thread["status"] == "busy"
        await second.delete(thread_id)
        with pytest.raises(ThreadNotFoundError):
            await first.update(thread_id, status="idle")  # its guess is stale: the thread is gone
    finally:
        for client in clients:
            await client.aclose()


async def test_a_change_to_a_known_thread_sends_no_read_first(store):
    thread_id = (await store.create(None, {}))["thread_id"]
    reads: list[str] = []
    get = store.client.get

    async def counting_get(key):
        reads.append(key)
        return await get(key)

    store.client.get = counting_get
    await store.update(thread_id, status="busy")
    await store.update(thread_id, status="idle", values={"messages": []})

    assert reads == []
    assert (await store.get(thread_id))["status"] == "idle"
