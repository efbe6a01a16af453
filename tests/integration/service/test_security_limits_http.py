"""Rate limits (real Redis), body-size limit, security headers and CORS on the real app."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import jwt
from agent_service.state.keys import ServiceKeys

from tests.fakes.app_client import app_client
from tests.fakes.prom import scrape

SECRET = "integration-secret-0123456789abcdef"


def as_user(user: str, tenant: str = "acme") -> dict[str, str]:
    token = jwt.encode(
        {"sub": user, "tenant": tenant, "exp": int(time.time()) + 300}, SECRET, algorithm="HS256"
    )
    return {"Authorization": f"Bearer {token}"}


async def test_per_user_limit_counts_down_then_refuses_with_retry_after(redis_url: str) -> None:
    async with app_client(redis_url, auth_jwt_secret=SECRET, rate_limit_user_per_minute=3) as (app, client):
        before = (await scrape(app)).value("agent_rate_limited_total", scope="user")
        remaining = []
        for _ in range(3):
            response = await client.get("/assistants/agent", headers=as_user("alice"))
            assert response.status_code == 200
            assert response.headers["x-ratelimit-limit"] == "3"
            assert 0 < int(response.headers["x-ratelimit-reset"]) <= 60
            remaining.append(response.headers["x-ratelimit-remaining"])
        assert remaining == ["2", "1", "0"]

        refused = await client.get("/assistants/agent", headers=as_user("alice"))
        assert refused.status_code == 429
        assert refused.headers["x-ratelimit-remaining"] == "0"
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert (await client.get("/assistants/agent", headers=as_user("bob"))).status_code == 200, "per user"
        assert (await scrape(app)).value("agent_rate_limited_total", scope="user") == before + 1


async def test_tenant_limit_is_shared_by_its_users_and_replicas(redis_url: str) -> None:
    settings = {
        "auth_jwt_secret": SECRET,
        "rate_limit_tenant_per_minute": 2,
        "redis_key_prefix": "shared-replicas",
    }
    async with (
        app_client(redis_url, **settings) as (app, replica_a),
        app_client(redis_url, **settings) as (_, replica_b),
    ):
        await app.state.runtime.redis.delete(
            ServiceKeys("shared-replicas").control("ratelimit", "tenant", "globex")
        )
        before = (await scrape(app)).value("agent_rate_limited_total", scope="tenant")
        assert (await replica_a.get("/assistants/agent", headers=as_user("u1", "globex"))).status_code == 200
        assert (await replica_b.get("/assistants/agent", headers=as_user("u2", "globex"))).status_code == 200
        refused = await replica_a.get("/assistants/agent", headers=as_user("u3", "globex"))
        assert refused.status_code == 429
        assert (await replica_b.get("/assistants/agent", headers=as_user("u1", "initech"))).status_code == 200
        assert (await scrape(app)).value("agent_rate_limited_total", scope="tenant") == before + 1


async def test_limits_fail_open_when_redis_is_down(free_port: int) -> None:
    dead_redis = f"redis://127.0.0.1:{free_port}/0"
    async with app_client(dead_redis, rate_limit_user_per_minute=1, redis_timeout_seconds=0.5) as (
        app,
        client,
    ):
        before = (await scrape(app)).value("agent_fail_open_total", component="ratelimit")
        responses = [await client.get("/assistants/agent") for _ in range(2)]
        assert [r.status_code for r in responses] == [200, 200]
        assert "x-ratelimit-limit" not in responses[0].headers
        assert (await scrape(app)).value("agent_fail_open_total", component="ratelimit") == before + 2


async def test_probes_and_metrics_are_never_rate_limited(redis_url: str) -> None:
    async with app_client(redis_url, rate_limit_user_per_minute=1) as (_, client):
        statuses = {(await client.get(path)).status_code for path in ["/healthz", "/metrics"] * 3}
        assert statuses == {200}


async def test_oversized_bodies_get_413(redis_url: str) -> None:
    async with app_client(redis_url, max_request_body_bytes=1000) as (app, client):
        declared = await client.post(
            "/threads/search", content=b"{" + b" " * 2000 + b"}", headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413

        async def chunks() -> AsyncIterator[bytes]:
            yield b'{"metadata": {"k": "'
            for _ in range(20):
                yield b"x" * 100
            yield b'"}}'

        streamed = await client.post(
            "/threads/search", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert streamed.headers["x-request-id"], "refused by a layer inside the request-id middleware"

        small = await client.post("/threads/search", json={"limit": 1})
        assert small.status_code == 200
        metrics = await scrape(app)
        assert (
            metrics.value("agent_http_requests_total", route="/threads/search", method="POST", code="413")
            == 1
        )


async def test_security_headers_on_success_and_errors(redis_url: str) -> None:
    async with app_client(redis_url) as (_, client):
        for response in (await client.get("/assistants/agent"), await client.get("/no/such/route")):
            assert response.headers["x-content-type-options"] == "nosniff"
            assert response.headers["x-frame-options"] == "DENY"
            assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
            assert response.headers["referrer-policy"] == "no-referrer"
            assert "strict-transport-security" not in response.headers, "plain HTTP gets no HSTS"


async def test_cors_allows_configured_origins_only(redis_url: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with app_client(redis_url, cors_allow_origins="https://app.example.com") as (_, client):
        allowed = await client.options("/threads", headers={"Origin": "https://app.example.com", **preflight})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"

        denied = await client.options("/threads", headers={"Origin": "https://evil.example", **preflight})
        assert denied.status_code == 400
        assert "access-control-allow-origin" not in denied.headers

        simple = await client.get("/assistants/agent", headers={"Origin": "https://app.example.com"})
        assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()

    async with app_client(redis_url) as (_, client):
        no_cors = await client.get("/assistants/agent", headers={"Origin": "https://app.example.com"})
        assert "access-control-allow-origin" not in no_cors.headers
