"""The container images, built once per session by hack/build-images.sh (buildah, no daemon).

They run with the rest of `make test`: a cold build (debootstrap base + both images) takes about 2
minutes on a 2-core machine and a warm one 12-45 s (bench/IMAGES.md). SHEPHERD_IMAGE_TESTS=0 skips
them (say, on a laptop without root). They need root, as the build does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO / "hack" / "build-images.sh"
STORAGE_ARGS = REPO / "build" / "images" / "buildah-storage.args"  # written by the build script
BUILD_TIMEOUT_SECONDS = 1800  # cold: debootstrap + two images on vfs storage
USER = "65532:65532"
ENTRYPOINTS = {"operator": "shepherd-operator", "agent-service": "agent-service"}


def buildah_command() -> list[str]:
    """buildah on the storage hack/build-images.sh chose (overlay or vfs), with chroot isolation."""
    return ["buildah", *STORAGE_ARGS.read_text().split()]


def buildah(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*buildah_command(), *args],
        env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
    )


@dataclass
class Image:
    name: str  # operator | agent-service
    tag: str
    archive: Path
    container: str  # a working container from the image, for `buildah run` and `buildah mount`

    @property
    def entrypoint(self) -> str:
        return ENTRYPOINTS[self.name]

    def run(
        self, *command: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Runs `command` in the image as its configured (non-root) user."""
        return buildah("run", self.container, "--", *command, check=check, timeout=timeout)

    def config(self) -> dict:
        return json.loads(buildah("inspect", "--type", "image", self.tag).stdout)

    def mount(self) -> Path:
        return Path(buildah("mount", self.container).stdout.strip())


@pytest.fixture(scope="session")
def built_images() -> dict[str, tuple[str, Path]]:
    if os.environ.get("SHEPHERD_IMAGE_TESTS") == "0":
        pytest.skip("skipped by SHEPHERD_IMAGE_TESTS=0")
    if os.geteuid() != 0:
        pytest.skip("building images needs root (debootstrap, buildah with chroot isolation)")
    if shutil.which("buildah") is None and shutil.which("apt-get") is None:
        pytest.skip("no buildah, and no apt-get for hack/build-images.sh to install it with")
    done = subprocess.run(
        [str(BUILD_SCRIPT)],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
    )
    assert done.returncode == 0, f"hack/build-images.sh failed:\n{done.stderr[-6000:]}"
    built = {}
    for line in done.stdout.splitlines():  # "<tag> <archive>" per image
        tag, archive = line.split()
        name = "operator" if "/shepherd-operator:" in tag else "agent-service"
        built[name] = (tag, Path(archive))
    assert set(built) == set(ENTRYPOINTS), done.stdout
    return built


@pytest.fixture(scope="session", params=sorted(ENTRYPOINTS))
def image(request: pytest.FixtureRequest, built_images: dict[str, tuple[str, Path]]) -> Iterator[Image]:
    tag, archive = built_images[request.param]
    container = buildah("from", "--quiet", "--pull=false", tag).stdout.strip()
    yield Image(request.param, tag, archive, container)
    buildah("rm", container, check=False)


@pytest.fixture(scope="session")
def service_image(built_images: dict[str, tuple[str, Path]]) -> Iterator[Image]:
    tag, archive = built_images["agent-service"]
    container = buildah("from", "--quiet", "--pull=false", tag).stdout.strip()
    yield Image("agent-service", tag, archive, container)
    buildah("rm", container, check=False)


@pytest.fixture(scope="session")
def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
