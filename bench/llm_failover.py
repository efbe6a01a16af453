"""Added latency of failing over to the second provider, the fakes answering instantly.

The chain anthropic -> bedrock through the resilient client (the real SDKs over loopback HTTP to the
fakes of tests/fakes/, Bedrock's requests SigV4-signed), one call at a time, three ways:
  - the peer: bedrock alone (what the answer costs anyway);
  - anthropic failing (503 at once, retries off, its circuit never opening) -> bedrock: every call
    pays one failed attempt first;
  - anthropic's circuit open -> bedrock: what skipping an open circuit costs.
The three are interleaved call by call, so a busy moment of the shared machine hits them alike; the
added latency is each case's median minus the peer's.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from agent_service.llm.circuit import CircuitPolicy
from agent_service.llm.client import LLMConfig, ResilientLLM
from agent_service.llm.retry import RetryPolicy

from bench.measure import percentile
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.bedrock_server import FakeBedrock

CALLS = 300
WARMUP = 20
PARAMS = {"max_tokens": 64, "messages": [{"role": "user", "content": "What is an SLO?"}]}


async def _measure() -> dict[str, list[float]]:
    anthropic, bedrock = FakeAnthropic().start(), FakeBedrock().start()
    try:
        primary, second = (
            anthropic.route("claude-sonnet-4-5"),
            bedrock.route("anthropic.claude-haiku-4-5-v1:0"),
        )

        def chain(*routes: object, threshold: int = 10**9) -> ResilientLLM:
            circuit = CircuitPolicy(failure_threshold=threshold, recovery_seconds=3600)
            return ResilientLLM(LLMConfig(routes=routes, retry=RetryPolicy(0), circuit=circuit))

        anthropic.state.add_faults({"kind": "status", "status": 503, "times": 10**9})
        cases = {
            "bedrock alone (peer)": chain(second),
            "anthropic 503 -> bedrock": chain(primary, second),
            "anthropic circuit open -> bedrock": chain(primary, second, threshold=1),
        }
        samples: dict[str, list[float]] = {name: [] for name in cases}
        for number in range(WARMUP + CALLS):
            for name, llm in cases.items():
                started = time.perf_counter()
                await llm.create(PARAMS)
                if number >= WARMUP:
                    samples[name].append((time.perf_counter() - started) * 1000)
        return samples
    finally:
        anthropic.stop()
        bedrock.stop()


def run() -> str:
    results = asyncio.run(_measure())
    peer = statistics.median(results["bedrock alone (peer)"])
    rows = [
        "| chain | p50 ms | p95 ms | added p50 ms (vs peer) |",
        "|---|---|---|---|",
    ]
    for name, samples in results.items():
        median = statistics.median(samples)
        added = "—" if name.endswith("(peer)") else f"{median - peer:+.2f}"
        rows.append(f"| {name} | {median:.2f} | {percentile(samples, 95):.2f} | {added} |")
    return f"{CALLS} sequential calls per case, interleaved, after {WARMUP} warm-up rounds.\n\n" + "\n".join(
        rows
    )
