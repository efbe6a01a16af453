"""With auth on, a tenant never sees, runs or changes another tenant's threads (or learns they exist)."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
from langgraph_sdk import get_sync_client
from langgraph_sdk.errors import ConflictError

SECRET = "tenant-isolation-secret-0123456789abcdef"
AUTH = {"AUTH_JWT_SECRET": SECRET, "AUTH_ISSUER": "https://idp.test", "AUTH_AUDIENCE": "agent-service"}
QUESTION = {"messages": [{"role": "user", "content": "what is 6 * 7?"}]}


def _client(url: str, tenant: str):
    claims = {
        "sub": f"user-of-{tenant}",
        "tenant": tenant,
        "iss": AUTH["AUTH_ISSUER"],
        "aud": AUTH["AUTH_AUDIENCE"],
        "exp": int(time.time()) + 600,
    }
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    return get_sync_client(url=url, headers={"Authorization": f"Bearer {token}"})


def test_threads_and_runs_are_confined_to_their_tenant(redis_url, start_service):
    url = start_service(redis_url, **AUTH).url
    acme, globex = _client(url, "acme"), _client(url, "globex")
    thread_id = acme.threads.create(metadata={"project": "shared-name"})["thread_id"]
    run = acme.runs.create(thread_id, "agent", input=QUESTION)
    acme.runs.join(thread_id, run["run_id"])
    globex.threads.create(metadata={"project": "shared-name"})

    forbidden = [
        lambda: globex.threads.get(thread_id),
        lambda: globex.threads.get_state(thread_id),
        lambda: globex.threads.get_history(thread_id),
        lambda: globex.threads.update(thread_id, metadata={"stolen": True}),
        lambda: globex.threads.delete(thread_id),
        lambda: globex.threads.copy(thread_id),
        lambda: globex.runs.wait(thread_id, "agent", input=QUESTION),
        lambda: globex.runs.list(thread_id),
        lambda: globex.runs.get(thread_id, run["run_id"]),
        lambda: globex.runs.join(thread_id, run["run_id"]),
    ]
    for call in forbidden:
        with pytest.raises(httpx.HTTPStatusError) as refused:  # wait and join raise the plain httpx error
            call()
        assert refused.value.response.status_code == 404
    with pytest.raises(ConflictError):  # the id is taken, but nothing of the thread is returned
        globex.threads.create(thread_id=thread_id, if_exists="do_nothing")

    assert [t["thread_id"] for t in acme.threads.search(metadata={"project": "shared-name"})] == [thread_id]
    assert thread_id not in [
        t["thread_id"] for t in globex.threads.search(metadata={"project": "shared-name"})
    ]
    assert (acme.threads.count(), globex.threads.count()) == (1, 1)
    assert "stolen" not in acme.threads.get(thread_id)["metadata"]
    assert len(acme.runs.list(thread_id)) == 1
