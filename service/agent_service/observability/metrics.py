"""The service's Prometheus metrics: names and labels are the contract in DESIGN.md "Metrics contract".

Alerts, dashboards and the operator's error-budget watcher query these exact names, so they are
declared once, here, and everything else imports the objects.
"""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Bucket boundaries of the SLI histograms. The one source: the operator's copy
#: (``operator/shepherd/data/histogram-buckets.json``, from which the CRD lists the SLO thresholds
#: it accepts) is generated from these by ``python -m shepherd.slo.buckets`` (``make generate``).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30)
_LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
#: Runs, accepted to finished (the latency SLI): the HTTP buckets, so a threshold that was a bucket
#: there still is one, plus 300 s and the default run timeout of 600 s. The operator's objectives
#: (shepherd.slo.objectives.RUN_DURATION_BUCKETS) pick SLO thresholds from this list.
RUN_DURATION_BUCKETS = (*LATENCY_BUCKETS, 300, 600)

HTTP_REQUESTS = Counter(
    "agent_http_requests_total",
    "HTTP requests by route template, method and status code.",
    ["route", "method", "code"],
)
HTTP_DURATION = Histogram(
    "agent_http_request_duration_seconds",
    "HTTP request duration until the response body ends.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
TTFT = Histogram(
    "agent_ttft_seconds", "Time from a model call to its first streamed token.", buckets=TTFT_BUCKETS
)
INFLIGHT = Gauge("agent_inflight_requests", "HTTP requests being served (autoscaling signal).")
LLM_REQUESTS = Counter(
    "agent_llm_requests_total", "LLM calls (one per attempt) by outcome.", ["provider", "model", "outcome"]
)
LLM_DURATION = Histogram(
    "agent_llm_request_duration_seconds",
    "Duration of one LLM call attempt.",
    ["provider", "model"],
    buckets=_LLM_BUCKETS,
)
LLM_TOKENS = Counter("agent_llm_tokens_total", "LLM tokens by kind.", ["provider", "model", "kind"])
LLM_COST = Counter("agent_llm_cost_usd_total", "Estimated LLM spend in US dollars.", ["provider", "model"])
CIRCUIT_STATE = Gauge(
    "agent_circuit_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", ["circuit"]
)
RATE_LIMITED = Counter("agent_rate_limited_total", "Requests refused by a rate limit.", ["scope"])
TOKEN_BUDGET_EXHAUSTED = Counter(
    "agent_token_budget_exhausted_total", "LLM calls refused by a token or cost budget.", ["scope"]
)
# Runs: the SLI events (DESIGN "Metrics contract"), counted once per run when it ends; see
# observability/outcomes.py for the outcome and reason of a run and `record_run` to count one.
RUNS = Counter(
    "agent_runs_total", "Runs that ended, by outcome and (failures only) reason.", ["outcome", "reason"]
)
RUN_DURATION = Histogram(
    "agent_run_duration_seconds",
    "Runs that are SLI events (not cancelled), from accepted to finished, queue wait included.",
    buckets=RUN_DURATION_BUCKETS,
)
RUN_QUEUE = Histogram(
    "agent_run_queue_seconds", "Runs from accepted to their first start.", buckets=RUN_DURATION_BUCKETS
)
RUNS_PENDING = Gauge(
    "agent_runs_pending",
    "Runs accepted and waiting in the deployment's queue (the same on every replica: use max()).",
)
RUNS_RUNNING = Gauge("agent_runs_running", "Runs executing on this replica (use sum()).")
RUN_RECOVERIES = Counter(
    "agent_run_recoveries_total", "Runs taken back from a lost replica by this one, to resume elsewhere."
)
WEBHOOK_DELIVERIES = Counter(
    "agent_webhook_deliveries_total",
    "Run webhook deliveries: delivered, retried (a failed try), failed (gave up), refused (destination).",
    ["outcome"],
)
LLM_CACHE = Counter(
    "agent_llm_cache_total", "Response cache look-ups of deterministic LLM calls by result.", ["result"]
)
TOOL_CALLS = Counter("agent_tool_calls_total", "Tool calls by outcome.", ["tool", "outcome"])
TOOL_DURATION = Histogram(
    "agent_tool_duration_seconds",
    "Duration of one tool call (every attempt of a wrapped tool included).",
    ["tool"],
    buckets=LATENCY_BUCKETS,
)
# Not in the DESIGN contract: counts decisions taken without Redis (see security/ratelimit.py, llm/budget.py).
FAIL_OPEN = Counter(
    "agent_fail_open_total", "Limit checks skipped because their Redis backend failed.", ["component"]
)

# Probes and scrapes are not user traffic: counting them would dilute the availability SLI.
_UNMEASURED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
UNMATCHED_ROUTE = "unmatched"


def route_template(scope: Scope) -> str:
    """The matched route's template (bounded cardinality), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED_ROUTE


class MetricsMiddleware:
    """Pure ASGI: counts, times and gauges every HTTP request by its route template."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _UNMEASURED_PATHS:
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets if the app raises before starting a response
        start = time.perf_counter()

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        INFLIGHT.inc()
        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            INFLIGHT.dec()
            route, method = route_template(scope), scope["method"]
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route, method).observe(time.perf_counter() - start)


async def metrics_endpoint(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def record_llm_usage(provider: str, model: str, tokens: dict[str, int], cost_usd: float) -> None:
    for kind, count in tokens.items():
        if count:
            LLM_TOKENS.labels(provider, model, kind).inc(count)
    if cost_usd:
        LLM_COST.labels(provider, model).inc(cost_usd)
