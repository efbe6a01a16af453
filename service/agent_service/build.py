"""`agent-service build`: an OCI image of a LangGraph project, from its ``langgraph.json``.

The image is the agent-service image plus the project: its ``dependencies`` are resolved and
installed on the host (its network and CA settings, as hack/build-images.sh fetches its wheels), into
a directory the image puts on ``sys.path`` *after* the service's own packages, so the service keeps the
versions it was tested with; the project is copied in and ``AGENT_CONFIG`` points at its
``langgraph.json``. Nothing runs at build time but ``compileall``, so the build needs no network in
the container, and the image stays non-root and read-only-root-filesystem safe (bytecode compiled,
nothing written outside /tmp).

The plan (what to install, the Containerfile) is pure; `build` runs it with buildah, podman or docker,
whichever is found first (buildah is the one tested here).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from agent_service.graphs.project import ProjectError, read_project

DEFAULT_BASE_IMAGE = f"ghcr.io/shepherd-dev/agent-service:{version('shepherd')}"
BUILDERS = ("buildah", "podman", "docker")
PROJECT_DIR = "/opt/project/app"
PROJECT_SITE = "/opt/project/site-packages"
USER = "65532:65532"
LOCK_FILE = "uv.lock"
# Never baked into an image: secrets come from the AgentDeployment (env, secret refs).
EXCLUDED = (".env", ".git", ".venv", "__pycache__", "*.pyc", ".langgraph_api", ".mypy_cache", ".ruff_cache")
# What the base image is asked: its Python, libc and installed distributions.
PROBE = (
    "import importlib.metadata as m, json, platform, sys;"
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'machine': platform.machine(),"
    "'glibc': platform.libc_ver()[1],"
    "'packages': {d.metadata['Name']: d.version for d in m.distributions()}}))"
)
_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


class BuildError(RuntimeError):
    """The image cannot be built; the message says what is wrong and what to do."""


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class BasePython:
    """What the base image has: dependencies are resolved for its interpreter and platform."""

    python: str  # "3.11"
    machine: str  # "x86_64"
    glibc: str  # "2.36"
    packages: dict[str, str]  # canonical name -> version

    @property
    def platform(self) -> str:
        major, minor = self.glibc.split(".")[:2]
        return f"{self.machine}-manylinux_{major}_{minor}"


@dataclass(frozen=True)
class BuildPlan:
    project_dir: Path
    config_name: str  # langgraph.json's name inside the project
    base_image: str
    tag: str
    locked: bool  # dependencies from the project's uv.lock
    local_dependencies: tuple[str, ...]  # path dependencies ("."), relative to the project
    requirements: tuple[str, ...]  # the other `dependencies` entries, as written

    @property
    def agent_config(self) -> str:
        return f"{PROJECT_DIR}/{self.config_name}"


def plan_build(config_file: Path, base_image: str, tag: str) -> BuildPlan:
    """Checks ``langgraph.json`` as the service will read it and sorts its ``dependencies``."""
    if not config_file.is_file():
        raise ProjectError(f"{config_file}: no such file (the project's langgraph.json)")
    project = read_project(config_file)  # ProjectError names the file and the key
    raw = json.loads(project.config_file.read_text())
    dependencies = raw.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) and d.strip() for d in dependencies):
        raise ProjectError(f"{project.config_file}: dependencies: must be a list of non-empty strings")
    local, requirements = [], []
    for dependency in dependencies:
        if dependency.startswith((".", "/")):
            path = (project.root / dependency).resolve()
            if not path.is_relative_to(project.root):
                raise ProjectError(
                    f"{project.config_file}: dependencies: {dependency!r} is outside the project directory"
                )
            if not (path / "pyproject.toml").is_file() and not (path / "setup.py").is_file():
                raise ProjectError(
                    f"{project.config_file}: dependencies: {dependency!r} has no pyproject.toml or setup.py"
                )
            local.append(path.relative_to(project.root).as_posix() or ".")
        else:
            requirements.append(dependency)
    return BuildPlan(
        project_dir=project.root,
        config_name=project.config_file.name,
        base_image=base_image,
        tag=tag,
        locked=(project.root / LOCK_FILE).is_file(),
        local_dependencies=tuple(local),
        requirements=tuple(requirements),
    )


def split_pins(pinned: list[str], base: BasePython) -> tuple[list[str], list[str]]:
    """Pinned requirement lines -> (to install, conflicts): the base's packages are never installed
    again, and a pin that differs from the base's version is reported (the base's version wins)."""
    install, conflicts = [], []
    for line in pinned:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        match = _NAME.match(line)
        if match is None:
            raise BuildError(f"cannot read the resolved requirement {line!r}")
        name = canonical(match.group(1))
        if name not in base.packages:
            install.append(line)
        elif "==" in line and line.split("==", 1)[1].split(";")[0].strip() != base.packages[name]:
            conflicts.append(f"{name} {line.split('==', 1)[1].strip()} (the base has {base.packages[name]})")
    return install, conflicts


def containerfile(plan: BuildPlan) -> str:
    """The Containerfile of the project image; the context holds ``project/`` and ``site-packages/``."""
    return f"""\
