"""Erasure and export against a live agent-service (auth on) and a real Redis: every thread of a
user or a tenant is exported as streamed JSON (checkpoints, writes, runs, event logs) and deleted,
which a SCAN of Redis confirms; the admin role is required; bad input is a 422 naming the field."""

from __future__ import annotations

import time

import httpx
import jwt
import orjson
import pytest
import redis

from tests.integration.service.redis_scan import mentions

SECRET = "erasure-tests-signing-secret-of-32-bytes"
QUESTION = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}}


def _headers(user: str, tenant: str, *roles: str) -> dict[str, str]:
    claims = {"sub": user, "tenant": tenant, "roles": list(roles), "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


def _conversation(http: httpx.Client, headers: dict[str, str], turns: int = 2) -> tuple[str, list[str]]:
    thread_id = http.post("/threads", json={}, headers=headers).json()["thread_id"]
    for _ in range(turns):
        done = http.post(f"/threads/{thread_id}/runs/wait", json=QUESTION, headers=headers)
        assert done.status_code == 200, done.text
    runs = http.get(f"/threads/{thread_id}/runs", headers=headers).json()
    return thread_id, [r["run_id"] for r in runs]


@pytest.fixture
def admin_redis(redis_url: str):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def test_export_then_erase_a_user_and_a_tenant(redis_url, start_service, key_prefix, admin_redis):
    url = start_service(redis_url, AUTH_JWT_SECRET=SECRET, AUTH_ADMIN_ROLE="dpo").url
    http = httpx.Client(base_url=url, timeout=60)
    alice, bob = _headers("alice", "acme"), _headers("bob", "acme")
    carol = _headers("carol", "globex")
    admin = _headers("the-dpo", "ops", "dpo")
    alice_threads = [_conversation(http, alice), _conversation(http, alice, turns=1)]
    bob_thread, bob_runs = _conversation(http, bob, turns=1)
    carol_thread, carol_runs = _conversation(http, carol, turns=1)

    # Who may: no token 401, a token without the configured role 403 (the role "admin" is not it).
    assert http.get("/admin/users/alice/threads/export").status_code == 401
    for headers in (alice, _headers("root", "acme", "admin")):
        refused = http.delete("/admin/users/alice/threads", headers=headers)
        assert refused.status_code == 403
        assert "'dpo' role" in refused.json()["detail"]

    # Export: a JSON array streamed (no Content-Length), a document per thread with everything.
    with http.stream("GET", "/admin/users/alice/threads/export", headers=admin) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers
        exported = orjson.loads(b"".join(response.iter_bytes()))
    by_id = {document["thread"]["thread_id"]: document for document in exported}
    assert set(by_id) == {thread_id for thread_id, _ in alice_threads}
    for thread_id, run_ids in alice_threads:
        document = by_id[thread_id]
        assert document["thread"]["user"] == "alice"
        assert document["thread"]["tenant"] == "acme"
        assert document["thread"]["values"]["messages"][-1]["type"] == "ai"
        assert len(document["checkpoints"]) >= 3 * len(run_ids)  # input, model turn, ... per run
        assert any(c["pending_writes"] for c in document["checkpoints"])
        assert sorted(r["run_id"] for r in document["runs"]) == sorted(run_ids)
        for run in document["runs"]:
            assert run["status"] == "success"
            assert run["event_log"]["ended"] == "success"
            assert run["event_log"]["events"][0]["event"] == "metadata"

    # Erase alice: nothing of her threads or runs is left anywhere in Redis; bob's thread is untouched.
    alice_ids = [i for thread_id, run_ids in alice_threads for i in (thread_id, *run_ids)]
    assert len(mentions(admin_redis, key_prefix, alice_ids)) > 10
    erased = http.delete("/admin/users/alice/threads", headers=admin)
    assert erased.status_code == 200
    assert erased.json() == {"deleted": 2, "remaining": 0}
    assert mentions(admin_redis, key_prefix, alice_ids) == {}
    assert http.get(f"/threads/{bob_thread}/state", headers=bob).json()["values"]["messages"]
    assert http.get(f"/threads/{alice_threads[0][0]}", headers=alice).status_code == 404

    # A tenant: carol's globex goes; acme's bob stays. Paged by limit.
    assert http.delete("/admin/tenants/globex/threads?limit=1", headers=admin).json() == {
        "deleted": 1,
        "remaining": 0,
    }
    assert mentions(admin_redis, key_prefix, [carol_thread, *carol_runs]) == {}
    assert mentions(admin_redis, key_prefix, [bob_thread, *bob_runs]) != {}


def test_unknown_owners_are_empty_and_bad_ids_are_named(redis_url, start_service):
    url = start_service(redis_url, AUTH_JWT_SECRET=SECRET).url
    http = httpx.Client(base_url=url, timeout=60, headers=_headers("admin-user", "ops", "admin"))
    assert http.get("/admin/users/nobody/threads/export").json() == []
    assert http.get("/admin/tenants/nowhere/threads/export").json() == []
    assert http.delete("/admin/users/nobody/threads").json() == {"deleted": 0, "remaining": 0}
    for path, field in [
        ("/admin/users/bad%01id/threads", "user"),
        ("/admin/tenants/" + "t" * 257 + "/threads", "tenant"),
        ("/admin/users/alice/threads?limit=0", "limit"),
    ]:
        refused = http.delete(path)
        assert refused.status_code == 422, (path, refused.text)
        assert refused.json()["detail"][0]["loc"][-1] == field
