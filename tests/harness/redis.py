"""A real redis-server on loopback, restartable on the same port and data dir (AOF on)."""

from __future__ import annotations

import random
from pathlib import Path

import redis

from .processes import ManagedProcess, free_port, tcp_open, wait_until


class RedisServer:
    def __init__(self, binary: Path, workdir: Path, *, detach: bool = False):
        self.binary = binary
        self.workdir = workdir
        self.detach = detach
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.data_dir = workdir / f"redis-{self.port}"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.process: ManagedProcess | None = None

    def start(self) -> RedisServer:
        self.process = ManagedProcess(
            f"redis-{self.port}",
            [
                str(self.binary),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.data_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
            self.workdir,
        ).start(detach=self.detach)
        self.process.wait_ready(lambda: redis.Redis.from_url(self.url, socket_timeout=1).ping(), timeout=30)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def kill(self) -> None:
        """Stops it abruptly (SIGKILL), as a crashed or evicted Redis would go."""
        if self.process and self.process.running():
            self.process.process.kill()
            self.process.process.wait()


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too; Redis refuses ports above 55535."""
    for _ in range(100):
        port = random.randint(20000, 55535)
        if not tcp_open(port) and not tcp_open(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


class RedisClusterServers:
    """Three redis-server processes as one Redis Cluster (three masters, no replicas), on loopback.

    Slots are assigned and the nodes introduced with plain commands (CLUSTER ADDSLOTSRANGE, MEET),
    as redis-cli --cluster create would; ``url`` names the first node (clients discover the rest)."""

    SLOTS = ((0, 5460), (5461, 10922), (10923, 16383))

    def __init__(self, binary: Path, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        self.ports = [_cluster_port() for _ in self.SLOTS]
        self.url = f"redis://127.0.0.1:{self.ports[0]}"
        self.processes: list[ManagedProcess] = []

    def start(self) -> RedisClusterServers:
        for port in self.ports:
            data = self.workdir / f"cluster-{port}"
            data.mkdir(parents=True, exist_ok=True)
            args = [str(self.binary), "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data)]
            args += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf"]
            args += ["--cluster-node-timeout", "5000", "--appendonly", "yes", "--save", ""]
            process = ManagedProcess(f"redis-cluster-{port}", args, self.workdir).start()
            process.wait_ready(lambda p=port: redis.Redis(port=p, socket_timeout=1).ping(), timeout=30)
            self.processes.append(process)
        nodes = [redis.Redis(port=p, socket_timeout=5) for p in self.ports]
        for node, (first, last) in zip(nodes, self.SLOTS, strict=True):
            node.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        wait_until(
            lambda: (
                all(b"cluster_state:ok" in n.execute_command("CLUSTER", "INFO") for n in nodes)
                and all(len(n.execute_command("CLUSTER", "NODES").splitlines()) == 3 for n in nodes)
            ),
            timeout=60,
            what="the Redis Cluster to form",
        )
        return self

    def stop(self) -> None:
        for process in self.processes:
            process.stop()
