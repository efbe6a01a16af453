"""Assistants: one default assistant per served graph, as LangGraph Server creates from langgraph.json.

The default assistant's id derives from its graph id (uuid5 in LangGraph Server's namespace), so
clients that stored an assistant id keep working when they move to this runtime. A run may name an
assistant by its id or by its graph id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from agent_service.serialization import now_iso

ASSISTANT_NAMESPACE = uuid.UUID("6ba7b821-9dad-11d1-80b4-00c04fd430c8")
_CREATED_AT = now_iso()


class AssistantNotFoundError(LookupError):
    pass


def default_assistant(graph_id: str) -> dict[str, Any]:
    return {
        "assistant_id": str(uuid.uuid5(ASSISTANT_NAMESPACE, graph_id)),
        "graph_id": graph_id,
        "config": {},
        "context": {},
        "created_at": _CREATED_AT,
        "updated_at": _CREATED_AT,
        "metadata": {"created_by": "system"},
        "version": 1,
        "name": graph_id,
        "description": None,
    }


class Assistants:
    """The assistants of the graphs this service serves."""

    def __init__(self, graph_ids: Iterable[str]) -> None:
        self._defaults = [default_assistant(g) for g in graph_ids]

    def all(self) -> list[dict[str, Any]]:
        return list(self._defaults)

    async def resolve(self, assistant_id: str) -> dict[str, Any]:
        """By assistant id or graph id; AssistantNotFoundError otherwise."""
        for assistant in self._defaults:
            if assistant_id in (assistant["assistant_id"], assistant["graph_id"]):
                return assistant
        raise AssistantNotFoundError(f"assistant {assistant_id!r} not found")
