"""What tests see of Kubernetes: the local control plane, or an existing cluster.

Set SHEPHERD_KUBECONFIG=/path/to/kubeconfig to run the suites against an existing cluster (a kind
cluster on a laptop, say) instead of starting the local control plane. Nothing else changes.
"""

from __future__ import annotations

import base64
import json
import subprocess
import uuid
from pathlib import Path

import kubernetes
import yaml

from .binaries import Toolset
from .controlplane import LocalControlPlane
from .processes import wait_until

# The upstream CRDs Shepherd writes to; the rest of what controller-gen made is not installed.
UPSTREAM_CRDS = (
    "monitoring.coreos.com_podmonitors.yaml",
    "monitoring.coreos.com_servicemonitors.yaml",
    "monitoring.coreos.com_prometheusrules.yaml",
    "keda.sh_scaledobjects.yaml",
    "keda.sh_triggerauthentications.yaml",
)
STORAGE_CLASS = "standard"


class CommandError(RuntimeError):
    pass


class Cluster:
    def __init__(
        self, tools: Toolset, kubeconfig: Path, workdir: Path, local: LocalControlPlane | None = None
    ):
        self.tools = tools
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.local = local
        self.crd_dir = tools.crd_dir
        self.api_client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self._namespaces: list[str] = []
        self._persistent_volumes = 0

    @property
    def audit_log(self) -> Path | None:
        """The apiserver's JSON audit log (one line per request), on the local control plane only."""
        return self.local.audit_log if self.local else None

    def _command(
        self, binary: Path, args: tuple[str, ...], input: str | None, check: bool, kubeconfig: Path | None
    ):
        result = subprocess.run(
            [str(binary), f"--kubeconfig={kubeconfig or self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
        )
        if check and result.returncode != 0:
            raise CommandError(
                f"{binary.name} {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None
    ):
        return self._command(self.tools.kubectl, args, input, check, kubeconfig)

    def helm(self, *args: str, input: str | None = None, check: bool = True, kubeconfig: Path | None = None):
        return self._command(self.tools.helm, args, input, check, kubeconfig)

    def apply(self, *documents: dict, namespace: str | None = None) -> None:
        args = ["apply", "--server-side", "--field-manager=shepherd-tests", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        self.kubectl(*args, input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)}))

    def get(
        self, kind: str, name: str | None = None, namespace: str | None = None, check: bool = True
    ) -> dict | None:
        args = ["get", kind, *([name] if name else []), "-o", "json"]
        if namespace:
            args += ["-n", namespace]
        result = self.kubectl(*args, check=check)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        # Pods need the namespace's default ServiceAccount, which the controller-manager creates.
        wait_until(
            lambda: self.kubectl("get", "serviceaccount", "default", "-n", name, check=False).returncode == 0,
            timeout=30,
            what=f"ServiceAccount default in {name}",
        )
        self._namespaces.append(name)
        return name

    def delete_namespaces(self) -> None:
        for name in self._namespaces:
            self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)

    def kubeconfig_for_serviceaccount(self, namespace: str, name: str) -> Path:
        """A kubeconfig that authenticates as the ServiceAccount (a bound token from TokenRequest)."""
        token = self.kubectl("create", "token", name, "-n", namespace, "--duration=4h").stdout.strip()
        config = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c for c in config["contexts"] if c["name"] == config["current-context"])["context"]
        cluster = dict(next(c for c in config["clusters"] if c["name"] == context["cluster"])["cluster"])
        if "certificate-authority" in cluster:  # inline it so the file stands alone
            data = Path(cluster.pop("certificate-authority")).read_bytes()
            cluster["certificate-authority-data"] = base64.b64encode(data).decode()
        user = f"system:serviceaccount:{namespace}:{name}"
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "cluster", "cluster": cluster}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [
                {"name": "sa", "context": {"cluster": "cluster", "user": user, "namespace": namespace}}
            ],
            "current-context": "sa",
        }
        path = self.workdir / f"sa-{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def apply_crds(self, *paths: Path) -> None:
        """Applies CRD files and waits until the apiserver serves them (Established)."""
        names = []
        for path in paths:
            self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
            names += [doc["metadata"]["name"] for doc in yaml.safe_load_all(path.read_text()) if doc]

        def established() -> bool:
            for name in names:
                crd = self.get("crd", name, check=False) or {}
                conditions = crd.get("status", {}).get("conditions") or []
                if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                    return False
            return True

        wait_until(established, timeout=60, what=f"CRDs {names} to be Established")

    def install_upstream_crds(self) -> None:
        """Installs the real prometheus-operator and KEDA CRDs (generated from upstream Go types)."""
        self.apply_crds(*[self.crd_dir / name for name in UPSTREAM_CRDS])

    def ensure_persistent_volumes(self, count: int) -> None:
        """Static provisioning, as on a cluster without a dynamic provisioner: a default
        StorageClass and a pool of PersistentVolumes that the real PV controller binds claims to."""
        if count <= self._persistent_volumes:
            return
        storage_class = {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
            },
            "provisioner": "kubernetes.io/no-provisioner",
            "volumeBindingMode": "Immediate",
            "reclaimPolicy": "Delete",
        }
        volumes = [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"pv-{index:04d}"},
                "spec": {
                    "capacity": {"storage": "100Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": STORAGE_CLASS,
                    "hostPath": {"path": f"/tmp/shepherd-pv/{index:04d}"},
                },
            }
            for index in range(self._persistent_volumes, count)
        ]
        self.apply(storage_class, *volumes)
        self._persistent_volumes = count

    def logs_tail(self) -> str:
        return self.local.logs_tail() if self.local else "(existing cluster: no component logs)"
