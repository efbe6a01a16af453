"""Redis, Prometheus and promtool are the real programs."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import prometheus_client
import pytest
import redis

from tests.harness.binaries import Toolset
from tests.harness.prometheus import PrometheusServer


def test_redis_answers(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    assert client.ping() is True
    client.set("harness:key", "value")
    assert client.get("harness:key") == b"value"
    assert client.info("server")["redis_version"].startswith("7.")


def test_dedicated_redis_keeps_data_across_a_kill(redis_factory) -> None:
    server = redis_factory()
    client = redis.Redis.from_url(server.url)
    client.set("durable", "yes")
    client.execute_command("BGREWRITEAOF")  # the AOF is fsynced every second; force it to disk now
    server.kill()
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(server.url, socket_timeout=1).ping()
    server.start()
    assert redis.Redis.from_url(server.url).get("durable") == b"yes"


@pytest.fixture
def scraped_target(free_port: int):
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter(
        "harness_events", "Events seen by the harness target", registry=registry
    )
    counter.inc(42)
    server, thread = prometheus_client.start_http_server(free_port, addr="127.0.0.1", registry=registry)
    yield f"127.0.0.1:{free_port}"
    server.shutdown()
    thread.join()


def test_prometheus_scrapes_a_target_and_answers_queries(
    prometheus: PrometheusServer, scraped_target: str
) -> None:
    prometheus.set_targets([{"targets": [scraped_target], "labels": {"agentdeployment": "harness"}}])
    result = prometheus.wait_for_query('harness_events_total{agentdeployment="harness"}')
    assert float(result[0]["value"][1]) == 42.0
    assert result[0]["metric"]["instance"] == scraped_target


def test_prometheus_loads_rule_files(
    prometheus: PrometheusServer, scraped_target: str, tmp_path: Path
) -> None:
    prometheus.set_targets([{"targets": [scraped_target], "labels": {"agentdeployment": "harness"}}])
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        textwrap.dedent("""\
        groups:
          - name: harness
            rules:
              - record: shepherd:harness_events:doubled
                expr: 2 * harness_events_total
        """)
    )
    prometheus.set_rule_files([rules])
    result = prometheus.wait_for_query("shepherd:harness_events:doubled")
    assert float(result[0]["value"][1]) == 84.0


def test_promtool_checks_rules(tools: Toolset, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("groups: [{name: g, rules: [{record: 'shepherd:x', expr: 'vector(1)'}]}]\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups: [{name: g, rules: [{record: 'shepherd:x', expr: 'sum(('}]}]\n")
    ok = subprocess.run([tools.promtool, "check", "rules", good], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = subprocess.run([tools.promtool, "check", "rules", bad], capture_output=True, text=True)
    assert failed.returncode != 0
    assert "parse error" in (failed.stdout + failed.stderr)
