"""The AgentDeployment API (shepherd.dev/v1alpha1): one typed source for spec and status.

The CRD schema in ``charts/shepherd/crds/`` is generated from these models by ``shepherd.crd``.
Every field carries a description (it becomes the ``kubectl explain`` text), defaults, enums and
bounds live here, and the cross-field invariants are written twice on purpose: once as CEL
(``x-kubernetes-validations``, enforced by the apiserver) and once as pydantic validators (enforced
when the operator parses a resource, in case an older CRD let something through). The unit tests run
the same invalid manifests through both.
"""

from __future__ import annotations

import functools
import ipaddress
import itertools
import json
import keyword
import os
import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from shepherd.slo import buckets as slo_buckets

GROUP = "shepherd.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "AgentDeployment"
PLURAL = "agentdeployments"
SINGULAR = "agentdeployment"
SHORT_NAMES = ["agd"]

#: The agent image deployed when ``spec.image`` is not set. The only place this string lives.
DEFAULT_AGENT_IMAGE = "ghcr.io/shepherd-dev/agent-service:0.1.0"
DEFAULT_GRAPH = "agent_service.graphs.reference_agent:build_graph"
DEFAULT_REDIS_IMAGE = "docker.io/library/redis:7.4-alpine"
DEFAULT_REDIS_EXPORTER_IMAGE = "quay.io/oliver006/redis_exporter:v1.67.0"
DEFAULT_OTEL_COLLECTOR_IMAGE = "docker.io/otel/opentelemetry-collector:0.115.0"

#: ``30d``, ``10m``, ``1h30m`` is not accepted: one number and one unit keep window maths simple.
DURATION_PATTERN = r"^[1-9][0-9]{0,4}(s|m|h|d|w)$"
#: A Python entrypoint ``package.module:attribute``.
GRAPH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

_DURATION_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration_seconds(value: str) -> int:
    """Seconds in a duration such as ``30d`` or ``10m`` (validated by ``DURATION_PATTERN``)."""
    return int(value[:-1]) * _DURATION_SECONDS[value[-1]]


def _platform_defaulted(schema: dict[str, Any]) -> None:
    """No CRD default for a field the operator fills from the platform defaults: a default written
    by the apiserver would hide the platform team's choice (see ``PlatformDefaults``)."""
    schema.pop("default", None)


def _cel(
    rule: str, message: str, field_path: str | None = None, message_expression: str | None = None
) -> dict[str, str]:
    entry = {"rule": rule, "message": message}
    if message_expression:
        entry["messageExpression"] = message_expression
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def _cel_string(value: str) -> str:
    """A CEL string literal (JSON's escaping is valid CEL)."""
    return json.dumps(value)


def _cel_list(values: Iterable[str | float]) -> str:
    return "[" + ", ".join(_cel_string(v) if isinstance(v, str) else repr(float(v)) for v in values) + "]"


class _Model(BaseModel):
    """Base: camelCase on the wire, snake_case in Python, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", use_attribute_docstrings=False
    )


QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
#: A Kubernetes quantity (``250m``, ``1``, ``512Mi``): int or string in the schema.
Quantity = Annotated[
    str | int,
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
        }
    ),
]


class _Open(BaseModel):
    """Base for embedded Kubernetes objects kept as-is (unknown fields preserved)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


# --------------------------------------------------------------------------------------------- workload


class ResourceRequirements(_Model):
    """Compute resources of a container, as in a Pod spec."""

    requests: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Minimum resources the scheduler reserves (cpu, memory).",
        json_schema_extra={"maxProperties": 8},
    )
    limits: dict[str, Quantity] = Field(
        default_factory=dict,
        description="Maximum resources the container may use (cpu, memory).",
        json_schema_extra={"maxProperties": 8},
    )


def _default_agent_resources() -> ResourceRequirements:
    return ResourceRequirements(requests={"cpu": "250m", "memory": "256Mi"}, limits={"memory": "512Mi"})


class SecretKeyRef(_Model):
    """A key of a Secret in the resource's namespace."""

    name: str = Field(
        description="Name of the Secret (same namespace).",
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    key: str = Field(
        description="Key inside the Secret.", min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$"
    )


def shepherd_env_problem(name: str) -> str | None:
    """Why ``spec.env`` may not set ``name`` (Shepherd sets it from a spec field), or None."""
    from shepherd.render.service_env import SPEC_FIELDS  # it imports this module

    field = SPEC_FIELDS.get(name)
    return None if field is None else f"spec.env: {name} is set by Shepherd; use {field} instead"


def _env_var_rules(schema: dict[str, Any]) -> None:
    """CEL of ``EnvVar``. The variables Shepherd sets are refused from ``service_env.SPEC_FIELDS``
    (the renderer's own table, so there is no second list), naming the spec field to use instead."""
    from shepherd.render.service_env import SPEC_FIELDS

    names = sorted(SPEC_FIELDS)
    fields = "{" + ", ".join(f"{_cel_string(n)}: {_cel_string(SPEC_FIELDS[n])}" for n in names) + "}"
    schema["x-kubernetes-validations"] = [
        _cel("!(has(self.value) && has(self.secretKeyRef))", "env: set value or secretKeyRef, not both"),
        _cel(
            f"!(self.name in {_cel_list(names)})",
            "spec.env: this variable is set by Shepherd from a spec field; set that field instead",
            ".name",
            message_expression=(
                f"'spec.env: ' + self.name + ' is set by Shepherd; use ' + {fields}[self.name] + ' instead'"
            ),
        ),
    ]


class EnvVar(_Model):
    """An extra environment variable for the agent container (not one Shepherd sets itself)."""

    name: str = Field(description="Variable name.", min_length=1, max_length=128, pattern=ENV_NAME_PATTERN)
    value: str | None = Field(default=None, description="Literal value.", max_length=32768)
    secret_key_ref: SecretKeyRef | None = Field(
        default=None, description="Take the value from a Secret key (never inline secrets)."
    )
    model_config = ConfigDict(json_schema_extra=_env_var_rules)

    @field_validator("name")
    @classmethod
    def _not_shepherds(cls, name: str) -> str:
        problem = shepherd_env_problem(name)
        if problem:
            raise ValueError(problem)
        return name


class Sidecar(_Open):
    """An extra native sidecar: a core/v1 Container (rendered into initContainers, restartPolicy Always)."""

    name: str = Field(
        description="Container name, unique in the Pod.", max_length=63, pattern=DNS_LABEL_PATTERN
    )
    image: str = Field(description="Container image.", min_length=1, max_length=512)


# --------------------------------------------------------------------------------------------- model


class Provider(StrEnum):
    anthropic = "anthropic"
    bedrock = "bedrock"
    vertex = "vertex"
    openai = "openai"
    stub = "stub"


class ContextOverflow(StrEnum):
    trim = "Trim"
    refuse = "Refuse"


class AwsCredentials(_Model):
    """Static AWS keys for Bedrock, from Secrets. Omitted: the Pod's default AWS credential chain
    (IRSA, EKS Pod Identity)."""

    access_key_id_secret_ref: SecretKeyRef = Field(description="Secret key holding AWS_ACCESS_KEY_ID.")
    secret_access_key_secret_ref: SecretKeyRef = Field(
        description="Secret key holding AWS_SECRET_ACCESS_KEY."
    )
    session_token_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding AWS_SESSION_TOKEN (temporary credentials)."
    )


class ModelPricing(_Model):
    """USD per million tokens, replacing Shepherd's pricing table for this model."""

    input_per_m_tok: float = Field(ge=0, le=10_000, description="USD per million input tokens.")
    output_per_m_tok: float = Field(ge=0, le=10_000, description="USD per million output tokens.")
    cache_read_per_m_tok: float | None = Field(
        default=None, ge=0, le=10_000, description="USD per million cache-read tokens (default 0.1x input)."
    )
    cache_write_per_m_tok: float | None = Field(
        default=None, ge=0, le=10_000, description="USD per million cache-write tokens (default 1.25x input)."
    )


