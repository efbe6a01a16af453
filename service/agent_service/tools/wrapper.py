"""`armoured`: timeout, retries with backoff and a circuit breaker around one tool function.

A call: circuit open -> ToolCircuitOpenError at once (nothing runs); else attempt with the deadline;
an exception of `retry_on` (or the timeout) counts against the circuit and is retried after a jittered
exponential backoff (the LLM client's policy, llm/retry.py), up to `retries` times; the last one is
raised. Other exceptions (a bad argument, say) are raised at once and say nothing about the
dependency. A sync function gets retries and the circuit, not a timeout: a thread cannot be stopped.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from agent_service.llm.circuit import CircuitBreaker, CircuitPolicy
from agent_service.llm.retry import RetryPolicy

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


class ToolUnavailableError(RuntimeError):
    """The tool could not answer: timed out or its circuit is open. Let the model see it with
    `ToolNode(tools, handle_tool_errors=ToolUnavailableError)`."""

    outcome = "error"
    retry_after: float | None = None


class ToolTimeoutError(ToolUnavailableError, TimeoutError):
    outcome = "timeout"

    def __init__(self, tool: str, seconds: float) -> None:
        super().__init__(f"tool {tool} did not answer within {seconds:g}s")


class ToolCircuitOpenError(ToolUnavailableError):
    outcome = "circuit_open"

    def __init__(self, circuit: str, retry_after: float) -> None:
        super().__init__(f"{circuit} is open after repeated failures; retry in {retry_after:.0f}s")
        self.retry_after = retry_after


def tool_outcome(error: BaseException) -> str:
    """The `outcome` label of agent_tool_calls_total for a call that raised `error`."""
    if isinstance(error, ToolUnavailableError):
        return error.outcome
    return "timeout" if isinstance(error, TimeoutError) else "error"


def armoured(
    function: F | None = None,
    *,
    timeout_seconds: float | None = None,
    retries: int = 0,
    backoff_base_seconds: float = 0.2,
    backoff_max_seconds: float = 5.0,
    failure_threshold: int = 5,
    recovery_seconds: float = 30.0,
    half_open_probes: int = 1,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    name: str | None = None,
) -> Any:
    """Decorate a tool function (async or sync); usable bare (`@armoured`) or with arguments."""

    def decorate(fn: F) -> F:
        tool = name or fn.__name__
        breaker = CircuitBreaker(
            f"tool:{tool}", CircuitPolicy(failure_threshold, recovery_seconds, half_open_probes)
        )
        policy = RetryPolicy(retries, backoff_base_seconds, backoff_max_seconds)
        failures = (*retry_on, ToolTimeoutError)

        def admit() -> None:
            if not breaker.try_acquire():
                raise ToolCircuitOpenError(breaker.name, breaker.retry_after())

        def failed(attempt: int, error: BaseException) -> float | None:
            breaker.record_failure()
            delay = policy.delay(attempt)
            if delay is not None:
                log.info("retrying tool %s in %.2fs after attempt %d failed: %s", tool, delay, attempt, error)
            return delay

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                attempt = 0
                while True:
                    attempt += 1
                    admit()
                    try:
                        if timeout_seconds is None:
                            result = await fn(*args, **kwargs)
                        else:
                            try:
                                async with asyncio.timeout(timeout_seconds):
                                    result = await fn(*args, **kwargs)
                            except TimeoutError as timed_out:
                                raise ToolTimeoutError(tool, timeout_seconds) from timed_out
                    except failures as error:
                        if (delay := failed(attempt, error)) is None:
                            raise
                        await asyncio.sleep(delay)
                        continue
                    except BaseException:
                        breaker.release()
                        raise
                    breaker.record_success()
                    return result

            return run_async  # type: ignore[return-value]

        if timeout_seconds is not None:
            raise TypeError(
                f"tool {tool}: timeout_seconds needs an async function (a thread cannot be stopped)"
            )

        @functools.wraps(fn)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            attempt = 0
            while True:
                attempt += 1
                admit()
                try:
                    result = fn(*args, **kwargs)
                except failures as error:
                    if (delay := failed(attempt, error)) is None:
                        raise
                    time.sleep(delay)
                    continue
                except BaseException:
                    breaker.release()
                    raise
                breaker.record_success()
                return result

        return run_sync  # type: ignore[return-value]

    return decorate(function) if function is not None else decorate
