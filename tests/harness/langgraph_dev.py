"""`langgraph dev` (the reference LangGraph server, in memory) serving a LangGraph project, as its
README tells a user to: the project installed in a venv with `langgraph-cli[inmem]`, then
`langgraph dev` in the project's folder.

The venv (`.venv-langgraph-dev`, its pins conflict with ours) holds langgraph-cli and langgraph-api
at the versions the team compares against (those of /tmp/lgref) and what the template projects in
`tests/templates` import. A project's own package is found through PYTHONPATH (its `src`), as
`agent-service` finds it in the tests: the same code on both sides. It is made once with uv from
PyPI; `SHEPHERD_LANGGRAPH_DEV=0` skips its tests.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.harness.binaries import REPO
from tests.harness.processes import ManagedProcess, free_port

VENV = REPO / ".venv-langgraph-dev"
PACKAGES = (
    "langgraph-cli[inmem]==0.4.40",
    "langgraph-api==0.16.7",
    "langchain==1.4.7",
    "langchain-anthropic==1.7.7",
    "langchain-openai==1.7.3",
    "langchain-tavily==0.2.18",
    "langmem==0.0.30",
    "python-dotenv==1.2.4",
)


def enabled() -> bool:
    return os.environ.get("SHEPHERD_LANGGRAPH_DEV") != "0"


def ensure_venv() -> Path:
    """The `langgraph` program of the reference venv, made on first use."""
    binary = VENV / "bin" / "langgraph"
    stamp = VENV / (".installed-" + hashlib.sha256("\n".join(PACKAGES).encode()).hexdigest()[:12])
    if binary.exists() and stamp.exists():
        return binary
    uv = Path(sys.executable).parent / "uv"
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([str(uv), "venv", "-q", "--python", sys.executable, str(VENV)], check=True)
    subprocess.run(
        [str(uv), "pip", "install", "-q", "--compile-bytecode", "--python", str(python), *PACKAGES],
        check=True,
    )
    stamp.touch()
    return binary


def start(project: Path, log_dir: Path, env: dict[str, str]) -> tuple[ManagedProcess, str]:
    """`langgraph dev` in `project` (its langgraph.json) on a free loopback port; (process, base URL)."""
    port = free_port()
    command = [str(ensure_venv()), "dev", "--no-reload", "--no-browser", "--host", "127.0.0.1"]
    process = ManagedProcess(
        f"langgraph-dev-{project.name}-{port}",
        [*command, "--port", str(port)],
        log_dir,
        {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))},
            "LANGGRAPH_CLI_NO_ANALYTICS": "1",
            "LANGSMITH_TRACING": "false",
            "LOG_LEVEL": "WARNING",
            **env,
        },
        inherit_env=False,  # the project's .env, not the test process's provider variables
        cwd=project,
    ).start()
    url = f"http://127.0.0.1:{port}"
    process.wait_ready(lambda: httpx.get(f"{url}/ok", timeout=1).status_code == 200, timeout=180)
    return process, url
