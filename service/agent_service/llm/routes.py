"""One entry of the fallback chain: which provider serves which model, with what settings.

The chain is the AgentDeployment's `spec.model` then each of its `fallbacks`, in order; every entry
names its own provider, so a chain may cross providers (anthropic -> bedrock -> openai). Circuits,
metrics, tokens and cost are per entry, labelled with the provider and model that answered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from agent_service.llm.pricing import Price


class ProviderName(StrEnum):
    anthropic = "anthropic"
    bedrock = "bedrock"
    vertex = "vertex"
    openai = "openai"
    stub = "stub"


#: Providers whose calls go through a circuit breaker (the offline stub cannot fail).
CIRCUIT_PROVIDERS = frozenset(ProviderName) - {ProviderName.stub}


@dataclass(frozen=True)
class Credentials:
    """Secret values of one entry (from Secrets, through LLM_CHAIN_<i>_* variables); never logged."""

    api_key: str | None = field(default=None, repr=False)
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    google_credentials: str | None = field(default=None, repr=False)  # service account key JSON


@dataclass(frozen=True)
class ModelRoute:
    provider: ProviderName
    model: str
    base_url: str | None = None
    region: str | None = None
    project_id: str | None = None
    credentials: Credentials = field(default_factory=Credentials)
    #: USD per million tokens, replacing the pricing table (self-hosted or discounted models).
    price: Price | None = None
    #: Input limit in tokens; None: the model's known default (llm/fit.py), or no limit if unknown.
    max_input_tokens: int | None = None

    @property
    def circuit(self) -> str:
        """The circuit's name, as exported in agent_circuit_state{circuit} and shown on the resource."""
        return f"{self.provider}:{self.model}"

    @property
    def has_circuit(self) -> bool:
        return self.provider in CIRCUIT_PROVIDERS
