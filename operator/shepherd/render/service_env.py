"""Environment variables the agent service reads, and how the spec maps onto them.

These names mirror ``agent_service.settings`` (service/agent_service/settings.py): change them
together. Plain settings go into the ``<name>-config`` ConfigMap (``envFrom``); secrets are only ever
referenced (``secretKeyRef``), never copied.
"""

from __future__ import annotations

import json
from typing import Any

from shepherd.api import AgentDeployment, ContextOverflow, ModelEndpoint, SecretKeyRef
from shepherd.render.common import REDIS_PORT, redis_name

AGENT_GRAPH = "AGENT_GRAPH"
AGENT_GRAPH_ID = "AGENT_GRAPH_ID"
REDIS_URL = "REDIS_URL"
DRAIN_GRACE_SECONDS = "DRAIN_GRACE_SECONDS"
#: The fallback chain, JSON (agent_service.settings.ChainEntry): spec.model then each fallback.
LLM_CHAIN = "LLM_CHAIN"
#: Secrets of chain entry i: LLM_CHAIN_<i>_<FIELD> (agent_service.settings.CHAIN_SECRETS).
LLM_CHAIN_SECRET = "LLM_CHAIN_{index}_{field}"
LLM_DEGRADED_REPLY = "LLM_DEGRADED_REPLY"
LLM_CONTEXT_OVERFLOW = "LLM_CONTEXT_OVERFLOW"
LLM_CACHE_TTL_SECONDS = "LLM_CACHE_TTL_SECONDS"
LLM_TIMEOUT_SECONDS = "LLM_TIMEOUT_SECONDS"
LLM_MAX_RETRIES = "LLM_MAX_RETRIES"
CIRCUIT_FAILURE_THRESHOLD = "CIRCUIT_FAILURE_THRESHOLD"
CIRCUIT_RECOVERY_SECONDS = "CIRCUIT_RECOVERY_SECONDS"
CIRCUIT_HALF_OPEN_PROBES = "CIRCUIT_HALF_OPEN_PROBES"
RATE_LIMIT_USER_PER_MINUTE = "RATE_LIMIT_USER_PER_MINUTE"
RATE_LIMIT_TENANT_PER_MINUTE = "RATE_LIMIT_TENANT_PER_MINUTE"
TOKEN_BUDGET_PER_REQUEST = "TOKEN_BUDGET_PER_REQUEST"
TOKEN_BUDGET_PER_DAY = "TOKEN_BUDGET_PER_DAY"
COST_BUDGET_USD_PER_DAY = "COST_BUDGET_USD_PER_DAY"
AUTH_JWKS_URL = "AUTH_JWKS_URL"
AUTH_JWT_SECRET = "AUTH_JWT_SECRET"
AUTH_ISSUER = "AUTH_ISSUER"
AUTH_AUDIENCE = "AUTH_AUDIENCE"
AUTH_TENANT_CLAIM = "AUTH_TENANT_CLAIM"
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
        LLM_CHAIN: json.dumps([_chain_entry(entry) for entry in spec.model.chain()], sort_keys=True),
        LLM_CONTEXT_OVERFLOW: "refuse" if spec.model.context_overflow == ContextOverflow.refuse else "trim",
        LLM_TIMEOUT_SECONDS: _num(spec.model.timeout_seconds),
        LLM_MAX_RETRIES: str(spec.model.max_retries),
        CIRCUIT_FAILURE_THRESHOLD: str(spec.circuit_breaker.failure_threshold),
        CIRCUIT_RECOVERY_SECONDS: _num(spec.circuit_breaker.recovery_timeout_seconds),
        CIRCUIT_HALF_OPEN_PROBES: str(spec.circuit_breaker.half_open_max_calls),
        OTEL_SERVICE_NAME: resource.name,
    }
    optional = {
        RATE_LIMIT_USER_PER_MINUTE: spec.rate_limits.per_user_per_minute,
        RATE_LIMIT_TENANT_PER_MINUTE: spec.rate_limits.per_tenant_per_minute,
        TOKEN_BUDGET_PER_REQUEST: spec.token_budget.max_tokens_per_request,
        TOKEN_BUDGET_PER_DAY: spec.token_budget.tokens_per_day,
        COST_BUDGET_USD_PER_DAY: spec.token_budget.usd_per_day,
    }
    data.update({k: _num(v) for k, v in optional.items() if v is not None})
    if spec.model.degraded_reply is not None:
        data[LLM_DEGRADED_REPLY] = spec.model.degraded_reply
    if spec.model.cache.enabled:
        data[LLM_CACHE_TTL_SECONDS] = str(spec.model.cache.ttl_seconds)
    if spec.auth is not None:
        data[AUTH_TENANT_CLAIM] = spec.auth.tenant_claim
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


