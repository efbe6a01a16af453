"""Retention (issue 14): Redis memory over a soak of short threads with TTLs off and on, and the
cost of sweeping 10,000 expired threads.

1. Soak: a live Shepherd (echo graph, one process, bare) on a Redis of its own per mode; 8 users
   each create a thread and stream one run on it, again and again (bench.loadgen). Redis
   `used_memory` after each tenth of the threads, with TTLs off (the defaults: threads kept) and on
   (THREAD_TTL_SECONDS=10, a sweep each second), then once more after 15 s of quiet.
2. Sweep cost: 10,000 threads, each with what one run leaves (the echo graph's checkpoints, writes
   and blobs through the service's RedisSaver, the run record, an event log of 3 entries, the
   record and values), written in process with expired TTLs; one `Sweeper.sweep()` removes them.
   Seconds, Redis commands per thread (INFO commandstats, scripts' commands counted), memory before
   and after; the peer in the same run is writing those threads (8 at a time, as the sweeper
   deletes). And a sweep with nothing due among 10,000 threads (records with TTLs) that are not
   expired: the expiry index answers, nothing is scanned.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from bench.loadgen import run_load
from bench.service_load import start_shepherd
from tests.harness import components

GRAPHS = Path(__file__).parent / "graphs"
SOAK_THREADS = int(os.environ.get("BENCH_SOAK_THREADS", "4000"))
SWEPT_THREADS = int(os.environ.get("BENCH_SWEPT_THREADS", "10000"))
STEPS = 10
QUIET_SECONDS = 15
TTL_ON = {"THREAD_TTL_SECONDS": "10", "RETENTION_SWEEP_INTERVAL_SECONDS": "1"}


def _mib(client: redis.Redis) -> float:
    return client.info("memory")["used_memory"] / 2**20


def _commands(client: redis.Redis) -> int:
    return sum(v["calls"] for k, v in client.info("commandstats").items())


def _soak(workdir: Path, env: dict[str, str]) -> list[float]:
    server = components.start_redis(workdir)
    client = redis.Redis.from_url(server.url)
    path = os.pathsep.join([str(GRAPHS), os.environ.get("PYTHONPATH", "")])
    process, url = start_shepherd(
        workdir, server.url, full=False, PYTHONPATH=path, AGENT_GRAPH="echo_graph:graph", **env
    )
    try:
        samples = [_mib(client)]
        for _ in range(STEPS):
            result = run_load(url, users=8, runs=SOAK_THREADS // STEPS)
            if result.errors:
                raise RuntimeError(f"soak runs failed: {result.error_kinds}")
            samples.append(_mib(client))
        time.sleep(QUIET_SECONDS)
        samples.append(_mib(client))
        return samples
    finally:
        process.stop()
        client.close()
        server.stop()


async def _thread(runtime, ttl_minutes: float) -> None:
    """A thread with what one run of the echo graph leaves."""
    from agent_service.state.threads import ttl_policy

    thread_id, run_id, keys = str(uuid.uuid4()), str(uuid.uuid4()), runtime.threads.keys
    await runtime.threads.create(thread_id, {}, user="soak", ttl=ttl_policy(ttl_minutes))
    config = {"configurable": {"thread_id": thread_id}, "metadata": {"run_id": run_id}}
    state = await runtime.graph.ainvoke({"messages": [("user", "hello")]}, config)
    await runtime.runs.create({"run_id": run_id, "thread_id": thread_id, "status": "success"})
    for seq in (1, 2, 3):
        await runtime.redis.xadd(keys.events(thread_id, run_id), {"n": seq, "e": b"x" * 200}, id=f"0-{seq}")
    await runtime.threads.update(thread_id, values={"messages": [m.content for m in state["messages"]]})


async def _fill(runtime, count: int, *, ttl_minutes: float, runs: bool) -> None:
    """``count`` threads, 8 written at a time; ``runs`` False: only their records (and TTLs)."""
    from agent_service.state.threads import ttl_policy

    async def one() -> None:
        if runs:
            await _thread(runtime, ttl_minutes)
        else:
            await runtime.threads.create(None, {}, ttl=ttl_policy(ttl_minutes))

    for start in range(0, count, 8):
        await asyncio.gather(*(one() for _ in range(min(8, count - start))))


async def _sweep_cost(redis_url: str) -> list[str]:
    sys.path.insert(0, str(GRAPHS))
    from agent_service.app import build_runtime
    from agent_service.settings import Settings

    settings = Settings(redis_url=redis_url, agent_graph="echo_graph:graph", redis_key_prefix="bench-sweep")
    runtime = build_runtime(settings)
    client = redis.Redis.from_url(redis_url)
    sweeper = runtime.engine.sweeper
    try:
        rows = []
        started = time.perf_counter()
        await _fill(runtime, SWEPT_THREADS, ttl_minutes=1e-6, runs=True)  # expired once written
        filled = time.perf_counter() - started
        memory, commands = _mib(client), _commands(client)
        started = time.perf_counter()
        swept = await sweeper.sweep()
        seconds = time.perf_counter() - started
        per_thread = (_commands(client) - commands) / SWEPT_THREADS
        assert swept.deleted == SWEPT_THREADS, swept
        rows.append(
            f"| write {SWEPT_THREADS:,} threads (peer) | {filled:.1f} | {SWEPT_THREADS / filled:,.0f} | | |"
        )
        rows.append(
            f"| sweep {SWEPT_THREADS:,} expired threads | {seconds:.1f} | {SWEPT_THREADS / seconds:,.0f} | "
            f"{per_thread:.1f} | {memory:.1f} -> {_mib(client):.1f} |"
        )
        await _fill(runtime, SWEPT_THREADS, ttl_minutes=600, runs=False)
        commands, started = _commands(client), time.perf_counter()
        idle = await sweeper.sweep()
        seconds = time.perf_counter() - started
        assert idle.deleted == 0, idle
        rows.append(
            f"| sweep, 0 due among {SWEPT_THREADS:,} threads | {seconds * 1000:.1f} ms | | "
            f"{_commands(client) - commands} in all | {_mib(client):.1f} |"
        )
        return rows
    finally:
        client.close()
        await runtime.redis.aclose()
        await runtime.engine.blocking.aclose()


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        workdir = Path(tmp)
        off = _soak(workdir, {})
        on = _soak(workdir, TTL_ON)
        server = components.start_redis(workdir)
        try:
            sweep = asyncio.run(_sweep_cost(server.url))
        finally:
            server.stop()
    step = SOAK_THREADS // STEPS
    soak = [
        f"| {i * step:,} | {a:.1f} | {b:.1f} |"
        for i, (a, b) in enumerate(zip(off[:-1], on[:-1], strict=True))
    ]
    soak.append(f"| {SOAK_THREADS:,} + {QUIET_SECONDS} s quiet | {off[-1]:.1f} | {on[-1]:.1f} |")
    return "\n".join(
        [
            "| threads done (1 run each) | used_memory TTLs off (MiB) | TTLs on: 10 s, sweep 1 s (MiB) |",
            "|---:|---:|---:|",
            *soak,
            "",
            "| operation | seconds | threads/s | Redis commands per thread | used_memory (MiB) |",
            "|---|---:|---:|---:|---:|",
            *sweep,
        ]
    )


if __name__ == "__main__":
    sys.exit(print(run()))
