"""Start-up problems of the team's project, said where people look: the log and the Pod's status.

The kubelet copies the file at the container's terminationMessagePath into the Pod status
(``lastState.terminated.message``); the operator puts that message on the AgentDeployment's Ready
condition (operator/shepherd/status.py), so `kubectl get agd` says which key of which file is wrong.
"""

from __future__ import annotations

import logging
import os

from agent_service.graphs.project import Project
from agent_service.settings import Settings

log = logging.getLogger("agent_service.startup")
#: What the kubelet keeps of a termination message.
TERMINATION_MESSAGE_BYTES = 4096


def report_failure(settings: Settings, message: str) -> None:
    log.error("start-up failed: %s", message)
    if settings.termination_message_path is None:
        return
    try:
        settings.termination_message_path.write_bytes(message.encode()[:TERMINATION_MESSAGE_BYTES])
    except OSError as error:
        log.warning(
            "cannot write the termination message to %s: %s", settings.termination_message_path, error
        )


def apply_project_env(project: Project) -> None:
    """The project's env (langgraph.json ``env``) under the Pod's: as LangGraph Server, never overwrite."""
    for name, value in project.env.items():
        os.environ.setdefault(name, value)


def warn_about(project: Project) -> None:
    for warning in project.warnings:
        log.warning(warning)
