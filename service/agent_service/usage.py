"""Usage per tenant and UTC day: runs, tokens by kind and cost per model, kept in Redis.

Written on every model call (``llm/budget.py``, whether or not a budget is set) and for every run
accepted through the API (``api/usage.py``); read by ``GET /usage``. The keys share one hash tag
with the budget counters, so every script and pipeline of a deployment stays in one Redis Cluster
slot::

    <prefix>:{<prefix>}:spend:usage:<YYYYMMDD>:<tenant>  hash  runs; <model>|<kind> tokens; <model>|usd_micros
    <prefix>:{<prefix>}:spend:usage:<YYYYMMDD>           set   the tenants that used something that day

Each key expires ``retention_days`` after the end of its day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError

from agent_service.state.keys import ServiceKeys

if TYPE_CHECKING:  # llm/budget.py imports this module: no import of the llm package at run time
    from agent_service.llm.pricing import Usage

log = logging.getLogger(__name__)

KINDS = ("input", "output", "cache_read", "cache_write")
_COST = "usd_micros"
_RUNS = "runs"
_MICRO = 1_000_000


def spend_tag(key_prefix: str) -> str:
    """Where a deployment's budget and usage keys begin: its prefix, then its control hash tag
    (``agent_service.state.keys``), so they sit in one Redis Cluster slot."""
    return ServiceKeys(key_prefix).control("spend")


class UsageStore:
    def __init__(
        self,
        redis: Redis | None,
        key_prefix: str,
        retention_days: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._redis = redis
        self._base = f"{spend_tag(key_prefix)}:usage"
        self._retention = timedelta(days=retention_days)
        self._now = now

    # -- writing ----------------------------------------------------------------------------------

    def add_call(self, pipe: Pipeline, tenant: str, model: str, usage: Usage, micros: int) -> None:
        """Queue one model call's tokens and cost on ``pipe`` (the caller executes it)."""
        key = self._queue_day(pipe, tenant)
        for kind, count in usage.as_kinds().items():
            if count:
                pipe.hincrby(key, f"{model}|{kind}", count)
        pipe.hincrby(key, f"{model}|{_COST}", micros)

    async def count_run(self, tenant: str) -> None:
        """One run accepted for ``tenant`` today; a Redis failure only loses the count (logged)."""
        if self._redis is None:
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(self._queue_day(pipe, tenant), _RUNS, 1)
                await pipe.execute()
        except RedisError:
            log.warning("run not counted in the usage of tenant %s: Redis unavailable", tenant)

    def _queue_day(self, pipe: Pipeline, tenant: str) -> str:
        today = self._now().date()
        key, index = self._key(today, tenant), self._index(today)
        end_of_day = datetime.combine(today + timedelta(days=1), time(), UTC)
        expires = int((end_of_day + self._retention).timestamp())
        pipe.sadd(index, tenant)
        pipe.expireat(index, expires)
        pipe.expireat(key, expires)
        return key

    # -- reading ----------------------------------------------------------------------------------

    async def days(
        self, start: date, end: date, *, tenant: str | None = None, model: str | None = None
    ) -> list[dict[str, Any]]:
        """One row per (day, tenant) with usage, oldest first; ``tenant``/``model`` filter."""
        assert self._redis is not None
        span = [start + timedelta(days=n) for n in range((end - start).days + 1)]
        if tenant is None:
            async with self._redis.pipeline(transaction=False) as pipe:
                for day in span:
                    pipe.smembers(self._index(day))
                members = await pipe.execute()
            pairs = [
                (day, t.decode()) for day, names in zip(span, members, strict=True) for t in sorted(names)
            ]
        else:
            pairs = [(day, tenant) for day in span]
        async with self._redis.pipeline(transaction=False) as pipe:
            for day, name in pairs:
                pipe.hgetall(self._key(day, name))
            hashes = await pipe.execute()
        rows = [_row(day, name, fields, model) for (day, name), fields in zip(pairs, hashes, strict=True)]
        return [row for row in rows if row["runs"] or row["models"]]

    def _key(self, day: date, tenant: str) -> str:
        return f"{self._base}:{day:%Y%m%d}:{tenant}"

    def _index(self, day: date) -> str:
        return f"{self._base}:{day:%Y%m%d}"


def _row(day: date, tenant: str, fields: dict[bytes, bytes], model: str | None) -> dict[str, Any]:
    models: dict[str, dict[str, Any]] = {}
    runs = 0
    for raw_field, raw_value in fields.items():
        field, value = raw_field.decode(), int(raw_value)
        if field == _RUNS:
            runs = value
            continue
        name, _, kind = field.rpartition("|")
        if model is not None and name != model:
            continue
        entry = models.setdefault(name, {"tokens": dict.fromkeys(KINDS, 0), "costUsd": 0.0})
        if kind == _COST:
            entry["costUsd"] = value / _MICRO
        elif kind in KINDS:
            entry["tokens"][kind] = value
    return {
        "date": day.isoformat(),
        "tenant": tenant,
        "runs": runs,
        **totals(models.values()),
        "models": models,
    }


def totals(entries: Any) -> dict[str, Any]:
    """Tokens by kind and cost summed over usage entries (models of a day, or days)."""
    entries = list(entries)
    tokens = {kind: sum(e["tokens"][kind] for e in entries) for kind in KINDS}
    return {"tokens": tokens, "costUsd": round(sum(e["costUsd"] for e in entries), 6)}