#: (provider, field) pairs that must be set, with the CEL rule's wording; checked by CEL and pydantic.
_REQUIRED_FOR = {
    Provider.anthropic: ("apiKeySecretRef",),
    Provider.bedrock: ("region",),
    Provider.vertex: ("region", "projectId"),
}
#: Fields only some providers take.
_ONLY_FOR = {
    "region": (Provider.bedrock, Provider.vertex),
    "projectId": (Provider.vertex,),
    "awsCredentials": (Provider.bedrock,),
    "googleCredentialsSecretRef": (Provider.vertex,),
}


def _endpoint_rules(prefix: str) -> list[dict[str, str]]:
    """CEL rules of one model entry (`prefix` names it in messages: model or the fallback)."""
    rules = [
        _cel(
            f"!has(self.provider) || self.provider != '{provider}' || has(self.{name})",
            f"{prefix}.{name} is required when provider is {provider}",
            f".{name}",
        )
        for provider, names in _REQUIRED_FOR.items()
        for name in names
    ]
    for name, providers in _ONLY_FOR.items():
        allowed = " || ".join(f"self.provider == '{p}'" for p in providers)
        rules.append(
            _cel(
                f"!has(self.{name}) || ({allowed})",
                f"{prefix}.{name} is only for provider {' or '.join(providers)}",
                f".{name}",
            )
        )
    rules.append(
        _cel(
            "!has(self.provider) || self.provider != 'openai' || has(self.apiKeySecretRef) "
            "|| has(self.baseUrl)",
            f"{prefix}.{_OPENAI_KEY}",
            ".apiKeySecretRef",
        )
    )
    return rules


_OPENAI_KEY = "apiKeySecretRef is required when provider is openai without a baseUrl (api.openai.com)"


def _endpoint_problem(entry: ModelEndpoint, prefix: str) -> str | None:
    provider = entry.provider
    if provider is None:
        return None
    wire = entry.model_dump(by_alias=True, exclude_none=True)
    for name in _REQUIRED_FOR.get(provider, ()):
        if name not in wire:
            return f"{prefix}.{name} is required when provider is {provider}"
    for name, providers in _ONLY_FOR.items():
        if name in wire and provider not in providers:
            return f"{prefix}.{name} is only for provider {' or '.join(providers)}"
    if provider == Provider.openai and entry.api_key_secret_ref is None and entry.base_url is None:
        return (
            f"{prefix}.apiKeySecretRef is required when provider is openai without a baseUrl (api.openai.com)"
        )
    return None


class ModelEndpoint(_Model):
    """A model at a provider with that provider's settings; credentials by Secret reference only."""

    provider: Provider | None = None  # the subclasses give the default and the description
    name: str = Field(description="Model name at the provider.", min_length=1, max_length=256)
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the API key: required for anthropic, for openai at api.openai.com; "
        "a Bedrock API key for bedrock (instead of AWS credentials).",
    )
    base_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="Endpoint: an OpenAI-compatible server (vLLM, LiteLLM, Azure OpenAI v1, Ollama), "
        "a proxy, a private endpoint. Default: the provider's public API.",
    )
    region: str | None = Field(
        default=None, max_length=64, pattern=r"^[a-z0-9-]+$", description="Cloud region (bedrock, vertex)."
    )
    project_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[a-z][-a-z0-9]{4,62}$",
        description="Google Cloud project (vertex).",
    )
    aws_credentials: AwsCredentials | None = Field(
        default=None, description="Static AWS keys (bedrock); omitted: the Pod's AWS credential chain."
    )
    google_credentials_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding a service account key JSON (vertex); omitted: Workload Identity.",
    )
    pricing: ModelPricing | None = Field(
        default=None,
        description="Price of this model (self-hosted or discounted); default: Shepherd's table.",
    )
    max_input_tokens: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Input limit in tokens; default: the model's known context window (Claude 200k, "
        "gpt-4o 128k, ...), none for unknown models.",
    )


class ModelFallback(ModelEndpoint):
    """A model tried, in order, when the ones before it fail or their circuits are open. It may be at
    another provider (then with that provider's settings); without `provider`, it is the primary's
    provider and uses the primary's settings."""

    provider: Provider | None = Field(
        default=None, description="LLM provider; omitted: the primary's, with the primary's settings."
    )
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _endpoint_rules("fallbacks[]")})


class ResponseCache(_Model):
    """Exact-match cache in Redis of deterministic model calls (temperature 0), per tenant."""

    enabled: bool = Field(default=False, description="Answer repeated temperature-0 calls from Redis.")
    ttl_seconds: int = Field(default=3600, ge=1, le=30 * 86400, description="How long an answer is kept.")


#: Longest fallback list (the chain is spec.model then these).
MAX_FALLBACKS = 5


class ModelSpec(ModelEndpoint):
    """The LLM the agent calls: provider, model, settings, then the fallback chain and client policy."""

    provider: Provider = Field(
        default=Provider.stub,
        description="LLM provider: anthropic, bedrock, vertex (Claude), openai (any Chat Completions "
        "endpoint) or stub (the runtime's deterministic offline model, no key needed).",
    )
    name: str = Field(
        default="claude-sonnet-4-5", description="Model name at the provider.", min_length=1, max_length=256
    )
    fallbacks: list[ModelFallback] = Field(
        default_factory=list,
        max_length=MAX_FALLBACKS,
        description=f"Ordered fallback models, at any provider (at most {MAX_FALLBACKS}).",
    )
    timeout_seconds: float = Field(
        default=60, gt=0, le=600, description="Timeout of one LLM request, in seconds (0 < t <= 600)."
    )
    max_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed LLM request before falling back (0-10)."
    )
    degraded_reply: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Answer when every model fails: the run ends with it, marked degraded (header "
        "X-Shepherd-Degraded), and still counts as a failed run (reason llm_unavailable) for the SLI.",
    )
    context_overflow: ContextOverflow = Field(
        default=ContextOverflow.trim,
        description="A thread over a model's input limit: Trim drops the oldest turns (keeping system "
        "prompts and tool-call pairs), Refuse fails the call with a clear error.",
    )
    cache: ResponseCache = Field(default_factory=ResponseCache, description="Response cache (opt-in).")
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": _endpoint_rules("model")})

    @model_validator(mode="after")
    def _provider_settings(self) -> ModelSpec:
        problems = [_endpoint_problem(self, "model")]
        problems += [_endpoint_problem(f, f"model.fallbacks[{i}]") for i, f in enumerate(self.fallbacks)]
        if problem := next((p for p in problems if p), None):
            raise ValueError(problem)
        return self

    def chain(self) -> list[ModelEndpoint]:
        """The primary then each fallback, a fallback without provider taking the primary's settings."""
        inherited = {"provider", "api_key_secret_ref", "base_url", "region", "project_id", "aws_credentials",
                     "google_credentials_secret_ref"}  # fmt: skip
        entries: list[ModelEndpoint] = [self]
        for fallback in self.fallbacks:
            if fallback.provider is None:
                own = fallback.model_dump(exclude_unset=True, exclude=inherited)
                fallback = ModelFallback.model_validate({**{k: getattr(self, k) for k in inherited}, **own})
            entries.append(fallback)
        return entries


class CircuitBreaker(_Model):
    """Circuit breaker of each model of the chain (tools set their own, see agent_service.tools)."""

    failure_threshold: int = Field(
        default=5, ge=1, le=1000, description="Consecutive failures that open the circuit (1-1000)."
    )
    recovery_timeout_seconds: float = Field(
        default=30, gt=0, le=3600, description="Seconds an open circuit waits before half-opening (0-3600]."
    )
    half_open_max_calls: int = Field(
        default=1, ge=1, le=100, description="Trial calls let through while half-open (1-100)."
    )


class RateLimits(_Model):
    """Request rate limits enforced by the service (Redis-backed); unset means unlimited."""

    per_user_per_minute: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Requests per user (JWT subject) per minute."
    )
    per_tenant_per_minute: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Requests per tenant per minute."
    )


