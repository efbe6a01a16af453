"""What the lifespan builds and every request uses: one typed object on `app.state.runtime`."""

from __future__ import annotations

from dataclasses import dataclass

from langgraph.pregel import Pregel

from agent_service.runs.engine import RunEngine
from agent_service.settings import Settings
from agent_service.state import RedisSaver
from agent_service.state.connection import AsyncClient
from agent_service.state.runs import RunStore
from agent_service.state.threads import ThreadStore


@dataclass
class Runtime:
    settings: Settings
    redis: AsyncClient
    saver: RedisSaver
    graph: Pregel
    threads: ThreadStore
    runs: RunStore
    engine: RunEngine
