"""A lease in Redis: one holder at a time for a deployment-wide duty (the cron scheduler, the sweeper).

Every replica calls ``hold`` on each tick; the holder renews it, the others take it once it lapsed
(``seconds`` after the holder stopped renewing)."""

from __future__ import annotations

from agent_service.state.connection import AsyncClient

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') and 1 or 0
"""


class Lease:
    def __init__(self, client: AsyncClient, key: str, holder: str, seconds: float) -> None:
        self.key = key
        self.holder = holder
        self.seconds = seconds
        self._renew = client.register_script(_RENEW)

    async def hold(self) -> bool:
        """True if this holder has the lease for ``seconds`` from now (renewed or taken)."""
        return bool(await self._renew(keys=[self.key], args=[self.holder, int(self.seconds * 1000)]))
