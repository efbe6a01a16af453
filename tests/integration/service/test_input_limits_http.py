"""Run input limits, docs behind auth and a full Redis, on the real app with real Redis."""

from __future__ import annotations

import time

import jwt
import pytest
import redis

from tests.fakes.app_client import app_client

SECRET = "integration-secret-0123456789abcdef"
LIMITS = {"run_input_max_string_chars": 50, "run_input_max_depth": 4}


def _run(input_: object) -> dict:
    return {"assistant_id": "agent", "input": input_}


def _detail(response) -> str:
    assert response.status_code == 422, response.text
    return " ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in response.json()["detail"])


async def test_a_long_message_is_refused_naming_the_field(redis_url: str) -> None:
    async with app_client(redis_url, **LIMITS) as (_, client):
        body = _run({"messages": [{"role": "user", "content": "x" * 51}]})
        detail = _detail(await client.post("/runs/wait", json=body))
    assert "body.input" in detail
    assert "input.messages[0].content: 51 characters, more than the limit of 50" in detail
    assert "RUN_INPUT_MAX_STRING_CHARS" in detail


async def test_deep_nesting_is_refused_naming_the_limit(redis_url: str) -> None:
    async with app_client(redis_url, **LIMITS) as (_, client):
        deep = {"messages": [{"content": {"a": {"b": "too deep"}}}]}  # depth 5
        detail = _detail(await client.post("/runs", json=_run(deep)))
    assert "input.messages[0].content.a: nested deeper than the limit of 4 (RUN_INPUT_MAX_DEPTH)" in detail


@pytest.mark.parametrize(
    ("text", "code"), [("bell\x07", "U+0007"), ("esc\x1b[2J", "U+001B"), ("nul\x00", "U+0000")]
)
async def test_control_characters_are_refused(redis_url: str, text: str, code: str) -> None:
    async with app_client(redis_url, **LIMITS) as (_, client):
        detail = _detail(await client.post("/runs", json=_run({"messages": [{"content": text}]})))
    assert f"input.messages[0].content: control character {code} is not allowed" in detail


async def test_keys_and_commands_are_checked_too(redis_url: str) -> None:
    async with app_client(redis_url, **LIMITS) as (_, client):
        key = _detail(await client.post("/runs", json=_run({"bad\x01key": 1})))
        resume = _detail(
            await client.post("/runs", json={"assistant_id": "agent", "command": {"resume": "y" * 60}})
        )
    assert "input (a key): control character U+0001" in key
    assert "body.command.resume" in resume


async def test_within_limits_tabs_and_newlines_run(redis_url: str) -> None:
    async with app_client(redis_url, **LIMITS) as (_, client):
        thread = (await client.post("/threads", json={})).json()["thread_id"]
        body = _run({"messages": [{"role": "user", "content": "line one\n\tline two"}]})
        response = await client.post(f"/threads/{thread}/runs/wait", json=body)
    assert response.status_code == 200, response.text


async def test_state_updates_are_bounded(redis_url: str) -> None:
    async with app_client(redis_url, **LIMITS) as (_, client):
        thread = (await client.post("/threads", json={})).json()["thread_id"]
        update = {"values": {"messages": [{"role": "user", "content": "z" * 51}]}}
        detail = _detail(await client.post(f"/threads/{thread}/state", json=update))
    assert "values.messages[0].content: 51 characters" in detail


def _token() -> dict[str, str]:
    claims = {"sub": "alice", "tenant": "acme", "exp": int(time.time()) + 300}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
async def test_docs_follow_the_api_auth(redis_url: str, path: str) -> None:
    async with app_client(redis_url, auth_jwt_secret=SECRET) as (_, client):
        anonymous = await client.get(path)
        signed_in = await client.get(path, headers=_token())
        assert (await client.get("/redoc")).status_code == 404
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert signed_in.status_code == 200
    if path == "/openapi.json":
        assert "/threads" in signed_in.json()["paths"]


async def test_docs_are_open_when_auth_is_off(redis_url: str) -> None:
    async with app_client(redis_url) as (_, client):
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/docs")).status_code == 200


async def test_a_full_redis_answers_503_with_retry_after(redis_factory) -> None:
    """maxmemory with noeviction (the managed Redis' setting): writes are refused, not data evicted."""
    server = redis_factory()
    admin = redis.Redis.from_url(server.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    try:
        async with app_client(server.url, redis_retry_after_seconds=9) as (_, client):
            response = await client.post("/threads", json={})
        assert response.status_code == 503
        assert response.headers["retry-after"] == "9"
        assert "full" in response.json()["detail"]
    finally:
        admin.config_set("maxmemory", 0)
