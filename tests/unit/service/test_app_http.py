"""The app's HTTP contract without processes: probes, error mapping and input validation."""

from __future__ import annotations

from types import SimpleNamespace

import httpx
import pytest
import redis.exceptions
from agent_service.app import create_app
from agent_service.settings import Settings


class DownRedis:
    async def ping(self):
        raise redis.exceptions.ConnectionError("connection refused")


class UpRedis:
    async def ping(self):
        return True


class DownThreads:
    async def create(self, *args, **kwargs):
        raise redis.exceptions.ConnectionError("connection refused")

    async def get(self, thread_id):
        raise redis.exceptions.TimeoutError("timed out")


def _client(redis_client, *, draining=False, threads=None) -> httpx.AsyncClient:
    settings = Settings(redis_retry_after_seconds=7)
    app = create_app(settings)
    # The lifespan is not run: the runtime is a stand-in with only what these routes touch.
    app.state.runtime = SimpleNamespace(
        settings=settings,
        redis=redis_client,
        engine=SimpleNamespace(draining=draining),
        threads=threads or DownThreads(),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_liveness_does_not_depend_on_redis():
    async with _client(DownRedis()) as client:
        response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.parametrize(
    ("redis_client", "draining", "status", "redis_check"),
    [
        (UpRedis(), False, 200, "ok"),
        (DownRedis(), False, 503, "unreachable: ConnectionError"),
        (UpRedis(), True, 503, "ok"),
    ],
)
async def test_readiness_needs_redis_and_not_draining(redis_client, draining, status, redis_check):
    async with _client(redis_client, draining=draining) as client:
        response = await client.get("/readyz")
    assert response.status_code == status
    assert response.json()["checks"] == {"graph": "ok", "draining": draining, "redis": redis_check}


@pytest.mark.parametrize(("method", "path"), [("POST", "/threads"), ("GET", "/threads/t-1")])
async def test_redis_down_is_a_503_with_retry_after_not_a_500(method, path):
    async with _client(DownRedis()) as client:
        response = await client.request(method, path, json={})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "7"
    assert "Redis" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "location"),
    [
        ({"metadata": []}, ["body", "metadata"]),
        ({"if_exists": "maybe"}, ["body", "if_exists"]),
        ({"thread_id": ""}, ["body", "thread_id"]),
        # JSON integers have no bound; stored ones (orjson, msgpack) do: a 422, not a 500 (fuzz find).
        ({"metadata": {"a": [{"b": -(2**115)}]}}, ["body", "metadata"]),
    ],
)
async def test_malformed_bodies_are_422_naming_the_field(body, location):
    async with _client(UpRedis()) as client:
        response = await client.post("/threads", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == location


async def test_a_run_input_with_an_unstorable_integer_is_422():
    body = {"assistant_id": "agent", "input": {"messages": [], "n": 2**64}}
    async with _client(UpRedis()) as client:
        response = await client.post("/runs/wait", json=body)
    assert response.status_code == 422
    assert "does not fit in 64 bits" in response.json()["detail"][0]["msg"]


async def test_openapi_has_stable_operation_ids_for_the_sdk_surface():
    async with _client(UpRedis()) as client:
        document = (await client.get("/openapi.json")).json()
    operation_ids = [op["operationId"] for path in document["paths"].values() for op in path.values()]
    assert len(operation_ids) == len(set(operation_ids))
    assert {
        "search_assistants",
        "get_assistant_graph",
        "create_thread",
        "search_threads",
        "get_thread_state",
        "get_thread_history",
        "update_thread_state",
        "copy_thread",
        "stream_run",
        "wait_run",
        "join_run",
        "cancel_run",
        "stream_stateless_run",
        "liveness",
        "readiness",
    } <= set(operation_ids)
