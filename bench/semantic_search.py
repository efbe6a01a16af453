"""Semantic search of the store at 10,000 and 100,000 items (``BENCH_SEMANTIC_ITEMS``), through the SDK.

For each size, on a Redis emptied first: the items are written in process through the service's own
``RedisStore`` batch API (HTTP would take hours at 100,000), with the fake OpenAI server's
bag-of-words vectors computed in process (the same vectors its ``/v1/embeddings`` answers, 64 dims);
then agent-service starts with ``STORE_INDEX_*`` pointing at the fake server, so its vector mirror is
cold. Through the official langgraph-sdk, one call at a time: the first ``search_items(query=...)``
over the whole store (the replica loads the mirror), then p50/p99 of the same warm, a put (one
embeddings request), and a search right after a put (the mirror reads one log entry). Redis
``used_memory`` (INFO memory) before and after the load, and the service's resident memory before and
after the mirror load.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
from pathlib import Path

import redis
from agent_service.state.store import RedisStore
from langgraph.store.base import PutOp
from langgraph_sdk import get_client

from bench.measure import percentile
from bench.service_load import start_shepherd
from tests.fakes.openai_server import EMBEDDING_DIMS, FakeOpenAI, bag_of_words
from tests.harness import components

SIZES = [int(n) for n in os.environ.get("BENCH_SEMANTIC_ITEMS", "10000,100000").split(",")]
SAMPLES = int(os.environ.get("BENCH_SEMANTIC_SAMPLES", "200"))
LOAD_BATCH = 1000  # PutOps per RedisStore.batch (one pipeline of EVALs)
NAMESPACES = 100
VOCABULARY = [f"w{i}" for i in range(2000)]
KEY_PREFIX = "bench-semantic"


def _text(rng: random.Random, words: int = 8) -> str:
    return " ".join(rng.sample(VOCABULARY, words))


def _item(i: int, rng: random.Random) -> tuple[tuple[str, ...], str, dict]:
    return ("bench", f"u{i % NAMESPACES}"), f"k{i}", {"text": _text(rng), "n": i}


def load(redis_url: str, items: int) -> float:
    """Writes ``items`` items as the service would (same prefix and tenant); returns seconds."""
    index = {"dims": EMBEDDING_DIMS, "embed": _bag_of_words, "fields": ["text"]}
    store = RedisStore.from_url(redis_url, prefix=KEY_PREFIX, index=index)
    rng = random.Random(items)
    start = time.perf_counter()
    for first in range(0, items, LOAD_BATCH):
        store.batch([PutOp(*_item(i, rng)) for i in range(first, min(first + LOAD_BATCH, items))])
    return time.perf_counter() - start


def _bag_of_words(texts: list[str]) -> list[list[float]]:
    return [bag_of_words(t) for t in texts]


def _used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


async def _timed(call) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def measure(url: str, pid: int, items: int) -> dict[str, object]:
    client = get_client(url=url, timeout=300)
    rng = random.Random(-items)
    rss_before = _rss_mib(pid)

    def search():
        return client.store.search_items(["bench"], query=_text(rng, words=4), limit=10)

    cold = await _timed(search)
    rss_after = _rss_mib(pid)
    warm = [await _timed(search) for _ in range(SAMPLES)]
    puts = [
        await _timed(lambda i=i: client.store.put_item(["bench", "new"], f"p{i}", {"text": _text(rng)}))
        for i in range(SAMPLES)
    ]
    after_put = []
    for i in range(SAMPLES // 4):
        await client.store.put_item(["bench", "new"], f"q{i}", {"text": _text(rng)})
        after_put.append(await _timed(search))
    return {
        "cold": cold,
        "warm": sorted(warm),
        "put": sorted(puts),
        "after_put": sorted(after_put),
        "rss": (rss_before, rss_after),
    }


def _ms(samples: list[float], q: float) -> str:
    return f"{percentile(samples, q) * 1000:.1f}"


def _row(items: int, loaded: float, memory: tuple[int, int], found: dict) -> str:
    before, after = memory
    rss_before, rss_after = found["rss"]
    return (
        f"| {items:,} | {loaded:.0f} | {found['cold'] * 1000:.0f} | {_ms(found['warm'], 50)} | "
        f"{_ms(found['warm'], 99)} | {_ms(found['put'], 50)} | {_ms(found['put'], 99)} | "
        f"{_ms(found['after_put'], 50)} | {_ms(found['after_put'], 99)} | "
        f"{(after - before) / 2**20:.1f} ({(after - before) / items:.0f} B/item) | "
        f"{rss_before:.0f} -> {rss_after:.0f} |"
    )


def _one_size(workdir: Path, redis_url: str, embeddings: FakeOpenAI, items: int) -> str:
    client = redis.Redis.from_url(redis_url)
    client.flushall()
    before = _used_memory(client)
    loaded = load(redis_url, items)
    memory = (before, _used_memory(client))
    index = {
        "STORE_INDEX_URL": f"{embeddings.url}/v1",
        "STORE_INDEX_DIMS": str(EMBEDDING_DIMS),
        "STORE_INDEX_FIELDS": "text",
        "STORE_INDEX_API_KEY": embeddings.api_key or "",
        "REDIS_KEY_PREFIX": KEY_PREFIX,
    }
    service, url = start_shepherd(workdir, redis_url, full=False, **index)
    try:
        found = asyncio.run(measure(url, service.pid, items))
    finally:
        service.stop()
    return _row(items, loaded, memory, found)


def run() -> str:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "redis").mkdir()
        redis_server = components.start_redis(workdir / "redis")
        embeddings = FakeOpenAI().start()
        try:
            rows = [_one_size(workdir, redis_server.url, embeddings, items) for items in SIZES]
        finally:
            embeddings.stop()
            redis_server.stop()
    header = [
        f"Semantic search over the whole store (limit 10) through the SDK, {EMBEDDING_DIMS} dims, "
        f"{SAMPLES} samples (after a put: {SAMPLES // 4}), ms:",
        "",
        "| items | load in process (s) | first search, cold mirror (ms) | search p50 | p99 | "
        "put with embedding p50 | p99 | search after a put p50 | p99 | Redis used_memory (MiB) | "
        "service RSS before -> after the mirror (MiB) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    return "\n".join(header + rows)


if __name__ == "__main__":
    print(run())
