"""The operator and agent-service images: entrypoints, config, contents, and a live /healthz."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import httpx

from tests.harness.processes import ManagedProcess

from .conftest import REPO, USER, Image, buildah, buildah_command

PACKAGES = {"operator": "shepherd", "agent-service": "agent_service"}
# World-writable sticky directories of any Debian root filesystem; the app writes only to /tmp.
TEMP_DIRS = {"/tmp", "/var/tmp", "/run/lock", "/var/lock", "/dev/shm"}  # /var/lock -> /run/lock
SECRET_SUFFIXES = (".pem", ".key", ".p12", ".pfx", ".jks", ".keystore")
SECRET_NAMES = {".env", ".netrc", ".pypirc", ".git-credentials", "id_rsa", "id_ed25519", "id_ecdsa"}
# CA bundles are public certificates, not secrets.
CA_BUNDLES = (
    "etc/ssl/certs/",
    "usr/share/ca-certificates/",
    "usr/lib/ssl/cert.pem",
    "site-packages/certifi/cacert.pem",
    "site-packages/botocore/cacert.pem",  # botocore's own CA bundle (Bedrock)
)
CODE_SUFFIXES = (".py", ".pyc", ".pyi", ".so")


def test_entrypoint_runs_as_the_non_root_user(image: Image) -> None:
    assert image.run("id", "-u").stdout.strip() == USER.split(":")[0]
    entrypoint = image.config()["OCIv1"]["config"]["Entrypoint"]
    done = image.run(*entrypoint, "--help")
    assert done.returncode == 0, done.stderr
    assert f"usage: {image.entrypoint}" in done.stdout


def test_image_config_has_user_labels_and_entrypoint(image: Image, project_version: str) -> None:
    config = image.config()["OCIv1"]["config"]
    assert config["User"] == USER
    assert config["Entrypoint"] == [f"/opt/venv/bin/{image.entrypoint}"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == project_version
    assert labels["org.opencontainers.image.source"] == "https://github.com/shepherd-dev/shepherd"
    # The commit built (HEAD then; the lead may commit while the tests run).
    revision = labels["org.opencontainers.image.revision"]
    known = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{revision}^{{commit}}"], check=False)
    assert len(revision) == 40, revision
    assert known.returncode == 0, f"{revision} is not a commit of this repository"
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["HOME"] == "/tmp"
    assert image.tag.endswith(f":{project_version}")


def test_every_module_of_its_package_imports(image: Image) -> None:
    """Each image carries only its own dependency set: a missing one shows up here, not in a cluster."""
    script = """
import importlib, pkgutil, sys
failed = []
pkg = importlib.import_module(sys.argv[1])
for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".", onerror=failed.append):
    if not mod.name.endswith(".__main__"):
        try:
            importlib.import_module(mod.name)
        except Exception as error:
            failed.append(f"{mod.name}: {error!r}")
print("\\n".join(map(str, failed)))
sys.exit(1 if failed else 0)
"""
    done = image.run("/opt/venv/bin/python", "-c", script, PACKAGES[image.name], check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_bytecode_is_precompiled_and_only_temp_dirs_are_writable(image: Image) -> None:
    """readOnlyRootFilesystem: nothing to compile at start-up, nowhere to write but /tmp."""
    script = """
import importlib.util, pathlib, sys
lib = pathlib.Path(sys.prefix, "lib")
cached = importlib.util.cache_from_source
print(sum(1 for p in lib.rglob("*.py") if not pathlib.Path(cached(str(p))).exists()))
"""
    assert image.run("/opt/venv/bin/python", "-c", script).stdout.strip() == "0"
    writable = image.run("find", "/", "-xdev", "-writable", "-print", check=False).stdout.split()
    assert set(writable) <= TEMP_DIRS, sorted(set(writable) - TEMP_DIRS)[:20]


def _suspicious(rel: str, path: Path) -> str | None:
    """Why a file must not ship, or None."""
    name = path.name
    if name in SECRET_NAMES or name.startswith(".env") or name == "conftest.py":
        return "secret or test file"
    if any(ca in rel for ca in CA_BUNDLES) or name.endswith(CODE_SUFFIXES):
        return None
    if name.endswith(SECRET_SUFFIXES):
        return "key or certificate file"
    small_file = path.is_file() and not path.is_symlink() and path.stat().st_size < 1 << 20
    if small_file and b"PRIVATE KEY-----" in path.read_bytes():
        return "private key inside"
    return None


def test_no_secrets_build_leftovers_or_test_files(image: Image) -> None:
    root = image.mount()
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir.split(os.sep)[0] in ("proc", "sys", "dev"):
            dirnames[:] = []
            continue
        found += [f"{rel_dir}/{name}/" for name in dirnames if name in (".git", "tests")]
        for name in filenames:
            reason = _suspicious(f"{rel_dir}/{name}", Path(dirpath, name))
            if reason:
                found.append(f"{rel_dir}/{name}: {reason}")
    # The builder's leftovers: sources, pip, setuptools, caches.
    found += [p for p in ("src", "opt/build", "root/.cache", "opt/venv/bin/pip") if (root / p).exists()]
    assert not found, found


def test_oci_archive_names_the_image_for_kind(image: Image) -> None:
    """`kind load image-archive` (containerd import) names the image after this annotation."""
    with tarfile.open(image.archive) as archive:
        index = json.load(archive.extractfile("index.json"))
    (manifest,) = index["manifests"]
    assert manifest["annotations"]["org.opencontainers.image.ref.name"] == image.tag


def test_service_image_answers_healthz_with_redis_on_loopback(
    service_image: Image, redis_url: str, free_port: int, tmp_path: Path
) -> None:
    # chroot isolation shares the host's network namespace, so loopback Redis is reachable.
    command = [*buildah_command(), "run", "--env", f"REDIS_URL={redis_url}", service_image.container, "--"]
    command += ["/opt/venv/bin/agent-service", "--host", "127.0.0.1", "--port", str(free_port)]
    service = ManagedProcess("agent-service-image", command, tmp_path, {"BUILDAH_ISOLATION": "chroot"})
    service.start()
    url = f"http://127.0.0.1:{free_port}/healthz"
    try:
        service.wait_ready(lambda: httpx.get(url, timeout=2).status_code == 200, timeout=120)
        assert httpx.get(url, timeout=5).json()
    finally:
        service.stop(timeout=60)
    buildah("run", service_image.container, "--", "true")  # the container is still usable
