"""`agent-service build` on an unmodified upstream template (react-agent, with its uv.lock): the image
runs as the non-root user, says what to serve through AGENT_CONFIG, and its entry point serves the
template's graph (chroot isolation shares the host network: loopback Redis is reachable)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.harness.processes import ManagedProcess

from .conftest import REPO, USER, Image, buildah, buildah_command

TEMPLATE = REPO / "tests" / "templates" / "react-agent"
TAG = "localhost/shepherd-test/react-agent:build"


@pytest.fixture(scope="session")
def project_image(
    built_images: dict[str, tuple[str, Path]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Image]:
    base, _ = built_images["agent-service"]
    archive = tmp_path_factory.mktemp("project-image") / "react-agent.oci.tar"
    storage = [f"--storage-opt={flag}" for flag in buildah_command()[1:]]
    done = subprocess.run(
        [sys.executable, "-m", "agent_service", "build", str(TEMPLATE), "--tag", TAG, "--base", base,
         "--output", str(archive), *storage],
        env={**os.environ, "BUILDAH_ISOLATION": "chroot"}, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-6000:]
    container = buildah("from", "--quiet", "--pull=false", TAG).stdout.strip()
    yield Image("agent-service", TAG, archive, container)
    buildah("rm", container, check=False)


def test_project_image_config(project_image: Image) -> None:
    config = project_image.config()["OCIv1"]["config"]
    assert config["User"] == USER
    assert config["Entrypoint"] == ["/opt/venv/bin/agent-service"]
    assert "AGENT_CONFIG=/opt/project/app/langgraph.json" in config["Env"]
    with tarfile.open(project_image.archive) as archive:
        (manifest,) = json.load(archive.extractfile("index.json"))["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == TAG


def test_project_is_precompiled_and_read_only(project_image: Image) -> None:
    script = """
import os, pathlib, sys
bad = [str(p) for p in pathlib.Path('/opt/project').rglob('*.py')
       if not pathlib.Path(p.parent, '__pycache__').is_dir() or os.access(p, os.W_OK)]
print('\\n'.join(bad[:20])); sys.exit(1 if bad else 0)
"""
    done = project_image.run("/opt/venv/bin/python", "-c", script, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_project_image_serves_the_templates_graph(
    project_image: Image, redis_url: str, free_port: int, tmp_path: Path
) -> None:
    command = [*buildah_command(), "run", "--env", f"REDIS_URL={redis_url}", project_image.container, "--"]
    command += ["/opt/venv/bin/agent-service", "--host", "127.0.0.1", "--port", str(free_port)]
    service = ManagedProcess("project-image", command, tmp_path, {"BUILDAH_ISOLATION": "chroot"})
    service.start()
    base = f"http://127.0.0.1:{free_port}"
    try:
        service.wait_ready(lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, timeout=120)
        assistants = httpx.post(f"{base}/assistants/search", json={"graph_id": "agent"}, timeout=10).json()
        assert [a["graph_id"] for a in assistants] == ["agent"]
        graph = httpx.get(f"{base}/assistants/{assistants[0]['assistant_id']}/graph", timeout=10).json()
        assert {"call_model", "tools"} <= {node["id"] for node in graph["nodes"]}  # the template's nodes
    finally:
        service.stop(timeout=60)
