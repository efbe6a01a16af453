"""Child processes with a log file each, a readiness probe and a clean stop."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessExitedError(RuntimeError):
    """A component died while something waited for it: waiting longer cannot help."""


def wait_until(check: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> object:
    """Polls `check` until it returns a truthy value; raises TimeoutError naming `what` otherwise."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except ProcessExitedError:
            raise
        except Exception as error:  # the component is not up yet; remember why for the message
            last_error = error
        else:
            if result:
                return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})")


def tcp_open(port: int) -> bool:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ManagedProcess:
    """One component: started with its log in `log_dir`, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log_dir: Path,
        env: dict[str, str] | None = None,
        *,
        inherit_env: bool = True,
        cwd: Path | None = None,
    ):
        self.name = name
        self.args = args
        self.log_path = log_dir / f"{name}.log"
        # inherit_env=False runs the program with exactly `env`, as a container would get it.
        self.env = {**os.environ, **(env or {})} if inherit_env else dict(env or {})
        self.cwd = cwd
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, detach: bool = False) -> ManagedProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            # A detached component (make dev) outlives this interpreter and is stopped by pid.
            start_new_session=detach,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, check: Callable[[], object], *, timeout: float = 60) -> None:
        def ready() -> object:
            if not self.running():
                raise ProcessExitedError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            return check()

        try:
            wait_until(ready, timeout=timeout, what=f"{self.name} to become ready")
        except TimeoutError as error:
            self.stop()  # one that never became ready must not outlive the caller
            raise TimeoutError(f"{error}\n--- {self.name} log tail ---\n{self.tail()}") from None

    def stop(self, timeout: float = 15) -> None:
        if not self.running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


def kill_pid(pid: int, timeout: float = 15) -> None:
    """Stops a detached component by pid (make dev-down)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
