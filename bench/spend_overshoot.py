"""Spend overshoot of an enforced budget at 50 concurrent runs (issue 13): reserve-then-settle next to
the check-then-charge of the last main before it, in the same run, on the same machine.

Two live agent-service replicas (console script, JWT auth, one Redis) on the fake Anthropic server,
which answers every call after 0.2 s with an 800-word reply (about 0.012 USD of Sonnet per call).
50 concurrent clients run ``/runs/wait`` on both replicas in turn for one tenant until the budget
refuses them (429, or a run refused by the budget); then the spend both replicas report
(``agent_llm_cost_usd_total``) is compared with the budget. Each round uses a new tenant.

- baseline: ``service/`` of ``BENCH_SPEND_BASELINE_REV`` (default: 5580ebd, main before this change),
  extracted with ``git archive`` and run with this venv; per-tenant ``COST_BUDGET_USD_PER_DAY``:
  every call checks "spent < limit", then is charged when it returns;
- reservation, per tenant: the same setting on this tree (reserve the worst case, settle after);
- reservation, per deployment: ``SPEND_BUDGET_USD_PER_DAY`` with ``SPEND_BUDGET_ENFORCE``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import jwt
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.anthropic_server import FakeAnthropic
from tests.harness import components
from tests.harness.binaries import REPO
from tests.harness.processes import ManagedProcess, free_port

BASELINE_REV = os.environ.get("BENCH_SPEND_BASELINE_REV", "5580ebd")
BUDGET_USD = float(os.environ.get("BENCH_SPEND_BUDGET_USD", "5"))
CONCURRENCY = int(os.environ.get("BENCH_SPEND_CONCURRENCY", "50"))
ROUNDS = int(os.environ.get("BENCH_SPEND_ROUNDS", "3"))
REPLICAS = 2
SECRET = "bench-spend-secret-bench-spend-secret!"
REPLY = {"text": " ".join(["budget"] * 800)}
QUESTION = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "summarize"}]}}
AGENT_SERVICE = Path(sys.executable).parent / "agent-service"


def _baseline_service(workdir: Path) -> Path:
    target = workdir / "baseline"
    target.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASELINE_REV, "service"], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target / "service"


def _start(
    workdir: Path, redis_url: str, fake_url: str, env: dict[str, str], pythonpath: str, started: list
) -> list[str]:
    """Two replicas of one deployment (one key prefix); ``pythonpath`` picks the code they run."""
    prefix, urls = f"spend-{uuid.uuid4().hex[:8]}", []
    for _ in range(REPLICAS):
        port = free_port()
        process = ManagedProcess(
            f"agent-service-{port}",
            [str(AGENT_SERVICE), "--host", "127.0.0.1", "--port", str(port)],
            workdir,
            env={
                "PYTHONPATH": pythonpath,
                "REDIS_URL": redis_url,
                "REDIS_KEY_PREFIX": prefix,
                "ANTHROPIC_API_KEY": "sk-ant-bench",
                "ANTHROPIC_BASE_URL": fake_url,
                "LLM_MODEL": "claude-sonnet-4-6",
                "LLM_FALLBACK_MODELS": "",
                "LLM_MAX_CONCURRENCY": "64",
                "MAX_CONCURRENT_RUNS": "64",
                "AUTH_JWT_SECRET": SECRET,
                "LOG_LEVEL": "WARNING",
                **env,
            },
        ).start()
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        process.wait_ready(
            lambda url=url: httpx.get(f"{url}/healthz", timeout=2).status_code == 200, timeout=180
        )
        urls.append(url)
    return urls


async def _spent(http: httpx.AsyncClient, urls: list[str]) -> float:
    total = 0.0
    for url in urls:
        text = (await http.get(f"{url}/metrics")).text
        for family in text_string_to_metric_families(text):
            total += sum(s.value for s in family.samples if s.name == "agent_llm_cost_usd_total")
    return total


async def _round(urls: list[str], tenant: str) -> tuple[float, int, float]:
    """Spend of this round, runs that completed, seconds it took."""
    claims = {"sub": "bench", "tenant": tenant, "exp": int(time.time()) + 3600}
    headers = {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}
    done = 0
    stop = asyncio.Event()

    async def client(index: int, http: httpx.AsyncClient) -> None:
        nonlocal done
        while not stop.is_set():
            answer = await http.post(f"{urls[index % len(urls)]}/runs/wait", json=QUESTION, headers=headers)
            refused = answer.status_code == 429 or "BudgetExceededError" in answer.text
            if refused:
                stop.set()
            elif answer.status_code == 200:
                done += 1

    async with httpx.AsyncClient(timeout=120) as http:
        before = await _spent(http, urls)
        started = time.monotonic()
        await asyncio.gather(*(client(i, http) for i in range(CONCURRENCY)))
        elapsed = time.monotonic() - started
        return await _spent(http, urls) - before, done, elapsed


def run() -> str:
    rows, started = [], []
    with tempfile.TemporaryDirectory(prefix="bench-spend-") as tmp:
        workdir = Path(tmp)
        redis = components.start_redis(workdir)
        fake = FakeAnthropic().start()
        try:
            fake.state.add_faults({"kind": "latency", "seconds": 0.2, "times": 10**9})
            fake.state.add_replies(*[REPLY] * 100_000)
            budget = f"{BUDGET_USD:g}"
            modes = (
                ("baseline (check, then charge), per tenant", {"COST_BUDGET_USD_PER_DAY": budget},
                 str(_baseline_service(workdir))),
                ("reserve, then settle, per tenant", {"COST_BUDGET_USD_PER_DAY": budget}, ""),
                ("reserve, then settle, per deployment",
                 {"SPEND_BUDGET_USD_PER_DAY": budget, "SPEND_BUDGET_ENFORCE": "true"}, ""),
            )  # fmt: skip
            for label, env, pythonpath in modes:
                urls = _start(workdir, redis.url, fake.url, env, pythonpath, started)
                # The deployment budget has one day per deployment: one round, on fresh replicas.
                rounds = 1 if "deployment" in label else ROUNDS
                for number in range(rounds):
                    spent, done, elapsed = asyncio.run(_round(urls, f"tenant-{uuid.uuid4().hex[:6]}"))
                    rows.append((label, number + 1, spent, done, elapsed))
                    print(label, number + 1, f"{spent:.4f}", done, f"{elapsed:.1f}s", flush=True)
        finally:
            for process in started:
                process.stop()
            fake.stop()
            redis.stop()
    lines = [
        f"| mode (budget {BUDGET_USD:g} USD, {CONCURRENCY} concurrent runs, {REPLICAS} replicas) | round "
        "| spent (USD) | overshoot | runs completed | seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, number, spent, done, elapsed in rows:
        overshoot = 100 * (spent - BUDGET_USD) / BUDGET_USD
        lines.append(f"| {label} | {number} | {spent:.4f} | {overshoot:+.2f} % | {done} | {elapsed:.1f} |")
    return "\n".join(lines)
