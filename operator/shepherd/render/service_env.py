"""Environment variables the agent service reads, and how the spec maps onto them.

These names mirror ``agent_service.settings`` (service/agent_service/settings.py): change them
together. Plain settings go into the ``<name>-config`` ConfigMap (``envFrom``); secrets are only ever
referenced (``secretKeyRef``), never copied.
"""

from __future__ import annotations

import json
from typing import Any

from shepherd.api import (
    DEFAULT_GRAPH,
    MAX_FALLBACKS,
    AgentDeployment,
    AgentDeploymentSpec,
    ContextOverflow,
    ModelEndpoint,
    SecretKeyRef,
    duration_seconds,
)
from shepherd.render.common import (
    REDIS_AGENT_USER,
    REDIS_PORT,
    REDIS_TLS_CA_KEY,
    REDIS_TLS_CERT_KEY,
    REDIS_TLS_KEY_KEY,
    redis_auth_name,
    redis_name,
)

#: Every variable Shepherd sets in the agent container -> the spec field a user sets instead. The
#: CRD refuses these names in ``spec.env`` with that field in the message (``shepherd.api``): the
#: table is read there, so a variable declared with ``_var`` is refused without a second list.
SPEC_FIELDS: dict[str, str] = {}


def _var(name: str, field: str) -> str:
    SPEC_FIELDS[name] = field
    return name


AGENT_GRAPH = _var("AGENT_GRAPH", "spec.graph")
AGENT_GRAPH_ID = _var("AGENT_GRAPH_ID", "spec.graphId")
AGENT_CONFIG = _var("AGENT_CONFIG", "spec.config")
#: Where the service writes why it could not start; the kubelet's default terminationMessagePath.
TERMINATION_MESSAGE_PATH = _var("TERMINATION_MESSAGE_PATH", "the container's terminationMessagePath")
CONTAINER_TERMINATION_LOG = "/dev/termination-log"
REDIS_URL = _var("REDIS_URL", "spec.redis (external.url or external.urlSecretRef)")
#: One prefix per AgentDeployment, so deployments sharing a Redis never share keys.
REDIS_KEY_PREFIX = _var("REDIS_KEY_PREFIX", "metadata.namespace and metadata.name (one prefix each)")
#: The managed Redis password of the agent's ACL user, expanded into REDIS_URL by the kubelet.
REDIS_PASSWORD = _var("SHEPHERD_REDIS_PASSWORD", "spec.redis.managed (a generated password)")
DRAIN_GRACE_SECONDS = _var("DRAIN_GRACE_SECONDS", "spec.terminationGracePeriodSeconds")
REDIS_CLUSTER = _var("REDIS_CLUSTER", "spec.redis.external.cluster")
RUN_TIMEOUT_SECONDS = _var("RUN_TIMEOUT_SECONDS", "spec.runs.timeoutSeconds")
MAX_CONCURRENT_RUNS = _var("MAX_CONCURRENT_RUNS", "spec.runs.maxConcurrentPerPod")
RUN_LEASE_SECONDS = _var("RUN_LEASE_SECONDS", "spec.runs.leaseSeconds")
RUN_MAX_ATTEMPTS = _var("RUN_MAX_ATTEMPTS", "spec.runs.maxAttempts")
RUN_EVENT_TTL_SECONDS = _var("RUN_EVENT_TTL_SECONDS", "spec.retention.runEvents")
STATELESS_RUN_TTL_SECONDS = _var("STATELESS_RUN_TTL_SECONDS", "spec.retention.statelessRuns")
THREAD_TTL_SECONDS = _var("THREAD_TTL_SECONDS", "spec.retention.threads")
THREAD_TTL_STRATEGY = _var("THREAD_TTL_STRATEGY", "spec.retention.threadStrategy")
RUN_RECORD_TTL_SECONDS = _var("RUN_RECORD_TTL_SECONDS", "spec.retention.runs")
RETENTION_SWEEP_INTERVAL_SECONDS = _var(
    "RETENTION_SWEEP_INTERVAL_SECONDS", "spec.retention.sweepIntervalSeconds"
)
#: Comma-separated hosts, IPs and CIDRs.
WEBHOOK_ALLOWED_HOSTS = _var("WEBHOOK_ALLOWED_HOSTS", "spec.webhooks.allowedHosts")
WEBHOOK_SECRET = _var("WEBHOOK_SECRET", "spec.webhooks.signingSecretRef")
WEBHOOK_TIMEOUT_SECONDS = _var("WEBHOOK_TIMEOUT_SECONDS", "spec.webhooks.timeoutSeconds")
WEBHOOK_MAX_ATTEMPTS = _var("WEBHOOK_MAX_ATTEMPTS", "spec.webhooks.maxAttempts")
#: The fallback chain, JSON (agent_service.settings.ChainEntry): spec.model then each fallback.
LLM_CHAIN = _var("LLM_CHAIN", "spec.model (name, provider, fallbacks)")
#: Secrets of chain entry i: LLM_CHAIN_<i>_<FIELD> (agent_service.settings.CHAIN_SECRETS).
LLM_CHAIN_SECRET = "LLM_CHAIN_{index}_{field}"
_CHAIN_SECRET_FIELDS = (
    "API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "GOOGLE_CREDENTIALS"
)  # fmt: skip
for _index in range(1 + MAX_FALLBACKS):
    for _field in _CHAIN_SECRET_FIELDS:
        _var(LLM_CHAIN_SECRET.format(index=_index, field=_field), "spec.model (the chain's SecretRef fields)")
