"""Request bodies of the LangGraph Server API, as the official SDK sends them.

Unknown fields are ignored rather than refused: the SDK sends options (feedback_keys,
langsmith_tracer...) that this runtime does not act on, and must keep working.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from agent_service.security import input_limits

StreamMode = Literal[
    "values", "updates", "messages-tuple", "messages", "custom", "debug", "tasks", "checkpoints", "events"
]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
#: Integers orjson and msgpack can store (signed and unsigned 64-bit); JSON itself has no bound.
INT_RANGE = (-(2**63), 2**64 - 1)


def _storable(value: Any) -> Any:
    """Refuse (422) integers that could not be stored, wherever they nest; iterative, so any depth
    the JSON parser accepted is fine."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, int) and not INT_RANGE[0] <= item <= INT_RANGE[1]:
            raise ValueError(f"integer {item} does not fit in 64 bits")
    return value


def _within_input_limits(value: Any, info: ValidationInfo) -> Any:
    return input_limits.check(value, info.field_name or "value")


Json = Annotated[dict[str, Any], AfterValidator(_storable)]
JsonValue = Annotated[Any, AfterValidator(_storable)]
#: What a run or a state update carries into the graph: also bounded (``security.input_limits``).
GraphInput = Annotated[Any, AfterValidator(_storable), AfterValidator(_within_input_limits)]
# Redis range indexes are 64-bit: a larger offset would reach Redis as an error, not a 422.
MAX_OFFSET = 2**31
#: Ten years: a datetime beyond that cannot be counted from now.
MAX_TTL_MINUTES = 10 * 366 * 24 * 60


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CheckpointRef(_Body):
    thread_id: str | None = None
    checkpoint_ns: str = ""
    checkpoint_id: str | None = None
    checkpoint_map: Json | None = None


AssistantSortBy = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]
AssistantField = Literal[
    "assistant_id",
    "graph_id",
    "name",
    "description",
    "config",
    "context",
    "created_at",
    "updated_at",
    "metadata",
    "version",
]


class AssistantSearch(_Body):
    metadata: Json | None = None
    graph_id: str | None = None
    name: str | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    sort_by: AssistantSortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[AssistantField] | None = None


class AssistantCreate(_Body):
    graph_id: str = Field(min_length=1, max_length=256)
    assistant_id: uuid.UUID | None = None
    config: Json = Field(default_factory=dict)
    context: Json = Field(default_factory=dict)
    metadata: Json = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=4096)


class AssistantPatch(_Body):
    graph_id: str | None = Field(default=None, min_length=1, max_length=256)
    config: Json | None = None
    context: Json | None = None
    metadata: Json | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=4096)


class AssistantVersions(_Body):
    metadata: Json | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)


class AssistantLatest(_Body):
    version: int = Field(ge=1, le=2**31)


class AssistantCount(_Body):
    metadata: Json | None = None
    graph_id: str | None = None
    name: str | None = None


class ThreadTTL(_Body):
    """The LangGraph API's thread ``ttl`` (the SDK sends an int as ``{"ttl": n, "strategy": "delete"}``)."""

    strategy: Literal["delete", "keep_latest"] = "delete"
    ttl: float = Field(gt=0, le=MAX_TTL_MINUTES, description="Minutes idle before the thread is swept.")

    def policy(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "ttl_minutes": self.ttl}


class ThreadCreate(_Body):
    thread_id: str | None = Field(default=None, min_length=1, max_length=256)
    metadata: Json = Field(default_factory=dict)
    if_exists: Literal["raise", "do_nothing"] = "raise"
    ttl: ThreadTTL | None = None


class ThreadPatch(_Body):
    metadata: Json = Field(default_factory=dict)
    ttl: ThreadTTL | None = None


class ThreadSearch(_Body):
    metadata: Json | None = None
    values: Json | None = None
    ids: list[str] | None = None
    status: ThreadStatus | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    sort_by: Literal["thread_id", "status", "created_at", "updated_at"] = "updated_at"
    sort_order: Literal["asc", "desc"] = "desc"


class ThreadCount(_Body):
    metadata: Json | None = None
    values: Json | None = None
    status: ThreadStatus | None = None


class ThreadPrune(_Body):
    thread_ids: list[str] = Field(max_length=1000)
    strategy: Literal["delete", "keep_latest"] = "delete"


class StateAtCheckpoint(_Body):
    checkpoint: CheckpointRef
    subgraphs: bool = False


