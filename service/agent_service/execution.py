"""Runs: each one is an asyncio task on the replica that accepted it, with its state in Redis.

Streaming clients subscribe to a run's event log; waiting clients await its outcome. A run
on another replica is followed through its Redis record. On drain, new runs are refused and
running ones get the grace period before they are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from langgraph.pregel import Pregel
from langgraph.types import Command

from agent_service.api.schemas import RunCreate
from agent_service.callbacks import run_callbacks
from agent_service.observability.tracing import graph_callbacks
from agent_service.serialization import now_iso, to_jsonable
from agent_service.state import RedisSaver
from agent_service.state.runs import TERMINAL_STATUSES, RunStore
from agent_service.state.threads import ThreadStore

log = logging.getLogger(__name__)

# API stream mode -> LangGraph stream mode; "events" is served by astream_events instead.
GRAPH_STREAM_MODES = {
    "values": "values",
    "updates": "updates",
    "messages-tuple": "messages",
    "messages": "messages",
    "custom": "custom",
    "debug": "debug",
    "tasks": "tasks",
    "checkpoints": "checkpoints",
}
REMOTE_POLL_SECONDS = 0.2
LOCK_POLL_SECONDS = 0.05


class ThreadBusyError(RuntimeError):
    """The thread runs something already and the multitask strategy is 'reject'."""


class ServiceDrainingError(RuntimeError):
    """The replica is shutting down and takes no new runs."""


@dataclass
class LocalRun:
    run: dict[str, Any]
    events: list[tuple[str, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished: bool = False
    result: Any = None
    task: asyncio.Task | None = None

    def publish(self, event: str, data: Any) -> None:
        self.events.append((event, data))
        self.changed.set()

    def finish(self) -> None:
        self.finished = True
        self.changed.set()

    async def follow(self, *, idle_seconds: float | None = None) -> AsyncIterator[tuple[str, Any] | None]:
        """The run's events from the first; `None` after each `idle_seconds` without one."""
        sent = 0
        while True:
            while sent < len(self.events):
                yield self.events[sent]
                sent += 1
            if self.finished:
                return
            self.changed.clear()
            try:
                async with asyncio.timeout(idle_seconds):
                    await self.changed.wait()
            except TimeoutError:
                yield None


def _event_name(mode: str, namespace: tuple[str, ...]) -> str:
    return "|".join([mode, *namespace])


def _error_payload(error: BaseException) -> dict[str, str]:
    return {"error": type(error).__name__, "message": str(error)}


