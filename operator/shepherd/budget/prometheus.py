"""An async Prometheus HTTP API client (instant queries only), with timeouts and typed errors.

Errors say what went wrong, because the status does too:

* ``PrometheusUnreachableError`` — connection refused, timeout, 5xx, or an answer that is not the API's;
* ``PrometheusBadQueryError`` — Prometheus answered and refused the query (4xx, ``status: error``);
* ``PrometheusEmptyError`` — Prometheus answered but had no series (raised by ``query_nonempty``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import httpx

DEFAULT_TIMEOUT = 10.0


class PrometheusError(Exception):
    """Base of the errors below; ``reason`` is a CamelCase word for conditions."""

    reason = "PrometheusError"


class PrometheusUnreachableError(PrometheusError):
    reason = "PrometheusUnreachable"


class PrometheusBadQueryError(PrometheusError):
    reason = "PrometheusBadQuery"


class PrometheusEmptyError(PrometheusError):
    reason = "PrometheusReturnedNothing"


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and value (NaN and ±Inf kept as floats)."""

    labels: dict[str, str]
    value: float

    @property
    def finite(self) -> bool:
        return math.isfinite(self.value)


def parse_vector(body: Any) -> list[Sample]:
    """The samples of a ``/api/v1/query`` answer (``resultType: vector``); raises on anything else."""
    if not isinstance(body, dict) or body.get("status") != "success":
        raise PrometheusBadQueryError(f"not a successful query answer: {str(body)[:200]}")
    data = body.get("data") or {}
    if data.get("resultType") != "vector":
        raise PrometheusBadQueryError(f"expected an instant vector, got {data.get('resultType')!r}")
    out = []
    for item in data.get("result") or []:
        try:
            _, raw = item["value"]
            out.append(Sample(dict(item.get("metric") or {}), float(raw)))
        except (KeyError, TypeError, ValueError) as exc:
            raise PrometheusBadQueryError(f"malformed sample {item!r}") from exc
    return out


class PrometheusClient:
    """Instant queries against one Prometheus; one connection pool, bounded time per query."""

    def __init__(
        self, url: str, *, timeout: float = DEFAULT_TIMEOUT, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.url, timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)), transport=transport
        )
        #: Queries sent since start (the benchmark reads it; the watcher exports its own counter).
        self.queries = 0

    async def close(self) -> None:
        await self._http.aclose()

    async def query(self, promql: str) -> list[Sample]:
        """Evaluate ``promql`` now; an empty list is a valid answer."""
        self.queries += 1
        try:
            resp = await self._http.post("/api/v1/query", data={"query": promql})
        except httpx.HTTPError as exc:
            raise PrometheusUnreachableError(
                f"{self.url}: {exc.__class__.__name__}: {exc}".rstrip(": ")
            ) from exc
        if resp.status_code >= 500 or resp.status_code in (404, 405):
            raise PrometheusUnreachableError(f"{self.url}: HTTP {resp.status_code}")
        try:
            body = resp.json()
        except ValueError as exc:
            raise PrometheusUnreachableError(f"{self.url}: HTTP {resp.status_code}, not JSON") from exc
        if resp.status_code >= 400 or body.get("status") != "success":
            raise PrometheusBadQueryError(
                f"{body.get('errorType', 'error')}: {body.get('error', resp.text[:200])} in {promql!r}"
            )
        return parse_vector(body)

    async def query_nonempty(self, promql: str) -> list[Sample]:
        samples = await self.query(promql)
        if not samples:
            raise PrometheusEmptyError(f"{self.url}: no series for {promql!r}")
        return samples
