"""spec.protocols reaches the app: /mcp and the A2A routes are routed only when switched on."""

from __future__ import annotations

import pytest
from agent_service.app import create_app
from agent_service.settings import Settings
from fastapi.routing import APIRoute

A2A_PATHS = {"/a2a/{assistant_id}", "/.well-known/agent-card.json"}


def _paths(settings: Settings) -> set[str]:
    app = create_app(settings)
    routers = [getattr(r, "original_router", None) for r in app.routes]  # FastAPI's included routers
    return {
        route.path for router in routers if router for route in router.routes if isinstance(route, APIRoute)
    }


@pytest.mark.parametrize("enabled", [True, False])
def test_mcp_route_follows_the_switch(enabled):
    paths = _paths(Settings(protocol_mcp=enabled))
    assert ("/mcp" in paths) is enabled
    assert paths >= A2A_PATHS  # the other protocol keeps its own switch
    assert "/store/items" in paths  # the LangGraph API itself is always there


@pytest.mark.parametrize("enabled", [True, False])
def test_a2a_routes_follow_the_switch(enabled):
    paths = _paths(Settings(protocol_a2a=enabled))
    assert (paths >= A2A_PATHS) is enabled
    assert not (A2A_PATHS & paths) or enabled
    assert "/mcp" in paths
