"""The armour every tool gets.

For free, with no change to a graph: every tool call is counted and timed
(`agent_tool_calls_total{tool,outcome}`, `agent_tool_duration_seconds{tool}`) and, with tracing on,
gets a span (agent_service/callbacks.py, observability/tracing.py).

With the `armoured` decorator, a tool also gets a timeout, retries with backoff and a circuit breaker
exported as `agent_circuit_state{circuit="tool:<name>"}`, which the operator shows on the resource::

    from langchain_core.tools import tool
    from agent_service.tools import armoured

    @tool
    @armoured(timeout_seconds=5, retries=2)
    async def search(query: str) -> str:
        ...

Put `@armoured` under `@tool`, so the tool keeps the function's name, signature and docstring.
"""

from agent_service.tools.wrapper import (
    ToolCircuitOpenError,
    ToolTimeoutError,
    ToolUnavailableError,
    armoured,
    tool_outcome,
)

__all__ = ["ToolCircuitOpenError", "ToolTimeoutError", "ToolUnavailableError", "armoured", "tool_outcome"]
