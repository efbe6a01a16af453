"""A live `agent-service` serving a langgraph.json: the team's own app (http.app) beside the API, behind
its auth and counted in its metrics; a project that cannot start says which key of which file, in the
log, the exit code and the termination message the kubelet copies into the Pod status."""

from __future__ import annotations

import json
import os
import textwrap
import time
from pathlib import Path

import httpx
import jwt
import pytest

from tests.harness.processes import ManagedProcess, free_port
from tests.integration.service.conftest import AGENT_SERVICE, launch

SECRET = "project-config-secret-0123456789abcdef"
GRAPH = textwrap.dedent(
    """
    from langgraph.graph import START, MessagesState, StateGraph

    builder = StateGraph(MessagesState)
    builder.add_node("noop", lambda state: {})
    builder.add_edge(START, "noop")
    graph = builder.compile()
    """
)
TEAM_APP = textwrap.dedent(
    """
    import os

    from fastapi import FastAPI

    app = FastAPI()
    started = []


    @app.on_event("startup")
    async def remember_start():
        started.append(True)


    @app.get("/orders/{order_id}")
    async def order(order_id: str):
        return {"order": order_id, "team_setting": os.environ.get("TEAM_SETTING"), "started": bool(started)}
    """
)


def _project(root: Path, **config: object) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "graph.py").write_text(GRAPH)
    (root / "src" / "team_app.py").write_text(TEAM_APP)
    (root / ".env").write_text("TEAM_SETTING=from-the-project\n")
    config_file = root / "langgraph.json"
    config_file.write_text(json.dumps({"graphs": {"agent": "./src/graph.py:graph"}, "env": ".env", **config}))
    return config_file


def _bearer(tenant: str = "acme") -> dict[str, str]:
    token = jwt.encode(
        {"sub": "alice", "tenant": tenant, "exp": int(time.time()) + 300}, SECRET, algorithm="HS256"
    )
    return {"Authorization": f"Bearer {token}"}