class TokenBudget(_Model):
    """Spend guards on LLM usage (per tenant, per UTC day); unset means unlimited."""

    max_tokens_per_request: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Upper bound on tokens one request may consume."
    )
    tokens_per_day: int | None = Field(
        default=None, ge=1, le=10_000_000_000, description="Tokens per tenant per UTC day."
    )
    usd_per_day: float | None = Field(
        default=None, gt=0, le=1_000_000, description="Spend per tenant per UTC day, in USD."
    )


class CostBudget(_Model):
    """LLM spend as an objective: budgets for the whole deployment, and a per-tenant limit.

    The deployment budgets drive status.spend, the board and the ShepherdSpendBudgetBurn alerts;
    with `enforce` they are also limits: once the UTC day's or the calendar month's budget is
    spent, new runs are refused with 429, and every model call reserves its worst-case cost
    before it is sent so concurrent runs cannot overshoot it. Refusals are not bad SLI events.
    """

    usd_per_day: float | None = Field(
        default=None, gt=0, le=10_000_000, description="Budget of the deployment per UTC day, in USD."
    )
    usd_per_month: float | None = Field(
        default=None, gt=0, le=100_000_000, description="Budget of the deployment per calendar month (UTC)."
    )
    tenant_usd_per_day: float | None = Field(
        default=None,
        gt=0,
        le=10_000_000,
        description="Limit per tenant per UTC day, in USD: always enforced (429), whatever `enforce` says.",
    )
    enforce: bool = Field(
        default=False,
        description="Refuse new runs (429) once usdPerDay or usdPerMonth is spent; false: objectives only.",
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.usdPerDay) || !has(self.usdPerMonth) || self.usdPerMonth >= self.usdPerDay",
                    "costBudget.usdPerMonth must be >= costBudget.usdPerDay",
                    ".usdPerMonth",
                ),
                _cel(
                    "!self.enforce || has(self.usdPerDay) || has(self.usdPerMonth)",
                    "costBudget.enforce needs costBudget.usdPerDay or costBudget.usdPerMonth",
                    ".enforce",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _consistent(self) -> CostBudget:
        day, month = self.usd_per_day, self.usd_per_month
        if day is not None and month is not None and month < day:
            raise ValueError("costBudget.usdPerMonth must be >= costBudget.usdPerDay")
        if self.enforce and day is None and month is None:
            raise ValueError("costBudget.enforce needs costBudget.usdPerDay or costBudget.usdPerMonth")
        return self


class Usage(_Model):
    """Per-tenant usage counters (runs, tokens, cost per UTC day) behind GET /usage."""

    retention_days: int = Field(
        default=90, ge=1, le=3660, description="Days a day's counters are kept in Redis (1-3660)."
    )
    local_port: int = Field(
        default=8082,
        ge=1024,
        le=65535,
        description=(
            "Without spec.auth, GET /usage is served only here, on 127.0.0.1 inside the Pod "
            "(kubectl port-forward); with auth it is on the API port for the admin role."
        ),
    )


class Auth(_Model):
    """JWT authentication of API callers. Omit the whole block to run without auth."""

    jwks_url: str | None = Field(
        default=None,
        description="JWKS endpoint for RS/ES-signed tokens.",
        max_length=2048,
        pattern=r"^https?://",
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key with an HS256 signing secret."
    )
    issuer: str | None = Field(
        default=None, description="Required `iss` claim (mandatory with jwksUrl).", max_length=2048
    )
    audience: str | None = Field(
        default=None, description="Required `aud` claim (mandatory with jwksUrl).", max_length=2048
    )
    tenant_claim: str = Field(
        default="tenant",
        description="Claim naming the caller's tenant (rate limits, budgets).",
        min_length=1,
        max_length=128,
    )
    roles_claim: str = Field(
        default="roles",
        description=(
            "Claim holding the caller's roles (a list, or a space- or comma-separated string); "
            "`admin` among them may read GET /usage of every tenant."
        ),
        min_length=1,
        max_length=128,
    )
    admin_role: str = Field(
        default="admin",
        description=(
            "Role (in rolesClaim) of the admin API: GET /usage of every tenant, and exporting or "
            "erasing every thread of a user or a tenant (/admin/users/{sub}/threads, "
            "/admin/tenants/{tenant}/threads)."
        ),
        min_length=1,
        max_length=128,
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.jwksUrl) != has(self.secretRef)",
                    "auth: set exactly one of jwksUrl or secretRef",
                ),
                _cel(
                    "!has(self.jwksUrl) || (has(self.issuer) && has(self.audience))",
                    "auth.issuer and auth.audience are required with auth.jwksUrl",
                    ".jwksUrl",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> Auth:
        if (self.jwks_url is None) == (self.secret_ref is None):
            raise ValueError("auth: set exactly one of jwksUrl or secretRef")
        if self.jwks_url is not None and (self.issuer is None or self.audience is None):
            raise ValueError("auth.issuer and auth.audience are required with auth.jwksUrl")
        return self


# --------------------------------------------------------------------------------------------- redis


#: A CronJob schedule: five fields, or one of the ``@`` macros the CronJob controller knows.
CRON_PATTERN = r"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|(\S+\s+){4}\S+)$"


class RedisTls(_Model):
    """TLS for the managed Redis, from a Secret in cert-manager's layout (tls.crt, tls.key, ca.crt)."""

    secret_name: str = Field(
        description=(
            "Secret with tls.crt and tls.key (the server certificate, for "
            "<name>-redis.<namespace>.svc) and ca.crt (its CA; the agent verifies the server with it)."
        ),
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )


class RedisBackup(_Model):
    """Scheduled RDB snapshots of the managed Redis (a CronJob running `redis-cli --rdb`)."""

    schedule: str = Field(
        default="0 3 * * *",
        max_length=64,
        pattern=CRON_PATTERN,
        description="CronJob schedule of the snapshots (UTC unless timeZone is set), e.g. `0 3 * * *`.",
    )
    time_zone: str | None = Field(
        default=None, max_length=64, description="IANA time zone of the schedule (CronJob timeZone)."
    )
    retention: int = Field(
        default=7, ge=1, le=1000, description="Snapshots kept on the backup volume (newest first, 1-1000)."
    )
    storage: Quantity = Field(
        default="2Gi", description="Size of the backup volume (PVC <name>-redis-backup) the operator creates."
    )
    storage_class_name: str | None = Field(
        default=None,
        description="StorageClass of the backup PVC; cluster default when unset.",
        max_length=253,
    )
    existing_claim: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        description="Write the snapshots to this existing PVC instead (storage is then ignored).",
    )
    restore_from: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^(latest|[A-Za-z0-9][-A-Za-z0-9_.]*\.rdb)$",
        description=(
            "`latest` (the newest snapshot, if any) or a snapshot file name: when the Redis data "
            "volume is empty (new or replaced), it is filled from that snapshot before Redis starts. "
            "Existing data is never overwritten."
        ),
    )


class ManagedRedis(_Model):
    """A Redis run by the operator: a one-replica StatefulSet with AOF on a PVC and redis_exporter.

    It is locked down: ACL users with generated passwords (Secret <name>-redis-auth, owned by the
    AgentDeployment), the default user disabled, protected mode on, and a NetworkPolicy admitting
    only this deployment's agent Pods (and the exporter port from the monitoring namespaces).
    """

    image: str = Field(default=DEFAULT_REDIS_IMAGE, description="Redis image.", min_length=1, max_length=512)
    exporter_image: str = Field(
        default=DEFAULT_REDIS_EXPORTER_IMAGE,
        description="redis_exporter sidecar image.",
        min_length=1,
        max_length=512,
    )
    storage: Quantity = Field(default="1Gi", description="Size of the data volume (PVC).")
    storage_class_name: str | None = Field(
        default=None, description="StorageClass of the PVC; cluster default when unset.", max_length=253
    )
    resources: ResourceRequirements = Field(
        default_factory=lambda: ResourceRequirements(
            requests={"cpu": "100m", "memory": "128Mi"}, limits={"memory": "256Mi"}
        ),
        description=(
            "Resources of the redis container. limits.memory is required: Redis' maxmemory is "
            "derived from it (with noeviction, so a full Redis refuses writes instead of dropping data)."
        ),
    )
    tls: RedisTls | None = Field(default=None, description="Serve TLS only (rediss://); plain when omitted.")
    backup: RedisBackup | None = Field(
        default=None, description="Scheduled RDB snapshots; none when omitted."
    )
    delete_data_with_resource: bool = Field(
        default=False,
        description=(
            "Delete the data volume (and the operator-made backup volume) with the AgentDeployment. "
            "False: both PVCs are kept when the AgentDeployment is deleted (a mistaken delete loses nothing)."
        ),
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.resources.limits) && 'memory' in self.resources.limits",
                    "redis.managed.resources.limits.memory is required (Redis' maxmemory is derived from it)",
                    ".resources",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _memory_limit(self) -> ManagedRedis:
        if "memory" not in self.resources.limits:
            raise ValueError(
                "redis.managed.resources.limits.memory is required (Redis' maxmemory is derived from it)"
            )
        return self


