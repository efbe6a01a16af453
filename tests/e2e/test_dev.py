"""`make dev` as a newcomer lives it: the environment comes up, an example agent answers the official
langgraph-sdk through the URL `make dev` printed, `kubectl get agd` shows its budget, circuits and
freeze level, `make demo` tells the error-budget story to the end (it exits 0 only if it saw every
stage), and `make dev-down` leaves no process behind. One test, so `make dev` is paid once."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_sync_client

from tests.harness.binaries import REPO, toolset
from tests.harness.components import EXISTING_CLUSTER_ENV
from tests.harness.processes import wait_until

AGENT_LINE = re.compile(r"^\s{4}(\S+)\s+(http://127\.0\.0\.1:\d+)\s*$")


def _dev(action: str, state: Path, module: str = "tests.harness.dev") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *([action] if action else [])],
        env={**os.environ, "SHEPHERD_DEV_DIR": str(state)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _ours(state: Path) -> list[str]:
    """Processes whose command line or environment names the dev state directory."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if str(state).encode() in text:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")[:200]
            found.append(f"{proc.name}: {command!r}")
    return found


def _columns(kubectl: Path, kubeconfig: str, name: str) -> dict[str, str]:
    table = subprocess.run(
        [str(kubectl), f"--kubeconfig={kubeconfig}", "get", "agd", name, "-n", "shepherd-examples"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    starts = [m.start() for m in re.finditer(r"\S+(?: LEFT)?", table[0])]
    names = [table[0][a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    return {n: table[1][a:b].strip() for n, a, b in zip(names, starts, [*starts[1:], None], strict=True)}


def test_make_dev_serves_the_examples_live_make_demo_tells_the_story_dev_down_leaves_nothing(
    tmp_path: Path,
) -> None:
    if os.environ.get(EXISTING_CLUSTER_ENV):
        pytest.skip("make dev starts its own control plane")
    state = tmp_path / "dev"
    up = _dev("up", state)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        agents = dict(m.groups() for line in up.stdout.splitlines() if (m := AGENT_LINE.match(line)))
        assert {"basic", "quick"} <= set(agents), up.stdout
        assert "support-agent  not running: Ready=False SecretMissing" in up.stdout
        kubeconfig = re.search(r"^export KUBECONFIG=(\S+)$", up.stdout, re.M).group(1)
        prometheus = re.search(r"Prometheus: (\S+)", up.stdout).group(1)

        # The official SDK through the printed URL: a thread, a run of the reference agent on Claude.
        client = get_sync_client(url=agents["quick"])
        thread = client.threads.create()
        result = client.runs.wait(
            thread["thread_id"], "agent", input={"messages": [{"role": "user", "content": "hello"}]}
        )
        assert result["messages"][-1]["type"] == "ai", result
        assert httpx.post(f"{agents['basic']}/assistants/search", json={}).json()[0]["graph_id"] == "agent"

        kubectl = toolset().kubectl

        def live() -> dict[str, str] | None:
            row = _columns(kubectl, kubeconfig, "quick")
            return row if re.fullmatch(r"-?\d+(\.\d+)?%?", row.get("BUDGET LEFT", "")) else None

        row = wait_until(live, timeout=90, what="a numeric BUDGET LEFT on quick", interval=2)
        assert row["FREEZE"] == "None", row
        assert "closed" in row["CIRCUITS"], row

        # Prometheus scrapes both operators and the agents, and has the fleet rules of the windows in use.
        targets = httpx.get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        jobs = [t["labels"].get("job") for t in targets if t["health"] == "up"]
        assert jobs.count("shepherd-operator") == 2, targets
        pods = {t["labels"].get("agentdeployment") for t in targets if t["health"] == "up"}
        assert {"basic", "quick"} <= pods
        groups = {g["name"] for g in httpx.get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]}
        assert {"shepherd-slo-1h", "shepherd-slo-30d", "shepherd-operator"} <= groups, groups
        agents_file = json.loads((state / "agents.json").read_text())
        assert agents_file["basic"]["pods"] == 2

        demo = _dev("", state, module="tests.harness.demo")
        assert demo.returncode == 0, demo.stdout + demo.stderr
        stages = re.findall(r"\] (\d)/8 ", demo.stdout)
        assert stages == [str(n) for n in range(9)], demo.stdout
        assert demo.stdout.count("  seen: ") == 9, demo.stdout
        assert "kubectl get agd | quick" in demo.stdout, demo.stdout
    finally:
        down = _dev("down", state)
        assert down.returncode == 0, down.stderr
    assert _ours(state) == []
