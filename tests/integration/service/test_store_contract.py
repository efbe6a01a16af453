"""``RedisStore`` on a real Redis against the ``BaseStore`` contract, sync and async.

LangGraph ships no conformance suite for stores, so each scenario runs on LangGraph's own
``InMemoryStore`` (the reference) and on ``RedisStore`` and must give the same answers; where the
contract leaves the order open (a search without a query) the answers are compared as sets.
"""

from __future__ import annotations

import time
import uuid

import pytest
from agent_service.state.store import RedisStore
from langchain_core.embeddings import Embeddings
from langgraph.store.base import BaseStore, GetOp, InvalidNamespaceError, PutOp
from langgraph.store.memory import InMemoryStore

ITEMS = [
    (("users", "ada", "notes"), "n1", {"text": "likes tea", "stars": 5, "tags": {"drink": "tea"}}),
    (("users", "ada", "notes"), "n2", {"text": "hates rain", "stars": 1}),
    (("users", "ada", "prefs"), "p1", {"theme": "dark", "stars": 3}),
    (("users", "bob", "notes"), "n1", {"text": "likes coffee", "stars": 4, "tags": {"drink": "coffee"}}),
    (("users", "bob"), "profile", {"name": "Bob", "stars": 2}),
    (("docs",), "readme", {"text": "hello", "stars": 5}),
]


@pytest.fixture
def redis_store(redis_url: str) -> RedisStore:
    return RedisStore.from_url(redis_url, prefix=f"contract-{uuid.uuid4().hex[:8]}")


def _fill(store: BaseStore) -> None:
    for namespace, key, value in ITEMS:
        store.put(namespace, key, value)


def _found(items) -> set[tuple[tuple[str, ...], str]]:
    return {(tuple(i.namespace), i.key) for i in items}


SEARCHES = [
    {"namespace_prefix": ("users",)},
    {"namespace_prefix": ("users", "ada")},
    {"namespace_prefix": ("users", "ada", "notes")},
    {"namespace_prefix": ("users", "ad")},  # a prefix is whole labels, not characters
    {"namespace_prefix": ()},
    {"namespace_prefix": ("users",), "filter": {"stars": 5}},
    {"namespace_prefix": ("users",), "filter": {"stars": {"$gte": 3}}},
    {"namespace_prefix": ("users",), "filter": {"stars": {"$gt": 1, "$lt": 5}}},
    {"namespace_prefix": ("users",), "filter": {"stars": {"$ne": 5}}},
    {"namespace_prefix": ("users",), "filter": {"tags": {"drink": "tea"}}},
    {"namespace_prefix": ("users",), "filter": {"text": "likes tea", "stars": 5}},
    {"namespace_prefix": ("users",), "filter": {"missing": 1}},
]


@pytest.mark.parametrize("search", SEARCHES, ids=str)
def test_search_matches_the_reference(redis_store, search):
    reference = InMemoryStore()
    _fill(reference), _fill(redis_store)
    prefix = search.pop("namespace_prefix")
    expected = _found(reference.search(prefix, limit=100, **search))
    assert _found(redis_store.search(prefix, limit=100, **search)) == expected
    # Pages of the same search cover the same items once each.
    pages = [redis_store.search(prefix, limit=2, offset=o, **search) for o in range(0, 8, 2)]
    paged = [(tuple(i.namespace), i.key) for page in pages for i in page]
    assert len(paged) == len(set(paged))
    assert set(paged) == expected


LISTINGS = [
    {},
    {"prefix": ("users",)},
    {"prefix": ("users", "ada")},
    {"suffix": ("notes",)},
    {"prefix": ("users", "*", "notes")},
    {"suffix": ("*", "notes")},
    {"prefix": ("users",), "max_depth": 2},
    {"max_depth": 1},
    {"prefix": ("users",), "suffix": ("notes",)},
    {"prefix": ("nothing",)},
    {"limit": 2, "offset": 1},
]


@pytest.mark.parametrize("listing", LISTINGS, ids=str)
def test_list_namespaces_matches_the_reference(redis_store, listing):
    reference = InMemoryStore()
    _fill(reference), _fill(redis_store)
    assert redis_store.list_namespaces(**listing) == reference.list_namespaces(**listing)


def test_put_overwrites_and_delete_removes_namespaces_with_their_last_item(redis_store):
    _fill(redis_store)
    first = redis_store.get(("users", "ada", "notes"), "n1")
    time.sleep(0.01)
    redis_store.put(("users", "ada", "notes"), "n1", {"text": "likes green tea"})
    again = redis_store.get(("users", "ada", "notes"), "n1")
    assert again.value == {"text": "likes green tea"}
    assert again.created_at == first.created_at
    assert again.updated_at > first.updated_at
    redis_store.delete(("users", "ada", "prefs"), "p1")
    assert redis_store.get(("users", "ada", "prefs"), "p1") is None
    assert ("users", "ada", "prefs") not in redis_store.list_namespaces()
    redis_store.delete(("users", "ada", "prefs"), "p1")  # deleting what is gone is a no-op
    assert ("users", "ada", "notes") in redis_store.list_namespaces()


