"""spec.protocols reaches the app: /mcp is routed only when PROTOCOL_MCP is on."""

from __future__ import annotations

import pytest
from agent_service.app import create_app
from agent_service.settings import Settings
from fastapi.routing import APIRoute


@pytest.mark.parametrize("enabled", [True, False])
def test_mcp_route_follows_the_switch(enabled):
    app = create_app(Settings(protocol_mcp=enabled))
    routers = [getattr(r, "original_router", None) for r in app.routes]  # FastAPI's included routers
    paths = {
        route.path for router in routers if router for route in router.routes if isinstance(route, APIRoute)
    }
    assert ("/mcp" in paths) is enabled
    assert "/store/items" in paths  # the LangGraph API itself is always there