class ExternalRedis(_Model):
    """A Redis the operator does not run."""

    url: str | None = Field(
        default=None,
        description="redis:// or rediss:// URL (no password: use urlSecretRef for that).",
        max_length=2048,
        pattern=r"^rediss?://",
    )
    url_secret_ref: SecretKeyRef | None = Field(default=None, description="Secret key holding the full URL.")
    cluster: bool = Field(
        default=False,
        description=(
            "The URL names a node of a Redis Cluster (the service discovers the others; every key it "
            "writes is hash-tagged so threads spread over the shards)."
        ),
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.url) != has(self.urlSecretRef)",
                    "redis.external: set exactly one of url or urlSecretRef",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _one_source(self) -> ExternalRedis:
        if (self.url is None) == (self.url_secret_ref is None):
            raise ValueError("redis.external: set exactly one of url or urlSecretRef")
        return self


class RedisSpec(_Model):
    """Where the agent keeps state: exactly one of `managed` or `external`."""

    managed: ManagedRedis | None = Field(default=None, description="Let the operator run Redis.")
    external: ExternalRedis | None = Field(default=None, description="Use an existing Redis.")
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "has(self.managed) != has(self.external)", "redis: set exactly one of managed or external"
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RedisSpec:
        if (self.managed is None) == (self.external is None):
            raise ValueError("redis: set exactly one of managed or external")
        return self


# --------------------------------------------------------------------------------------------- scaling


class AutoscalingEngine(StrEnum):
    hpa = "hpa"
    keda = "keda"


class Autoscaling(_Model):
    """Horizontal autoscaling of the agent Deployment. Omit to run `replicas` fixed Pods."""

    engine: AutoscalingEngine = Field(
        default=AutoscalingEngine.hpa,
        description=(
            "`hpa` (autoscaling/v2: CPU, and runs per Pod as the External metric agent_runs_active "
            "served by a metrics adapter) or `keda` (a Prometheus trigger on the runs, and CPU)."
        ),
    )
    min_replicas: int = Field(default=2, ge=1, le=1000, description="Lower bound of replicas (1-1000).")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="Upper bound of replicas (1-1000).")
    target_cpu_utilization_percent: int = Field(
        default=70, ge=0, le=100, description="Average CPU utilization target in percent; 0 disables it."
    )
    target_runs_per_pod: int = Field(
        default=8,
        ge=1,
        le=10000,
        description=(
            "Target runs per Pod, queued and running (sum(agent_runs_running) + max(agent_runs_pending) "
            "over the Pods); the replica count is that total divided by this."
        ),
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.minReplicas <= self.maxReplicas",
                    "autoscaling.minReplicas must be <= autoscaling.maxReplicas",
                    ".minReplicas",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.minReplicas must be <= autoscaling.maxReplicas")
        return self


# --------------------------------------------------------------------------------------------- SLO


def fmt_bucket(bound: float) -> str:
    """``1.0`` -> ``1``, ``0.25`` -> ``0.25``: buckets as a user writes them."""
    return f"{bound:g}"


#: objective (``slo.<sli>``) -> the bucket boundaries its ``thresholdSeconds`` must be one of.
def _threshold_buckets() -> dict[str, tuple[float, ...]]:
    return {"latency": slo_buckets.latency(), "ttft": slo_buckets.ttft()}


def _threshold_message(sli: str) -> str:
    allowed = ", ".join(map(fmt_bucket, _threshold_buckets()[sli]))
    return (
        f"slo.{sli}.thresholdSeconds must be a histogram bucket of the service (no SLI data "
        f"otherwise): one of {allowed}"
    )


def _slo_rules(schema: dict[str, Any]) -> None:
    schema["x-kubernetes-validations"] = [
        _cel(
            f"!has(self.{sli}) || self.{sli}.thresholdSeconds in {_cel_list(bounds)}",
            _threshold_message(sli),
            f".{sli}.thresholdSeconds",
        )
        for sli, bounds in _threshold_buckets().items()
    ]


class Objective(_Model):
    """A ratio objective in percent of good events."""

    target: float = Field(
        gt=0, lt=100, description="Objective in percent of requests (0 < target < 100), e.g. 99.9."
    )


class LatencyObjective(Objective):
    """Share of requests faster than a threshold."""

    threshold_seconds: float = Field(
        gt=0,
        le=600,
        description=(
            "Threshold in seconds: one of the service's histogram buckets (latency: "
            f"{', '.join(map(fmt_bucket, slo_buckets.latency()))}; ttft: "
            f"{', '.join(map(fmt_bucket, slo_buckets.ttft()))})."
        ),
    )


class Slo(_Model):
    """Service level objectives evaluated over a rolling window."""

    window: str = Field(
        default="30d",
        pattern=DURATION_PATTERN,
        max_length=6,
        description="Rolling SLO window: a number and one unit of s, m, h, d, w (e.g. 30d; 10m for tests).",
    )
    availability: Objective = Field(
        default_factory=lambda: Objective(target=99.5),
        description=(
            "Share of good events: runs that end success or interrupted (error and timeout are bad, "
            "cancelled runs do not count) and requests without a run not answered with a 5xx "
            "(4xx, 429 included, are good)."
        ),
    )
    latency: LatencyObjective | None = Field(
        default=None, description="Run latency objective: accepted to finished, queue wait included."
    )
    ttft: LatencyObjective | None = Field(default=None, description="Time-to-first-streamed-token objective.")
    min_events: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description=(
            "Requests a burn-rate alert's long window must see before the alert may fire, so that "
            "1 failure in 2 requests does not page (default 20); lower it for low-traffic agents."
        ),
    )

    model_config = ConfigDict(json_schema_extra=_slo_rules)

    @field_validator("window")
    @classmethod
    def _window_bounds(cls, value: str) -> str:
        if not 60 <= duration_seconds(value) <= 90 * 86400:
            raise ValueError("slo.window must be between 1m and 90d")
        return value

    @model_validator(mode="after")
    def _thresholds_are_buckets(self) -> Slo:
        for sli, bounds in _threshold_buckets().items():
            objective = getattr(self, sli)
            if objective is not None and objective.threshold_seconds not in bounds:
                raise ValueError(_threshold_message(sli))
        return self


class PolicyAction(StrEnum):
    notify = "Notify"
    freeze_non_critical = "FreezeNonCritical"
    freeze_all = "FreezeAll"


class PolicyStep(_Model):
    """Take `action` once `consumedPercent` of the error budget is spent."""

    consumed_percent: float = Field(
        gt=0, le=1000, description="Budget consumed, in percent (0 < p <= 1000; > 100 means overspent)."
    )
    action: PolicyAction = Field(description="What to do: Notify, FreezeNonCritical or FreezeAll.")


class Recovery(_Model):
    """How a freeze lifts."""

    quiet_period: str = Field(
        default="1h",
        pattern=DURATION_PATTERN,
        max_length=6,
        description="Burn must stay below the lowest freezing step this long before the freeze lifts.",
    )
    require_postmortem: bool = Field(
        default=False, description="Keep FreezeAll until annotation shepherd.dev/postmortem is set."
    )


