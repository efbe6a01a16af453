"""Scrape a service's /metrics over ASGI and look samples up by name and labels."""

from __future__ import annotations

import httpx
from agent_service.observability.metrics import metrics_endpoint
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp


class Samples(dict[tuple[str, frozenset[tuple[str, str]]], float]):
    def value(self, name: str, **labels: str) -> float:
        """The sample's value, 0 when the series does not exist (yet)."""
        return self.get((name, frozenset(labels.items())), 0.0)


async def scrape(app: ASGIApp | None = None) -> Samples:
    """Parse the text of GET /metrics of `app` (default: a bare app serving the process's registry)."""
    app = app or Starlette(routes=[Route("/metrics", metrics_endpoint)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.get("/metrics")
    response.raise_for_status()
    samples = Samples()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples
