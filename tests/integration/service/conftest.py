"""Live `agent-service` processes on loopback, started through the console script."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.harness.processes import ManagedProcess, free_port

AGENT_SERVICE = Path(sys.executable).parent / "agent-service"  # the console script of this venv
SERVICE_GRAPHS = Path(__file__).parent / "graphs"
START_TIMEOUT_SECONDS = 90  # importing the graph stack on a busy 2-core machine takes a while


@dataclass
class ServiceProcess:
    url: str
    process: ManagedProcess

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, wait for the drain to finish, return the exit code."""
        self.process.stop(timeout=timeout)
        return self.process.process.returncode


def _ready(service: ServiceProcess) -> bool:
    return service.get("/healthz").status_code == 200


def launch(log_dir: Path, **env: str) -> ServiceProcess:
    """A live `agent-service` on a free loopback port with this environment on top of the test's,
    test graphs importable, the offline stub unless the chain says otherwise; waits until healthy."""
    port = free_port()
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SERVICE_GRAPHS), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        if name not in env:
            environment.pop(name, None)  # the stub, and SDKs the service points at its own gateway
    process = ManagedProcess(
        f"agent-service-{port}",
        [str(AGENT_SERVICE), "--host", "127.0.0.1", "--port", str(port)],
        log_dir,
        env=environment,
    ).start()
    service = ServiceProcess(f"http://127.0.0.1:{port}", process)
    process.wait_ready(lambda: _ready(service), timeout=START_TIMEOUT_SECONDS)
    return service


@pytest.fixture
def key_prefix() -> str:
    """Services of one test share a prefix (one deployment); tests never see each other's keys."""
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def start_service(tmp_path: Path, key_prefix: str) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(redis_url: str, **env: str) -> ServiceProcess:
        service = launch(tmp_path, REDIS_URL=redis_url, REDIS_KEY_PREFIX=key_prefix, **env)
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.running():
            service.process.process.kill()
            service.process.process.wait()