def _default_steps() -> list[PolicyStep]:
    return [
        PolicyStep(consumed_percent=50, action=PolicyAction.notify),
        PolicyStep(consumed_percent=75, action=PolicyAction.freeze_non_critical),
        PolicyStep(consumed_percent=100, action=PolicyAction.freeze_all),
    ]


class ErrorBudgetPolicy(_Model):
    """Ordered steps the operator takes as the error budget burns."""

    steps: list[PolicyStep] = Field(
        default_factory=_default_steps,
        min_length=1,
        max_length=10,
        description="Steps with strictly increasing consumedPercent (1-10 steps).",
    )
    recovery: Recovery = Field(default_factory=Recovery, description="How a freeze lifts.")
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "self.steps.map(s, s.consumedPercent).isSorted() && "
                    "self.steps.all(a, self.steps.exists_one(b, b.consumedPercent == a.consumedPercent))",
                    "errorBudgetPolicy.steps: consumedPercent must be strictly increasing",
                    ".steps",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _increasing(self) -> ErrorBudgetPolicy:
        values = [s.consumed_percent for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(values)):
            raise ValueError("errorBudgetPolicy.steps: consumedPercent must be strictly increasing")
        return self


# --------------------------------------------------------------------------------------------- rollout


class RolloutStrategy(StrEnum):
    rolling = "rolling"
    canary = "canary"


class CanaryStep(_Model):
    """One step of a canary: `weight` percent of the Pods run the new release for `pause`."""

    weight: int = Field(
        ge=1,
        le=100,
        description=(
            "Percent of the Pods on the canary release during this step (1-100): the canary gets "
            "ceil(replicas * weight / 100) Pods, at least 1 (see docs/rollouts.md for the granularity)."
        ),
    )
    pause: str = Field(
        pattern=DURATION_PATTERN,
        max_length=6,
        description="How long the step lasts before the next one (a duration such as 30s, 5m or 1h).",
    )


class CanaryAnalysis(_Model):
    """When a canary fails: its bad-event ratio of an SLI against the stable release's and the SLO.

    Read by the budget watcher from the per-release SLI counts of the fleet rules (the last
    ``canaryWindow`` of the rules, 5m by default). An SLI with fewer than ``minEvents`` events of
    the canary in that window is not judged yet.
    """

    factor: float = Field(
        default=2.0,
        gt=1,
        le=100,
        description=(
            "The canary fails when its bad-event ratio exceeds the stable release's by this factor "
            "while it burns its error budget faster than the SLO allows (1 < factor <= 100)."
        ),
    )
    burn_threshold: float = Field(
        default=14.4,
        gt=1,
        le=1000,
        description=(
            "The canary fails when its burn rate (bad-event ratio over the SLO's allowed ratio) "
            "exceeds this, whatever the stable release does (1 < threshold <= 1000; 14.4 spends 2% "
            "of a 30-day budget in an hour)."
        ),
    )
    min_events: int = Field(
        default=20, ge=1, le=1_000_000, description="Events of the canary before an SLI is judged."
    )


class Rollout(_Model):
    """How a change of the workload reaches the Pods."""

    strategy: RolloutStrategy = Field(
        default=RolloutStrategy.rolling,
        description=(
            "rolling: every Pod is replaced at once by a rolling update (the default). canary: a second "
            "Deployment runs the new release on a growing share of the Pods, step by step, and becomes "
            "the stable release after the last step."
        ),
    )
    steps: list[CanaryStep] = Field(
        default_factory=list,
        max_length=10,
        description="Canary steps with strictly increasing weights (1-10 steps; required by canary).",
    )
    analysis: CanaryAnalysis = Field(
        default_factory=CanaryAnalysis, description="When the budget watcher aborts a canary."
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.strategy) || self.strategy != 'canary' "
                    "|| (has(self.steps) && size(self.steps) > 0)",
                    "rollout.steps: a canary needs at least one step",
                    ".steps",
                ),
                _cel(
                    "!has(self.steps) || (self.steps.map(s, s.weight).isSorted() && "
                    "self.steps.all(a, self.steps.exists_one(b, b.weight == a.weight)))",
                    "rollout.steps: weight must be strictly increasing",
                    ".steps",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _steps(self) -> Rollout:
        if self.strategy == RolloutStrategy.canary and not self.steps:
            raise ValueError("rollout.steps: a canary needs at least one step")
        weights = [s.weight for s in self.steps]
        if any(b <= a for a, b in itertools.pairwise(weights)):
            raise ValueError("rollout.steps: weight must be strictly increasing")
        return self


# --------------------------------------------------------------------------------------------- observability


class Monitoring(_Model):
    """Prometheus Operator and Grafana objects. Each is skipped (with a condition) if its CRD is absent."""

    pod_monitor: bool = Field(
        default=True, description="Create a PodMonitor that adds the agentdeployment label."
    )
    prometheus_rule: bool = Field(
        default=True,
        description=(
            "Count this resource's SLO window in the fleet's SLO rules: the operator keeps one "
            "PrometheusRule per distinct window in use (shepherd-slo-<window>, in its own namespace), "
            "never one per AgentDeployment. False: no SLO recording rules or alerts for this window "
            "unless another resource uses it."
        ),
    )
    dashboard: bool = Field(
        default=True, description="Create a Grafana dashboard ConfigMap (grafana_dashboard=1)."
    )
    prometheus_url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="Prometheus base URL for the budget watcher and KEDA; operator default when unset.",
    )
    scrape_interval: str = Field(
        default="15s", pattern=DURATION_PATTERN, max_length=6, description="PodMonitor scrape interval."
    )


class Collector(_Model):
    """An OpenTelemetry Collector native sidecar that receives on localhost and exports to otlpEndpoint."""

    enabled: bool = Field(default=False, description="Run the collector sidecar.")
    image: str = Field(
        default=DEFAULT_OTEL_COLLECTOR_IMAGE, description="Collector image.", min_length=1, max_length=512
    )


class Tracing(_Model):
    """OpenTelemetry tracing of requests and LLM calls."""

    otlp_endpoint: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="OTLP/HTTP endpoint (e.g. http://tempo:4318); with the collector on, it exports here.",
    )
    sample_ratio: float = Field(default=1.0, ge=0, le=1, description="Share of traces sampled (0-1).")
    collector: Collector = Field(default_factory=Collector, description="Optional collector sidecar.")
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!self.collector.enabled || has(self.otlpEndpoint)",
                    "tracing.otlpEndpoint is required when tracing.collector.enabled",
                    ".otlpEndpoint",
                )
            ]
        }
    )

    @model_validator(mode="after")
    def _collector_needs_endpoint(self) -> Tracing:
        if self.collector.enabled and self.otlp_endpoint is None:
            raise ValueError("tracing.otlpEndpoint is required when tracing.collector.enabled")
        return self


class NetworkPolicySpec(_Model):
    """Restrict ingress to the agent Pods. (The managed Redis always gets its own NetworkPolicy.)"""

    enabled: bool = Field(default=False, description="Create a NetworkPolicy for the agent Pods.")
    allowed_namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]] = Field(
        default_factory=list,
        max_length=32,
        description="Other namespaces allowed to reach the API port, e.g. ingress and monitoring.",
    )
    monitoring_namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]] = Field(
        default_factory=lambda: ["monitoring"],
        max_length=32,
        description=(
            "Namespaces whose Pods (Prometheus) may scrape the managed Redis' exporter port; nothing "
            "else of Redis is reachable from them."
        ),
    )


class InputLimits(_Model):
    """Bounds on what one request may carry; larger or deeper input is refused with 413/422."""

    max_request_bytes: int = Field(
        default=1_048_576, ge=1024, le=104_857_600, description="Largest request body in bytes (413 above)."
    )
    max_message_chars: int = Field(
        default=100_000,
        ge=1,
        le=10_000_000,
        description="Longest string (e.g. a message) in a run's input or a state update (422 above).",
    )
    max_depth: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Deepest nesting of objects and lists in a run's input (422 above).",
    )


