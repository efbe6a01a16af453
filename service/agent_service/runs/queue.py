"""The run queue: which run may execute, where it executes, and who takes over when its worker dies.

Design (plain Redis 7 commands; every key below carries the deployment's hash tag, so each script
runs on one shard of a Cluster too):

    pending    hash  run id -> state of a run accepted and not executing (queued or ready)
    running    hash  run id -> state of a run a worker holds (the state names the worker)
    ready      zset  run id -> time (ms) it may start: runs at the head of their thread, unclaimed
    thread     hash  thread id -> the thread's current run (ready or running): one at a time
    tq:<tid>   list  runs waiting behind the thread's current run, in order (multitask "enqueue")
    workers    zset  worker id -> lease deadline (ms), renewed by its heartbeat
    wake       list  one token per run made ready; idle workers block on it (BLPOP)
    ctl:<w>    list  control messages to worker w (cancel); it blocks on it with ``wake``
    cancel     hash  run id -> cancel action requested for a running run
    webhooks   zset  "<run id>|<thread id>" -> when its webhook is due (ms)

A run's state is JSON: ``t`` thread, ``a`` claims (attempts started), ``h`` hand-offs, ``e`` when it
may start, ``q`` accepted at (ms), ``w`` worker holding it.

Life of a run. ``submit`` makes it the thread's current run (then ready, or claimed at once by the
accepting replica when it has a free slot) or queues it behind the current one; "reject" refuses a
busy thread, "interrupt"/"rollback" remove the runs waiting ahead and ask the running one to stop.
``claim`` moves ready runs to ``running`` under a worker. ``finish`` (fenced: only the worker that
holds the run, for the attempt it holds) removes it, makes the thread's next run ready and, atomically
with that, schedules the run's webhook — so a run completes once: one final state, one webhook,
one outcome counted. A worker renews one lease for all its runs (``heartbeat``); a worker whose
lease lapsed is reaped by any other: its runs go back to ``ready`` first in line (and resume from
their last checkpoint); a worker that claims a run whose attempts are used up fails it with reason
``worker_lost`` instead of running it again. Hand-offs (drain at shutdown) return runs
to the queue without counting against the attempts. A worker that finds, at its heartbeat, that it
lost runs (it stalled past its lease and was reaped) stops them without recording anything.

The run record itself lives with the thread's data (another slot on a Cluster): the API writes it
before ``submit``; a worker that claims a run whose record is not readable yet retries briefly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from agent_service.state.atomic import ScriptCall
from agent_service.state.connection import AsyncClient
from agent_service.state.keys import ServiceKeys

# Shared by the scripts: KEYS are always the ten below, in this order.
_PRELUDE = """
local PENDING, RUNNING, READY, THREAD, WAKE, CANCEL, WORKERS, WEBHOOKS, TQ = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local function ready(rid, state, now)
  redis.call('HSET', PENDING, rid, cjson.encode(state))
  redis.call('ZADD', READY, math.max(now, state.e or 0), rid)
  redis.call('RPUSH', WAKE, 1)
end
-- the thread's current run ended (or was removed): the next one in its queue becomes ready
local function advance(tid, rid, tq, now)
  if redis.call('HGET', THREAD, tid) ~= rid then return end
  local nxt = redis.call('LPOP', tq)
  if nxt then
    redis.call('HSET', THREAD, tid, nxt)
    ready(nxt, cjson.decode(redis.call('HGET', PENDING, nxt)), now)
  else
    redis.call('HDEL', THREAD, tid)
  end
end
"""

# ARGV: rid tid state now strategy worker(or "")
_SUBMIT = (
    _PRELUDE
    + """
local rid, tid, now, strategy, worker = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[5], ARGV[6]
local state = cjson.decode(ARGV[3])
local current = redis.call('HGET', THREAD, tid)
if not current then
  redis.call('HSET', THREAD, tid, rid)
  local alive = worker ~= '' and redis.call('ZSCORE', WORKERS, worker)
  if alive and tonumber(alive) >= now and (state.e or 0) <= now then
    state.w = worker
    state.a = 1
    redis.call('HSET', RUNNING, rid, cjson.encode(state))
    return {'claimed'}
  end
  ready(rid, state, now)
  return {'ready'}
