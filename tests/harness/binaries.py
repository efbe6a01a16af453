"""Where each real component's binary comes from.

Order: a binary already on hand (KUBEBUILDER_ASSETS for the envtest-style pair, then PATH), else the
cache that `hack/build-binaries.sh` and `hack/install-tools.sh` fill (they are run here when needed
and are no-ops once the cache is warm).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"

CONTROL_PLANE = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "controller-gen",
)


@dataclass(frozen=True)
class Toolset:
    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kube_scheduler: Path
    kwok: Path
    controller_gen: Path
    kubectl: Path
    helm: Path
    redis_server: Path
    prometheus: Path
    promtool: Path
    crd_dir: Path


def _run_script(name: str) -> Path:
    """Runs a hack/ script; its last stdout line is the directory it filled."""
    result = subprocess.run([str(HACK / name)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(result.stdout.strip().splitlines()[-1])


def _find(name: str, *dirs: Path | None) -> Path | None:
    for directory in dirs:
        if directory and (directory / name).is_file() and os.access(directory / name, os.X_OK):
            return directory / name
    found = shutil.which(name)
    return Path(found) if found else None


@functools.cache
def toolset() -> Toolset:
    assets = Path(os.environ["KUBEBUILDER_ASSETS"]) if os.environ.get("KUBEBUILDER_ASSETS") else None
    cache = _run_script("build-binaries.sh")
    kubectl_dir = _run_script("install-tools.sh")
    found: dict[str, Path] = {}
    for name in CONTROL_PLANE:
        # The cache beats PATH for the control plane: versions there are the pinned ones.
        path = _find(name, assets, cache / "bin")
        if path is None:
            raise FileNotFoundError(f"{name} not found in KUBEBUILDER_ASSETS, {cache / 'bin'} or PATH")
        found[name] = path
    for name in ("kubectl", "helm"):
        found[name] = kubectl_dir / name
    for name in ("redis-server", "prometheus", "promtool"):
        path = _find(name)
        if path is None:
            raise FileNotFoundError(f"{name} not on PATH; run hack/install-tools.sh")
        found[name] = path
    return Toolset(**{key.replace("-", "_"): value for key, value in found.items()}, crd_dir=cache / "crds")
