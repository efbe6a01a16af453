"""Run one container of a Pod for real, as the kubelet would, on this machine: the rendered
command/args (the image's entrypoint when none), its environment (Secrets, ConfigMaps and field
references resolved from the cluster, ``$(VAR)`` expanded), and its volumes as local directories.

Only what has no equivalent here is translated, and nothing else:

* network endpoints: ``addresses`` replaces ``host:port`` strings in env values and arguments
  (a Service's DNS name has no resolver here), and ``listen`` rewrites the arguments a server
  listens with, so every server binds 127.0.0.1 on a free port;
* volume paths: a volume's mountPath, where it appears in an argument or env value, becomes its
  local directory: a PersistentVolumeClaim's is keyed by the claim's uid (it outlives Pods, and a
  claim deleted and made again is a new, empty volume), a Secret's holds its (selected) keys as
  files, an emptyDir's and a projected one's (the ServiceAccount token's) belong to the Pod;
* the program: ``programs`` maps an image entrypoint to the local build of the same program
  (e.g. redis_exporter is Debian's ``prometheus-redis-exporter``).

Used by ``PodBridge`` (agent Pods) and directly by tests that run Redis, its exporter, a restore
init container or a backup Job exactly as rendered.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .cluster import Cluster
from .processes import ManagedProcess

_VARIABLE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
Listen = Callable[[list[str]], list[str]]


class RunnerError(RuntimeError):
    pass


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion in env values, command and args."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def with_flag(args: list[str], flag: str, value: str, *, append: bool = False) -> list[str]:
    """``flag value`` (or ``flag=value``) replaced by ``value``; appended when absent and ``append``."""
    out: list[str] = []
    found = skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg == flag and index + 1 < len(args):
            out += [flag, value]
            found = skip = True
        elif arg.startswith(f"{flag}="):
            out.append(f"{flag}={value}")
            found = True
        else:
            out.append(arg)
    return [*out, flag, value] if append and not found else out


@dataclass
class PodRunner:
    cluster: Cluster
    namespace: str
    workdir: Path
    #: ``host:port`` as rendered -> ``127.0.0.1:port`` where the real server listens.
    addresses: dict[str, str] = field(default_factory=dict)
    #: Image entrypoint (a container without ``command``) or program name -> local program.
    programs: dict[str, str] = field(default_factory=dict)
    #: Variables replaced whole, after resolution (e.g. a URL of a server started by the test).
    overrides: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._mount_cache: dict[tuple[str, str], list[tuple[str, Path]]] = {}

    # -- the container as the kubelet resolves it --------------------------------------------

    def _data(self, kind: str, name: str) -> dict[str, str] | None:
        found = self.cluster.get(kind, name, self.namespace, check=False)
        if found is None:
            return None
        data = found.get("data") or {}
        if kind == "secret":
            return {k: base64.b64decode(v).decode() for k, v in data.items()}
        return dict(data)

    def _value_from(self, source: dict, pod: dict) -> str | None:
        for kind, key in (("secret", "secretKeyRef"), ("configmap", "configMapKeyRef")):
            if key in source:
                ref = source[key]
                data = self._data(kind, ref["name"])
                if data is None or ref["key"] not in data:
                    if ref.get("optional"):
                        return None
                    raise RunnerError(
                        f"{kind} {ref['name']} key {ref['key']} missing (the kubelet would not start it)"
                    )
                return data[ref["key"]]
        if "fieldRef" in source:
            path = source["fieldRef"]["fieldPath"]
            fields = {
                "metadata.name": pod["metadata"]["name"],
                "metadata.namespace": self.namespace,
                "status.podIP": "127.0.0.1",
                "spec.nodeName": pod["spec"].get("nodeName", ""),
            }
            if path not in fields:
                raise RunnerError(f"fieldRef {path} is not supported by the runner")
            return fields[path]
        raise RunnerError(f"unsupported valueFrom {sorted(source)}")

    def environment(self, pod: dict, container: dict) -> dict[str, str]:
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            prefix = source.get("prefix", "")
            kind, ref = (
                ("configmap", source["configMapRef"])
                if "configMapRef" in source
                else ("secret", source["secretRef"])
            )
            data = self._data(kind, ref["name"])
            if data is None and not ref.get("optional"):
                raise RunnerError(f"{kind} {ref['name']} referenced by envFrom is missing")
            env.update({f"{prefix}{k}": v for k, v in (data or {}).items()})
        for variable in container.get("env", []):
            if "valueFrom" in variable:
                value = self._value_from(variable["valueFrom"], pod)
                if value is not None:
                    env[variable["name"]] = value
            else:
                env[variable["name"]] = expand(variable.get("value", ""), env)
        env.update({k: v for k, v in self.overrides.items() if k in env})
        return {k: self._translate(v, pod, container) for k, v in env.items()}

    # -- volumes ---------------------------------------------------------------------------------

    def volume_dir(self, pod: dict, name: str) -> Path:
        """The local directory of one of the Pod's volumes (made and filled on first use)."""
        volume = next((v for v in pod["spec"].get("volumes", []) if v["name"] == name), None)
        if volume is None:
            raise RunnerError(f"pod {pod['metadata']['name']} has no volume {name}")
        if "persistentVolumeClaim" in volume:
            claim = self.cluster.get("pvc", volume["persistentVolumeClaim"]["claimName"], self.namespace)
            path = self.workdir / f"pvc-{claim['metadata']['uid']}"
        elif "secret" in volume:
            path = self.workdir / f"secret-{pod['metadata']['uid']}-{name}"
            data = self._data("secret", volume["secret"]["secretName"]) or {}
            items = volume["secret"].get("items") or [{"key": k, "path": k} for k in data]
            path.mkdir(parents=True, exist_ok=True)
            for item in items:
                (path / item["path"]).write_text(data[item["key"]])
        elif "emptyDir" in volume:
            path = self.workdir / f"empty-{pod['metadata']['uid']}-{name}"
        elif "projected" in volume:
            # The ServiceAccount token volume (kube-api-access-*): a process that talks to the
            # apiserver gets the Pod's identity as a KUBECONFIG instead (PodBridge.as_service_account).
            path = self.workdir / f"projected-{pod['metadata']['uid']}-{name}"
        else:
            raise RunnerError(f"volume {name}: only PVC, Secret, emptyDir and projected volumes work")
        path.mkdir(parents=True, exist_ok=True)
        return path

    def claim_dir(self, claim_name: str) -> Path:
        """The local directory of a claim (as volume_dir gives it to the Pods mounting it)."""
        claim = self.cluster.get("pvc", claim_name, self.namespace)
        return self.workdir / f"pvc-{claim['metadata']['uid']}"

    def _mounts(self, pod: dict, container: dict) -> list[tuple[str, Path]]:
        key = (pod["metadata"]["uid"], container["name"])
        if key not in self._mount_cache:
            mounts = [
                (m["mountPath"], self.volume_dir(pod, m["name"])) for m in container.get("volumeMounts", [])
            ]
            self._mount_cache[key] = sorted(mounts, key=lambda m: -len(m[0]))
        return self._mount_cache[key]

    def _translate(self, value: str, pod: dict, container: dict) -> str:
        for rendered, local in self.addresses.items():
            value = value.replace(rendered, local)
        mounts = dict(self._mounts(pod, container))
        if not mounts:
            return value
        # One pass, so a local path (often under /tmp) is never translated again by a /tmp mount;
        # whole path components only (/var/tmp is not the /tmp mount).
        alternatives = "|".join(re.escape(mount) for mount in mounts)  # longest first
        pattern = rf"(?<![\w.~/-])(?:{alternatives})(?=/|$|[\s\"'?&;])"
        return re.sub(pattern, lambda m: str(mounts[m.group()]), value)

    # -- running ---------------------------------------------------------------------------------

    def container(self, pod: dict, name: str) -> dict:
        spec = pod["spec"]
        for container in spec.get("containers", []) + spec.get("initContainers", []):
            if container["name"] == name:
                return container
        raise RunnerError(f"pod {pod['metadata']['name']} has no container {name}")

    def argv(
        self, pod: dict, container: dict, env: dict[str, str], command: list[str] | None = None
    ) -> list[str]:
        if command is None:
            command = container.get("command") or []
            args = container.get("args", [])
            if not command:
                if not args and not self.programs.get(container["name"]):
                    raise RunnerError(f"container {container['name']}: no command and no entrypoint known")
                command = [self.programs.get(container["name"], "")]
        else:
            args = []
        parts = [self._translate(expand(part, env), pod, container) for part in [*command, *args]]
        program = self.programs.get(parts[0], parts[0])
        executable = shutil.which(program, path=str(Path(sys.executable).parent)) or shutil.which(program)
        if executable is None:
            raise RunnerError(f"{program} is not installed here")
        return [executable, *parts[1:]]

    def base_env(self) -> dict[str, str]:
        return {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(self.workdir)}

    def start(self, pod: dict, name: str, *, listen: Listen = lambda argv: argv) -> ManagedProcess:
        """A long-running container (a server), started in the background."""
        container = self.container(pod, name)
        env = self.environment(pod, container)
        argv = listen(self.argv(pod, container, env))
        process = ManagedProcess(
            f"pod-{pod['metadata']['name']}-{name}",
            argv,
            self.workdir,
            {**self.base_env(), **env},
            inherit_env=False,
        )
        return process.start()

    def run(self, pod: dict, name: str, *, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A container that runs to completion (an init container, a Job's), in the foreground."""
        container = self.container(pod, name)
        env = self.environment(pod, container)
        return subprocess.run(
            self.argv(pod, container, env),
            env={**self.base_env(), **env},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def probe(self, pod: dict, name: str, kind: str = "readinessProbe", *, listen: Listen = lambda a: a):
        """An exec probe of a container, run with the container's environment."""
        container = self.container(pod, name)
        command = container[kind]["exec"]["command"]
        env = self.environment(pod, container)
        return subprocess.run(
            listen(self.argv(pod, container, env, command)),
            env={**self.base_env(), **env},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