end
if strategy == 'reject' then return {'busy', current} end
local removed, signal = {}, {}
if strategy == 'interrupt' or strategy == 'rollback' then
  for _, ahead in ipairs(redis.call('LRANGE', TQ, 0, -1)) do
    redis.call('HDEL', PENDING, ahead)
    table.insert(removed, ahead)
  end
  redis.call('DEL', TQ)
  if redis.call('HEXISTS', PENDING, current) == 1 then
    redis.call('HDEL', PENDING, current)
    redis.call('ZREM', READY, current)
    table.insert(removed, current)
    redis.call('HSET', THREAD, tid, rid)
    ready(rid, state, now)
    return {'ready', removed, signal}
  end
  local running = redis.call('HGET', RUNNING, current)
  if running then
    redis.call('HSET', CANCEL, current, strategy)
    signal = {current, cjson.decode(running).w}
  end
end
redis.call('HSET', PENDING, rid, cjson.encode(state))
redis.call('RPUSH', TQ, rid)
return {'queued', removed, signal}
"""
)

# ARGV: worker now n. Per run claimed: rid, tid, attempt, hand-offs, accepted ms, cancel action or "".
# A worker whose lease has lapsed (it may have been reaped) claims nothing until its next heartbeat.
_CLAIM = (
    _PRELUDE
    + """
local worker, now, n = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local alive = redis.call('ZSCORE', WORKERS, worker)
if not alive or tonumber(alive) < now then return out end
for _, rid in ipairs(redis.call('ZRANGEBYSCORE', READY, '-inf', now, 'LIMIT', 0, n)) do
  redis.call('ZREM', READY, rid)
  local state = cjson.decode(redis.call('HGET', PENDING, rid))
  redis.call('HDEL', PENDING, rid)
  state.w = worker
  state.a = (state.a or 0) + 1
  redis.call('HSET', RUNNING, rid, cjson.encode(state))
  for _, v in ipairs({rid, state.t, state.a, state.h or 0, state.q, redis.call('HGET', CANCEL, rid) or ''}) do
    table.insert(out, v)
  end
end
return out
"""
)

# ARGV: rid tid worker attempt now webhook(0/1)
_FINISH = (
    _PRELUDE
    + """
local rid, tid, worker, attempt, now = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local raw = redis.call('HGET', RUNNING, rid)
if not raw then return 'stale' end
local state = cjson.decode(raw)
if state.w ~= worker or state.a ~= attempt then return 'stale' end
redis.call('HDEL', RUNNING, rid)
redis.call('HDEL', CANCEL, rid)
if ARGV[6] == '1' then redis.call('ZADD', WEBHOOKS, now, rid .. '|' .. tid) end
advance(tid, rid, TQ, now)
return 'ok'
"""
)

# ARGV: rid tid action. A queued/ready run is removed; a running one is asked to stop.
_CANCEL = (
    _PRELUDE
    + """
local rid, tid, now = ARGV[1], ARGV[2], tonumber(ARGV[4])
if redis.call('HDEL', PENDING, rid) == 1 then
  redis.call('ZREM', READY, rid)
  redis.call('LREM', TQ, 0, rid)
  advance(tid, rid, TQ, now)
  return {'removed'}
end
local raw = redis.call('HGET', RUNNING, rid)
if not raw then return {'none'} end
redis.call('HSET', CANCEL, rid, ARGV[3])
return {'signal', cjson.decode(raw).w}
"""
)

# ARGV: worker now lease_ms, then the runs the worker believes it holds.
# Returns: pending count, {rid, tid}... recovered from dead workers, {rid}... lost, {rid, action}... cancels.
_HEARTBEAT = (
    _PRELUDE
    + """
local worker, now, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZADD', WORKERS, now + lease, worker)
local recovered, lost, cancels = {}, {}, {}
local dead = redis.call('ZRANGEBYSCORE', WORKERS, '-inf', '(' .. now)
if #dead > 0 then
  local is_dead = {}
  for _, w in ipairs(dead) do is_dead[w] = true end
  redis.call('ZREM', WORKERS, unpack(dead))
  local all = redis.call('HGETALL', RUNNING)
  for i = 1, #all, 2 do
    local rid, state = all[i], cjson.decode(all[i + 1])
    if is_dead[state.w] then
      redis.call('HDEL', RUNNING, rid)
      state.w = nil
      state.e = 0
      ready(rid, state, 0)
      table.insert(recovered, rid)
      table.insert(recovered, state.t)
    end
  end
