"""Atomic batches of commands that work on one Redis and on a Redis Cluster alike.

On one Redis a batch is a MULTI/EXEC pipeline. redis-py's asyncio cluster client runs each command
of a *transactional* pipeline in a thread with an event loop of its own, which breaks the caller's
connections; so on a Cluster the batch is instead one Lua script per hash slot (``BATCH``): just as
atomic, one round trip per slot. Every key a command touches is declared to the script, as Redis
Cluster requires.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
            async with client.pipeline(transaction=atomic and not is_cluster(client)) as pipe:
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
