"""Fixtures shared by all tiers; see docs/TEST-HARNESS.md for the contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import components
from tests.harness.binaries import Toolset, toolset
from tests.harness.cluster import Cluster
from tests.harness.processes import free_port as _free_port
from tests.harness.prometheus import PrometheusServer
from tests.harness.redis import RedisClusterServers, RedisServer

TESTS = Path(__file__).parent
# Components whose log tails are attached to the report of a failing test that used them.
_LOG_SOURCES: dict[str, object] = {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        tier = Path(item.fspath).relative_to(TESTS).parts[0]
        if tier in ("integration", "e2e"):
            item.add_marker(getattr(pytest.mark, tier))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    report = yield
    if report.failed:
        for name in item.fixturenames:
            source = _LOG_SOURCES.get(name)
            if source is not None:
                report.sections.append((f"{name} component logs (tail)", source()))
    return report


@pytest.fixture(scope="session")
def tools() -> Toolset:
    return toolset()


@pytest.fixture(scope="session")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = components.start_cluster(tmp_path_factory.mktemp("kube"))
    _LOG_SOURCES["kube"] = cluster.logs_tail
    yield cluster
    cluster.delete_namespaces()
    if cluster.local:
        cluster.local.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = components.start_redis(tmp_path_factory.mktemp("redis"))
    _LOG_SOURCES["redis_url"] = server.process.tail
    yield server.url
    server.stop()


@pytest.fixture
def redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[callable]:
    started: list[RedisServer] = []

    def start() -> RedisServer:
        server = components.start_redis(tmp_path_factory.mktemp("redis-dedicated"))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory, tools: Toolset) -> Iterator[str]:
    """A real three-master Redis Cluster (``redis-server --cluster-enabled``) shared by the session."""
    cluster = RedisClusterServers(tools.redis_server, tmp_path_factory.mktemp("redis-cluster")).start()
    _LOG_SOURCES["redis_cluster_url"] = cluster.processes[0].tail
    yield cluster.url
    cluster.stop()


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    server = components.start_prometheus(tmp_path_factory.mktemp("prom"))
    _LOG_SOURCES["prometheus"] = server.process.tail
    yield server
    server.stop()


@pytest.fixture
def free_port() -> int:
    return _free_port()
