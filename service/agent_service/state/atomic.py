"""Atomic batches of commands that work on one Redis and on a Redis Cluster alike.

On one Redis a batch is a MULTI/EXEC pipeline. redis-py's asyncio cluster client runs each command
of a *transactional* pipeline in a thread with an event loop of its own, which breaks the caller's
connections; so on a Cluster the batch is instead one Lua script per hash slot (``BATCH``): just as
atomic, one round trip per slot. Every key a command touches is declared to the script, as Redis
Cluster requires.

``execute_then`` adds one script call after such a batch (a queue step that must follow the records
it depends on): on one Redis both go in one MULTI/EXEC, a single round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError

from agent_service.state.connection import AsyncClient, is_cluster, slot_groups

# KEYS: the keys of the batch. ARGV: per command, its argument count n, then n arguments, where an
# argument "\0<i>" stands for KEYS[i]. Returns each command's reply.
BATCH = """
local replies, i = {}, 1
while i <= #ARGV do
  local n, args = tonumber(ARGV[i]), {}
  for j = 1, n do
    local arg = ARGV[i + j]
    if string.sub(arg, 1, 1) == '\\0' then arg = KEYS[tonumber(string.sub(arg, 2))] end
    args[j] = arg
  end
  table.insert(replies, redis.call(unpack(args)))
  i = i + n + 1
end
return replies
"""

#: Commands whose every argument is a key; the others have one key, their first argument.
_ALL_KEYS = frozenset({"DEL", "UNLINK", "EXISTS", "MGET"})


def keys_of(command: Sequence[Any]) -> list[Any]:
    name = str(command[0]).upper()
    if name in _ALL_KEYS:
        return list(command[1:])
    return [command[1]] if len(command) > 1 else []


class _Batch:
    def __init__(self, commands: Sequence[Sequence[Any]]) -> None:
        self.commands = [tuple(c) for c in commands]


async def execute(
    client: AsyncClient, commands: Sequence[Sequence[Any]], *, atomic: bool = True
) -> list[Any]:
    """Replies of ``commands``, in order; ``atomic``: each slot's commands apply all at once."""
    batch = _Batch(commands)
    results: list[Any] = [None] * len(batch.commands)
    for group in slot_groups(client, batch):
        if is_cluster(client) and atomic and len(group) > 1:
            replies = await _script(client, [batch.commands[i] for i in group])
        else:
            # A lone command is atomic by itself: no MULTI/EXEC around it.
            transaction = atomic and len(group) > 1 and not is_cluster(client)
            async with client.pipeline(transaction=transaction) as pipe:
                for index in group:
                    pipe.execute_command(*batch.commands[index])
                replies = await pipe.execute()
        for index, reply in zip(group, replies, strict=True):
            results[index] = reply
    return results


async def _script(client: AsyncClient, commands: list[tuple[Any, ...]]) -> list[Any]:
    keys: list[Any] = []
    args: list[Any] = []
    for command in commands:
        command_keys = keys_of(command)
        encoded = [command[0]]
        for position, arg in enumerate(command[1:], start=1):
            if position <= len(command_keys) and (str(command[0]).upper() in _ALL_KEYS or position == 1):
                if arg not in keys:
                    keys.append(arg)
                encoded.append(f"\0{keys.index(arg) + 1}")
            else:
                encoded.append(arg)
        args += [len(encoded), *encoded]
    return await client.eval(BATCH, len(keys), *keys, *args)


@dataclass(frozen=True)
class ScriptCall:
    """One call of a registered script, to send later."""

    script: AsyncScript
    keys: list[str]
    args: list[Any]

    async def __call__(self) -> Any:
        return await self.script(keys=self.keys, args=self.args)


async def execute_then(client: AsyncClient, commands: Sequence[Sequence[Any]], call: ScriptCall) -> Any:
    """Applies ``commands`` atomically, then ``call``; answers the script's reply. One round trip on
    one Redis (a single MULTI/EXEC holds both); on a Cluster the script's keys may live on another
    shard, so it follows the batch."""
    if is_cluster(client):
        await execute(client, commands)
        return await call()
    async with client.pipeline(transaction=True) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.args)
        *replies, reply = await pipe.execute(raise_on_error=False)
    for failed in (r for r in replies if isinstance(r, Exception)):
        raise failed
    if isinstance(reply, NoScriptError):  # Redis restarted or flushed its scripts: load and call
        return await call()
    if isinstance(reply, Exception):
        raise reply
    return reply
