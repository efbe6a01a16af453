"""JSON for the wire and for Redis records: LangChain messages, interrupts and dataclasses included."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, set | frozenset):
        return list(value)
    if hasattr(value, "_asdict"):  # NamedTuples such as langgraph's Send
        return value._asdict()
    # Anything else (an exception, a custom object in state) becomes its text rather than a 500.
    return repr(value)


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def to_jsonable(value: Any) -> Any:
    """Plain JSON types only, so values can be stored and compared after a round trip."""
    return orjson.loads(dumps(value))


def now_iso() -> str:
    return datetime.now(UTC).isoformat()
