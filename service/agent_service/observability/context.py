"""What is known about the request being served, visible to every layer through one context variable.

The request-context middleware sets it first, auth fills in user and tenant, logs read the request id,
the token budget reads the tenant and adds up the request's tokens. Tasks spawned while serving the
request (background runs) copy the context and so share the same object.

`degraded` is set by the LLM client when every model failed and the configured degraded reply
answered instead (llm/client.py `ResilientLLM.degrade`): the run engine reads it at the end of a run
and reports the run as failed with that reason (`llm_unavailable`); the response carries
`X-Shepherd-Degraded` (observability/logging.py).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

DEFAULT_TENANT = "default"


@dataclass
class RequestContext:
    request_id: str = "-"
    user: str = "anonymous"
    tenant: str = DEFAULT_TENANT
    tokens_used: int = 0
    degraded: str | None = None  # the run reason of a degraded answer, see the module docstring


_current: ContextVar[RequestContext | None] = ContextVar("agent_request_context", default=None)


def current_request() -> RequestContext:
    """The request's context; outside any request (scripts, tests) a fresh one per call."""
    return _current.get() or RequestContext()


def enter_request(context: RequestContext) -> None:
    """Make `context` the current one for this task and the tasks it spawns."""
    _current.set(context)