# Generated by `agent-service build` from {plan.config_name}.
FROM {plan.base_image}
USER 0:0
COPY site-packages {PROJECT_SITE}
COPY project {PROJECT_DIR}
# After the service's own site-packages on sys.path: the base's versions win. Bytecode compiled now
# (unchecked-hash: the tree never changes), as the root filesystem is read-only at run time.
RUN site=$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') && \\
    echo {PROJECT_SITE} > "$site/zz-agent-project.pth" && \\
    chmod -R a+rX,go-w /opt/project && \\
    /opt/venv/bin/python -m compileall -q -j0 --invalidation-mode unchecked-hash /opt/project
ENV AGENT_CONFIG={plan.agent_config}
USER {USER}
LABEL org.opencontainers.image.base.name="{plan.base_image}"
"""


# --- running the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Builder:
    name: str  # buildah | podman | docker
    global_args: tuple[str, ...] = ()  # buildah's storage flags

    def command(self, *args: str) -> list[str]:
        return [self.name, *self.global_args, *args]


def find_builder(storage_args: tuple[str, ...] = ()) -> Builder:
    for name in BUILDERS:
        if shutil.which(name):
            return Builder(name, storage_args if name == "buildah" else ())
    raise BuildError(f"no image builder found: install one of {', '.join(BUILDERS)}")


def _run(command: list[str], what: str, cwd: Path | None = None) -> str:
    # buildah with no daemon and no OCI runtime (as in a container): chroot isolation, unless told.
    env = {"BUILDAH_ISOLATION": "chroot", **os.environ}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BuildError(f"{what} failed ({' '.join(command[:3])} ...):\n{done.stderr.strip()[-4000:]}")
    return done.stdout


def probe_base(builder: Builder, image: str) -> BasePython:
    exists = subprocess.run(
        builder.command("image", "inspect", image) if builder.name != "buildah"
        else builder.command("inspect", "--type", "image", image),
        capture_output=True, check=False,
    )  # fmt: skip
    if exists.returncode != 0:
        raise BuildError(
            f"base image {image} not found in {builder.name}'s local storage: build it "
            "(`make images`, then load it) or name another with --base"
        )
    if builder.name == "buildah":
        container = _run(builder.command("from", "--quiet", "--pull=false", image), "buildah from").strip()
        try:
            out = _run(builder.command("run", container, "--", "/opt/venv/bin/python", "-c", PROBE), "probe")
        finally:
            subprocess.run(builder.command("rm", container), capture_output=True, check=False)
    else:
        out = _run(
            builder.command("run", "--rm", "--entrypoint", "/opt/venv/bin/python", image, "-c", PROBE),
            "probe",
        )
    found = json.loads(out)
    packages = {canonical(name): v for name, v in found.pop("packages").items()}
    return BasePython(packages=packages, **found)


def _uv() -> str:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        raise BuildError("uv not found (it resolves and installs the project's dependencies): pip install uv")
    return uv


def resolve(plan: BuildPlan, base: BasePython, work: Path) -> list[str]:
    """The project's dependencies pinned: from uv.lock, else resolved against the base's versions."""
    uv = _uv()
    if plan.locked:
        out = _run(
            [uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header",
             "--no-annotate", "--directory", str(plan.project_dir)],
            f"reading {plan.project_dir / LOCK_FILE}",
        )  # fmt: skip
        return out.splitlines()
    constraints = work / "base-constraints.txt"
    constraints.write_text("".join(f"{name}=={v}\n" for name, v in sorted(base.packages.items())))
    inputs = work / "requirements.in"
    inputs.write_text("".join(f"{d}\n" for d in (*plan.requirements, *plan.local_dependencies)))
    out = _run(
        [uv, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--python-version", base.python,
         "--python-platform", base.platform, "--constraint", str(constraints), str(inputs)],
        "resolving the project's dependencies", cwd=plan.project_dir,
    )  # fmt: skip
    return [line for line in out.splitlines() if " @ file:" not in line and not line.startswith("./")]


def prepare_context(plan: BuildPlan, base: BasePython, context: Path) -> list[str]:
    """Fills the build context; returns the conflicts found (pins the base overrides)."""
    install, conflicts = split_pins(resolve(plan, base, context), base)
    site = context / "site-packages"
    site.mkdir()
    target = [_uv(), "pip", "install", "--quiet", "--no-deps", "--target", str(site),
              "--python-version", base.python, "--python-platform", base.platform]  # fmt: skip
    if install:
        (context / "requirements.txt").write_text("".join(f"{line}\n" for line in install))
        _run([*target, "-r", str(context / "requirements.txt")], "installing the project's dependencies")
    if plan.local_dependencies:
        _run([*target, *plan.local_dependencies], "installing the project", cwd=plan.project_dir)
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the host's interpreter path
    shutil.copytree(plan.project_dir, context / "project", ignore=shutil.ignore_patterns(*EXCLUDED))
    (context / "Containerfile").write_text(containerfile(plan))
    return conflicts


def build(plan: BuildPlan, builder: Builder, output: Path | None, log=print) -> None:
    base = probe_base(builder, plan.base_image)
    with tempfile.TemporaryDirectory(prefix="agent-build-") as work:
        context = Path(work)
        conflicts = prepare_context(plan, base, context)
        if conflicts:
            used = ", ".join(conflicts)
            log(f"warning: {len(conflicts)} pins differ from the base's, whose versions are used: {used}")
        file = str(context / "Containerfile")
        if builder.name == "buildah":
            _run(builder.command("bud", "--quiet", "--layers", "--pull=false", "-f", file, "-t", plan.tag,
                                 str(context)), "buildah bud")  # fmt: skip
        else:
            _run(builder.command("build", "--pull=false", "-f", file, "-t", plan.tag, str(context)), "build")
    log(f"built {plan.tag} with {builder.name}")
    if output is None:
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.unlink(missing_ok=True)
    if builder.name == "buildah":
        _run(builder.command("push", "--quiet", plan.tag, f"oci-archive:{output}:{plan.tag}"), "buildah push")
    elif builder.name == "podman":
        _run(builder.command("save", "--format", "oci-archive", "-o", str(output), plan.tag), "podman save")
    else:  # docker save writes an OCI image layout since Docker 25
        _run(builder.command("save", "-o", str(output), plan.tag), "docker save")
    log(f"{plan.tag} -> {output}")


def cli(argv: list[str]) -> None:
    """`agent-service build [PROJECT] --tag T [--output X.oci.tar]`; exit 2 on bad input."""
    parser = argparse.ArgumentParser(
        prog="agent-service build",
        description="Build an OCI image of a LangGraph project from its langgraph.json.",
    )
    parser.add_argument(
        "project", nargs="?", default=".", type=Path,
        help="the project's directory or its langgraph.json (default: the current directory)",
    )  # fmt: skip
    parser.add_argument("--tag", "-t", required=True, help="image reference, e.g. localhost/my-agent:1")
    parser.add_argument("--output", "-o", type=Path, help="also write the image as an OCI archive here")
    parser.add_argument(
        "--base", default=DEFAULT_BASE_IMAGE, help=f"base image (default {DEFAULT_BASE_IMAGE})"
    )
    parser.add_argument(
        "--storage-opt", action="append", default=[], metavar="FLAG",
        help="buildah global storage flag, repeatable, e.g. --storage-opt=--storage-driver=overlay",
    )  # fmt: skip
    args = parser.parse_args(argv)
    config = args.project / "langgraph.json" if args.project.is_dir() else args.project
    try:
        plan = plan_build(config, args.base, args.tag)
        build(
            plan,
            find_builder(tuple(args.storage_opt)),
            args.output,
            log=lambda line: print(line, file=sys.stderr),
        )
    except (ProjectError, BuildError) as error:
        print(f"agent-service build: {error}", file=sys.stderr)
        raise SystemExit(2) from None