def _chain_entry(entry: ModelEndpoint) -> dict[str, Any]:
    """One entry of LLM_CHAIN: the plain settings only (its secrets are separate variables)."""
    out: dict[str, Any] = {"provider": str(entry.provider), "model": entry.name}
    for name in ("base_url", "region", "project_id", "max_input_tokens"):
        if (value := getattr(entry, name)) is not None:
            out[name] = value
    if entry.pricing is not None:
        price = entry.pricing
        fields = {
            "input": price.input_per_m_tok,
            "output": price.output_per_m_tok,
            "cache_read": price.cache_read_per_m_tok,
            "cache_write": price.cache_write_per_m_tok,
        }
        out["pricing"] = {k: v for k, v in fields.items() if v is not None}
    return out


def _chain_secrets(resource: AgentDeployment) -> list[tuple[str, str, SecretKeyRef]]:
    """(field path, variable, Secret key) of every credential of the chain, in order."""
    model = resource.spec.model
    found: list[tuple[str, str, SecretKeyRef]] = []
    for index, entry in enumerate(model.chain()):
        # A fallback without provider borrows the primary's credentials: named where they are set.
        own = index > 0 and model.fallbacks[index - 1].provider is not None
        path = f"spec.model.fallbacks[{index - 1}]" if own else "spec.model"
        refs = {
            "api_key": ("apiKeySecretRef", entry.api_key_secret_ref),
            "google_credentials": ("googleCredentialsSecretRef", entry.google_credentials_secret_ref),
        }
        if entry.aws_credentials is not None:
            aws = entry.aws_credentials
            refs |= {
                "aws_access_key_id": ("awsCredentials.accessKeyIdSecretRef", aws.access_key_id_secret_ref),
                "aws_secret_access_key": (
                    "awsCredentials.secretAccessKeySecretRef",
                    aws.secret_access_key_secret_ref,
                ),
                "aws_session_token": ("awsCredentials.sessionTokenSecretRef", aws.session_token_secret_ref),
            }
        for field, (name, ref) in refs.items():
            if ref is not None:
                variable = LLM_CHAIN_SECRET.format(index=index, field=field.upper())
                found.append((f"{path}.{name}", variable, ref))
    return found


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def referenced_secrets(resource: AgentDeployment) -> list[tuple[str, SecretKeyRef]]:
    """(field path, Secret key) of every Secret the workload needs; the operator checks they exist
    before rolling out, naming the field that refers to a missing one."""
    spec = resource.spec
    refs = [(path, ref) for path, _, ref in _chain_secrets(resource)]
    if spec.auth is not None and spec.auth.secret_ref is not None:
        refs.append(("spec.auth.secretRef", spec.auth.secret_ref))
    if spec.redis.external is not None and spec.redis.external.url_secret_ref is not None:
        refs.append(("spec.redis.external.urlSecretRef", spec.redis.external.url_secret_ref))
    refs.extend(
        (f"spec.env[{i}].secretKeyRef", e.secret_key_ref) for i, e in enumerate(spec.env) if e.secret_key_ref
    )
    return refs


def container_env(resource: AgentDeployment) -> list[dict[str, Any]]:
    """``env`` of the agent container: secret references, then the user's variables (which win)."""
    spec = resource.spec
    env: list[dict[str, Any]] = [_secret_env(variable, ref) for _, variable, ref in _chain_secrets(resource)]
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