class StoreIndex(_Model):
    """Semantic search of the store: item values embedded by an OpenAI-compatible endpoint, vectors in
    Redis, searched by every replica (no Redis modules)."""

    url: str = Field(
        max_length=2048,
        pattern=r"^https?://",
        description="Base URL of the embeddings endpoint (OpenAI, vLLM, TEI, Ollama: the .../v1 URL).",
    )
    model: str = Field(
        default="text-embedding-3-small", min_length=1, max_length=256, description="Embeddings model."
    )
    dims: int = Field(ge=1, le=16_384, description="Dimensions of the model's vectors.")
    fields: list[Annotated[str, Field(min_length=1, max_length=256)]] = Field(
        default_factory=lambda: ["$"],
        min_length=1,
        max_length=32,
        description="JSON paths of an item's value that are embedded; $ is the whole value.",
    )
    api_key_secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the endpoint's API key (self-hosted servers need none)."
    )


class StoreSpec(_Model):
    """The long-term memory graphs and the /store API share (LangGraph's BaseStore, in Redis)."""

    index: StoreIndex | None = Field(
        default=None, description="Semantic search (search with a query ranks by meaning); unset: none."
    )

    max_value_bytes: int = Field(
        default=262_144, ge=1024, le=16_777_216, description="Largest JSON value of one item (422 above)."
    )
    default_ttl_minutes: float | None = Field(
        default=None, gt=0, le=5_256_000, description="TTL of items put without one; unset: no expiry."
    )
    refresh_on_read: bool = Field(
        default=True, description="Reads and searches give the items they return their full TTL again."
    )
    sweep_interval_seconds: int = Field(
        default=60, ge=1, le=86_400, description="How often expired items leave the namespace indexes."
    )


class Protocols(_Model):
    """What the agent speaks besides the LangGraph Platform API (on the same port)."""

    mcp: bool = Field(default=True, description="Every assistant an MCP tool at /mcp (Streamable HTTP).")
    a2a: bool = Field(
        default=True,
        description="Every assistant an A2A agent at /a2a/{assistant_id} (JSON-RPC), with its agent card at "
        "/.well-known/agent-card.json?assistant_id=...",
    )


# --------------------------------------------------------------------------------------------- runs

HOST_OR_CIDR_PATTERN = r"^[A-Za-z0-9_.:\-]+(/[0-9]{1,3})?$"
DNS_NAME_PATTERN = r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$"


class Runs(_Model):
    """How the service executes runs: limits, and recovery when a replica is lost."""

    timeout_seconds: float = Field(
        default=600, gt=0, le=86400, description="An attempt of a run still going after this ends as timeout."
    )
    max_concurrent_per_pod: int = Field(
        default=32, ge=1, le=10000, description="Runs executing at once per Pod; more wait in the queue."
    )
    lease_seconds: int = Field(
        default=15,
        ge=2,
        le=600,
        description=(
            "A Pod that stops renewing its lease this long is lost; its runs resume on another Pod from "
            "their last checkpoint (within about leaseSeconds + leaseSeconds/4)."
        ),
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Attempts of a run lost with its Pod before it fails (worker_lost).",
    )


class Webhooks(_Model):
    """Where run webhooks may go, and how they are signed and retried."""

    allowed_hosts: list[Annotated[str, Field(max_length=253, pattern=HOST_OR_CIDR_PATTERN)]] = Field(
        default_factory=list,
        max_length=256,
        description=(
            "Hosts, IPs or CIDRs webhooks may reach. Empty: any host whose addresses are all public, over "
            "https. Listed: only these, and only they may use http:// or resolve to loopback, private, "
            "link-local or cloud metadata addresses."
        ),
    )
    signing_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Secret key with the HMAC-SHA256 key that signs deliveries (X-Shepherd-Signature). "
            "Omitted: deliveries are not signed."
        ),
    )
    timeout_seconds: float = Field(default=10, gt=0, le=300, description="Deadline of one delivery.")
    max_attempts: int = Field(
        default=5, ge=1, le=50, description="Deliveries tried (with backoff) before giving up."
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts_or_networks(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                if "/" in entry or ":" in entry or not re.match(DNS_NAME_PATTERN, entry.lower()):
                    raise ValueError(
                        f"webhooks.allowedHosts: {entry!r} is not a host, an IP or a CIDR"
                    ) from None
        return entries


class Retention(_Model):
    """How long the service keeps what runs leave behind."""

    run_events: str = Field(
        default="1h",
        pattern=DURATION_PATTERN,
        max_length=6,
        description="A finished run's event log stays readable (join, Last-Event-ID resume) this long.",
    )
    stateless_runs: str = Field(
        default="1h",
        pattern=DURATION_PATTERN,
        max_length=6,
        description="A stateless run's record and output stay readable (get, join, webhook) this long.",
    )
    threads: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        max_length=6,
        description=(
            "A thread idle this long (no run, state update or patch) is swept as threadStrategy says; "
            "unset: threads are kept until deleted. A thread created or patched with the LangGraph "
            "API's `ttl` option keeps its own."
        ),
    )
    thread_strategy: Literal["delete", "keep_latest"] = Field(
        default="delete",
        description=(
            "What sweeping does to an expired thread: `delete` removes it with its checkpoints, "
            "writes, runs and event logs; `keep_latest` prunes its checkpoints to the latest."
        ),
    )
    runs: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        max_length=6,
        description="A finished thread run's record is kept this long; unset: as long as its thread.",
    )
    sweep_interval_seconds: int = Field(
        default=60,
        ge=1,
        le=86400,
        description="How often the sweeper (one replica at a time) removes expired threads.",
    )


# --------------------------------------------------------------------------------------------- spec


