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
import itertools
import json
import keyword
import os
import re
from collections.abc import Mapping
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


def _cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


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


class EnvVar(_Model):
    """An extra environment variable for the agent container."""

    name: str = Field(description="Variable name.", min_length=1, max_length=128, pattern=ENV_NAME_PATTERN)
    value: str | None = Field(default=None, description="Literal value.", max_length=32768)
    secret_key_ref: SecretKeyRef | None = Field(
        default=None, description="Take the value from a Secret key (never inline secrets)."
    )
    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                _cel(
                    "!(has(self.value) && has(self.secretKeyRef))",
                    "env: set value or secretKeyRef, not both",
                )
            ]
        }
    )


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
        max_length=5,
        description="Ordered fallback models, at any provider (at most 5).",
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


class ManagedRedis(_Model):
    """A Redis run by the operator: a one-replica StatefulSet with AOF on a PVC and redis_exporter."""

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
        description="Resources of the redis container.",
    )


class ExternalRedis(_Model):
    """A Redis the operator does not run."""

    url: str | None = Field(
        default=None,
        description="redis:// or rediss:// URL (no password: use urlSecretRef for that).",
        max_length=2048,
        pattern=r"^rediss?://",
    )
    url_secret_ref: SecretKeyRef | None = Field(default=None, description="Secret key holding the full URL.")
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
        description="`hpa` (autoscaling/v2, CPU + agent_inflight_requests via a metrics adapter) or `keda`.",
    )
    min_replicas: int = Field(default=2, ge=1, le=1000, description="Lower bound of replicas (1-1000).")
    max_replicas: int = Field(default=10, ge=1, le=1000, description="Upper bound of replicas (1-1000).")
    target_cpu_utilization_percent: int = Field(
        default=70, ge=0, le=100, description="Average CPU utilization target in percent; 0 disables it."
    )
    target_inflight_per_pod: int = Field(
        default=8, ge=1, le=10000, description="Target average of agent_inflight_requests per Pod."
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
        description="Latency threshold in seconds; must match a histogram bucket of the service.",
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
        description="Share of requests not answered with 5xx (4xx count as good).",
    )
    latency: LatencyObjective | None = Field(default=None, description="Request latency objective.")
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

    @field_validator("window")
    @classmethod
    def _window_bounds(cls, value: str) -> str:
        if not 60 <= duration_seconds(value) <= 90 * 86400:
            raise ValueError("slo.window must be between 1m and 90d")
        return value


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
    """Restrict ingress to the agent Pods."""

    enabled: bool = Field(default=False, description="Create a NetworkPolicy for the agent Pods.")
    allowed_namespaces: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL_PATTERN)]] = Field(
        default_factory=list,
        max_length=32,
        description="Other namespaces allowed to reach the API port, e.g. ingress and monitoring.",
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
        description="LangGraph entrypoint `module:attribute` (AGENT_GRAPH).",
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
    network_policy: NetworkPolicySpec = Field(
        default_factory=NetworkPolicySpec, description="Ingress policy."
    )
    termination_grace_period_seconds: int = Field(
        default=30, ge=1, le=3600, description="Seconds a Pod may drain in-flight runs on shutdown."
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
    freeze: FreezeStatus | None = Field(default=None, description="Rollout freeze.")
    circuits: list[CircuitStatus] = Field(default_factory=list, description="Model and tool circuits.")
    circuits_summary: str | None = Field(default=None, description="e.g. `closed` or `1/3 open` (CIRCUITS).")
    monitoring: list[str] = Field(
        default_factory=list, description="Monitoring kinds skipped because their CRD is absent."
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
