"""The agent service under load with the stub model (issue 5), next to `langgraph dev` serving the
same graph on the same machine in the same run.

- Shepherd "full": JWT auth + rate limits (limits high enough never to refuse) + metrics + tracing
  (OTLP/HTTP to a local sink) + JSON logs, checkpoints in Redis.
- Shepherd "bare": auth, rate limits and tracing off (metrics and logs cannot be switched off); the
  p50 difference to "full" is the overhead of auth + rate limits + tracing.
- `langgraph dev --no-reload` (langgraph-cli[inmem], in its own venv .venv-bench because its pins
  conflict with ours), in-memory.
Then the seed's load targets (100 and 500 concurrent users, p95) and throughput with 10,000 threads
stored, against Shepherd "full".
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import jwt

from bench.loadgen import run_load
from bench.measure import percentile
from tests.harness import components
from tests.harness.binaries import REPO
from tests.harness.processes import ManagedProcess, free_port

BENCH_VENV = REPO / ".venv-bench"
JWT_SECRET = "bench-secret-bench-secret-bench-secret"
RUNS = int(os.environ.get("BENCH_SERVICE_RUNS", "400"))


class _OtlpSink(http.server.BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and drops them, so tracing does its full work without a collector."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def _start_sink() -> tuple[http.server.HTTPServer, str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _OtlpSink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _wait_healthy(process: ManagedProcess, url: str) -> None:
    process.wait_ready(lambda: httpx.get(url, timeout=1).status_code == 200, timeout=120)


REFERENCE_GRAPH = (
    "from agent_service.graphs.reference_agent import build_graph\n"
    "from agent_service.settings import Settings\n"
    "graph = build_graph(Settings())\n"
)


def start_shepherd(
    workdir: Path, redis_url: str, *, full: bool, otlp: str = "", **extra: str
) -> tuple[ManagedProcess, str]:
    port = free_port()
    # The default graph: the reference agent; `extra` environment can name another.
    env = {"REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", "REDIS_KEY_PREFIX": f"bench-{port}", **extra}
    if full:
        env |= {
            "AUTH_JWT_SECRET": JWT_SECRET,
            "RATE_LIMIT_USER_PER_MINUTE": "10000000",
            "RATE_LIMIT_TENANT_PER_MINUTE": "10000000",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp,
        }
    binary = str(Path(sys.executable).parent / "agent-service")
    process = ManagedProcess(
        f"shepherd-{'full' if full else 'bare'}-{port}",
        [binary, "--host", "127.0.0.1", "--port", str(port)],
        workdir,
        env,
    ).start()
    _wait_healthy(process, f"http://127.0.0.1:{port}/readyz")
    return process, f"http://127.0.0.1:{port}"


def ensure_bench_venv() -> Path:
    python = BENCH_VENV / "bin" / "python"
    if not (BENCH_VENV / "bin" / "langgraph").exists():
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "uv"], check=True)
        subprocess.run(
            [
                str(BENCH_VENV / "bin" / "uv"),
                "pip",
                "install",
                "--compile-bytecode",
                "-q",
                "--python",
                str(python),
                "langgraph-cli[inmem]==0.4.40",
                "-e",
                str(REPO),
            ],
            check=True,
        )
    return BENCH_VENV / "bin" / "langgraph"


def start_langgraph_dev(workdir: Path, graph_source: str = REFERENCE_GRAPH) -> tuple[ManagedProcess, str]:
    """`langgraph dev` serving `graph_source` (default: the reference agent with the service's own
    stub-model settings) as graph "agent"."""
    port = free_port()
    project = workdir / f"langgraph-dev-{port}"
    project.mkdir()
    (project / "graph.py").write_text(graph_source)
    (project / "langgraph.json").write_text(
        json.dumps({"dependencies": ["."], "graphs": {"agent": "./graph.py:graph"}})
    )
    process = ManagedProcess(
        "langgraph-dev",
        [
            str(ensure_bench_venv()),
            "dev",
            "--no-reload",
            "--no-browser",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        workdir,
        {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGSMITH_TRACING": "false", "LOG_LEVEL": "WARNING"},
        cwd=project,
    )
    process.start()
    _wait_healthy(process, f"http://127.0.0.1:{port}/ok")
    return process, f"http://127.0.0.1:{port}"


def _token() -> dict[str, str]:
    claims = {"sub": "bench-user", "tenant": "bench", "exp": int(time.time()) + 3600}
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET, algorithm='HS256')}"}


def _row(name: str, users: int, result) -> str:
    lat = sorted(result.latencies)
    return (
        f"| {name} | {users} | {len(lat)} | {result.errors} | {result.throughput:.1f} | "
        + " | ".join(f"{percentile(lat, q) * 1000:.1f}" for q in (50, 95, 99))
        + " |"
    )


def _fill_threads(base_url: str, count: int, headers: dict[str, str]) -> None:
    with httpx.Client(base_url=base_url, timeout=30, headers=headers) as client:
        for _ in range(count):
            client.post("/threads", json={"metadata": {"bench": "fill"}}).raise_for_status()


def run() -> str:
    header = (
        "| server | concurrency | runs | errors | runs/s | p50 (ms) | p95 (ms) | p99 (ms) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-service-") as tmp:
        workdir = Path(tmp)
        redis = components.start_redis(workdir)
        sink, otlp = _start_sink()
        started: list[ManagedProcess] = []
        try:
            full, full_url = start_shepherd(workdir, redis.url, full=True, otlp=otlp)
            started.append(full)
            bare, bare_url = start_shepherd(workdir, redis.url, full=False, otlp=otlp)
            started.append(bare)
            dev, dev_url = start_langgraph_dev(workdir)
            started.append(dev)
            targets = [
                ("Shepherd full stack", full_url, _token()),
                ("Shepherd bare", bare_url, {}),
                ("langgraph dev", dev_url, {}),
            ]
            for users in (1, 8):
                for name, url, headers in targets:
                    run_load(url, users=users, runs=20, headers=headers)  # warm-up
                    rows.append(_row(name, users, run_load(url, users=users, runs=RUNS, headers=headers)))
                    print(rows[-1], flush=True)
            for users in (100, 500):
                result = run_load(full_url, users=users, runs=max(RUNS, users * 2), headers=_token())
                rows.append(_row("Shepherd full stack (seed load target)", users, result))
                print(rows[-1], flush=True)
            _fill_threads(full_url, 10_000, _token())
            rows.append(
                _row(
                    "Shepherd full stack, 10,000 threads stored",
                    8,
                    run_load(full_url, users=8, runs=RUNS, headers=_token()),
                )
            )
            print(rows[-1], flush=True)
        finally:
            for process in started:
                process.stop()
            sink.shutdown()
            redis.stop()
    return header + "\n" + "\n".join(rows)
