"""A real Prometheus on loopback whose scrape targets and rule files tests set at run time."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import yaml

from .processes import ManagedProcess, free_port, wait_until

SCRAPE_INTERVAL = "1s"


class PrometheusServer:
    def __init__(self, binary: Path, workdir: Path, *, detach: bool = False):
        self.binary = binary
        self.workdir = workdir
        self.detach = detach
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config_path = workdir / "prometheus.yml"
        self.targets_path = workdir / "targets.json"
        self.rule_files: list[str] = []
        self.process: ManagedProcess | None = None

    def _write_config(self) -> None:
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
            "rule_files": self.rule_files,
            "scrape_configs": [
                {
                    "job_name": "targets",
                    "scrape_timeout": SCRAPE_INTERVAL,
                    # The operator exports series that carry namespace/agentdeployment themselves.
                    "honor_labels": True,
                    "file_sd_configs": [{"files": [str(self.targets_path)], "refresh_interval": "1s"}],
                }
            ],
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    @classmethod
    def attach(cls, binary: Path, workdir: Path, url: str) -> PrometheusServer:
        """The server another process started in ``workdir`` (make dev's), to set its targets and rules."""
        server = cls(binary, workdir)
        server.url, server.port = url, int(url.rsplit(":", 1)[1])
        return server

    def start(self) -> PrometheusServer:
        if not self.targets_path.exists():
            self.targets_path.write_text("[]")
        self._write_config()
        self.process = ManagedProcess(
            f"prometheus-{self.port}",
            [
                str(self.binary),
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--web.enable-admin-api",
                "--log.level=warn",
            ],
            self.workdir,
        ).start(detach=self.detach)
        self.process.wait_ready(lambda: httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200)
        return self

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def set_targets(self, groups: list[dict]) -> None:
        """file_sd groups: [{"targets": ["127.0.0.1:PORT"], "labels": {...}}]; picked up within a second."""
        tmp = self.targets_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups))
        tmp.replace(self.targets_path)

    def set_rule_files(self, paths: list[Path | str]) -> None:
        self.rule_files = [str(p) for p in paths]
        self._write_config()
        response = httpx.post(f"{self.url}/-/reload", timeout=10)
        response.raise_for_status()
        expected = {str(Path(p).resolve()) for p in self.rule_files}

        def loaded() -> bool:
            groups = self.api("rules")["groups"]
            return expected <= {str(Path(g["file"]).resolve()) for g in groups}

        if expected:
            wait_until(loaded, timeout=30, what=f"Prometheus to load {sorted(expected)}")

    def api(self, endpoint: str, **params: str) -> dict:
        response = httpx.get(f"{self.url}/api/v1/{endpoint}", params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {endpoint} {params}: {body.get('error', response.text)}")
        return body["data"]

    def query(self, promql: str) -> list[dict]:
        return self.api("query", query=promql, time=str(time.time()))["result"]

    def query_range(self, promql: str, start: float, end: float, step: float = 1) -> list[dict]:
        """A range query, as a Grafana panel runs it over the board's time range."""
        return self.api("query_range", query=promql, start=str(start), end=str(end), step=str(step))["result"]

    def alerts(self) -> list[dict]:
        return self.api("alerts")["alerts"]

    def targets(self) -> list[dict]:
        return self.api("targets")["activeTargets"]

    def wait_for_query(self, promql: str, *, timeout: float = 60) -> list[dict]:
        return wait_until(
            lambda: self.query(promql), timeout=timeout, what=f"PromQL {promql!r} to return data"
        )