LLM_DEGRADED_REPLY = _var("LLM_DEGRADED_REPLY", "spec.model.degradedReply")
LLM_CONTEXT_OVERFLOW = _var("LLM_CONTEXT_OVERFLOW", "spec.model.contextOverflow")
LLM_CACHE_TTL_SECONDS = _var("LLM_CACHE_TTL_SECONDS", "spec.model.cache")
LLM_TIMEOUT_SECONDS = _var("LLM_TIMEOUT_SECONDS", "spec.model.timeoutSeconds")
LLM_MAX_RETRIES = _var("LLM_MAX_RETRIES", "spec.model.maxRetries")
CIRCUIT_FAILURE_THRESHOLD = _var("CIRCUIT_FAILURE_THRESHOLD", "spec.circuitBreaker.failureThreshold")
CIRCUIT_RECOVERY_SECONDS = _var("CIRCUIT_RECOVERY_SECONDS", "spec.circuitBreaker.recoveryTimeoutSeconds")
CIRCUIT_HALF_OPEN_PROBES = _var("CIRCUIT_HALF_OPEN_PROBES", "spec.circuitBreaker.halfOpenMaxCalls")
RATE_LIMIT_USER_PER_MINUTE = _var("RATE_LIMIT_USER_PER_MINUTE", "spec.rateLimits.perUserPerMinute")
RATE_LIMIT_TENANT_PER_MINUTE = _var("RATE_LIMIT_TENANT_PER_MINUTE", "spec.rateLimits.perTenantPerMinute")
TOKEN_BUDGET_PER_REQUEST = _var("TOKEN_BUDGET_PER_REQUEST", "spec.tokenBudget.maxTokensPerRequest")
TOKEN_BUDGET_PER_DAY = _var("TOKEN_BUDGET_PER_DAY", "spec.tokenBudget.tokensPerDay")
COST_BUDGET_USD_PER_DAY = _var("COST_BUDGET_USD_PER_DAY", "spec.tokenBudget.usdPerDay")  # per tenant
# The deployment's own spend budget (spec.costBudget).
SPEND_BUDGET_USD_PER_DAY = _var("SPEND_BUDGET_USD_PER_DAY", "spec.costBudget.usdPerDay")
SPEND_BUDGET_USD_PER_MONTH = _var("SPEND_BUDGET_USD_PER_MONTH", "spec.costBudget.usdPerMonth")
SPEND_BUDGET_ENFORCE = _var("SPEND_BUDGET_ENFORCE", "spec.costBudget.enforce")
USAGE_RETENTION_DAYS = _var("USAGE_RETENTION_DAYS", "spec.usage.retentionDays")
#: host:port of the listener serving GET /usage when auth is off (loopback: inside the Pod only).
USAGE_LOCAL_ADDRESS = _var("USAGE_LOCAL_ADDRESS", "spec.usage.localPort")
MAX_REQUEST_BODY_BYTES = _var("MAX_REQUEST_BODY_BYTES", "spec.inputLimits.maxRequestBytes")
RUN_INPUT_MAX_STRING_CHARS = _var("RUN_INPUT_MAX_STRING_CHARS", "spec.inputLimits.maxMessageChars")
RUN_INPUT_MAX_DEPTH = _var("RUN_INPUT_MAX_DEPTH", "spec.inputLimits.maxDepth")
STORE_MAX_VALUE_BYTES = _var("STORE_MAX_VALUE_BYTES", "spec.store.maxValueBytes")
STORE_DEFAULT_TTL_MINUTES = _var("STORE_DEFAULT_TTL_MINUTES", "spec.store.defaultTtlMinutes")
STORE_TTL_REFRESH_ON_READ = _var("STORE_TTL_REFRESH_ON_READ", "spec.store.refreshOnRead")
PROTOCOL_MCP = _var("PROTOCOL_MCP", "spec.protocols.mcp")
PROTOCOL_A2A = _var("PROTOCOL_A2A", "spec.protocols.a2a")
STORE_SWEEP_INTERVAL_SECONDS = _var("STORE_SWEEP_INTERVAL_SECONDS", "spec.store.sweepIntervalSeconds")
STORE_INDEX_URL = _var("STORE_INDEX_URL", "spec.store.index.url")
STORE_INDEX_MODEL = _var("STORE_INDEX_MODEL", "spec.store.index.model")
STORE_INDEX_DIMS = _var("STORE_INDEX_DIMS", "spec.store.index.dims")
STORE_INDEX_FIELDS = _var("STORE_INDEX_FIELDS", "spec.store.index.fields")
STORE_INDEX_API_KEY = _var("STORE_INDEX_API_KEY", "spec.store.index.apiKeySecretRef")
AUTH_JWKS_URL = _var("AUTH_JWKS_URL", "spec.auth.jwksUrl")
AUTH_JWT_SECRET = _var("AUTH_JWT_SECRET", "spec.auth.secretRef")
AUTH_ISSUER = _var("AUTH_ISSUER", "spec.auth.issuer")
AUTH_AUDIENCE = _var("AUTH_AUDIENCE", "spec.auth.audience")
AUTH_TENANT_CLAIM = _var("AUTH_TENANT_CLAIM", "spec.auth.tenantClaim")
AUTH_ROLES_CLAIM = _var("AUTH_ROLES_CLAIM", "spec.auth.rolesClaim")
AUTH_ADMIN_ROLE = _var("AUTH_ADMIN_ROLE", "spec.auth.adminRole")
OTEL_SERVICE_NAME = _var("OTEL_SERVICE_NAME", "metadata.name")
OTEL_EXPORTER_OTLP_ENDPOINT = _var("OTEL_EXPORTER_OTLP_ENDPOINT", "spec.tracing.otlpEndpoint")
# The OpenTelemetry SDK's own standard variables (read by the SDK, not by agent_service.settings).
OTEL_TRACES_SAMPLER = _var("OTEL_TRACES_SAMPLER", "spec.tracing.sampleRatio")
OTEL_TRACES_SAMPLER_ARG = _var("OTEL_TRACES_SAMPLER_ARG", "spec.tracing.sampleRatio")
OTEL_RESOURCE_ATTRIBUTES = _var("OTEL_RESOURCE_ATTRIBUTES", "spec.tracing (attributes are set from metadata)")
OTEL_SDK_VARIABLES = frozenset({OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG, OTEL_RESOURCE_ATTRIBUTES})
#: Variables only the kubelet reads (``$(VAR)`` expansion into another variable), not the service.
EXPANSION_ONLY = frozenset({REDIS_PASSWORD})