async def test_async_api_and_batch_semantics(redis_store):
    await redis_store.aput(("a",), "k", {"v": 1})
    await redis_store.aput(("a", "b"), "k", {"v": 2})
    assert (await redis_store.aget(("a",), "k")).value == {"v": 1}
    assert _found(await redis_store.asearch(("a",))) == {(("a",), "k"), (("a", "b"), "k")}
    assert await redis_store.alist_namespaces(prefix=("a",)) == [("a",), ("a", "b")]
    # In one batch the last put of a key wins; gets see the state before the batch's puts.
    results = await redis_store.abatch(
        [PutOp(("a",), "k", {"v": 10}), GetOp(("a",), "k"), PutOp(("a",), "k", {"v": 11})]
    )
    assert results[1].value == {"v": 1}
    assert (await redis_store.aget(("a",), "k")).value == {"v": 11}
    await redis_store.adelete(("a",), "k")
    assert await redis_store.aget(("a",), "k") is None


def test_tenants_are_isolated(redis_store):
    acme, globex = redis_store.for_tenant("acme"), redis_store.for_tenant("globex")
    acme.put(("memories",), "k", {"secret": "acme"})
    assert globex.get(("memories",), "k") is None
    assert globex.search(()) == []
    assert globex.list_namespaces() == []
    globex.put(("memories",), "k", {"secret": "globex"})
    assert acme.get(("memories",), "k").value == {"secret": "acme"}


@pytest.mark.parametrize("namespace", [("a.b",), ("",), ("langgraph", "x"), ()], ids=repr)
def test_malformed_namespaces_are_refused(redis_store, namespace):
    with pytest.raises((InvalidNamespaceError, ValueError)):
        redis_store.put(namespace, "k", {"v": 1})
    assert redis_store.search(()) == []


def test_ttl_expires_items_refreshes_on_read_and_the_sweep_drops_their_namespace(redis_store):
    ttl_minutes = 0.02  # 1.2 s
    redis_store.put(("short",), "kept", {"v": 1}, ttl=ttl_minutes)
    redis_store.put(("short",), "left", {"v": 2}, ttl=ttl_minutes)
    redis_store.put(("long",), "forever", {"v": 3})
    deadline = time.monotonic() + 3 * ttl_minutes * 60
    while time.monotonic() < deadline:  # read "kept" well within its TTL, for three TTLs
        assert redis_store.get(("short",), "kept") is not None
        time.sleep(ttl_minutes * 60 / 4)
    assert redis_store.get(("short",), "left") is None  # never read: it expired
    assert redis_store.get(("short",), "kept", refresh_ttl=False) is not None
    while redis_store.get(("short",), "kept", refresh_ttl=False) is not None:
        time.sleep(0.1)  # unread, it expires too
    assert redis_store.sweep() == 2
    assert redis_store.list_namespaces() == [("long",)]
    assert _found(redis_store.search(())) == {(("long",), "forever")}


VOCABULARY = ["tea", "coffee", "rain", "sun", "hello", "likes", "hates"]


class BagOfWords(Embeddings):
    """Deterministic embeddings whose similarity means shared words (for ranking checks)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[float(text.split().count(word)) + 0.01 for word in VOCABULARY] for text in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def _ranked(items) -> list[tuple[float | None, tuple[str, ...], str]]:
    """Items by score, ties (equal to float32 precision) in namespace and key order."""
    ranked = [(None if i.score is None else round(i.score, 4), tuple(i.namespace), i.key) for i in items]
    return sorted(ranked, key=lambda r: (r[0] is None, -(r[0] or 0), r[1], r[2]))


@pytest.mark.parametrize("query", ["tea", "coffee", "rain", "sun"])
async def test_semantic_search_ranks_like_the_reference(redis_url, query):
    index = {"dims": len(VOCABULARY), "embed": BagOfWords(), "fields": ["text"]}
    reference = InMemoryStore(index=index)
    store = RedisStore.from_url(redis_url, prefix=f"contract-{uuid.uuid4().hex[:8]}", index=index)
    _fill(reference), _fill(store)
    expected = reference.search(("users",), query=query, limit=10)
    found = await store.asearch(("users",), query=query, limit=10)
    assert _ranked(found) == _ranked(expected)
    assert [i.score for i in found] == pytest.approx([i.score for i in expected], abs=1e-5)  # in order
    # A second replica (a fresh store on the same keys) builds its vectors from Redis alone.
    replica = RedisStore.from_url(redis_url, prefix=store.prefix, index=index)
    assert _ranked(replica.search(("users",), query=query, limit=10)) == _ranked(found)
    # What changes on one replica is searched on the other.
    store.put(("users", "ada", "notes"), "n9", {"text": query})
    assert replica.search(("users",), query=query, limit=1)[0].key == "n9"
    store.delete(("users", "ada", "notes"), "n9")
    assert "n9" not in [i.key for i in replica.search(("users",), query=query, limit=10)]
