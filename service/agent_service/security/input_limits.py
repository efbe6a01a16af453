"""Bounds on what a run may be given: string length, nesting depth, no control characters.

``RUN_INPUT_MAX_STRING_CHARS`` and ``RUN_INPUT_MAX_DEPTH`` (``spec.inputLimits`` of the
AgentDeployment) are checked where the request schemas parse a run's input, a command and a state
update (``agent_service.api.schemas``): a violation is a 422 whose message names the field and the
place inside it (``input.messages[0].content``). Control characters other than tab, newline and
carriage return are refused everywhere in that input, keys included: they have no place in a
conversation and are a classic way to smuggle content past logs and filters.

The limits come from the app's settings. Pydantic validates the body without access to them, so
the ``apply_input_limits`` dependency (run for every API route, before FastAPI parses the body)
puts them in a context variable the validators read; outside a request the defaults apply.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from fastapi import Request

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class InputLimits:
    max_string_chars: int = 100_000
    max_depth: int = 32


DEFAULT_LIMITS = InputLimits()
_limits: ContextVar[InputLimits | None] = ContextVar("agent_input_limits", default=None)


async def apply_input_limits(request: Request) -> None:
    """FastAPI dependency: this request's bodies are checked against the app's limits."""
    settings = request.app.state.settings
    _limits.set(InputLimits(settings.run_input_max_string_chars, settings.run_input_max_depth))


def _check_string(text: str, where: str, limits: InputLimits) -> None:
    if len(text) > limits.max_string_chars:
        raise ValueError(
            f"{where}: {len(text)} characters, more than the limit of {limits.max_string_chars} "
            "(RUN_INPUT_MAX_STRING_CHARS)"
        )
    found = _CONTROL.search(text)
    if found:
        raise ValueError(f"{where}: control character U+{ord(found.group()):04X} is not allowed")


def _violates(value: Any, limits: InputLimits) -> bool:
    """Fast pass, no paths: whether anything in ``value`` breaks the limits."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= limits.max_depth:
                return True
            children = item.values() if isinstance(item, dict) else item
            if isinstance(item, dict):
                pending.extend((str(key), depth) for key in item)
            pending.extend((child, depth + 1) for child in children)
        elif isinstance(item, str) and (len(item) > limits.max_string_chars or _CONTROL.search(item)):
            return True
    return False


def check(value: Any, field: str) -> Any:
    """``value`` if it is within the current limits; else ValueError naming the place. Iterative,
    so any depth the JSON parser accepted is measured without recursion; the places are spelled
    out only once a violation is known (most input has none)."""
    limits = _limits.get() or DEFAULT_LIMITS
    if not _violates(value, limits):
        return value
    pending: list[tuple[Any, str, int]] = [(value, field, 0)]
    while pending:
        item, where, depth = pending.pop()
        if isinstance(item, dict | list) and depth >= limits.max_depth:
            raise ValueError(
                f"{where}: nested deeper than the limit of {limits.max_depth} (RUN_INPUT_MAX_DEPTH)"
            )
        if isinstance(item, dict):
            for key, child in item.items():
                _check_string(str(key), f"{where} (a key)", limits)
                pending.append((child, f"{where}.{key}", depth + 1))
        elif isinstance(item, list):
            pending.extend((child, f"{where}[{index}]", depth + 1) for index, child in enumerate(item))
        elif isinstance(item, str):
            _check_string(item, where, limits)
    return value
