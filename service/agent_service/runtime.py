"""What the lifespan builds and every request uses: one typed object on `app.state.runtime`."""

from __future__ import annotations

from dataclasses import dataclass

from langgraph.pregel import Pregel

from agent_service.runs.engine import RunEngine
from agent_service.settings import Settings
from agent_service.state import RedisSaver
from agent_service.state.assistants import Assistants
from agent_service.state.connection import AsyncClient
from agent_service.state.runs import RunStore
from agent_service.state.store import RedisStore
from agent_service.state.threads import ThreadStore


@dataclass
class Runtime:
    settings: Settings
    redis: AsyncClient
    saver: RedisSaver
    graphs: dict[str, Pregel]  # graph id -> graph; the first is the default
    assistants: Assistants
    threads: ThreadStore
    runs: RunStore
    engine: RunEngine
    store: RedisStore  # the default tenant's view; for_tenant gives the others

    @property
    def graph(self) -> Pregel:
        return next(iter(self.graphs.values()))

    def graph_of(self, thread: dict) -> Pregel:
        """The graph a thread's runs use (the graph id its first run recorded), else the default."""
        return self.graphs.get((thread.get("metadata") or {}).get("graph_id"), self.graph)
