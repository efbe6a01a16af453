"""The durable run engine (issue 12): throughput against `langgraph dev`, Redis cost per run, recovery.

1. Streamed runs/s and latency at concurrency 1 and 8 on an echo graph (one node that answers the
   last message), one uvicorn process each: Shepherd (queue, leases, event log and checkpoints all in
   Redis; auth, limits and tracing off) and `langgraph dev` (in memory) in the same run; then
   Shepherd's stateless `POST /runs/wait` (no thread) at the same concurrencies.
2. Redis commands per run, from `INFO commandstats` (commands run by scripts counted too), and round
   trips per run, from `INFO stats` (`total_reads_processed`: requests Redis read, a pipeline or a
   MULTI/EXEC block usually in one), around 200 sequential runs of each kind: stateless streamed
   (`POST /runs/stream`), stateless waited (`POST /runs/wait`) and streamed on a thread (thread
   creation included). Both counts include the replica's idle loops over those seconds.
3. Recovery after SIGKILL: a replica holding a run of a slow graph is killed; the time until another
   replica has resumed the run (attempt 2 running), over repeated trials, with the lease the default
   and a short one.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

from bench.loadgen import LoadResult, run_load, stateless_wait_run
from bench.measure import percentile
from bench.service_load import start_langgraph_dev, start_shepherd
from tests.harness import components
from tests.harness.processes import ManagedProcess

RUNS = int(os.environ.get("BENCH_ENGINE_RUNS", "400"))
TRIALS = int(os.environ.get("BENCH_RECOVERY_TRIALS", "20"))
GRAPHS = Path(__file__).parent / "graphs"
TEST_GRAPHS = Path(__file__).parents[1] / "tests" / "integration" / "service" / "graphs"
ECHO_SOURCE = (GRAPHS / "echo_graph.py").read_text()
QUESTION = {"messages": [{"role": "user", "content": "hello"}]}


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join([str(GRAPHS), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path, **extra}


def _throughput(workdir: Path, redis_url: str) -> list[str]:
    rows = []
    shepherd, shepherd_url = start_shepherd(
        workdir, redis_url, full=False, **_env(AGENT_GRAPH="echo_graph:graph")
    )
    dev, dev_url = start_langgraph_dev(workdir, ECHO_SOURCE)
    try:
        measured: dict[tuple[str, int], float] = {}
        for users in (1, 8):
            for name, url in (("Shepherd", shepherd_url), ("langgraph dev", dev_url)):
                run_load(url, users=users, runs=20)  # warm-up
                result = run_load(url, users=users, runs=RUNS)
                measured[(name, users)] = result.throughput
                rows.append(_row(name, users, result))
                print(rows[-1], flush=True)
        for users in (1, 8):
            ratio = measured[("Shepherd", users)] / measured[("langgraph dev", users)]
            rows.append(f"| Shepherd / langgraph dev | {users} | | | {ratio:.2f}x | | | |")
        for users in (1, 8):
            run_load(shepherd_url, users=users, runs=20, one_run=stateless_wait_run)  # warm-up
            result = run_load(shepherd_url, users=users, runs=RUNS, one_run=stateless_wait_run)
            rows.append(_row("Shepherd, stateless `/runs/wait`", users, result))
            print(rows[-1], flush=True)
    finally:
        shepherd.stop()
        dev.stop()
    return rows


def _row(name: str, users: int, result: LoadResult) -> str:
    lat = sorted(result.latencies)
    return (
        f"| {name} | {users} | {len(lat)} | {result.errors} | {result.throughput:.1f} | "
        + " | ".join(f"{percentile(lat, q) * 1000:.1f}" for q in (50, 95, 99))
        + " |"
    )


def _commands(client: redis.Redis) -> int:
    return sum(v["calls"] for k, v in client.info("commandstats").items() if k != "cmdstat_config|resetstat")


def _round_trips(client: redis.Redis) -> int:
    return client.info("stats")["total_reads_processed"]


def _redis_cost(workdir: Path, redis_url: str) -> list[str]:
    client = redis.Redis.from_url(redis_url)
    process, url = start_shepherd(workdir, redis_url, full=False, **_env(AGENT_GRAPH="echo_graph:graph"))
    rows = []
    try:
        with httpx.Client(base_url=url, timeout=60) as http:
            kinds = (
                ("stateless (`POST /runs/stream`)", "/runs/stream"),
                ("stateless (`POST /runs/wait`)", "/runs/wait"),
                ("on a thread (thread creation included)", None),
            )
            for kind, path in kinds:
                runs = 200
                time.sleep(2)  # let start-up traffic settle; idle polling is counted below
                client.config_resetstat()
                trips = _round_trips(client)
                started = time.perf_counter()
                for _ in range(runs):
                    target = path
                    if target is None:
                        thread = http.post("/threads", json={}).raise_for_status().json()
                        target = f"/threads/{thread['thread_id']}/runs/stream"
                    body = {"assistant_id": "agent", "input": QUESTION}
                    with http.stream("POST", target, json=body) as response:
                        response.raise_for_status()
                        for _ in response.iter_lines():
                            pass
                elapsed = time.perf_counter() - started
                trips = _round_trips(client) - trips - 1  # (less the INFO that reads it)
                total = _commands(client)
                rows.append(
                    f"| {kind} | {runs} | {total} | {total / runs:.1f} | {trips / runs:.1f} | {elapsed:.1f} |"
                )
                print(rows[-1], flush=True)
    finally:
        process.stop()
    return rows


def _recovery(workdir: Path, redis_url: str, lease: int) -> str:
    env = _env(
        AGENT_GRAPH="slow_graph:graph",
        SLOW_NODE_SECONDS="600",
        RUN_LEASE_SECONDS=str(lease),
        REDIS_KEY_PREFIX=f"bench-recovery-{lease}",  # one deployment: both replicas share the queue
    )
    env["PYTHONPATH"] += os.pathsep + str(TEST_GRAPHS)
    survivor, survivor_url = start_shepherd(workdir, redis_url, full=False, **env)
    times = []
    try:
        for _ in range(TRIALS):
            doomed, doomed_url = start_shepherd(workdir, redis_url, full=False, **env)
            times.append(_one_recovery(doomed, doomed_url, survivor_url))
            httpx.post(f"{survivor_url}/runs/cancel", json={"status": "all"}, timeout=30)
    finally:
        survivor.stop()
    times.sort()
    return (
        f"| {lease} | {len(times)} | "
        + " | ".join(f"{percentile(times, q):.2f}" for q in (50, 95, 99))
        + f" | {max(times):.2f} |"
    )


def _one_recovery(doomed: ManagedProcess, doomed_url: str, survivor_url: str) -> float:
    with httpx.Client(timeout=30) as http:
        thread = http.post(f"{doomed_url}/threads", json={}).raise_for_status().json()["thread_id"]
        run = http.post(
            f"{doomed_url}/threads/{thread}/runs", json={"assistant_id": "agent", "input": QUESTION}
        )
        run_url = f"{survivor_url}/threads/{thread}/runs/{run.json()['run_id']}"
        while http.get(run_url).json()["status"] != "running":
            time.sleep(0.02)
        doomed.process.kill()
        killed = time.perf_counter()
        doomed.process.wait()
        while (record := http.get(run_url).json())["attempt"] < 2 or record["status"] != "running":
            time.sleep(0.05)
        return time.perf_counter() - killed


def run() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        workdir = Path(tmp)
        server = components.start_redis(workdir)
        try:
            throughput = _throughput(workdir, server.url)
            cost = _redis_cost(workdir, server.url)
            recovery = [_recovery(workdir, server.url, lease) for lease in (15, 3)]
        finally:
            server.stop()
    return "\n".join(
        [
            "| server | concurrency | runs | errors | runs/s | p50 (ms) | p95 (ms) | p99 (ms) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *throughput,
            "",
            "| run | runs | Redis commands | per run | round trips per run | seconds |",
            "|---|---:|---:|---:|---:|---:|",
            *cost,
            "",
            "| lease (s) | trials | p50 kill to resumed (s) | p95 | p99 | max |",
            "|---:|---:|---:|---:|---:|---:|",
            *recovery,
        ]
    )


if __name__ == "__main__":
    sys.exit(print(run()))
