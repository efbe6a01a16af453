"""Environment variables the agent service reads, and how the spec maps onto them.

These names mirror ``agent_service.settings`` (service/agent_service/settings.py): change them
together. Plain settings go into the ``<name>-config`` ConfigMap (``envFrom``); secrets are only ever
referenced (``secretKeyRef``), never copied.
"""

from __future__ import annotations

from typing import Any

from shepherd.api import AgentDeployment, Provider, SecretKeyRef
from shepherd.render.common import REDIS_PORT, redis_name

AGENT_GRAPH = "AGENT_GRAPH"
AGENT_GRAPH_ID = "AGENT_GRAPH_ID"
REDIS_URL = "REDIS_URL"
DRAIN_GRACE_SECONDS = "DRAIN_GRACE_SECONDS"
ANTHROPIC_API_KEY = "ANTHROPIC_API_KEY"  # set: Claude; unset: the runtime's offline stub model
LLM_MODEL = "LLM_MODEL"
#: Comma-separated model names, tried in order.
LLM_FALLBACK_MODELS = "LLM_FALLBACK_MODELS"
LLM_TIMEOUT_SECONDS = "LLM_TIMEOUT_SECONDS"
LLM_MAX_RETRIES = "LLM_MAX_RETRIES"
CIRCUIT_FAILURE_THRESHOLD = "CIRCUIT_FAILURE_THRESHOLD"
CIRCUIT_RECOVERY_SECONDS = "CIRCUIT_RECOVERY_SECONDS"
CIRCUIT_HALF_OPEN_PROBES = "CIRCUIT_HALF_OPEN_PROBES"
RATE_LIMIT_USER_PER_MINUTE = "RATE_LIMIT_USER_PER_MINUTE"
RATE_LIMIT_TENANT_PER_MINUTE = "RATE_LIMIT_TENANT_PER_MINUTE"
TOKEN_BUDGET_PER_REQUEST = "TOKEN_BUDGET_PER_REQUEST"
TOKEN_BUDGET_PER_DAY = "TOKEN_BUDGET_PER_DAY"
COST_BUDGET_USD_PER_DAY = "COST_BUDGET_USD_PER_DAY"  # per tenant
SPEND_BUDGET_USD_PER_DAY = "SPEND_BUDGET_USD_PER_DAY"  # the deployment's, spec.costBudget
SPEND_BUDGET_USD_PER_MONTH = "SPEND_BUDGET_USD_PER_MONTH"
SPEND_BUDGET_ENFORCE = "SPEND_BUDGET_ENFORCE"
USAGE_RETENTION_DAYS = "USAGE_RETENTION_DAYS"
#: host:port of the listener serving GET /usage when auth is off (loopback: inside the Pod only).
USAGE_LOCAL_ADDRESS = "USAGE_LOCAL_ADDRESS"
AUTH_JWKS_URL = "AUTH_JWKS_URL"
AUTH_JWT_SECRET = "AUTH_JWT_SECRET"
AUTH_ISSUER = "AUTH_ISSUER"
AUTH_AUDIENCE = "AUTH_AUDIENCE"
AUTH_TENANT_CLAIM = "AUTH_TENANT_CLAIM"
AUTH_ROLES_CLAIM = "AUTH_ROLES_CLAIM"
OTEL_SERVICE_NAME = "OTEL_SERVICE_NAME"
OTEL_EXPORTER_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
# The OpenTelemetry SDK's own standard variables (read by the SDK, not by agent_service.settings).
OTEL_TRACES_SAMPLER = "OTEL_TRACES_SAMPLER"
OTEL_TRACES_SAMPLER_ARG = "OTEL_TRACES_SAMPLER_ARG"
OTEL_RESOURCE_ATTRIBUTES = "OTEL_RESOURCE_ATTRIBUTES"
OTEL_SDK_VARIABLES = frozenset({OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_RESOURCE_ATTRIBUTES})

#: Where the agent sends spans when the collector sidecar runs (its OTLP/HTTP receiver on loopback).
COLLECTOR_LOCAL_ENDPOINT = "http://127.0.0.1:4318"
#: Seconds of the termination grace period kept back from draining: the preStop pause plus margin.
DRAIN_RESERVE_SECONDS = 10