def _requests_counted(url: str, route: str, code: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if (
            line.startswith("agent_http_requests_total{")
            and f'route="{route}"' in line
            and f'code="{code}"' in line
        ):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_team_app_is_served_authenticated_and_counted(tmp_path: Path, redis_url: str) -> None:
    config_file = _project(tmp_path / "project", http={"app": "./src/team_app.py:app"}, grpahs={})
    service = launch(tmp_path, AGENT_CONFIG=str(config_file), REDIS_URL=redis_url, AUTH_JWT_SECRET=SECRET)
    try:
        refused = httpx.get(f"{service.url}/orders/42", timeout=10)
        assert refused.status_code == 401
        assert "Bearer" in refused.headers["www-authenticate"]
        answer = httpx.get(f"{service.url}/orders/42", headers=_bearer(), timeout=10)
        assert answer.status_code == 200
        # The project's env reached its app, whose own start-up ran inside the service's.
        assert answer.json() == {"order": "42", "team_setting": "from-the-project", "started": True}
        assert answer.headers["x-request-id"]  # the API's middleware wraps it
        assert _requests_counted(service.url, "/orders/{order_id}", "200") == 1
        assert _requests_counted(service.url, "/orders/{order_id}", "401") == 1
        # The API's own routes are still there, behind the same auth.
        assert (
            httpx.post(f"{service.url}/assistants/search", json={}, headers=_bearer(), timeout=10).json()[0][
                "graph_id"
            ]
            == "agent"
        )
        assert httpx.get(f"{service.url}/no/such/route", headers=_bearer(), timeout=10).status_code == 404
    finally:
        service.stop()
    log = service.process.log_path.read_text()
    assert f"{config_file}: unknown key 'grpahs' ignored (did you mean 'graphs'?)" in log


@pytest.mark.parametrize(
    ("config", "exit_code", "message"),
    [
        (
            {"graphs": {"agent": "./src/missing.py:graph"}},
            2,
            "graphs.agent: file './src/missing.py' not found",
        ),
        (
            {"graphs": {"agent": "./src/graph.py:graph"}, "http": {"app": "./src/team_app.py:not_there"}},
            3,
            "http.app: './src/team_app.py:not_there': the module has no 'not_there'",
        ),
        (
            {
                "graphs": {"agent": "./src/graph.py:graph"},
                "store": {"index": {"embed": "cohere:e", "dims": 8}},
            },
            2,
            "store.index.embed: 'cohere:e' is not a provider served here",
        ),
        (
            {
                "graphs": {"agent": "./src/graph.py:graph"},
                "store": {"index": {"embed": "./src/team_app.py:embed", "dims": 8}},
            },
            3,
            "store.index.embed: './src/team_app.py:embed': the module has no 'embed'",
        ),
    ],
)
def test_a_project_that_cannot_start_says_which_key_of_which_file(
    tmp_path: Path, redis_url: str, config: dict, exit_code: int, message: str
) -> None:
    config_file = _project(tmp_path / "project")
    config_file.write_text(json.dumps(config))
    termination_log = tmp_path / "termination-log"
    process = ManagedProcess(
        "agent-service-bad-project",
        [str(AGENT_SERVICE), "--host", "127.0.0.1", "--port", str(free_port())],
        tmp_path,
        {
            "AGENT_CONFIG": str(config_file),
            "REDIS_URL": redis_url,
            "TERMINATION_MESSAGE_PATH": str(termination_log),
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        },
    ).start()
    assert process.process is not None
    assert process.process.wait(timeout=120) == exit_code
    expected = f"{config_file}: {message}"
    assert expected in termination_log.read_text()
    assert expected in process.log_path.read_text()


TEAM_AUTH = textwrap.dedent(
    """
    from langgraph_sdk import Auth

    auth = Auth()
    USERS = {
        "token-alice": {"identity": "alice", "tenant": "acme", "permissions": ["threads:write"]},
        "token-bob": {"identity": "bob", "tenant": "acme", "permissions": ["threads:write"]},
        "token-carol": {"identity": "carol", "tenant": "acme", "permissions": []},
    }


    @auth.authenticate
    async def authenticate(authorization: str | None):
        user = USERS.get((authorization or "").removeprefix("Bearer "))
        if user is None:
            raise Auth.exceptions.HTTPException(status_code=401, detail="unknown token")
        return user


    @auth.on.threads.create
    async def create_own(ctx, value):
        if "threads:write" not in ctx.permissions:
            return False
        return {"owner": ctx.user.identity}


    @auth.on.threads.read
    @auth.on.threads.search
    @auth.on.threads.create_run
    async def only_own(ctx, value):
        return {"owner": ctx.user.identity}
    """
)


def test_the_project_auth_handler_authenticates_refuses_and_filters(tmp_path: Path, redis_url: str) -> None:
    config_file = _project(tmp_path / "project", auth={"path": "./src/team_auth.py:auth"})
    (tmp_path / "project" / "src" / "team_auth.py").write_text(TEAM_AUTH)
    service = launch(tmp_path, AGENT_CONFIG=str(config_file), REDIS_URL=redis_url)

    def call(method: str, path: str, user: str | None, **kwargs: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer token-{user}"} if user else {}
        return httpx.request(method, f"{service.url}{path}", headers=headers, timeout=10, **kwargs)

    try:
        unknown = call("POST", "/threads/search", None, json={})
        assert (unknown.status_code, unknown.json()["detail"]) == (401, "unknown token")
        alices = call("POST", "/threads", "alice", json={"metadata": {"topic": "q3"}}).json()
        assert alices["metadata"] == {"topic": "q3", "owner": "alice"}  # the handler's filter, written
        bobs = call("POST", "/threads", "bob", json={}).json()
        refused = call("POST", "/threads", "carol", json={})
        assert refused.status_code == 403
        assert "threads.create refused" in refused.json()["detail"]

        def found(user: str, **search: object) -> list[str]:
            return [t["thread_id"] for t in call("POST", "/threads/search", user, json=search).json()]

        # Same tenant, yet each sees only their own threads: the handler's filter, on search and read.
        assert found("bob") == [bobs["thread_id"]]
        assert found("bob", metadata={"owner": "alice"}) == [bobs["thread_id"]]  # the filter wins
        assert found("alice") == [alices["thread_id"]]
        assert call("GET", f"/threads/{alices['thread_id']}", "bob").status_code == 404
        assert call("GET", f"/threads/{alices['thread_id']}/state", "bob").status_code == 404
        assert call("GET", f"/threads/{alices['thread_id']}", "alice").status_code == 200
        run = {"assistant_id": "agent", "input": {"messages": [{"role": "user", "content": "hi"}]}}
        assert call("POST", f"/threads/{alices['thread_id']}/runs/wait", "bob", json=run).status_code == 404
        assert call("POST", f"/threads/{alices['thread_id']}/runs/wait", "alice", json=run).status_code == 200
    finally:
        service.stop()