class AgentDeploymentSpec(_Model):
    """Desired state of an agent service and everything around it."""

    image: str = Field(
        default=DEFAULT_AGENT_IMAGE,
        min_length=1,
        max_length=512,
        description=(
            "Agent image. Omitted: the platform default (chart value defaults.agentImage), "
            f"else {DEFAULT_AGENT_IMAGE}."
        ),
        json_schema_extra=_platform_defaulted,
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Image pull policy of the agent container."
    )
    graph: str = Field(
        default=DEFAULT_GRAPH,
        max_length=256,
        pattern=GRAPH_PATTERN,
        description=(
            "LangGraph entrypoint `module:attribute` (AGENT_GRAPH). Left at its default (the reference "
            "agent), it is not rendered and the image decides: an `agent-service build` image serves its "
            "langgraph.json. Set, it overrides the graphs of any langgraph.json."
        ),
    )
    config: str | None = Field(
        default=None,
        max_length=1024,
        pattern=r"^/\S*langgraph[^/]*\.json$",
        description=(
            "Absolute path of a LangGraph project's langgraph.json inside the image (AGENT_CONFIG): its "
            "graphs, env, http.app and auth.path are served. spec.graph, when set to other than its "
            "default, still overrides its graphs."
        ),
    )
    graph_id: str = Field(
        default="agent",
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Graph id and default assistant the graph is served under (AGENT_GRAPH_ID).",
    )
    replicas: int = Field(default=2, ge=0, le=1000, description="Pods when autoscaling is off (0-1000).")
    resources: ResourceRequirements = Field(
        default_factory=_default_agent_resources, description="Resources of the agent container."
    )
    env: list[EnvVar] = Field(default_factory=list, max_length=64, description="Extra environment variables.")
    sidecars: list[Sidecar] = Field(
        default_factory=list, max_length=8, description="Extra native sidecars (core/v1 Containers)."
    )
    model: ModelSpec = Field(
        default_factory=ModelSpec, description="LLM provider, model and client settings."
    )
    circuit_breaker: CircuitBreaker = Field(
        default_factory=CircuitBreaker, description="Circuit breaker of each model of the chain."
    )
    rate_limits: RateLimits = Field(default_factory=RateLimits, description="Request and token rate limits.")
    token_budget: TokenBudget = Field(default_factory=TokenBudget, description="LLM spend guards.")
    cost_budget: CostBudget = Field(
        default_factory=CostBudget, description="LLM spend as an SLO, optionally enforced."
    )
    usage: Usage = Field(default_factory=Usage, description="Usage counters and GET /usage.")
    auth: Auth | None = Field(default=None, description="JWT authentication; off when omitted.")
    redis: RedisSpec = Field(
        default_factory=lambda: RedisSpec(managed=ManagedRedis()),
        description="Managed or external Redis (defaults to managed).",
    )
    autoscaling: Autoscaling | None = Field(
        default=None, description="Autoscaling; fixed replicas when omitted."
    )
    slo: Slo = Field(
        default_factory=Slo,
        description=(
            "Service level objectives. Omitted: the platform default (chart value defaults.slo), "
            "else 99.5% availability over 30d."
        ),
        json_schema_extra=_platform_defaulted,
    )
    error_budget_policy: ErrorBudgetPolicy = Field(
        default_factory=ErrorBudgetPolicy,
        description=(
            "Steps taken as the error budget burns. Omitted: the platform default (chart value "
            "defaults.errorBudgetPolicy), else notify at 50%, freeze non-critical at 75%, all at 100%."
        ),
        json_schema_extra=_platform_defaulted,
    )
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Monitoring objects.")
    tracing: Tracing = Field(default_factory=Tracing, description="OpenTelemetry tracing.")
    runs: Runs = Field(default_factory=Runs, description="Run execution: limits and recovery.")
    webhooks: Webhooks = Field(default_factory=Webhooks, description="Run webhooks: destinations, signing.")
    retention: Retention = Field(
        default_factory=Retention, description="What runs leave behind, and how long."
    )
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec, description="Ingress policy."
    )
    termination_grace_period_seconds: int = Field(
        default=30, ge=1, le=3600, description="Seconds a Pod may drain in-flight runs on shutdown."
    )
    input_limits: InputLimits = Field(
        default_factory=InputLimits, description="Bounds on request bodies and run input."
    )
    rollout: Rollout = Field(
        default_factory=Rollout, description="How a workload change rolls out: rolling or canary."
    )
    store: StoreSpec = Field(default_factory=StoreSpec, description="Long-term memory (the store API).")
    protocols: Protocols = Field(
        default_factory=Protocols, description="MCP and A2A besides the LangGraph API."
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!has(self.autoscaling) || self.autoscaling.engine != 'keda' "
                    "|| has(self.monitoring.prometheusUrl)",
                    "monitoring.prometheusUrl is required when autoscaling.engine is keda",
                    ".monitoring",
                ),
                _cel(
                    "!has(self.slo) || !has(self.slo.latency) || !has(self.slo.ttft) || "
                    "self.slo.ttft.thresholdSeconds <= self.slo.latency.thresholdSeconds",
                    "slo.ttft.thresholdSeconds must be <= slo.latency.thresholdSeconds",
                    ".slo",
                ),
                _cel(
                    "!has(self.tokenBudget) || !has(self.tokenBudget.usdPerDay) || !has(self.costBudget) "
                    "|| !has(self.costBudget.tenantUsdPerDay)",
                    "set costBudget.tenantUsdPerDay or tokenBudget.usdPerDay (the same limit), not both",
                    ".costBudget.tenantUsdPerDay",
                ),
            ]
        }
    )

    @model_validator(mode="after")
    def _cross_field(self) -> AgentDeploymentSpec:
        if (
            self.autoscaling is not None
            and self.autoscaling.engine == AutoscalingEngine.keda
            and self.monitoring.prometheus_url is None
        ):
            raise ValueError("monitoring.prometheusUrl is required when autoscaling.engine is keda")
        lat, ttft = self.slo.latency, self.slo.ttft
        if lat is not None and ttft is not None and ttft.threshold_seconds > lat.threshold_seconds:
            raise ValueError("slo.ttft.thresholdSeconds must be <= slo.latency.thresholdSeconds")
        if self.token_budget.usd_per_day is not None and self.cost_budget.tenant_usd_per_day is not None:
            raise ValueError(
                "set costBudget.tenantUsdPerDay or tokenBudget.usdPerDay (the same limit), not both"
            )
        return self