#: Where the agent sends spans when the collector sidecar runs (its OTLP/HTTP receiver on loopback).
COLLECTOR_LOCAL_ENDPOINT = "http://127.0.0.1:4318"
#: Seconds of the termination grace period kept back from draining: the preStop pause plus margin.
DRAIN_RESERVE_SECONDS = 10


def _num(value: float) -> str:
    """Render 60.0 as ``60`` and 0.5 as ``0.5``: stable, human-readable settings."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


#: Where the agent container finds the managed Redis' CA (TLS on).
REDIS_CA_DIR = "/etc/shepherd/redis-tls"


def key_prefix(resource: AgentDeployment) -> str:
    """The key prefix of one AgentDeployment (``:`` is in neither a namespace nor a name)."""
    return f"shepherd:{resource.namespace}:{resource.name}"


def managed_redis_address(resource: AgentDeployment) -> str:
    return f"{redis_name(resource)}.{resource.namespace}.svc:{REDIS_PORT}"


def managed_redis_url(resource: AgentDeployment) -> str:
    """The agent's URL of the managed Redis: its ACL user, the password expanded by the kubelet from
    ``SHEPHERD_REDIS_PASSWORD`` (so the Pod spec holds no secret), TLS verified with the CA when on."""
    managed = resource.spec.redis.managed
    assert managed is not None
    credentials = f"{REDIS_AGENT_USER}:$({REDIS_PASSWORD})"
    if managed.tls is None:
        return f"redis://{credentials}@{managed_redis_address(resource)}/0"
    ca = f"{REDIS_CA_DIR}/{REDIS_TLS_CA_KEY}"
    return f"rediss://{credentials}@{managed_redis_address(resource)}/0?ssl_ca_certs={ca}"


def _graph_source(spec: AgentDeploymentSpec) -> dict[str, str]:
    """AGENT_GRAPH, AGENT_CONFIG, both or neither: spec.graph is rendered only when set to other than
    its default (the service's own default), and then overrides any langgraph.json's graphs; left at
    its default, the image decides (an `agent-service build` image sets AGENT_CONFIG itself)."""
    source = {AGENT_CONFIG: spec.config} if spec.config else {}
    if spec.graph != DEFAULT_GRAPH:
        source[AGENT_GRAPH] = spec.graph
    return source


def config_data(resource: AgentDeployment) -> dict[str, str]:
    """Non-secret settings, as the ConfigMap's data (sorted keys, string values)."""
    spec = resource.spec
    data: dict[str, str] = {
        AGENT_GRAPH_ID: spec.graph_id,
        TERMINATION_MESSAGE_PATH: CONTAINER_TERMINATION_LOG,
        DRAIN_GRACE_SECONDS: str(max(spec.termination_grace_period_seconds - DRAIN_RESERVE_SECONDS, 0)),
        LLM_CHAIN: json.dumps([_chain_entry(entry) for entry in spec.model.chain()], sort_keys=True),
        LLM_CONTEXT_OVERFLOW: "refuse" if spec.model.context_overflow == ContextOverflow.refuse else "trim",
        LLM_TIMEOUT_SECONDS: _num(spec.model.timeout_seconds),
        LLM_MAX_RETRIES: str(spec.model.max_retries),
        CIRCUIT_FAILURE_THRESHOLD: str(spec.circuit_breaker.failure_threshold),
        CIRCUIT_RECOVERY_SECONDS: _num(spec.circuit_breaker.recovery_timeout_seconds),
        CIRCUIT_HALF_OPEN_PROBES: str(spec.circuit_breaker.half_open_max_calls),
        OTEL_SERVICE_NAME: resource.name,
        RUN_TIMEOUT_SECONDS: _num(spec.runs.timeout_seconds),
        MAX_CONCURRENT_RUNS: str(spec.runs.max_concurrent_per_pod),
        RUN_LEASE_SECONDS: str(spec.runs.lease_seconds),
        RUN_MAX_ATTEMPTS: str(spec.runs.max_attempts),
        RUN_EVENT_TTL_SECONDS: str(duration_seconds(spec.retention.run_events)),
        STATELESS_RUN_TTL_SECONDS: str(duration_seconds(spec.retention.stateless_runs)),
        RETENTION_SWEEP_INTERVAL_SECONDS: str(spec.retention.sweep_interval_seconds),
        WEBHOOK_ALLOWED_HOSTS: ",".join(spec.webhooks.allowed_hosts),
        WEBHOOK_TIMEOUT_SECONDS: _num(spec.webhooks.timeout_seconds),
        WEBHOOK_MAX_ATTEMPTS: str(spec.webhooks.max_attempts),
        REDIS_KEY_PREFIX: key_prefix(resource),
        **_graph_source(spec),
        MAX_REQUEST_BODY_BYTES: str(spec.input_limits.max_request_bytes),
        RUN_INPUT_MAX_STRING_CHARS: str(spec.input_limits.max_message_chars),
        RUN_INPUT_MAX_DEPTH: str(spec.input_limits.max_depth),
        STORE_MAX_VALUE_BYTES: str(spec.store.max_value_bytes),
        STORE_TTL_REFRESH_ON_READ: "true" if spec.store.refresh_on_read else "false",
        STORE_SWEEP_INTERVAL_SECONDS: str(spec.store.sweep_interval_seconds),
        PROTOCOL_MCP: "true" if spec.protocols.mcp else "false",
        PROTOCOL_A2A: "true" if spec.protocols.a2a else "false",
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
        STORE_DEFAULT_TTL_MINUTES: spec.store.default_ttl_minutes,
    }
    data.update({k: _num(v) for k, v in optional.items() if v is not None})
    if cost.enforce:
        data[SPEND_BUDGET_ENFORCE] = "true"
    retention = spec.retention
    if retention.threads is not None:
        data[THREAD_TTL_SECONDS] = str(duration_seconds(retention.threads))
        data[THREAD_TTL_STRATEGY] = retention.thread_strategy
    if retention.runs is not None:
        data[RUN_RECORD_TTL_SECONDS] = str(duration_seconds(retention.runs))
    if (index := spec.store.index) is not None:
        data[STORE_INDEX_URL] = index.url
        data[STORE_INDEX_MODEL] = index.model
        data[STORE_INDEX_DIMS] = str(index.dims)
        data[STORE_INDEX_FIELDS] = ",".join(index.fields)
    if spec.model.degraded_reply is not None:
        data[LLM_DEGRADED_REPLY] = spec.model.degraded_reply
    if spec.model.cache.enabled:
        data[LLM_CACHE_TTL_SECONDS] = str(spec.model.cache.ttl_seconds)
    if spec.auth is not None:
        data[AUTH_TENANT_CLAIM] = spec.auth.tenant_claim
        data[AUTH_ROLES_CLAIM] = spec.auth.roles_claim
        data[AUTH_ADMIN_ROLE] = spec.auth.admin_role
        if spec.auth.jwks_url:
            data[AUTH_JWKS_URL] = spec.auth.jwks_url
        if spec.auth.issuer:
            data[AUTH_ISSUER] = spec.auth.issuer
        if spec.auth.audience:
            data[AUTH_AUDIENCE] = spec.auth.audience
    if spec.redis.external is not None and spec.redis.external.url:
        data[REDIS_URL] = spec.redis.external.url
    if spec.redis.external is not None and spec.redis.external.cluster:
        data[REDIS_CLUSTER] = "true"
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


def _secret_variables(resource: AgentDeployment) -> list[tuple[str, str, SecretKeyRef]]:
    """(field path, variable, Secret key) of every setting read from a Secret: the chain's, then the
    others, in the order the container's env lists them."""
    spec = resource.spec
    index, external = spec.store.index, spec.redis.external
    optional = [
        ("spec.auth.secretRef", AUTH_JWT_SECRET, spec.auth.secret_ref if spec.auth else None),
        ("spec.redis.external.urlSecretRef", REDIS_URL, external.url_secret_ref if external else None),
        ("spec.webhooks.signingSecretRef", WEBHOOK_SECRET, spec.webhooks.signing_secret_ref),
        ("spec.store.index.apiKeySecretRef", STORE_INDEX_API_KEY, index and index.api_key_secret_ref),
    ]
    return [*_chain_secrets(resource), *((p, v, ref) for p, v, ref in optional if ref is not None)]


def _secret_env(name: str, ref: SecretKeyRef) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}


