"""A closed-loop load driver for LangGraph-Server-compatible APIs: each virtual user creates a thread
(untimed) and then streams one run on it (timed, until the SSE stream ends), again and again; or,
with ``one_run=stateless_wait_run``, waits for one stateless run after another."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

QUESTION = "What is an error budget? Look it up in the notes."


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


async def streamed_run(client: httpx.AsyncClient, assistant_id: str, headers: dict[str, str]) -> float:
    thread = (await client.post("/threads", json={}, headers=headers)).raise_for_status().json()
    body = {
        "assistant_id": assistant_id,
        "input": {"messages": [{"role": "user", "content": QUESTION}]},
        "stream_mode": ["values"],
    }
    start = time.perf_counter()
    async with client.stream(
        "POST", f"/threads/{thread['thread_id']}/runs/stream", json=body, headers=headers
    ) as r:
        r.raise_for_status()
        events = [line async for line in r.aiter_lines() if line.startswith("event:")]
    elapsed = time.perf_counter() - start
    if not any("values" in event for event in events) or any("error" in event for event in events):
        raise RuntimeError(f"run did not stream values cleanly: {events}")
    return elapsed


async def stateless_wait_run(client: httpx.AsyncClient, assistant_id: str, headers: dict[str, str]) -> float:
    """One stateless run (`POST /runs/wait`, no thread), timed until its output has arrived."""
    body = {"assistant_id": assistant_id, "input": {"messages": [{"role": "user", "content": QUESTION}]}}
    start = time.perf_counter()
    response = (await client.post("/runs/wait", json=body, headers=headers)).raise_for_status()
    elapsed = time.perf_counter() - start
    if "messages" not in response.json():
        raise RuntimeError(f"run did not answer its values: {response.text[:200]}")
    return elapsed


async def closed_loop(
    base_url: str,
    *,
    users: int,
    runs: int,
    assistant_id: str = "agent",
    headers: dict[str, str] | None = None,
    one_run: Callable[[httpx.AsyncClient, str, dict[str, str]], Awaitable[float]] = streamed_run,
) -> LoadResult:
    """`users` concurrent users share `runs` runs in total, each made by `one_run`."""
    result = LoadResult()
    remaining = runs

    async def user() -> None:
        # A client (one connection) per user, as real users have: one shared pool of hundreds of
        # connections costs the driver O(connections) per request (httpcore scans its pool).
        nonlocal remaining
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:
            while remaining > 0:
                remaining -= 1
                try:
                    result.latencies.append(await one_run(client, assistant_id, headers or {}))
                except (httpx.HTTPError, RuntimeError) as error:
                    result.errors += 1
                    status = getattr(getattr(error, "response", None), "status_code", None)
                    kind = f"HTTP {status}" if status else type(error).__name__
                    result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(user() for _ in range(users)))
    result.seconds = time.perf_counter() - start
    return result


def run_load(base_url: str, **kwargs) -> LoadResult:
    return asyncio.run(closed_loop(base_url, **kwargs))
