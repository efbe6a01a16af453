"""A real redis-server on loopback, restartable on the same port and data dir (AOF on)."""

from __future__ import annotations

from pathlib import Path

import redis

from .processes import ManagedProcess, free_port


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
