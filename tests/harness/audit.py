"""Counting what a client sent the apiserver, from the local control plane's JSON audit log.

Tests use it to prove a no-op reconcile writes nothing and that RBAC never denied the operator;
the operator benchmark uses it for requests per resource.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
OPERATOR_USER_AGENTS = ("shepherd-operator", "kopf/")


class AuditCounter:
    """Requests of one client (by username, or by user-agent prefix) from the moment of `mark()`."""

    def __init__(
        self, path: Path, *, username: str | None = None, user_agents: tuple[str, ...] = OPERATOR_USER_AGENTS
    ):
        self.path = path
        self.username = username
        self.user_agents = user_agents
        self.mark()

    def mark(self) -> None:
        self.offset = self.path.stat().st_size
        self._read_to = self.offset  # read incrementally: at fleet scale the log grows by megabytes
        self._entries: list[dict[str, Any]] = []

    def _ours(self, entry: dict[str, Any]) -> bool:
        if self.username is not None:
            return entry.get("user", {}).get("username") == self.username
        return str(entry.get("userAgent", "")).startswith(self.user_agents)

    def _read(self) -> None:
        """Parse the complete lines written since the last read (a line still being written waits)."""
        with self.path.open("rb") as log:
            log.seek(self._read_to)
            chunk = log.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._read_to += len(complete)
        for line in complete.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("stage") not in ("ResponseComplete", "ResponseStarted") or not self._ours(entry):
                continue
            if entry["stage"] == "ResponseStarted" and entry.get("verb") != "watch":
                continue
            self._entries.append(entry)

    def entries(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """Completed requests (watches count once, when they start streaming)."""
        self._read()
        if namespace is None:
            return list(self._entries)
        return [e for e in self._entries if (e.get("objectRef") or {}).get("namespace") == namespace]

    def verbs(self, namespace: str | None = None) -> Counter[str]:
        return Counter(entry["verb"] for entry in self.entries(namespace))

    def writes(self, namespace: str | None = None) -> list[str]:
        """Each write as `verb resource/name[/subresource]`, to make a failing assertion readable."""
        out = []
        for entry in self.entries(namespace):
            if entry["verb"] in WRITE_VERBS:
                ref = entry.get("objectRef") or {}
                sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
                out.append(f"{entry['verb']} {ref.get('resource')}/{ref.get('name', '')}{sub}")
        return out

    def reads(self, namespace: str | None = None) -> int:
        return sum(1 for entry in self.entries(namespace) if entry["verb"] in ("get", "list"))