class PlatformDefaults(_Model):
    """What a resource gets when it omits ``spec.image``, ``spec.slo`` or ``spec.errorBudgetPolicy``.

    The platform team sets these once (chart values ``defaults.*``, passed as ``ENV``); without
    them the built-in defaults apply. A field is taken whole: a resource that sets ``spec.slo``
    gets none of the platform's SLO.
    """

    image: str = Field(default=DEFAULT_AGENT_IMAGE, min_length=1, max_length=512)
    slo: Slo = Field(default_factory=Slo)
    error_budget_policy: ErrorBudgetPolicy = Field(default_factory=ErrorBudgetPolicy)

    #: Wire name -> the variable it is read from (JSON for the objects).
    ENV: ClassVar[dict[str, str]] = {
        "image": "SHEPHERD_DEFAULT_AGENT_IMAGE",
        "slo": "SHEPHERD_DEFAULT_SLO",
        "errorBudgetPolicy": "SHEPHERD_DEFAULT_ERROR_BUDGET_POLICY",
    }

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> PlatformDefaults:
        """Read ``ENV`` (unset or empty: built-in); raises ValueError naming each bad variable."""
        values: dict[str, Any] = {}
        for name, variable in cls.ENV.items():
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            try:
                values[name] = raw if name == "image" else json.loads(raw)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{variable} is not valid JSON: {exc}") from None
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = [
                f"{cls.ENV[str(e['loc'][0])]}: {'.'.join(map(str, e['loc'][1:])) or 'value'}: {e['msg']}"
                for e in exc.errors()
            ]
            raise ValueError("; ".join(problems)) from None

    def fill(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """``spec`` (wire form) with the omitted platform-defaulted fields filled in."""
        return {**self.model_dump(by_alias=True, exclude_none=True, mode="json"), **spec}


@functools.cache
def platform_defaults() -> PlatformDefaults:
    """The process's platform defaults, read from the environment once."""
    return PlatformDefaults.from_environment()


def graph_problem(graph: str) -> str | None:
    """Why the operator refuses a graph entrypoint the CRD accepted, or None.

    The CRD pattern checks the ``module:attribute`` shape; whether each part is a usable Python
    identifier (not a keyword such as ``class``) is known only to Python.
    """
    if not re.match(GRAPH_PATTERN, graph):
        return f"spec.graph {graph!r} is not of the form package.module:attribute"
    parts = graph.replace(":", ".").split(".")
    bad = [p for p in parts if keyword.iskeyword(p) or not p.isidentifier()]
    if bad:
        return f"spec.graph {graph!r}: {', '.join(bad)} cannot be imported (Python keyword)"
    return None


# --------------------------------------------------------------------------------------------- status


class ConditionStatus(StrEnum):
    true = "True"
    false = "False"
    unknown = "Unknown"


class Condition(_Model):
    """A metav1.Condition-like observation."""

    type: str = Field(
        description="Ready, Progressing, Frozen, ErrorBudgetHealthy, CircuitsClosed, ...", max_length=64
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase machine-readable reason.", max_length=128)
    message: str = Field(default="", description="What a human should know.", max_length=4096)
    observed_generation: int | None = Field(default=None, description="metadata.generation this describes.")
    last_transition_time: str | None = Field(
        default=None,
        description="When status last changed (RFC 3339).",
        json_schema_extra={"format": "date-time"},
    )


class Release(_Model):
    """A rollout of the workload: what runs (released) or what waits (pending)."""

    generation: int | None = Field(default=None, description="metadata.generation of the spec it came from.")
    image: str | None = Field(default=None, description="Agent image.")
    since: str | None = Field(default=None, description="When it was released or became pending (RFC 3339).")
    reason: str | None = Field(default=None, description="Why a pending change is held (pending only).")


class RolloutPhase(StrEnum):
    stable = "Stable"
    progressing = "Progressing"
    held = "Held"
    aborted = "Aborted"


class RolloutStatus(_Model):
    """Where a canary rollout is (spec.rollout.strategy canary only)."""

    phase: RolloutPhase = Field(
        description=(
            "Stable (one release runs), Progressing (a canary runs), Held (a freeze holds it) or "
            "Aborted (its analysis failed: the canary has no Pod, the change stays pending)."
        )
    )
    release: int = Field(description="Release of the newest spec (shepherd.dev/release of its Pods).")
    stable_release: int | None = Field(default=None, description="Release the stable Deployment runs.")
    step: int | None = Field(default=None, description="Index of the canary step under way.")
    weight: int = Field(description="Percent of the Pods on the newest release (the step's weight).")
    since: str | None = Field(default=None, description="When the step began (RFC 3339).")
    started: str | None = Field(default=None, description="When this canary began (RFC 3339).")
    retry: str | None = Field(
        default=None, description="The shepherd.dev/rollout-retry annotation this canary started with."
    )
    reason: str = Field(default="", description="What is happening, for a human.", max_length=1024)
    summary: str = Field(default="", description="Phase and weight, e.g. `Progressing 10%` (ROLLOUT).")


class CanaryVerdict(_Model):
    """The budget watcher's latest verdict on a canary."""

    release: int = Field(description="The canary's release.")
    verdict: Literal["Failed", "Passed"] = Field(
        description="Failed (the canary is aborted) or Passed (its step may advance once its pause is over)."
    )
    step: int | None = Field(default=None, description="The step a Passed verdict is for.")
    sli: str = Field(description="The SLI that failed.")
    reason: str = Field(description="Ratios and events, for a human.", max_length=1024)
    at: str = Field(description="When (RFC 3339).")


class BurnRate(_Model):
    """Error budget burn rate over one window."""

    window: str = Field(description="Window, e.g. 5m or 1h.")
    rate: float = Field(description="Burn rate (1 = spending exactly the budget over the SLO window).")


class ErrorBudgetStatus(_Model):
    """Error budget as last evaluated from Prometheus."""

    consumed_percent: float | None = Field(default=None, description="Budget consumed in the SLO window (%).")
    remaining_percent: float | None = Field(default=None, description="Budget left in the SLO window (%).")
    burn_rates: list[BurnRate] = Field(default_factory=list, description="Burn rates per alert window.")
    evaluated_at: str | None = Field(default=None, description="When Prometheus was last read (RFC 3339).")
    active_step: int | None = Field(default=None, description="Index of the policy step in force, if any.")


class FreezeLevel(StrEnum):
    none = "None"
    non_critical = "NonCritical"
    all = "All"


class OverrideUse(_Model):
    """A rollout let through a freeze by shepherd.dev/freeze-override."""

    generation: int = Field(description="Generation released through the freeze.")
    reason: str = Field(description="Reason given in the annotation.")
    at: str = Field(description="When (RFC 3339).")


class PolicyTransition(_Model):
    """One transition of the error-budget policy (also posted as an Event)."""

    at: str = Field(description="When (RFC 3339).")
    kind: str = Field(description="RolloutsFrozen, ErrorBudgetNotify, FreezeLowered, FreezeLifted, ...")
    from_level: FreezeLevel = Field(description="Freeze level before.")
    to_level: FreezeLevel = Field(description="Freeze level after.")
    step: int | None = Field(default=None, description="Index of the policy step in force after.")
    consumed_percent: float = Field(description="Budget consumed when it happened (%).")
    message: str = Field(default="", description="What happened.", max_length=1024)


class FreezeStatus(_Model):
    """Rollout freeze imposed by the error-budget policy."""

    level: FreezeLevel = Field(default=FreezeLevel.none, description="None, NonCritical or All.")
    since: str | None = Field(default=None, description="When the current level began (RFC 3339).")
    reason: str | None = Field(default=None, description="Why.")
    quiet_since: str | None = Field(
        default=None, description="Since when every burn rate has been below 1 while frozen (RFC 3339)."
    )
    waiting: str | None = Field(default=None, description="Why a lower level is not in force yet.")
    overrides_used: list[OverrideUse] = Field(default_factory=list, description="Overrides recorded.")
    history: list[PolicyTransition] = Field(
        default_factory=list, max_length=10, description="Last policy transitions (oldest first, at most 10)."
    )


class CircuitStatus(_Model):
    """State of one circuit as scraped from agent_circuit_state: a model's or a tool's."""

    name: str = Field(description="Circuit name: `<provider>:<model>` or `tool:<tool name>`.")
    state: Literal["closed", "half-open", "open"] = Field(description="closed, half-open or open.")
    since: str | None = Field(default=None, description="When it entered this state (RFC 3339).")


class SpendStatus(_Model):
    """LLM spend as Prometheus last saw it (agent_llm_cost_usd_total, at the budget step's resolution)."""

    today_usd: float | None = Field(default=None, description="Spent since 00:00 UTC, in USD.")
    month_usd: float | None = Field(default=None, description="Spent since the 1st of the month (UTC).")
    today_percent: float | None = Field(
        default=None, description="todayUsd in percent of costBudget.usdPerDay."
    )
    month_percent: float | None = Field(
        default=None, description="monthUsd in percent of costBudget.usdPerMonth."
    )
    evaluated_at: str | None = Field(default=None, description="When Prometheus was read (RFC 3339).")


class AgentDeploymentStatus(_Model):
    """Observed state, written only by the operator."""

    observed_generation: int | None = Field(default=None, description="Last metadata.generation reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing, Frozen, ErrorBudgetHealthy, CircuitsClosed, ...",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    replicas: int | None = Field(default=None, description="Pods of the agent Deployment.")
    ready_replicas: int | None = Field(default=None, description="Ready Pods of the agent Deployment.")
    ready: str | None = Field(default=None, description="ready/desired, for the READY column.")
    image: str | None = Field(default=None, description="Image of the released workload (IMAGE column).")
    released: Release | None = Field(default=None, description="The release that runs.")
    pending: Release | None = Field(default=None, description="A change held back (e.g. by a freeze).")
    error_budget: ErrorBudgetStatus | None = Field(default=None, description="Error budget.")
    spend: SpendStatus | None = Field(default=None, description="LLM spend against spec.costBudget.")
    freeze: FreezeStatus | None = Field(default=None, description="Rollout freeze.")
    circuits: list[CircuitStatus] = Field(default_factory=list, description="Model and tool circuits.")
    circuits_summary: str | None = Field(default=None, description="e.g. `closed` or `1/3 open` (CIRCUITS).")
    monitoring: list[str] = Field(
        default_factory=list, description="Monitoring kinds skipped because their CRD is absent."
    )
    rollout: RolloutStatus | None = Field(default=None, description="Canary rollout state.")
    canary_analysis: CanaryVerdict | None = Field(
        default=None, description="The budget watcher's latest verdict on a canary."
    )


class AgentDeployment(BaseModel):
    """An agent service run in production with SLOs."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: AgentDeploymentSpec = Field(default_factory=AgentDeploymentSpec)
    #: Status stays a plain dict: it is written by the operator (and colleagues' code), only read here.
    status: dict[str, Any] = Field(default_factory=dict)

    @field_validator("metadata")
    @classmethod
    def _name_fits_children(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        from shepherd.render.limits import name_problem  # the renderers import this module

        problem = name_problem(str(metadata.get("name") or ""))
        if problem:
            raise ValueError(problem)
        return metadata

    @property
    def name(self) -> str:
        return self.metadata["name"]

    @property
    def namespace(self) -> str:
        return self.metadata.get("namespace", "default")

    @property
    def uid(self) -> str:
        return self.metadata.get("uid", "")

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation", 0))

    @property
    def annotations(self) -> dict[str, str]:
        return self.metadata.get("annotations") or {}


def parse(body: Mapping[str, Any], defaults: PlatformDefaults | None = None) -> AgentDeployment:
    """Parse a resource body (as the apiserver returns it) into the typed model, the omitted
    platform-defaulted fields filled from ``defaults`` (default: ``platform_defaults()``)."""
    defaults = defaults or platform_defaults()
    return AgentDeployment.model_validate(
        {
            "apiVersion": body.get("apiVersion", API_VERSION),
            "kind": body.get("kind", KIND),
            "metadata": dict(body.get("metadata") or {}),
            "spec": defaults.fill(body.get("spec") or {}),
            "status": body.get("status") or {},
        }
    )
