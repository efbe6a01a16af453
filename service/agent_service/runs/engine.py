"""The run engine: what the API asks of runs, on any replica.

The API never executes a graph itself: it writes the run's record, puts the run in the queue
(``agent_service.runs.queue``) and reads the run's event log. When the accepting replica has a free
slot it claims the run at once (one script call) and its followers read the events from memory;
otherwise any replica's worker takes it and the followers read the log in Redis. Either way a
stream, a join, a wait and a webhook see the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.pregel import Pregel

from agent_service.api.schemas import RunCreate
from agent_service.observability.context import DEFAULT_TENANT, current_request
from agent_service.runs import events
from agent_service.runs.crons import CronScheduler, CronStore
from agent_service.runs.queue import Claimed, RunQueue
from agent_service.runs.sweeper import Sweeper
from agent_service.runs.webhooks import WebhookDispatcher, WebhookPolicy, parse_allowed
from agent_service.runs.worker import Worker, now_ms
from agent_service.serialization import now_iso, to_jsonable
from agent_service.settings import Settings
from agent_service.state import RedisSaver, atomic
from agent_service.state.connection import AsyncClient
from agent_service.state.keys import ServiceKeys
from agent_service.state.runs import TERMINAL_STATUSES, RunNotFoundError, RunStore
from agent_service.state.store import RedisStore
from agent_service.state.threads import ThreadNotFoundError, ThreadStore

log = logging.getLogger(__name__)

#: A follower with nothing to read re-checks that the run is still in flight this often.
FOLLOW_IDLE_SECONDS = 5.0


class ThreadBusyError(RuntimeError):
    """The thread runs something already and the multitask strategy is 'reject'."""


class RunEngine:
    def __init__(
        self,
        settings: Settings,
        *,
        client: AsyncClient,
        blocking: AsyncClient,
        graphs: dict[str, Pregel],
        saver: RedisSaver,
        threads: ThreadStore,
        runs: RunStore,
        keys: ServiceKeys,
        resolve_assistant: Callable[[str, str], Awaitable[dict[str, Any]]],  # (assistant id, tenant)
        store: RedisStore | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.blocking = blocking  # its own pool: BLPOP and XREAD BLOCK hold a connection each
        self.graphs = graphs
        self.saver = saver
        self.threads = threads
        self.runs = runs
        self.keys = keys
        self.resolve_assistant = resolve_assistant
        self.store = store
        self.queue = RunQueue(client, keys)
        # A stateless run's thread ends with the run: its checkpoints stay in this process's memory
        # (nothing to delete afterwards; after a lost replica such a run starts again from its input).
        self._ephemeral_saver = InMemorySaver()
        self._ephemeral = {
            graph_id: graph.copy(update={"checkpointer": self._ephemeral_saver})
            for graph_id, graph in graphs.items()
        }
        self.worker = Worker(self)
        self.webhooks = WebhookDispatcher(self, WebhookPolicy(parse_allowed(settings.webhook_allowed_hosts)))
        self.crons = CronStore(self)
        self._scheduler = CronScheduler(self, self.crons, self.worker.id)
        self.sweeper = Sweeper(self, self.worker.id)
        self._tasks: list[asyncio.Task] = []

    def graph_for(self, record: dict[str, Any]) -> tuple[str, Pregel]:
        """(graph id, graph) a run executes: its assistant's graph (the default if no longer served),
        given its tenant's store (long-term memory)."""
        graph_id = record.get("assistant", {}).get("graph_id")
        if graph_id not in self.graphs:
            graph_id = next(iter(self.graphs))
        graph = (self._ephemeral if record.get("temporary") else self.graphs)[graph_id]
        if self.store is not None:
            tenant = record.get("tenant") or DEFAULT_TENANT
            graph = graph.copy(update={"store": self.store.for_tenant(tenant)})
        return graph_id, graph

    async def forget_ephemeral(self, thread_id: str) -> None:
        await self._ephemeral_saver.adelete_thread(thread_id)

    @property
    def draining(self) -> bool:
        return not self.worker.accepting

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Registers the worker and starts the background loops of this replica."""
        with contextlib.suppress(Exception):  # Redis down: the heartbeat loop registers us later
            await self.worker.beat_once()
        loops = (
            self.worker.serve(),
            self.worker.beat(),
            self.webhooks.serve(),
            self._scheduler.serve(),
            self.sweeper.serve(),
        )
        for loop in loops:
            self._tasks.append(asyncio.create_task(loop))

    async def stop(self, grace_seconds: float) -> None:
        try:
            await self.worker.drain(grace_seconds)
        except Exception:
            log.exception("drain could not hand the remaining runs back")
        # A cancel that lands while redis-py's own socket timeout fires is swallowed (asyncio.timeout
        # turns it into a TimeoutError, which the client retries): cancel until they really stop.
        while pending := [t for t in self._tasks if not t.done()]:
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=0.5)

    # -- accepting ----------------------------------------------------------------------------

    async def submit(
        self,
        thread_id: str | None,
        body: RunCreate,
        *,
        assistant: dict[str, Any],
        tenant: str,
        user: str,
        run_id: str | None = None,
    ) -> dict[str, Any]:
        """Accepts a run; ``thread_id`` None: a stateless run on a thread of its own (same id).

        ``run_id`` given (a cron's firing): accepting it again is a no-op returning the first record."""
        idempotent = run_id is not None
        run_id = run_id or str(uuid.uuid4())
        temporary = thread_id is None and body.on_completion == "delete"
        thread_id = thread_id or run_id
        accepted, now = now_iso(), now_ms()
        record = {
            "run_id": run_id,
            "thread_id": thread_id,
            "assistant_id": assistant["assistant_id"],
            "created_at": accepted,
            "updated_at": accepted,
            "status": "pending",
            "metadata": body.metadata or {},
            "multitask_strategy": body.multitask_strategy,
            "kwargs": to_jsonable(body.model_dump(exclude_none=True)),
            "tenant": tenant,
            "user": user,
            "request_id": current_request().request_id,
            "temporary": temporary,
            # The assistant as it was when the run was accepted (its graph, config and context).
            "assistant": {k: assistant.get(k) for k in ("graph_id", "config", "context", "version")},
        }
        worker = self.worker
        here = worker.id if worker.free > 0 and worker.lease_valid() else None
        start_ms = now + int((body.after_seconds or 0) * 1000)
        submit = self.queue.submit_call(
            run_id, thread_id, now_ms=now, start_ms=start_ms, strategy=body.multitask_strategy, worker=here
        )
        if idempotent:  # only a record written now may be queued: its SET NX answers first
            if not await self.runs.create(record, listed=not temporary, only_new=True):
                return await self.runs.get(thread_id, run_id)
            reply = await submit()
        else:  # the record, then the queue entry: on one Redis, one round trip
            reply = await atomic.execute_then(
                self.client, self.runs.create_commands(record, listed=not temporary), submit
            )
        submitted = self.queue.submitted(reply)
        if submitted.outcome == "busy":
            await self.runs.delete(thread_id, run_id)
            raise ThreadBusyError(
                f"thread {thread_id} is busy with run {submitted.current}; multitask_strategy is 'reject'"
            )
        action = body.multitask_strategy
        for removed in submitted.removed:
            await self._end_unstarted(thread_id, removed, action)
        if submitted.signal is not None:
            other, holder = submitted.signal
            await self.queue.tell(holder, f"{action} {other}")
        if submitted.outcome == "claimed":
            worker.start(Claimed(run_id, thread_id, 1, 0, now), record=record)
        return record  # as accepted ("pending"), as LangGraph Server answers

    async def _end_unstarted(self, thread_id: str, run_id: str, action: str) -> None:
        """A run cancelled before it started: no worker ever holds it, so the canceller records it."""
        record = await self.runs.find(thread_id, run_id)
        if record is None:
            return
        key = self.keys.events(thread_id, run_id)
        last_seq, _ = await events.last_seq(self.client, key)  # a handed-off run has events already
        writer = events.EventWriter(
            self.client, key, last_seq=last_seq, max_entries=self.settings.run_event_log_max_entries
        )
        await writer.end("interrupted", self.settings.run_event_ttl_seconds)
        if action == "rollback":
            await self.runs.delete(thread_id, run_id)
            return
        await self.runs.save(
            {**record, "status": "interrupted", "updated_at": now_iso()},
            ttl_seconds=self.record_ttl(record),
            listed=not record.get("temporary"),
        )

    def record_ttl(self, record: dict[str, Any]) -> int | None:
        """Seconds a finished run's record is kept: a stateless run's with its output, a thread
        run's by RUN_RECORD_TTL_SECONDS (spec.retention.runs); None: as long as its thread."""
        if record.get("temporary"):
            return self.settings.stateless_run_ttl_seconds
        return self.settings.run_record_ttl_seconds or None

    # -- reading ------------------------------------------------------------------------------

    async def get(self, thread_id: str, run_id: str) -> dict[str, Any]:
        return (await self._overlay([await self.runs.get(thread_id, run_id)]))[0]

    async def list(
        self, thread_id: str, *, limit: int, offset: int, status: str | None = None
    ) -> list[dict[str, Any]]:
        if status is None:
            return await self._overlay(await self.runs.list(thread_id, limit=limit, offset=offset))
        runs = [r for r in await self._overlay(await self.runs.all(thread_id)) if r["status"] == status]
        return runs[offset : offset + limit]

    async def _overlay(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Records of runs in flight show the queue's view: pending or running, and the attempt."""
        waiting = [r["run_id"] for r in records if r["status"] not in TERMINAL_STATUSES]
        if not waiting:
            return records
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hmget(self.queue.key("running"), waiting)
            pipe.hmget(self.queue.key("pending"), waiting)
            running, pending = await pipe.execute()
        live = {}
        for run_id, held, queued in zip(waiting, running, pending, strict=True):
            if held is not None:
                live[run_id] = ("running", held)
            elif queued is not None:
                live[run_id] = ("pending", queued)
        shown = []
        for record in records:
            if (state := live.get(record["run_id"])) is not None:
                record = {**record, "status": state[0], "attempt": json.loads(state[1]).get("a", 0)}
            shown.append(record)
        return shown

    async def follow(
        self, thread_id: str, run_id: str, after: int | None
    ) -> AsyncIterator[events.Event | events.End | None]:
        """The run's events numbered above ``after`` (None: only those to come), then ``End``;
        ``None`` after each quiet ``FOLLOW_IDLE_SECONDS`` (a chance for an SSE heartbeat)."""
        key = self.keys.events(thread_id, run_id)
        if after is None:
            after, ended = await events.last_seq(self.client, key)
            if ended is not None:
                yield events.End(ended)
                return
        execution = self.worker.executions.get(run_id)
        if execution is not None:
            await execution.started.wait()
            writer = execution.writer
            if writer is not None and writer.local.covers(after):
                async for item in writer.local.follow(after, FOLLOW_IDLE_SECONDS):
                    if isinstance(item, events.End) and item.status == "handed_off":
                        break  # the run goes on elsewhere: read on from the log
                    if isinstance(item, events.Event):
                        after = item.seq
                    yield item
                    if isinstance(item, events.End):
                        return
        async for item in events.read(self.blocking, key, after, block_seconds=FOLLOW_IDLE_SECONDS):
            if item is None and not await self._alive(thread_id, run_id):
                yield events.End("unknown")
                return
            yield item

    async def _alive(self, thread_id: str, run_id: str) -> bool:
        if await self.queue.state(run_id) is not None:
            return True
        record = await self.runs.find(thread_id, run_id)
        return record is not None and record["status"] not in TERMINAL_STATUSES

    async def wait(self, thread_id: str, run_id: str) -> dict[str, Any] | None:
        """The run's final record once it has ended (None: it was rolled back)."""
        if (execution := self.worker.executions.get(run_id)) is not None:
            await asyncio.shield(execution.ended.wait())
        else:
            async for item in self.follow(thread_id, run_id, None):
                if isinstance(item, events.End):
                    break
        return await self.runs.find(thread_id, run_id)

    async def result(self, record: dict[str, Any]) -> Any:
        """A finished run's output, as /wait and /join answer it."""
        if record.get("error"):
            return {"__error__": record["error"]}
        if record.get("temporary"):
            return await self.runs.result(record["thread_id"], record["run_id"])
        try:
            thread = await self.threads.get(record["thread_id"])
        except ThreadNotFoundError:
            return await self.runs.result(record["thread_id"], record["run_id"])
        values = thread["values"]
        interrupts = thread.get("interrupts") or {}
        if interrupts and isinstance(values, dict):
            values = {**values, "__interrupt__": [i for group in interrupts.values() for i in group]}
        return values

    async def wait_result(self, thread_id: str, run_id: str) -> Any:
        """Waits for the run and answers its output; the run goes on if the caller gives up."""
        execution = self.worker.executions.get(run_id)
        if execution is not None:
            await asyncio.shield(execution.ended.wait())
            if execution.result is not None:
                _mark_degraded(execution.context.degraded if execution.context else None)
                return execution.result
        record = await self.wait(thread_id, run_id)
        if record is None:
            return None
        _mark_degraded(record.get("degraded"))
        return await self.result(record)

    # -- stopping -----------------------------------------------------------------------------

    async def cancel(
        self, thread_id: str, run_id: str, action: str = "interrupt", *, wait: bool = False
    ) -> None:
        outcome = await self.queue.cancel(run_id, thread_id, action, now_ms())
        if outcome == "removed":
            await self._end_unstarted(thread_id, run_id, action)
        elif outcome == "signalled" and wait:
            await self.wait(thread_id, run_id)

    async def cancel_many(
        self,
        *,
        thread_id: str | None,
        run_ids: list[str] | None,
        status: str | None,
        action: str,
        tenant: str,
    ) -> int:
        """Cancels the caller's runs in flight that match every filter given; returns how many."""
        in_flight = await self.queue.in_flight()
        chosen = [
            (state["t"], run_id)
            for run_id, (current, state) in in_flight.items()
            if (run_ids is None or run_id in run_ids)
            and (thread_id is None or state["t"] == thread_id)
            and status in (None, "all", current)
        ]
        records = [await self.runs.find(thread, run_id) for thread, run_id in chosen]
        owned = [r for r in records if r is not None and r.get("tenant") == tenant]
        # Newest first: cancelling a thread's current run makes its next one ready, which a worker
        # would start before its own cancel arrived; the runs queued behind it are gone by then.
        owned.sort(key=lambda r: r.get("created_at") or "", reverse=True)
        for record in owned:
            await self.cancel(record["thread_id"], record["run_id"], action)
        return len(owned)

    async def delete_thread(self, thread_id: str) -> None:
        """Stops the thread's runs in flight, then removes everything of it."""
        if await self.busy(thread_id):  # (reading every run in flight is for threads that have one)
            for run_id, (_, state) in (await self.queue.in_flight()).items():
                if state["t"] == thread_id:
                    await self.cancel(thread_id, run_id, "interrupt", wait=True)
        await self.saver.adelete_thread(thread_id)
        await self.runs.delete_for_thread(thread_id)
        with contextlib.suppress(ThreadNotFoundError):
            await self.threads.delete(thread_id)

    async def busy(self, thread_id: str) -> bool:
        return await self.client.hexists(self.queue.key("thread"), thread_id)


__all__ = ["RunEngine", "RunNotFoundError", "ThreadBusyError"]


def _mark_degraded(reason: str | None) -> None:
    """A run answered with the degraded reply: its waiter's response says so (X-Shepherd-Degraded)."""
    if reason:
        current_request().degraded = reason