class StateUpdate(_Body):
    values: Annotated[Json | list[Json] | None, AfterValidator(_within_input_limits)] = None
    as_node: str | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None


class HistoryQuery(_Body):
    limit: int = Field(default=10, ge=1, le=1000)
    before: str | CheckpointRef | None = None
    metadata: Json | None = None
    checkpoint: CheckpointRef | None = None


class CommandSpec(_Body):
    update: GraphInput = None
    resume: GraphInput = None
    goto: str | list[str] | None = None


class RunCreate(_Body):
    assistant_id: str = Field(min_length=1)
    input: GraphInput = None
    command: CommandSpec | None = None
    stream_mode: StreamMode | list[StreamMode] = "values"
    stream_subgraphs: bool = False
    metadata: Json | None = None
    config: Json | None = None
    context: Json | None = None
    checkpoint: CheckpointRef | None = None
    checkpoint_id: str | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    multitask_strategy: MultitaskStrategy = "reject"
    if_not_exists: Literal["create", "reject"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "continue"
    on_completion: Literal["delete", "keep"] = "delete"
    durability: Literal["sync", "async", "exit"] | None = None
    checkpoint_during: bool | None = None  # deprecated by LangGraph for durability: False is "exit"
    webhook: str | None = Field(default=None, min_length=1, max_length=2048)
    after_seconds: float | None = Field(default=None, ge=0, le=366 * 86400)
    stream_resumable: bool = False

    @model_validator(mode="after")
    def _context_or_configurable(self) -> RunCreate:
        # LangGraph Server refuses both too: each stands in for the other (runs/graph_run.py).
        if self.context and (self.config or {}).get("configurable"):
            raise ValueError(
                "context: give context or config.configurable, not both "
                "(context replaces configurable since LangGraph 0.6)"
            )
        return self

    @property
    def stream_modes(self) -> list[StreamMode]:
        modes = [self.stream_mode] if isinstance(self.stream_mode, str) else self.stream_mode
        return list(dict.fromkeys(modes)) or ["values"]


class RunsCancel(_Body):
    thread_id: str | None = Field(default=None, min_length=1, max_length=256)
    run_ids: list[str] | None = Field(default=None, max_length=1000)
    status: Literal["pending", "running", "all"] | None = None


class CronRun(_Body):
    """The run a cron starts each time it fires (the fields of RunCreate that make sense there)."""

    input: JsonValue = None
    metadata: Json | None = None
    config: Json | None = None
    context: Json | None = None
    interrupt_before: Literal["*"] | list[str] | None = None
    interrupt_after: Literal["*"] | list[str] | None = None
    webhook: str | None = Field(default=None, min_length=1, max_length=2048)
    multitask_strategy: MultitaskStrategy | None = None
    stream_mode: StreamMode | list[StreamMode] | None = None
    stream_subgraphs: bool | None = None
    stream_resumable: bool | None = None
    durability: Literal["sync", "async", "exit"] | None = None
    checkpoint_during: bool | None = None

    RUN_FIELDS: ClassVar[tuple[str, ...]] = (
        "input",
        "metadata",
        "config",
        "context",
        "interrupt_before",
        "interrupt_after",
        "webhook",
        "multitask_strategy",
        "stream_mode",
        "stream_subgraphs",
        "stream_resumable",
        "durability",
        "checkpoint_during",
    )

    def run_payload(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(include=set(self.RUN_FIELDS)).items() if v is not None}


class CronCreate(CronRun):
    schedule: str = Field(min_length=1, max_length=256)
    assistant_id: str = Field(min_length=1)
    end_time: datetime | None = None
    enabled: bool = True
    timezone: str | None = Field(default=None, max_length=64)
    on_run_completed: Literal["delete", "keep"] | None = None


class CronPatch(CronRun):
    schedule: str | None = Field(default=None, min_length=1, max_length=256)
    end_time: datetime | None = None
    enabled: bool | None = None
    timezone: str | None = Field(default=None, max_length=64)
    on_run_completed: Literal["delete", "keep"] | None = None


CronSortBy = Literal[
    "cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date", "end_time"
]


class CronSearch(_Body):
    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: Json | None = None
    limit: int = Field(default=10, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)
    sort_by: CronSortBy = "created_at"
    sort_order: Literal["asc", "desc"] = "desc"
    select: list[str] | None = None


class CronCount(_Body):
    assistant_id: str | None = None
    thread_id: str | None = None
    metadata: Json | None = None
