"""Overhead of the tool armour (`agent_service.tools.armoured`) per call, goal under 0.2 ms.

The same trivial coroutine called bare, wrapped (circuit, no timeout) and wrapped with a timeout,
each 100 000 times in one event loop; overhead = wrapped minus bare, per call, same run.
"""

from __future__ import annotations

import asyncio
import time

from agent_service.tools import armoured

CALLS = 100_000
ROUNDS = 5


async def echo(value: int) -> int:
    return value


async def _per_call_us(function) -> float:
    best = float("inf")
    for _ in range(ROUNDS):  # the best round: the least disturbed by the rest of the machine
        started = time.perf_counter()
        for i in range(CALLS):
            await function(i)
        best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
    return best


def run() -> str:
    cases = {
        "bare coroutine (peer)": echo,
        "armoured (circuit, retries)": armoured(retries=2, name="bench_plain")(echo),
        "armoured with timeout_seconds": armoured(timeout_seconds=5, retries=2, name="bench_timeout")(echo),
    }
    measured = {name: asyncio.run(_per_call_us(fn)) for name, fn in cases.items()}
    peer = measured["bare coroutine (peer)"]
    rows = ["| call | µs per call | overhead µs per call |", "|---|---|---|"]
    for name, micros in measured.items():
        overhead = "—" if name.endswith("(peer)") else f"{micros - peer:.2f}"
        rows.append(f"| {name} | {micros:.2f} | {overhead} |")
    return f"{CALLS} calls per round, best of {ROUNDS} rounds.\n\n" + "\n".join(rows)