def _num(value: float) -> str:
    """Render 60.0 as ``60`` and 0.5 as ``0.5``: stable, human-readable settings."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def managed_redis_url(resource: AgentDeployment) -> str:
    return f"redis://{redis_name(resource)}.{resource.namespace}.svc:{REDIS_PORT}/0"


def config_data(resource: AgentDeployment) -> dict[str, str]:
    """Non-secret settings, as the ConfigMap's data (sorted keys, string values)."""
    spec = resource.spec
    data: dict[str, str] = {
        AGENT_GRAPH: spec.graph,
        AGENT_GRAPH_ID: spec.graph_id,
        DRAIN_GRACE_SECONDS: str(max(spec.termination_grace_period_seconds - DRAIN_RESERVE_SECONDS, 0)),
        LLM_MODEL: spec.model.name,
        # Always set (the service's default list names a real model even for the stub provider).
        LLM_FALLBACK_MODELS: ",".join(f.name for f in spec.model.fallbacks),
        LLM_TIMEOUT_SECONDS: _num(spec.model.timeout_seconds),
        LLM_MAX_RETRIES: str(spec.model.max_retries),
        CIRCUIT_FAILURE_THRESHOLD: str(spec.circuit_breaker.failure_threshold),
        CIRCUIT_RECOVERY_SECONDS: _num(spec.circuit_breaker.recovery_timeout_seconds),
        CIRCUIT_HALF_OPEN_PROBES: str(spec.circuit_breaker.half_open_max_calls),
        OTEL_SERVICE_NAME: resource.name,
        USAGE_RETENTION_DAYS: str(spec.usage.retention_days),
        # Used only without auth; with auth, GET /usage is on the API port for the admin role.
        USAGE_LOCAL_ADDRESS: f"127.0.0.1:{spec.usage.local_port}",
    }
    cost = spec.cost_budget
    optional = {
        RATE_LIMIT_USER_PER_MINUTE: spec.rate_limits.per_user_per_minute,
        RATE_LIMIT_TENANT_PER_MINUTE: spec.rate_limits.per_tenant_per_minute,
        TOKEN_BUDGET_PER_REQUEST: spec.token_budget.max_tokens_per_request,
        TOKEN_BUDGET_PER_DAY: spec.token_budget.tokens_per_day,
        COST_BUDGET_USD_PER_DAY: cost.tenant_usd_per_day or spec.token_budget.usd_per_day,
        SPEND_BUDGET_USD_PER_DAY: cost.usd_per_day,
        SPEND_BUDGET_USD_PER_MONTH: cost.usd_per_month,
    }
    data.update({k: _num(v) for k, v in optional.items() if v is not None})
    if cost.enforce:
        data[SPEND_BUDGET_ENFORCE] = "true"
    if spec.auth is not None:
        data[AUTH_TENANT_CLAIM] = spec.auth.tenant_claim
        data[AUTH_ROLES_CLAIM] = spec.auth.roles_claim
        if spec.auth.jwks_url:
            data[AUTH_JWKS_URL] = spec.auth.jwks_url
        if spec.auth.issuer:
            data[AUTH_ISSUER] = spec.auth.issuer
        if spec.auth.audience:
            data[AUTH_AUDIENCE] = spec.auth.audience
    if spec.redis.managed is not None:
        data[REDIS_URL] = managed_redis_url(resource)
    elif spec.redis.external is not None and spec.redis.external.url:
        data[REDIS_URL] = spec.redis.external.url
    tracing = spec.tracing
    if tracing.otlp_endpoint:
        data[OTEL_EXPORTER_OTLP_ENDPOINT] = (
            COLLECTOR_LOCAL_ENDPOINT if tracing.collector.enabled else tracing.otlp_endpoint
        )
        data[OTEL_TRACES_SAMPLER] = "parentbased_traceidratio"
        data[OTEL_TRACES_SAMPLER_ARG] = _num(tracing.sample_ratio)
        data[OTEL_RESOURCE_ATTRIBUTES] = (
            f"k8s.namespace.name={resource.namespace},shepherd.agentdeployment={resource.name}"
        )
    return dict(sorted(data.items()))


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def referenced_secrets(resource: AgentDeployment) -> list[SecretKeyRef]:
    """Every Secret key the workload needs; the operator checks they exist before rolling out."""
    spec = resource.spec
    refs: list[SecretKeyRef] = []
    if spec.model.api_key_secret_ref is not None:
        refs.append(spec.model.api_key_secret_ref)
    if spec.auth is not None and spec.auth.secret_ref is not None:
        refs.append(spec.auth.secret_ref)
    if spec.redis.external is not None and spec.redis.external.url_secret_ref is not None:
        refs.append(spec.redis.external.url_secret_ref)
    refs.extend(e.secret_key_ref for e in spec.env if e.secret_key_ref is not None)
    return refs


def container_env(resource: AgentDeployment) -> list[dict[str, Any]]:
    """``env`` of the agent container: secret references, then the user's variables (which win)."""
    spec = resource.spec
    env: list[dict[str, Any]] = []
    if spec.model.provider == Provider.anthropic and spec.model.api_key_secret_ref is not None:
        env.append(_secret_env(ANTHROPIC_API_KEY, spec.model.api_key_secret_ref))
    if spec.auth is not None and spec.auth.secret_ref is not None:
        env.append(_secret_env(AUTH_JWT_SECRET, spec.auth.secret_ref))
    if spec.redis.external is not None and spec.redis.external.url_secret_ref is not None:
        env.append(_secret_env(REDIS_URL, spec.redis.external.url_secret_ref))
    for var in spec.env:
        if var.secret_key_ref is not None:
            env.append(_secret_env(var.name, var.secret_key_ref))
        else:
            env.append({"name": var.name, "value": var.value or ""})
    return env
