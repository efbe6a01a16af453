"""The worker of one replica: takes runs from the queue, runs them, records how each ended.

* ``serve``: blocks on the replica's control list and the queue's wake list (one BLPOP), claims
  ready runs while it has free slots (``MAX_CONCURRENT_RUNS``), and stops runs it is told to cancel.
  It also claims after each idle second, which starts delayed runs (``after_seconds``) on time.
* ``beat``: renews the replica's lease every quarter lease; reaps replicas whose lease lapsed (their
  runs go back to the queue), stops runs it finds it lost, and refreshes the pending-runs gauge.
* An attempt resumes from the run's last checkpoint when it has one (finished nodes do not run
  again), publishes its events to the run's event log, and ends by ``settle``: the run's record,
  the thread's status and values, the end of the log, then the queue's ``finish`` — which also
  schedules the webhook, and only succeeds for the worker holding that attempt. Metrics count the
  outcome after that, so each run is counted once.
* ``drain`` (SIGTERM): no more claims; runs still going at the grace deadline are handed back to
  the queue, not cancelled, and resume on another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from agent_service.api.schemas import RunCreate
from agent_service.observability.context import DEFAULT_TENANT, RequestContext, enter_request
from agent_service.observability.metrics import RUN_QUEUE, RUN_RECOVERIES, RUNS_PENDING, RUNS_RUNNING
from agent_service.observability.outcomes import classify_run, record_run
from agent_service.runs import events, graph_run
from agent_service.runs.queue import Claimed
from agent_service.serialization import dumps, now_iso, to_jsonable
from agent_service.state import atomic
from agent_service.state.atomic import ScriptCall
from agent_service.state.runs import TERMINAL_STATUSES

if TYPE_CHECKING:
    from agent_service.runs.engine import RunEngine

log = logging.getLogger(__name__)

IDLE_CLAIM_SECONDS = 1.0
#: How long a claimed run's record may take to appear (the API writes it just before queueing).
RECORD_WAIT_SECONDS = 5.0
#: Failures of Redis itself: the attempt is given back to the queue instead of failing the run.
INFRA_ERRORS = (RedisConnectionError, RedisTimeoutError)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Execution:
    """One attempt of one run on this replica."""

    claim: Claimed
    record: dict[str, Any] | None = None
    writer: events.EventWriter | None = None
    task: asyncio.Task | None = None
    #: Why the task was cancelled: "interrupt"/"rollback" (the caller), "handoff" (drain),
    #: "lost" (another replica took the run over), "retry" (Redis failed under it).
    stop: str | None = None
    result: Any = None
    #: The caller's context the attempt runs in; the LLM client marks it when it answered degraded.
    context: RequestContext | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def run_id(self) -> str:
        return self.claim.run_id

    #: Set once the attempt records its end (or gives up): cancels no longer reach it.
    settling: bool = False

    def cancel(self, why: str) -> None:
        if self.task is None or self.task.done() or self.stop is not None:
            return
        self.stop = why
        self._cancel_until_stopped()

    def _cancel_until_stopped(self) -> None:
        # A cancel landing while redis-py's socket timeout fires can be swallowed: repeat it.
        if self.task is not None and not self.task.done() and not self.settling:
            self.task.cancel()
            asyncio.get_running_loop().call_later(0.5, self._cancel_until_stopped)


class Worker:
    def __init__(self, engine: RunEngine) -> None:
        self.engine = engine
        settings = engine.settings
        self.id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.capacity = settings.max_concurrent_runs
        self.lease_ms = int(settings.run_lease_seconds * 1000)
        self.executions: dict[str, Execution] = {}
        self.accepting = True
        self._lease_until = 0.0  # monotonic time our lease is known to last until
        self._control = engine.queue.control_key(self.id)

    # -- capacity and lease -------------------------------------------------------------------

    @property
    def free(self) -> int:
        return self.capacity - len(self.executions) if self.accepting else 0

    def lease_valid(self) -> bool:
        return time.monotonic() < self._lease_until

    async def beat_once(self) -> None:
        sent = time.monotonic()
        beat = await self.engine.queue.heartbeat(self.id, now_ms(), self.lease_ms, list(self.executions))
        # Our lease runs from when the beat was sent, not when it was answered.
        self._lease_until = sent + self.lease_ms / 1000
        RUNS_PENDING.set(beat.pending)
        if beat.recovered:
            RUN_RECOVERIES.inc(len(beat.recovered))
            log.warning("took over %d runs of lost replicas: %s", len(beat.recovered), beat.recovered)
        for run_id in beat.lost:
            if (execution := self.executions.get(run_id)) is not None:
                log.error("run %s was taken over by another replica (lease lapsed); stopping it here", run_id)
                execution.cancel("lost")
        for run_id, action in beat.cancels.items():
            if (execution := self.executions.get(run_id)) is not None:
                execution.cancel(action)

    async def beat(self) -> None:
        while True:
            await asyncio.sleep(self.lease_ms / 4000)
            try:
                await self.beat_once()
            except RedisError as error:
                log.warning("heartbeat failed (%s); retrying", error)

    # -- claiming -----------------------------------------------------------------------------

    async def serve(self) -> None:
        blocking = self.engine.blocking
        wake = self.engine.queue.key("wake")
        while True:
            try:
                keys = [self._control, wake] if self.free > 0 else [self._control]
                item = await blocking.blpop(keys, timeout=IDLE_CLAIM_SECONDS)
                if item is not None and item[0].decode() == self._control:
                    self._on_control(item[1].decode())
                    continue
                claimed = await self.claim()
                if item is not None and not claimed:
                    # The token was for a run someone else took: drop the backlog of such tokens
                    # (a token lost this way costs at most one idle second).
                    await self.engine.client.delete(wake)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # Redis away: keep trying, runs in flight go on meanwhile
                log.warning("worker loop: %s", error)
                await asyncio.sleep(IDLE_CLAIM_SECONDS)

    def _on_control(self, message: str) -> None:
        action, _, run_id = message.partition(" ")
        if (execution := self.executions.get(run_id)) is not None:
            execution.cancel(action)

    async def claim(self) -> int:
        if self.free <= 0 or not self.lease_valid():
            return 0
        claims = await self.engine.queue.claim(self.id, now_ms(), self.free)
        for claim in claims:
            self.start(claim)
        return len(claims)

    def start(self, claim: Claimed, record: dict[str, Any] | None = None) -> Execution:
        execution = Execution(claim, record=record)
        self.executions[claim.run_id] = execution
        RUNS_RUNNING.set(len(self.executions))
        execution.task = asyncio.create_task(self._attempt(execution), name=f"run-{claim.run_id}")
        return execution

    # -- one attempt --------------------------------------------------------------------------

    async def _record(self, execution: Execution) -> dict[str, Any] | None:
        claim = execution.claim
        deadline = time.monotonic() + RECORD_WAIT_SECONDS
        while (record := await self.engine.runs.find(claim.thread_id, claim.run_id)) is None:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.05)
        return record

    async def _attempt(self, execution: Execution) -> None:
        claim = execution.claim
        try:
            record = execution.record or await self._record(execution)
            if record is None:  # accepted by a replica that died before writing it: nothing to run
                log.error("run %s has no record; dropping it from the queue", claim.run_id)
                await self._finish(execution, webhook=False)
                return
            execution.record = record
            # Budgets, limits and logs see the run's caller, whichever replica runs it.
            execution.context = RequestContext(
                request_id=record.get("request_id") or claim.run_id,
                user=record.get("user") or "anonymous",
                tenant=record.get("tenant") or DEFAULT_TENANT,
            )
            enter_request(execution.context)
            if claim.attempt == 1:
                RUN_QUEUE.observe(max(0.0, (now_ms() - claim.accepted_ms) / 1000))
            if record["status"] in TERMINAL_STATUSES:
                # The previous attempt recorded its end and died before telling the queue.
                execution.result = {"__error__": record["error"]} if record.get("error") else None
                await self._finish(execution, webhook=bool(record["kwargs"].get("webhook")))
                return
            await self._run(execution, record)
        except Exception:
            log.exception("run %s: the worker failed around the run", claim.run_id)
        finally:
            execution.started.set()
            self.executions.pop(claim.run_id, None)
            RUNS_RUNNING.set(len(self.executions))
            execution.ended.set()

    async def _run(self, execution: Execution, record: dict[str, Any]) -> None:
        engine, claim = self.engine, execution.claim
        body = RunCreate.model_validate(record["kwargs"])
        temporary = bool(record.get("temporary"))
        graph_id, graph = engine.graph_for(record)
        thread_id, run_id = claim.thread_id, claim.run_id
        last_seq = 0
        if claim.attempt > 1:
            last_seq, _ = await events.last_seq(engine.client, engine.keys.events(thread_id, run_id))
        writer = events.EventWriter(
            engine.client,
            engine.keys.events(thread_id, run_id),
            last_seq=last_seq,
            max_entries=engine.settings.run_event_log_max_entries,
        )
        execution.writer = writer
        execution.started.set()
        status, error, last_values = "error", None, None
        if claim.cancel:
            execution.stop = claim.cancel
            await self._settle(execution, body, "interrupted", None, None)
            return
        if claim.failed_attempts > engine.settings.run_max_attempts:
            error = RuntimeError(
                f"run {run_id} was lost with its replica {claim.failed_attempts - 1} times "
                f"(RUN_MAX_ATTEMPTS={engine.settings.run_max_attempts}); not trying again"
            )
            error.shepherd_reason = "worker_lost"  # type: ignore[attr-defined]
            writer.publish("metadata", dumps({"run_id": run_id, "attempt": claim.attempt}))
            await self._settle(execution, body, "error", error, None)
            return
        timeout = asyncio.timeout(engine.settings.run_timeout_seconds)  # per attempt
        try:
            start = "start"
            if claim.attempt > 1 and not temporary:
                start = await graph_run.resume_point(graph, thread_id, run_id)
            if not temporary:
                await engine.threads.update(thread_id, status="busy")
            writer.publish("metadata", dumps({"run_id": run_id, "attempt": claim.attempt}))
            assistant = record.get("assistant") or {}
            config = graph_run.run_config(record, body, assistant, graph_id)
            context = graph_run.run_context(graph, body, assistant)
            if start != "done":
                async with timeout:
                    attempt = await graph_run.stream(
                        graph, body, config, context, writer.publish, resume=start == "resume"
                    )
                last_values = attempt.result
            status = "success"
        except asyncio.CancelledError:
            if execution.stop in ("handoff", "lost", "retry", None):
                await self._abandon(execution)
                if execution.stop is None:
                    raise  # the process itself is going away
                return
            status = "interrupted"
        except TimeoutError as failure:
            status, error = ("timeout", failure) if timeout.expired() else ("error", failure)
        except INFRA_ERRORS as failure:
            log.warning("run %s: Redis failed under it (%s); giving it back to the queue", run_id, failure)
            execution.stop = "retry"
            await self._abandon(execution)
            return
        except Exception as failure:
            log.exception("run %s failed", run_id)
            status, error = "error", failure
        await self._settle(execution, body, status, error, last_values)

    async def _abandon(self, execution: Execution) -> None:
        """Stops the attempt without an outcome; its events so far stay in the log."""
        execution.settling = True
        if execution.writer is not None:
            execution.writer.abandon()
            with contextlib.suppress(RedisError):
                await execution.writer.drain()
        if execution.stop == "retry":
            with contextlib.suppress(RedisError):
                await self.engine.queue.handoff(self.id, now_ms(), [execution.run_id], counted=True)

    # -- the end of a run ---------------------------------------------------------------------

    async def _settle(
        self, execution: Execution, body: RunCreate, status: str, error: BaseException | None, last: Any
    ) -> None:
        """Records how the attempt ended, then tells the queue; counts the outcome once that held."""
        execution.settling = True
        claim, record, writer = execution.claim, execution.record, execution.writer
        if record is None or writer is None:
            raise RuntimeError(f"run {claim.run_id} settled before it started")
        if not self.lease_valid():
            log.error(
                "run %s ended after this replica's lease lapsed; leaving it to its new holder", claim.run_id
            )
            await self._abandon(execution)
            return
        _, graph = self.engine.graph_for(record)
        ending = await graph_run.ending(graph, claim.thread_id, status, last)
        execution.result = ending.result
        if error is not None:
            failure = graph_run.error_payload(error)
            if status == "timeout":
                failure["message"] = (
                    f"run exceeded RUN_TIMEOUT_SECONDS={self.engine.settings.run_timeout_seconds:g}"
                )
            writer.publish("error", dumps(failure))
            execution.result = {"__error__": failure}
        elif status == "interrupted":
            writer.publish("error", dumps({"error": "CancelledError", "message": "run was cancelled"}))
        final = {
            **record,
            "status": status,
            "attempt": claim.attempt,
            "updated_at": now_iso(),
            "ended_at": now_iso(),
        }
        if error is not None:
            final["error"] = execution.result["__error__"]
        # Every model failed and the configured degraded reply answered: a success to the caller
        # (marked X-Shepherd-Degraded), a failed run to the SLIs.
        degraded = execution.context.degraded if execution.context is not None else None
        if degraded and status == "success":
            final["degraded"] = degraded
        rollback = execution.stop == "rollback"
        webhook = bool(body.webhook) and not rollback
        if await self._record_end(execution, body, final, ending, rollback=rollback, webhook=webhook):
            if webhook:
                self.engine.webhooks.kick()
            outcome = classify_run(status, paused=ending.paused, error=error, degraded=final.get("degraded"))
            record_run(*outcome, (now_ms() - claim.accepted_ms) / 1000)

    async def _record_end(
        self,
        execution: Execution,
        body: RunCreate,
        final: dict[str, Any],
        ending: graph_run.Ending,
        *,
        rollback: bool,
        webhook: bool,
    ) -> bool:
        """The run's record, its thread, then the end of its log: whoever follows the log finds the
        record and the thread final. Then the queue's ``finish``: answers whether it held. A rollback
        removes the run and its checkpoints instead."""
        engine, claim, settings = self.engine, execution.claim, self.engine.settings
        writer = execution.writer
        assert writer is not None
        temporary = bool(final.get("temporary"))
        if rollback:
            await engine.saver.adelete_for_runs([claim.run_id])
        if not temporary:
            values = ending.values
            status = "error" if final["status"] == "error" else "interrupted" if ending.paused else "idle"
            if rollback:
                _, graph = engine.graph_for(final)
                state = await graph.aget_state(graph_run.thread_config(claim.thread_id))
                values = to_jsonable(state.values)
            await engine.threads.update(
                claim.thread_id,
                status=status,
                values=values,
                interrupts={} if rollback else ending.interrupts,
            )
        else:
            await engine.forget_ephemeral(claim.thread_id)
        if rollback:
            await writer.end(final["status"], settings.run_event_ttl_seconds)
            await engine.runs.delete(claim.thread_id, claim.run_id)
            return await self._finish(execution, webhook=webhook)
        record = engine.runs.save_commands(
            final,
            ttl_seconds=engine.record_ttl(final),
            # Stateless runs keep their output with the record; a webhook needs it until sent.
            result=execution.result if temporary or body.webhook else None,
            result_ttl_seconds=settings.stateless_run_ttl_seconds
            if temporary
            else settings.run_event_ttl_seconds,
            listed=not temporary,
        )
        end = await writer.end_commands(final["status"], settings.run_event_ttl_seconds)
        # The record and the end of the log share the thread's slot: one atomic batch, and on one
        # Redis the finish rides with it (one round trip for the whole end of the run).
        try:
            reply = await atomic.execute_then(
                engine.client, [*record, *end], self._finish_call(execution, webhook)
            )
        finally:
            writer.ended(final["status"])
        return self._finished(execution, reply)

    def _finish_call(self, execution: Execution, webhook: bool) -> ScriptCall:
        claim = execution.claim
        return self.engine.queue.finish_call(
            claim.run_id,
            claim.thread_id,
            worker=self.id,
            attempt=claim.attempt,
            now_ms=now_ms(),
            webhook=webhook,
        )

    async def _finish(self, execution: Execution, *, webhook: bool) -> bool:
        return self._finished(execution, await self._finish_call(execution, webhook)())

    def _finished(self, execution: Execution, reply: Any) -> bool:
        done = self.engine.queue.finished(reply)
        if not done:
            log.error(
                "run %s attempt %d: another replica holds it now; the outcome is theirs",
                execution.claim.run_id,
                execution.claim.attempt,
            )
        return done

    # -- shutdown -----------------------------------------------------------------------------

    async def drain(self, grace_seconds: float) -> int:
        """No more claims; runs still going after the grace go back to the queue. Returns how many."""
        self.accepting = False
        running = [e.task for e in self.executions.values() if e.task is not None]
        if running:
            await asyncio.wait(running, timeout=grace_seconds)
        remaining = list(self.executions.values())
        for execution in remaining:
            execution.cancel("handoff")
        await asyncio.gather(*(e.task for e in remaining if e.task is not None), return_exceptions=True)
        given = await self.engine.queue.handoff(
            self.id, now_ms(), [e.run_id for e in remaining], counted=False, leave=True
        )
        if given:
            log.warning("handed %d runs still going back to the queue", given)
        return given