def referenced_secrets(resource: AgentDeployment) -> list[tuple[str, SecretKeyRef]]:
    """(field path, Secret key) of every Secret the workload needs; the operator checks they exist
    before rolling out, naming the field that refers to a missing one."""
    spec = resource.spec
    refs = [(path, ref) for path, _, ref in _secret_variables(resource)]
    refs.extend(
        (f"spec.env[{i}].secretKeyRef", e.secret_key_ref) for i, e in enumerate(spec.env) if e.secret_key_ref
    )
    refs.extend(("spec.redis.managed.tls.secretName", ref) for ref in redis_tls_refs(resource))
    return refs


def redis_tls_refs(resource: AgentDeployment) -> list[SecretKeyRef]:
    """The managed Redis' TLS Secret keys (cert-manager's layout), none without TLS."""
    managed = resource.spec.redis.managed
    if managed is None or managed.tls is None:
        return []
    keys = (REDIS_TLS_CERT_KEY, REDIS_TLS_KEY_KEY, REDIS_TLS_CA_KEY)
    return [SecretKeyRef(name=managed.tls.secret_name, key=k) for k in keys]


def agent_secret_refs(resource: AgentDeployment) -> list[SecretKeyRef]:
    """Every Secret key the agent Pods read (their template hashes these keys' values)."""
    refs = [ref for _, ref in referenced_secrets(resource)]
    if resource.spec.redis.managed is not None:
        refs.append(SecretKeyRef(name=redis_auth_name(resource), key=REDIS_AGENT_USER))
    return refs


def container_env(resource: AgentDeployment) -> list[dict[str, Any]]:
    """``env`` of the agent container: secret references, then the user's variables (never one
    Shepherd sets: the CRD refuses those)."""
    spec = resource.spec
    env = [_secret_env(variable, ref) for _, variable, ref in _secret_variables(resource)]
    if spec.redis.managed is not None:
        ref = SecretKeyRef(name=redis_auth_name(resource), key=REDIS_AGENT_USER)
        env.append(_secret_env(REDIS_PASSWORD, ref))
        env.append({"name": REDIS_URL, "value": managed_redis_url(resource)})  # after the password
    for var in spec.env:
        if var.secret_key_ref is not None:
            env.append(_secret_env(var.name, var.secret_key_ref))
        else:
            env.append({"name": var.name, "value": var.value or ""})
    return env