end
for i = 4, #ARGV do
  local raw = redis.call('HGET', RUNNING, ARGV[i])
  if not raw or cjson.decode(raw).w ~= worker then
    table.insert(lost, ARGV[i])
  else
    local action = redis.call('HGET', CANCEL, ARGV[i])
    if action then table.insert(cancels, ARGV[i]); table.insert(cancels, action) end
  end
end
return {redis.call('HLEN', PENDING), recovered, lost, cancels}
"""
)

# ARGV: worker now counted(0/1) leave(0/1), then runs to give back, first in line again. A drain's
# hand-off does not count against the attempts (counted=0); a run stopped by a Redis failure does.
_HANDOFF = (
    _PRELUDE
    + """
local worker = ARGV[1]
local given = 0
for i = 5, #ARGV do
  local raw = redis.call('HGET', RUNNING, ARGV[i])
  if raw then
    local state = cjson.decode(raw)
    if state.w == worker then
      redis.call('HDEL', RUNNING, ARGV[i])
      state.w = nil
      if ARGV[3] == '0' then state.h = (state.h or 0) + 1 end
      state.e = 0
      ready(ARGV[i], state, 0)
      given = given + 1
    end
  end
end
if ARGV[4] == '1' then redis.call('ZREM', WORKERS, worker) end
return given
"""
)


CONTROL_TTL_SECONDS = 86400


@dataclass(frozen=True)
class Submitted:
    """What ``submit`` did: ``claimed`` (by the caller's worker), ``ready``, ``queued`` or ``busy``."""

    outcome: str
    current: str | None = None  # busy: the run holding the thread
    removed: tuple[str, ...] = ()  # runs taken out of the queue (interrupt/rollback)
    signal: tuple[str, str] | None = None  # (run, worker) asked to stop


@dataclass(frozen=True)
class Claimed:
    run_id: str
    thread_id: str
    attempt: int
    handoffs: int
    accepted_ms: int
    cancel: str = ""  # a cancel action already requested, or ""

    @property
    def failed_attempts(self) -> int:
        """Attempts started that did not end by a hand-off (the current one included)."""
        return self.attempt - self.handoffs


@dataclass(frozen=True)
class Beat:
    pending: int
    recovered: list[tuple[str, str]]
    lost: list[str]
    cancels: dict[str, str]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: list[Any]) -> list[tuple[str, str]]:
    return [(_text(flat[i]), _text(flat[i + 1])) for i in range(0, len(flat), 2)]