class RunExecutor:
    def __init__(
        self,
        graph: Pregel,
        saver: RedisSaver,
        threads: ThreadStore,
        runs: RunStore,
        *,
        run_timeout: float,
        lock_ttl: float,
        cancel_channel: str,
        max_concurrent: int,
    ):
        self.graph = graph
        self.saver = saver
        self.threads = threads
        self.runs = runs
        self.run_timeout = run_timeout
        self.lock_ttl = lock_ttl
        self.cancel_channel = cancel_channel
        self.local: dict[str, LocalRun] = {}
        self.draining = False
        # Past a few dozen runs at once, one event loop spends more on switching between them than
        # on running them (throughput halves at 500): the rest wait here, in arrival order.
        self._slots = asyncio.Semaphore(max_concurrent)

    # -- starting -------------------------------------------------------------------------------

    async def start(self, thread_id: str, body: RunCreate, *, assistant_id: str, temporary: bool) -> LocalRun:
        if self.draining:
            raise ServiceDrainingError("this replica is shutting down; retry on another")
        run_id = str(uuid.uuid4())
        now = now_iso()
        run = {
            "run_id": run_id,
            "thread_id": thread_id,
            "assistant_id": assistant_id,
            "created_at": now,
            "updated_at": now,
            "status": "pending",
            "metadata": body.metadata or {},
            "multitask_strategy": body.multitask_strategy,
            "kwargs": to_jsonable(body.model_dump(exclude_none=True)),
        }
        locked = await self.runs.try_lock_thread(thread_id, run_id, self.lock_ttl)
        if not locked:
            holder = await self.runs.thread_lock_holder(thread_id)
            if body.multitask_strategy == "reject":
                raise ThreadBusyError(
                    f"thread {thread_id} is busy with run {holder}; multitask_strategy is 'reject'"
                )
            if holder and body.multitask_strategy in ("interrupt", "rollback"):
                await self.cancel(holder, rollback=body.multitask_strategy == "rollback")
        await self.runs.create(run)
        local = LocalRun(run=run)
        self.local[run_id] = local
        local.task = asyncio.create_task(self._run(local, body, locked=locked, temporary=temporary))
        return local

    async def _acquire(self, thread_id: str, run_id: str) -> None:
        async with asyncio.timeout(self.run_timeout):
            # The holder may be another replica: Redis is the only place to watch, so poll it.
            while not await self.runs.try_lock_thread(thread_id, run_id, self.lock_ttl):  # noqa: ASYNC110
                await asyncio.sleep(LOCK_POLL_SECONDS)

    def _config(self, local: LocalRun, body: RunCreate) -> dict[str, Any]:
        run = local.run
        config = dict(body.config or {})
        ids = {
            "thread_id": run["thread_id"],
            "run_id": run["run_id"],
            "assistant_id": run["assistant_id"],
            "graph_id": self.graph.name,
        }
        configurable = {**config.get("configurable", {}), **ids}
        checkpoint = body.checkpoint
        if checkpoint_id := (checkpoint.checkpoint_id if checkpoint else None) or body.checkpoint_id:
            configurable["checkpoint_id"] = checkpoint_id
        if checkpoint and checkpoint.checkpoint_ns:
            configurable["checkpoint_ns"] = checkpoint.checkpoint_ns
        # Metadata lands in every checkpoint: run_id there is what delete_for_runs (rollback) uses.
        metadata = {**config.get("metadata", {}), **(body.metadata or {}), **ids}
        return {
            **config,
            "configurable": configurable,
            "metadata": metadata,
            "run_id": uuid.UUID(run["run_id"]),
            # Node spans when tracing is on; the caller's own callbacks stay.
            "callbacks": [*(config.get("callbacks") or []), *graph_callbacks(), *run_callbacks()],
        }

    # -- running --------------------------------------------------------------------------------

    async def _run(self, local: LocalRun, body: RunCreate, *, locked: bool, temporary: bool) -> None:
        run_id, thread_id = local.run["run_id"], local.run["thread_id"]
        status = "error"
        heartbeat = None
        try:
            if not locked:
                await self._acquire(thread_id, run_id)
            heartbeat = asyncio.create_task(self._keep_lock(thread_id, run_id))
            async with self._slots:
                await self.runs.set_status(run_id, "running")
                await self.threads.update(thread_id, status="busy")
                local.publish("metadata", {"run_id": run_id, "attempt": 1})
                config = self._config(local, body)
                async with asyncio.timeout(self.run_timeout):
                    await self._stream(local, body, config)
            status = "success"
        except asyncio.CancelledError:
            status = "interrupted"
            local.publish("error", {"error": "CancelledError", "message": "run was cancelled"})
        except TimeoutError:
            status = "timeout"
            timeout = {
                "error": "TimeoutError",
                "message": f"run exceeded RUN_TIMEOUT_SECONDS={self.run_timeout:g}",
            }
            local.result = {"__error__": timeout}
            local.publish("error", timeout)
        except Exception as error:
            log.exception("run %s failed", run_id)
            local.result = {"__error__": _error_payload(error)}
            local.publish("error", _error_payload(error))
        finally:
            if heartbeat is not None:
                heartbeat.cancel()
            await self._settle(local, status, temporary=temporary and body.on_completion == "delete")

    async def _keep_lock(self, thread_id: str, run_id: str) -> None:
        while True:
            await asyncio.sleep(self.lock_ttl / 3)
            with contextlib.suppress(Exception):  # a missed beat is retried; two in a row free the thread
                await self.runs.refresh_lock(thread_id, run_id, self.lock_ttl)

    async def _stream(self, local: LocalRun, body: RunCreate, config: dict[str, Any]) -> None:
        graph_input: Any = body.input
        if body.command is not None:
            graph_input = Command(**body.command.model_dump(exclude_none=True))
        requested = body.stream_modes
        graph_modes = sorted({GRAPH_STREAM_MODES[m] for m in requested if m != "events"} | {"values"})
        published = {GRAPH_STREAM_MODES[m] for m in requested if m != "events"}
        options: dict[str, Any] = {
            "stream_mode": graph_modes,
            "subgraphs": True,
            "interrupt_before": body.interrupt_before,
            "interrupt_after": body.interrupt_after,
            "context": body.context,
        }
        if body.durability:
            options["durability"] = body.durability

        def emit(namespace: tuple[str, ...], mode: str, chunk: Any) -> None:
            if mode == "values" and not namespace:
                local.result = chunk
            if mode in published and (body.stream_subgraphs or not namespace):
                local.publish(_event_name(mode, namespace), to_jsonable(chunk))

        if "events" in requested:
            async for event in self.graph.astream_events(graph_input, config, version="v2", **options):
                is_root_stream = event["event"] == "on_chain_stream" and not event.get("parent_ids")
                if is_root_stream:
                    emit(*event["data"]["chunk"])
                else:
                    local.publish("events", to_jsonable(event))
        else:
            async for namespace, mode, chunk in self.graph.astream(graph_input, config, **options):
                emit(namespace, mode, chunk)

    async def _settle(self, local: LocalRun, status: str, *, temporary: bool) -> None:
        """Records the outcome; shielded so that a cancelled run still leaves a consistent record."""
        run_id, thread_id = local.run["run_id"], local.run["thread_id"]

        async def record() -> None:
            state = await self.graph.aget_state({"configurable": {"thread_id": thread_id}})
            interrupts = {t.id: to_jsonable(list(t.interrupts)) for t in state.tasks if t.interrupts}
            # A run that ended normally with nodes still pending stopped at an interrupt
            # (interrupt() or interrupt_before); a cancelled run leaves the thread idle.
            paused = status == "success" and bool(interrupts or state.next)
            thread_status = "error" if status == "error" else "interrupted" if paused else "idle"
            if local.result is None or "__error__" not in local.result:
                local.result = to_jsonable(state.values if state.values else local.result)
                if interrupts and isinstance(local.result, dict):
                    local.result["__interrupt__"] = [i for group in interrupts.values() for i in group]
            local.run = {**local.run, "status": status}
            await self.runs.set_status(run_id, status)  # type: ignore[arg-type]
            if temporary:
                await self.delete_thread_state(thread_id)
            else:
                values = to_jsonable(state.values)
                await self.threads.update(
                    thread_id, status=thread_status, values=values, interrupts=interrupts
                )

        try:
            await asyncio.shield(record())
        except Exception:
            log.exception("could not record the outcome of run %s", run_id)
        finally:
            with contextlib.suppress(Exception):
                await self.runs.unlock_thread(thread_id, run_id)
            local.finish()
            self.local.pop(run_id, None)

    async def delete_thread_state(self, thread_id: str) -> None:
        await self.saver.adelete_thread(thread_id)
        await self.runs.delete_for_thread(thread_id)
        with contextlib.suppress(LookupError):
            await self.threads.delete(thread_id)

    # -- following ------------------------------------------------------------------------------

    async def wait(self, run_id: str) -> dict[str, Any]:
        """The run's record once it has ended, wherever it runs."""
        if local := self.local.get(run_id):
            await asyncio.shield(local.task)  # type: ignore[arg-type]
            return local.run  # a temporary run's record is gone by now; this copy is not
        async with asyncio.timeout(self.run_timeout + 30):
            # A run on another replica is only visible through its Redis record.
            while (run := await self.runs.get(run_id))["status"] not in TERMINAL_STATUSES:
                if await self._orphaned(run):
                    return await self._mark_orphaned(run)
                await asyncio.sleep(REMOTE_POLL_SECONDS)
        return run

    async def _orphaned(self, run: dict[str, Any]) -> bool:
        """A running run whose lock lapsed: its replica stopped refreshing it, i.e. died."""
        return (
            run["status"] == "running"
            and await self.runs.thread_lock_holder(run["thread_id"]) != run["run_id"]
        )

    async def _mark_orphaned(self, run: dict[str, Any]) -> dict[str, Any]:
        log.warning("run %s lost its replica; marking it failed", run["run_id"])
        await self.runs.set_status(run["run_id"], "error")
        with contextlib.suppress(LookupError):
            await self.threads.update(run["thread_id"], status="error")
        return {**run, "status": "error"}

    async def cancel(self, run_id: str, *, rollback: bool = False) -> None:
        if local := self.local.get(run_id):
            local.task.cancel()  # type: ignore[union-attr]
        else:
            await self.runs.client.publish(self.cancel_channel, run_id)
        if rollback:
            await self.wait(run_id)
            await self.saver.adelete_for_runs([run_id])
            await self.runs.delete(run_id)

    async def listen_for_cancellations(self) -> None:
        """Cancels local runs named on the cancel channel by other replicas; reconnects after errors."""
        while True:
            try:
                async with self.runs.client.pubsub() as pubsub:
                    await pubsub.subscribe(self.cancel_channel)
                    async for message in pubsub.listen():
                        if message["type"] == "message" and (
                            local := self.local.get(message["data"].decode())
                        ):
                            local.task.cancel()  # type: ignore[union-attr]
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("cancel channel lost (%s); resubscribing", error)
                await asyncio.sleep(1.0)

    async def drain(self, grace_seconds: float) -> None:
        """From now on new runs are refused (and readiness is false); running ones get the grace."""
        self.draining = True
        tasks = [r.task for r in self.local.values() if r.task is not None]
        if not tasks:
            return
        _, still_running = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
