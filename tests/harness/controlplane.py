"""A real Kubernetes control plane on loopback: etcd, kube-apiserver (TLS, client certificates,
RBAC, audit log), kube-controller-manager, kube-scheduler and kwok, which plays the kubelet for a
few fake nodes so that scheduled Pods become Running and Ready.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .binaries import Toolset
from .kubeconfig import write_kubeconfig
from .pki import CertificateAuthority, service_account_keys
from .processes import ManagedProcess, free_port, tcp_open, wait_until

FAKE_NODES = 3
SERVICE_CIDR = "10.96.0.0/16"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata"}],
}


def fake_node(name: str) -> dict:
    """A Node that kwok manages (by its annotation); no taint, so ordinary Pods land on it."""
    capacity = {"cpu": "256", "memory": "2Ti", "pods": "1000", "ephemeral-storage": "10Ti"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": f"zone-{name[-1]}",
                "type": "kwok",
            },
        },
        "status": {"allocatable": capacity, "capacity": capacity},
    }


@dataclass
class LocalControlPlane:
    tools: Toolset
    workdir: Path
    detach: bool = False
    processes: list[ManagedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.pki_dir = self.workdir / "pki"
        self.log_dir = self.workdir / "logs"
        for directory in (self.pki_dir, self.log_dir):
            directory.mkdir(parents=True, exist_ok=True)
        self.apiserver_port = free_port()
        self.server = f"https://127.0.0.1:{self.apiserver_port}"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.audit_log = self.log_dir / "audit.log"

    # -- start ------------------------------------------------------------------------------

    def start(self) -> LocalControlPlane:
        ca = CertificateAuthority(self.pki_dir)
        self._ca = ca
        serving = ca.issue(
            "apiserver",
            common_name="kube-apiserver",
            server_names=("127.0.0.1", "localhost", "kubernetes", "kubernetes.default.svc", "10.96.0.1"),
        )
        sa = service_account_keys(self.pki_dir)
        admin = ca.issue("admin", common_name="shepherd-admin", organization="system:masters")
        write_kubeconfig(
            self.kubeconfig,
            server=self.server,
            ca=ca.cert_path,
            user="admin",
            client_cert=admin.cert,
            client_key=admin.key,
        )
        etcd_url = self._start_etcd()
        self._start_apiserver(etcd_url, ca, serving, sa)
        self._start_controller_manager(ca, sa)
        self._start_scheduler(ca)
        self._create_fake_nodes()
        self._start_kwok()
        self._wait_nodes_ready()
        return self

    def _run(self, name: str, args: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, args, self.log_dir).start(detach=self.detach)
        self.processes.append(process)
        return process

    def _start_etcd(self) -> str:
        client, peer = free_port(), free_port()
        url = f"http://127.0.0.1:{client}"
        etcd = self._run(
            "etcd",
            [
                str(self.tools.etcd),
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                # Test data is disposable; fsync would make every write wait on the disk.
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )
        etcd.wait_ready(lambda: httpx.get(f"{url}/health", timeout=1).json().get("health") == "true")
        return url

    def _start_apiserver(self, etcd_url: str, ca: CertificateAuthority, serving, sa) -> None:
        policy = self.workdir / "audit-policy.json"
        policy.write_text(json.dumps(AUDIT_POLICY))
        apiserver = self._run(
            "kube-apiserver",
            [
                str(self.tools.kube_apiserver),
                f"--etcd-servers={etcd_url}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={serving.cert}",
                f"--tls-private-key-file={serving.key}",
                f"--client-ca-file={ca.cert_path}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={sa.cert}",
                f"--service-account-signing-key-file={sa.key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                # The "kubernetes" Service cannot point at a loopback address; nothing in-cluster needs it.
                "--endpoint-reconciler-type=none",
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-maxsize=0",
                "--v=0",
            ],
        )
        apiserver.wait_ready(lambda: self._get("/readyz").status_code == 200, timeout=120)

    def _component_kubeconfig(self, name: str, user: str) -> Path:
        pair = self._ca.issue(name, common_name=user)
        return write_kubeconfig(
            self.workdir / f"{name}.kubeconfig",
            server=self.server,
            ca=self._ca.cert_path,
            user=user,
            client_cert=pair.cert,
            client_key=pair.key,
        )

    def _start_controller_manager(self, ca: CertificateAuthority, sa) -> None:
        kubeconfig = self._component_kubeconfig("controller-manager", "system:kube-controller-manager")
        self._run(
            "kube-controller-manager",
            [
                str(self.tools.kube_controller_manager),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                # No front proxy here: do not look up request-header CA settings that do not exist.
                "--authentication-skip-lookup=true",
                f"--service-account-private-key-file={sa.key}",
                f"--root-ca-file={ca.cert_path}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                # Fast reaction in tests: the defaults are tuned for real clusters.
                "--concurrent-deployment-syncs=10",
                "--concurrent-replicaset-syncs=10",
                "--concurrent-gc-syncs=40",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )

    def _start_scheduler(self, ca: CertificateAuthority) -> None:
        kubeconfig = self._component_kubeconfig("scheduler", "system:kube-scheduler")
        self._run(
            "kube-scheduler",
            [
                str(self.tools.kube_scheduler),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                # No front proxy here: do not look up request-header CA settings that do not exist.
                "--authentication-skip-lookup=true",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--kube-api-qps=200",
                "--kube-api-burst=400",
            ],
        )

    def _start_kwok(self) -> None:
        stages = self.tools.crd_dir.parent / "kwok-stages.yaml"
        self._run(
            "kwok",
            [
                str(self.tools.kwok),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={stages}",
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
                "--cidr=10.244.0.1/16",
                "--node-ip=127.0.0.1",
                "--node-lease-duration-seconds=40",
            ],
        )

    def _create_fake_nodes(self) -> None:
        nodes = {
            "apiVersion": "v1",
            "kind": "List",
            "items": [fake_node(f"kwok-node-{i}") for i in range(FAKE_NODES)],
        }
        self.kubectl("apply", "-f", "-", input=json.dumps(nodes))

    def _wait_nodes_ready(self) -> None:
        def all_ready() -> bool:
            nodes = json.loads(self.kubectl("get", "nodes", "-o", "json").stdout)["items"]
            ready = [
                n
                for n in nodes
                for c in n.get("status", {}).get("conditions", [])
                if c["type"] == "Ready" and c["status"] == "True"
            ]
            return len(ready) == FAKE_NODES

        wait_until(all_ready, timeout=60, what="kwok nodes to become Ready")

    # -- use --------------------------------------------------------------------------------

    def _get(self, path: str) -> httpx.Response:
        context = ssl.create_default_context(cafile=str(self._ca.cert_path))
        context.load_cert_chain(str(self.pki_dir / "admin.crt"), str(self.pki_dir / "admin.key"))
        return httpx.get(f"{self.server}{path}", verify=context, timeout=2)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.tools.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
        )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def logs_tail(self, lines: int = 30) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.tail(lines)}" for p in self.processes)

    def apiserver_up(self) -> bool:
        return tcp_open(self.apiserver_port)