class RunQueue:
    def __init__(self, client: AsyncClient, keys: ServiceKeys):
        self.client = client
        self.keys = keys
        self._scripts = {
            name: client.register_script(source)
            for name, source in {
                "submit": _SUBMIT,
                "claim": _CLAIM,
                "finish": _FINISH,
                "cancel": _CANCEL,
                "heartbeat": _HEARTBEAT,
                "handoff": _HANDOFF,
            }.items()
        }

    def key(self, name: str) -> str:
        return self.keys.control("q", name)

    def control_key(self, worker: str) -> str:
        return self.keys.control("q", "ctl", worker)

    def _keys(self, thread_id: str = "") -> list[str]:
        names = ("pending", "running", "ready", "thread", "wake", "cancel", "workers", "webhooks")
        return [*(self.key(n) for n in names), self.keys.control("q", "tq", thread_id)]

    def _script_call(self, name: str, thread_id: str, *args: Any) -> ScriptCall:
        return ScriptCall(self._scripts[name], self._keys(thread_id), list(args))

    async def _call(self, name: str, thread_id: str, *args: Any) -> Any:
        return await self._script_call(name, thread_id, *args)()

    def submit_call(
        self,
        run_id: str,
        thread_id: str,
        *,
        now_ms: int,
        start_ms: int,
        strategy: str,
        worker: str | None,
    ) -> ScriptCall:
        """The call submitting a run, to send after its record (``atomic.execute_then``); ``submitted``
        reads its reply."""
        state = {"t": thread_id, "a": 0, "h": 0, "e": start_ms, "q": now_ms}
        return self._script_call(
            "submit", thread_id, run_id, thread_id, json.dumps(state), now_ms, strategy, worker or ""
        )

    @staticmethod
    def submitted(result: Any) -> Submitted:
        outcome = _text(result[0])
        if outcome == "busy":
            return Submitted("busy", current=_text(result[1]))
        if len(result) == 1:
            return Submitted(outcome)
        removed, signal = result[1], result[2]
        return Submitted(
            outcome,
            removed=tuple(_text(r) for r in removed),
            signal=(_text(signal[0]), _text(signal[1])) if signal else None,
        )

    async def claim(self, worker: str, now_ms: int, count: int) -> list[Claimed]:
        flat = await self._call("claim", "", worker, now_ms, count)
        return [
            Claimed(
                _text(flat[i]),
                _text(flat[i + 1]),
                int(flat[i + 2]),
                int(flat[i + 3]),
                int(flat[i + 4]),
                _text(flat[i + 5]),
            )
            for i in range(0, len(flat), 6)
        ]

    def finish_call(
        self, run_id: str, thread_id: str, *, worker: str, attempt: int, now_ms: int, webhook: bool
    ) -> ScriptCall:
        """The call finishing a run's attempt, to send after its record (``atomic.execute_then``);
        ``finished`` reads its reply: True if this worker held the run for this attempt, False if
        someone else took it over."""
        return self._script_call(
            "finish", thread_id, run_id, thread_id, worker, attempt, now_ms, int(webhook)
        )

    @staticmethod
    def finished(result: Any) -> bool:
        return _text(result) == "ok"

    async def cancel(self, run_id: str, thread_id: str, action: str, now_ms: int) -> str:
        """``removed`` (it had not started), ``signalled`` (its worker was told) or ``none``."""
        result = await self._call("cancel", thread_id, run_id, thread_id, action, now_ms)
        if _text(result[0]) == "signal":
            await self.tell(_text(result[1]), f"{action} {run_id}")
            return "signalled"
        return _text(result[0])

    async def tell(self, worker: str, message: str) -> None:
        """A control message to ``worker`` (it may be dead: the list expires unread after a day)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.rpush(self.control_key(worker), message)
            pipe.expire(self.control_key(worker), CONTROL_TTL_SECONDS)
            await pipe.execute()

    async def heartbeat(self, worker: str, now_ms: int, lease_ms: int, held: list[str]) -> Beat:
        pending, recovered, lost, cancels = await self._call("heartbeat", "", worker, now_ms, lease_ms, *held)
        return Beat(
            pending=int(pending),
            recovered=_pairs(recovered),
            lost=[_text(r) for r in lost],
            cancels=dict(_pairs(cancels)),
        )

    async def handoff(
        self, worker: str, now_ms: int, run_ids: list[str], *, counted: bool = False, leave: bool = False
    ) -> int:
        """Puts runs back first in line; ``leave`` also removes the worker (it is shutting down)."""
        return int(await self._call("handoff", "", worker, now_ms, int(counted), int(leave), *run_ids))

    async def state(self, run_id: str) -> tuple[str, dict[str, Any]] | None:
        """("running" | "pending", state) of a run in flight, or None once it has ended."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hget(self.key("running"), run_id)
            pipe.hget(self.key("pending"), run_id)
            running, pending = await pipe.execute()
        if running is not None:
            return "running", json.loads(running)
        if pending is not None:
            return "pending", json.loads(pending)
        return None

    async def in_flight(self) -> dict[str, tuple[str, dict[str, Any]]]:
        """Every run accepted and not ended: run id -> (status, state). For bulk cancel."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.key("pending"))
            pipe.hgetall(self.key("running"))
            pending, running = await pipe.execute()
        found = {_text(r): ("pending", json.loads(s)) for r, s in pending.items()}
        found.update({_text(r): ("running", json.loads(s)) for r, s in running.items()})
        return found
