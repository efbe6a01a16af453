"""Every setting of the service, read from the environment once and validated at start-up.

One class, grouped by concern. Each group is a block of fields with a comment header; add a
new concern as a new block (field names map to upper-case environment variables).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_GRAPH_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_ENTRYPOINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class SettingsError(ValueError):
    """Start-up refusal with one readable line per bad setting, named as its environment variable."""

    def __init__(self, error: ValidationError):
        lines = []
        for problem in error.errors():
            name = "_".join(str(part) for part in problem["loc"]).upper() or "settings"
            lines.append(f"  {name}: {problem['msg']}")
        super().__init__("invalid agent-service settings:\n" + "\n".join(lines))


class ChainPrice(BaseModel):
    """USD per million tokens of one chain entry, replacing the pricing table (llm/pricing.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cache_read: float | None = Field(default=None, ge=0)
    cache_write: float | None = Field(default=None, ge=0)


#: Secret fields of a chain entry, each read from LLM_CHAIN_<index>_<FIELD> (set from Secrets).
CHAIN_SECRETS = (
    "api_key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
    "google_credentials",
)
_CHAIN_REQUIRED = {"anthropic": ("api_key",), "bedrock": ("region",), "vertex": ("region", "project_id")}


class ChainEntry(BaseModel):
    """One model of the fallback chain (LLM_CHAIN is a JSON list of these, primary first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    provider: Literal["anthropic", "bedrock", "vertex", "openai", "stub"]
    model: str = Field(min_length=1, max_length=256)
    base_url: str | None = Field(default=None, pattern=r"^https?://")
    region: str | None = None
    project_id: str | None = None
    max_input_tokens: int | None = Field(default=None, ge=1)
    pricing: ChainPrice | None = None
    api_key: SecretStr | None = None
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    google_credentials: SecretStr | None = None  # a service account key (JSON)

    @model_validator(mode="after")
    def _provider_settings(self) -> ChainEntry:
        missing = [name for name in _CHAIN_REQUIRED.get(self.provider, ()) if getattr(self, name) is None]
        if missing:
            raise ValueError(f"provider {self.provider} needs {' and '.join(missing)}")
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("aws_access_key_id and aws_secret_access_key go together")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    # --- graph ------------------------------------------------------------------------------
    agent_graph: str = Field(
        default="agent_service.graphs.reference_agent:build_graph",
        description="LangGraph entrypoint `module:attr`: a compiled graph, a StateGraph or a factory.",
    )
    agent_graph_id: str = Field(default="agent", description="Graph id and default assistant id.")
    agent_config: Path | None = Field(
        default=None,
        description="A LangGraph project's langgraph.json: its graphs, env, http.app and auth.path "
        "(an alternative to AGENT_GRAPH, which overrides its graphs when set too).",
    )
    termination_message_path: Path | None = Field(
        default=None,
        description="Where a start-up error is written for the kubelet (the terminationMessagePath).",
    )

    # --- state (Redis) ----------------------------------------------------------------------
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", description="Threads, runs, limits, budgets.")
    redis_key_prefix: str = Field(
        default="shepherd", min_length=1, description="Prefix of every key this service writes (no braces)."
    )
    redis_cluster: bool = Field(default=False, description="REDIS_URL names a node of a Redis Cluster.")
    redis_timeout_seconds: float = Field(default=2.0, gt=0, description="Connect and command timeout.")
    redis_retry_after_seconds: int = Field(
        default=5, ge=1, description="Retry-After sent while Redis is down."
    )

    # --- runs and lifecycle (agent_service/runs) ---------------------------------------------
    run_timeout_seconds: float = Field(
        default=600.0, gt=0, description="An attempt of a run still going after this ends as timeout."
    )
    max_concurrent_runs: int = Field(
        default=32,
        ge=1,
        description="Runs executing at once per replica; more wait in the queue (status pending).",
    )
    run_lease_seconds: float = Field(
        default=15.0,
        ge=2,
        le=600,
        description="A replica that stops renewing its lease this long is lost: its runs resume elsewhere.",
    )
    run_max_attempts: int = Field(
        default=3, ge=1, le=100, description="Attempts of a run lost with its replica before it fails."
    )
    run_event_ttl_seconds: int = Field(
        default=3600, ge=1, description="A finished run's event log stays readable (join, resume) this long."
    )
    run_event_log_max_entries: int = Field(
        default=10_000, ge=10, description="Entries of a run's event log kept at most (oldest dropped)."
    )
    stateless_run_ttl_seconds: int = Field(
        default=3600, ge=1, description="A stateless run's record and output stay readable this long."
    )
    drain_grace_seconds: float = Field(
        default=20.0,
        ge=0,
        description="On SIGTERM, runs get this long to finish before being handed back to the queue.",
    )

    # --- retention (agent_service/runs/sweeper.py) ------------------------------------------
    thread_ttl_seconds: int = Field(
        default=0,
        ge=0,
        description="A thread idle this long is swept (THREAD_TTL_STRATEGY); 0 = kept until deleted.",
    )
    thread_ttl_strategy: Literal["delete", "keep_latest"] = Field(
        default="delete",
        description="Expired threads: deleted with everything of them, or pruned to their latest state.",
    )
    run_record_ttl_seconds: int = Field(
        default=0, ge=0, description="A finished thread run's record is kept this long; 0 = with its thread."
    )
    retention_sweep_interval_seconds: float = Field(
        default=60.0, gt=0, le=86400, description="How often the sweeper looks for expired threads."
    )

    # --- long-term memory (agent_service/state/store.py, api/store.py) ----------------------
    store_max_value_bytes: int = Field(
        default=262_144, ge=1, description="Largest JSON value of one store item; larger puts get 422."
    )
    store_default_ttl_minutes: float | None = Field(
        default=None, gt=0, description="TTL of store items put without one; unset: they never expire."
    )
    store_ttl_refresh_on_read: bool = Field(
        default=True, description="Reads and searches give the items they return their full TTL again."
    )
    store_sweep_interval_seconds: float = Field(
        default=60.0, gt=0, description="How often expired store items leave the namespace indexes."
    )

    store_index_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="OpenAI-compatible embeddings base URL (.../v1): search(query=) ranks by meaning.",
    )
    store_index_model: str = Field(
        default="text-embedding-3-small", min_length=1, description="Embeddings model the endpoint serves."
    )
    store_index_dims: int | None = Field(
        default=None, ge=1, le=16_384, description="Dimensions of the model's vectors (needed with a URL)."
    )
    store_index_fields: Annotated[list[str], NoDecode] = Field(
        default=["$"],
        description="Comma-separated JSON paths of a value that are embedded ($: the whole value).",
    )
    store_index_api_key: SecretStr | None = Field(default=None, description="Bearer key of the endpoint.")
    # Read with the Pod's environment, before the LLM gateway points the SDKs at itself (it serves no
    # embeddings): where langgraph.json's store.index "openai:<model>" embeds (store_setup.py).
    openai_base_url: str | None = Field(
        default=None, description="The Pod's OpenAI-compatible base URL, for 'openai:<model>' embeddings."
    )
    openai_api_key: SecretStr | None = Field(
        default=None, description="The Pod's OpenAI key, for langgraph.json's 'openai:<model>' embeddings."
    )

    # --- protocols besides the LangGraph Platform API (agent_service/api/mcp.py, a2a.py) -----
    protocol_mcp: bool = Field(default=True, description="Serve every assistant as an MCP tool at /mcp.")
    protocol_a2a: bool = Field(
        default=True, description="Serve every assistant over A2A at /a2a/{id}, with its agent card."
    )

    # --- run webhooks (agent_service/runs/webhooks.py) ----------------------------------------
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default=[],
        description=(
            "Comma-separated hosts, IPs or CIDRs webhooks may reach; empty: any public https host. "
            "Loopback, private, link-local and metadata addresses only when listed."
        ),
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key signing webhook deliveries (X-Shepherd-Signature)."
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Deadline of one delivery."
    )
    webhook_max_attempts: int = Field(
        default=5, ge=1, le=50, description="Deliveries tried before giving up."
    )

    # --- LLM calls (agent_service/llm) ------------------------------------------------------
    anthropic_api_key: SecretStr | None = Field(default=None, description="Unset: the offline stub model.")
    anthropic_base_url: str | None = Field(
        default=None, description="Messages API base URL (tests, proxies)."
    )
    llm_model: str = Field(default="claude-sonnet-4-6", description="Primary model.")
    llm_fallback_models: Annotated[list[str], NoDecode] = Field(
        default=["claude-haiku-4-5"],
        description="Comma-separated models tried in order when one is unavailable.",
    )
    llm_timeout_seconds: float = Field(
        default=60.0, gt=0, description="Deadline of one attempt (to first token)."
    )
    llm_max_retries: int = Field(default=2, ge=0, description="Retries per model on 429, 5xx, 529, timeouts.")
    llm_backoff_base_seconds: float = Field(default=0.5, ge=0, description="First retry delay ceiling.")
    llm_backoff_max_seconds: float = Field(
        default=8.0, ge=0, description="Largest retry delay (and retry-after)."
    )
    llm_max_tokens: int = Field(default=1024, ge=1, description="max_tokens of each call.")
    llm_max_concurrency: int = Field(default=16, ge=1, description="LLM calls in progress per replica.")
    circuit_failure_threshold: int = Field(default=5, ge=1, description="Consecutive failures that open it.")
    circuit_recovery_seconds: float = Field(default=30.0, gt=0, description="Open this long, then half-open.")
    circuit_half_open_probes: int = Field(
        default=1, ge=1, description="Calls admitted (and needed) to close."
    )
    token_budget_per_request: int = Field(
        default=0, ge=0, description="Tokens per HTTP request; 0 = no limit."
    )
    token_budget_per_day: int = Field(
        default=0, ge=0, description="Tokens per tenant per UTC day; 0 = no limit."
    )
    cost_budget_usd_per_day: float = Field(
        default=0.0, ge=0, description="USD per tenant per UTC day; 0 = none."
    )

    # --- spend and usage (agent_service/llm/budget.py, agent_service/usage.py) ---------------
    spend_budget_usd_per_day: float = Field(
        default=0.0, ge=0, description="The deployment's USD per UTC day (costBudget); 0 = none."
    )
    spend_budget_usd_per_month: float = Field(
        default=0.0, ge=0, description="The deployment's USD per calendar month (UTC); 0 = none."
    )
    spend_budget_enforce: bool = Field(
        default=False, description="Refuse runs and model calls (429) once a deployment budget is spent."
    )
    usage_retention_days: int = Field(
        default=90, ge=1, le=3660, description="Days the per-tenant usage counters are kept."
    )
    usage_local_address: str = Field(
        default="",
        description="Without auth, GET /usage is served only on this host:port (the operator: loopback).",
    )

    # --- models across providers (agent_service/llm, llm/gateway) ------------------------------
    llm_chain: list[ChainEntry] = Field(
        default=[],
        description=(
            "JSON list of chain entries (provider, model, settings), primary first; secrets from "
            "LLM_CHAIN_<i>_<FIELD>. Set: replaces ANTHROPIC_API_KEY/LLM_MODEL/LLM_FALLBACK_MODELS."
        ),
    )
    llm_gateway: bool = Field(default=True, description="Serve graphs' own SDK clients (see gateway/).")
    llm_gateway_port: int = Field(
        default=0, ge=0, le=65535, description="Loopback port of the LLM gateway; 0 = any free port."
    )
    llm_degraded_reply: str | None = Field(
        default=None, max_length=4096, description="Answer when every model fails (marked degraded)."
    )
    llm_context_overflow: Literal["trim", "refuse"] = Field(
        default="trim", description="Messages over a model's input limit: drop the oldest turns, or refuse."
    )
    llm_cache_ttl_seconds: int = Field(
        default=0, ge=0, description="Response cache of temperature-0 calls in Redis; 0 = off."
    )

    # --- security (agent_service/security) ---------------------------------------------------
    auth_jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 secret (32+ bytes); enables auth."
    )
    auth_jwks_url: str | None = Field(
        default=None, description="JWKS URL (RS256/ES256 tokens); enables auth."
    )
    auth_issuer: str | None = Field(default=None, description="Required `iss` (mandatory with JWKS).")
    auth_audience: str | None = Field(default=None, description="Required `aud` (mandatory with JWKS).")
    auth_tenant_claim: str = Field(default="tenant", description="Claim naming the caller's tenant.")
    auth_roles_claim: str = Field(
        default="roles", description="Claim with the caller's roles; `admin` may read GET /usage."
    )
    auth_admin_role: str = Field(
        default="admin",
        min_length=1,
        description="Role (in AUTH_ROLES_CLAIM) of the admin API: GET /usage, /admin/... erasure and export.",
    )
    rate_limit_user_per_minute: int = Field(
        default=0, ge=0, description="Requests per user per minute; 0 = off."
    )
    rate_limit_tenant_per_minute: int = Field(default=0, ge=0, description="Requests per tenant per minute.")
    max_request_body_bytes: int = Field(default=1_048_576, ge=1, description="Larger bodies get 413.")
    run_input_max_string_chars: int = Field(
        default=100_000, ge=1, description="Longest string in a run's input or a state update (422 above)."
    )
    run_input_max_depth: int = Field(
        default=32, ge=1, description="Deepest nesting of objects and lists in a run's input (422 above)."
    )
    cors_allow_origins: Annotated[list[str], NoDecode] = Field(
        default=[], description="Comma-separated origins allowed by CORS; empty = no CORS headers."
    )

    # --- observability (agent_service/observability) -----------------------------------------
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP endpoint; unset = off."
    )
    otel_service_name: str = Field(default="agent-service", description="service.name of traces.")
    log_level: str = Field(default="INFO", description="Root log level.")

    @model_validator(mode="before")
    @classmethod
    def _chain_secrets(cls, values: Any) -> Any:
        """Each entry's secrets from LLM_CHAIN_<i>_<FIELD>: Secrets reach the Pod one variable each."""
        chain = values.get("llm_chain") if isinstance(values, dict) else None
        if not isinstance(chain, list):
            return values
        entries = []
        for index, entry in enumerate(chain):
            if isinstance(entry, dict):
                found = {
                    f: os.environ[v]
                    for f in CHAIN_SECRETS
                    if (v := f"LLM_CHAIN_{index}_{f.upper()}") in os.environ
                }
                entry = {**found, **entry}
            entries.append(entry)
        return {**values, "llm_chain": entries}

    @field_validator("agent_graph")
    @classmethod
    def _entrypoint_shape(cls, value: str) -> str:
        if not _ENTRYPOINT.match(value):
            raise ValueError(f"must look like 'package.module:attribute', got {value!r}")
        return value

    @field_validator("agent_graph_id")
    @classmethod
    def _graph_id_shape(cls, value: str) -> str:
        if not _GRAPH_ID.match(value):
            raise ValueError("must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("usage_local_address")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if value and not (host and port.isdigit() and 0 < int(port) < 65536):
            raise ValueError(f"must be host:port (e.g. 127.0.0.1:8082) or empty, got {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("redis_key_prefix")
    @classmethod
    def _prefix_without_tags(cls, value: str) -> str:
        if "{" in value or "}" in value:
            raise ValueError("must not contain braces (they are Redis Cluster hash tags)")
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _allowed_hosts(cls, value: list[str]) -> list[str]:
        from agent_service.runs.webhooks import parse_allowed

        parse_allowed(value)  # raises ValueError naming the entry
        return value

    @field_validator(
        "llm_fallback_models",
        "cors_allow_origins",
        "webhook_allowed_hosts",
        "store_index_fields",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return (
            [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
        )

    @field_validator("auth_jwt_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # RFC 7518 3.2: an HS256 key must be at least as long as the hash (32 bytes).
        if value is not None and (
            len(value.get_secret_value().encode()) < 32 or "changethis" in value.get_secret_value()
        ):
            raise ValueError("must be at least 32 bytes of real secret")
        return value

    @model_validator(mode="after")
    def _auth_mode(self) -> Settings:
        if self.auth_jwt_secret and self.auth_jwks_url:
            raise ValueError("set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both")
        # JWKS keys are usually shared by every app of an identity provider: only iss+aud scope a token to us.
        if self.auth_jwks_url and not (self.auth_issuer and self.auth_audience):
            raise ValueError("AUTH_JWKS_URL needs AUTH_ISSUER and AUTH_AUDIENCE")
        return self

    @model_validator(mode="after")
    def _store_index(self) -> Settings:
        if self.store_index_url and self.store_index_dims is None:
            raise ValueError("STORE_INDEX_URL needs STORE_INDEX_DIMS (the dimensions of the model's vectors)")
        return self

    @property
    def auth_enabled(self) -> bool:
        return bool(self.auth_jwt_secret or self.auth_jwks_url)

    @property
    def llm_models(self) -> tuple[str, ...]:
        """The fallback chain: primary first, duplicates dropped."""
        return tuple(dict.fromkeys([self.llm_model, *self.llm_fallback_models]))


def load_settings() -> Settings:
    """Settings from the environment, or a `SettingsError` naming every bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(error) from None
